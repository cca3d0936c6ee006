//! Which fields of which instruction go through variable expansion, and only those.
//!
//! BuildKit expands fields one word at a time (`SupportsSingleWordExpansion` in
//! `instructions/commands.go`, plus a few special cases in `dockerfile2llb/convert.go`).
//! The list, checked against that code:
//!
//! | instruction | expanded                                   | not expanded              |
//! |-------------|--------------------------------------------|---------------------------|
//! | FROM        | image, `--platform` (with the global ARGs) | `AS` name                 |
//! | RUN         | each `--mount` option value                | command, mount keys, heredocs, `--network`, `--security` |
//! | ENV, LABEL  | keys and values (this removes their quotes)|                           |
//! | ARG         | default values                             | names                     |
//! | COPY        | sources, dest, `--chown`, `--chmod`        | `--from` (refused when it uses variables), `--exclude`, heredoc names |
//! | ADD         | sources, dest, `--chown`, `--chmod`, `--checksum` | `--exclude`, `--keep-git-dir`, `--unpack` |
//! | WORKDIR, USER, STOPSIGNAL | the value                    |                           |
//! | VOLUME      | each path                                  |                           |
//! | EXPOSE      | each port (a result with spaces gives several ports) |                 |
//! | CMD, ENTRYPOINT, SHELL, HEALTHCHECK, ONBUILD, MAINTAINER | — | everything     |
//!
//! Heredoc bodies of COPY/ADD with an unquoted delimiter are expanded separately, with
//! quotes kept, by [`Instruction::expand_heredocs`] (BuildKit's `ExpandRaw`).

use std::fmt;

use super::chmod::Chmod;
use super::deferred::Deferred;
use super::mount::{Mount, MountField, split_fields};
use super::{Add, Arg, Copy, Env, Expose, From, Instruction, Label, Run, Volume};
use crate::error::Diagnostic;

/// Why [`Instruction::expand`] failed: the expander itself refused a word (e.g.
/// `${X:?unset}`), or the expanded value is invalid (e.g. `--chmod=$M` with `M=999`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandError<E> {
    Expander(E),
    /// The diagnostic has no position; locate it with the instruction's span.
    Invalid(Diagnostic),
}

impl<E: fmt::Display> fmt::Display for ExpandError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpandError::Expander(e) => e.fmt(f),
            ExpandError::Invalid(d) => f.write_str(&d.message),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for ExpandError<E> {}

impl<E> std::convert::From<E> for ExpandError<E> {
    fn from(e: E) -> Self {
        ExpandError::Expander(e)
    }
}

/// A single-word expander: takes a word as written, returns it expanded.
pub type Expander<'a, E> = dyn FnMut(&str) -> Result<String, E> + 'a;

impl Instruction {
    /// Returns a copy with `f` applied to exactly the fields BuildKit expands (see the
    /// table in this module's source), then re-validates the values that can only be
    /// checked once expanded (`--mount` options, `--chmod`, the FROM base).
    pub fn expand<E>(&self, f: &mut Expander<'_, E>) -> Result<Instruction, ExpandError<E>> {
        Ok(match self {
            Instruction::From(x) => Instruction::From(expand_from(x, f)?),
            Instruction::Run(x) => Instruction::Run(expand_run(x, f)?),
            Instruction::Env(x) => Instruction::Env(Env {
                pairs: expand_pairs(&x.pairs, f)?,
            }),
            Instruction::Label(x) => Instruction::Label(Label {
                pairs: expand_pairs(&x.pairs, f)?,
            }),
            Instruction::Arg(x) => Instruction::Arg(expand_arg(x, f)?),
            Instruction::Copy(x) => Instruction::Copy(expand_copy(x, f)?),
            Instruction::Add(x) => Instruction::Add(expand_add(x, f)?),
            Instruction::Workdir(x) => {
                let mut x = x.clone();
                x.path = f(&x.path)?;
                Instruction::Workdir(x)
            }
            Instruction::User(x) => {
                let mut x = x.clone();
                x.user = f(&x.user)?;
                Instruction::User(x)
            }
            Instruction::Stopsignal(x) => {
                let mut x = x.clone();
                x.signal = f(&x.signal)?;
                Instruction::Stopsignal(x)
            }
            Instruction::Volume(x) => Instruction::Volume(Volume {
                paths: x.paths.iter().map(|p| f(p)).collect::<Result<_, _>>()?,
            }),
            Instruction::Expose(x) => Instruction::Expose(expand_expose(x, f)?),
            Instruction::Cmd(_)
            | Instruction::Entrypoint(_)
            | Instruction::Shell(_)
            | Instruction::Healthcheck(_)
            | Instruction::Onbuild(_)
            | Instruction::Maintainer(_) => self.clone(),
        })
    }

    /// Returns a copy with `f` applied to the bodies of COPY/ADD heredoc sources whose
    /// delimiter was not quoted. BuildKit runs these through its lexer with quote
    /// processing off, so `f` should keep quotes. Other instructions are unchanged.
    pub fn expand_heredocs<E>(&self, f: &mut Expander<'_, E>) -> Result<Instruction, E> {
        let expand_all =
            |sources: &mut Vec<super::InlineSource>, f: &mut Expander<'_, E>| -> Result<(), E> {
                for s in sources.iter_mut().filter(|s| s.expand) {
                    s.content = f(&s.content)?;
                }
                Ok(())
            };
        let mut out = self.clone();
        match &mut out {
            Instruction::Copy(c) => expand_all(&mut c.heredocs, f)?,
            Instruction::Add(a) => expand_all(&mut a.heredocs, f)?,
            _ => {}
        }
        Ok(out)
    }
}

fn invalid<E>(message: impl Into<String>) -> ExpandError<E> {
    ExpandError::Invalid(Diagnostic::new(message))
}

fn expand_from<E>(x: &From, f: &mut Expander<'_, E>) -> Result<From, ExpandError<E>> {
    let image = f(&x.image)?;
    if image.is_empty() {
        return Err(invalid(format!(
            "base name ({}) should not be blank",
            x.image
        )));
    }
    let platform = match &x.platform {
        None => None,
        Some(p) => {
            let expanded = f(p)?;
            if expanded.is_empty() {
                return Err(invalid(format!("empty platform value from expression {p}")));
            }
            Some(expanded)
        }
    };
    Ok(From {
        image,
        platform,
        ..x.clone()
    })
}

fn expand_run<E>(x: &Run, f: &mut Expander<'_, E>) -> Result<Run, ExpandError<E>> {
    let mut mounts = Vec::with_capacity(x.mounts.len());
    for m in &x.mounts {
        let to_diag = |e: super::MountError| {
            let d = Diagnostic::new(e.to_string());
            ExpandError::Invalid(match e.help() {
                Some(h) => d.with_help(h),
                None => d,
            })
        };
        let fields = split_fields(&m.raw).map_err(to_diag)?;
        let expanded = fields
            .into_iter()
            .map(|field| {
                Ok(MountField {
                    value: field.value.as_deref().map(&mut *f).transpose()?,
                    ..field
                })
            })
            .collect::<Result<Vec<_>, E>>()?;
        let mount = Mount::from_fields(&expanded).map_err(to_diag)?;
        mounts.push(Deferred {
            raw: m.raw.clone(),
            value: Some(mount),
        });
    }
    Ok(Run {
        mounts,
        ..x.clone()
    })
}

fn expand_pairs<E>(
    pairs: &[super::Pair],
    f: &mut Expander<'_, E>,
) -> Result<Vec<super::Pair>, ExpandError<E>> {
    pairs
        .iter()
        .map(|p| {
            Ok(super::Pair {
                key: f(&p.key)?,
                value: f(&p.value)?,
                legacy: p.legacy,
            })
        })
        .collect()
}

/// Only defaults: BuildKit's dispatcher skips ARG's generic expansion and expands the
/// default value alone (and only when no build argument overrides it, which the caller
/// decides).
fn expand_arg<E>(x: &Arg, f: &mut Expander<'_, E>) -> Result<Arg, ExpandError<E>> {
    let mut out = x.clone();
    for def in &mut out.args {
        if let Some(v) = &def.default {
            def.default = Some(f(v)?);
        }
    }
    Ok(out)
}

/// Expands an optional flag; an empty result means "not given", as in BuildKit.
fn expand_opt<E>(
    value: &Option<String>,
    f: &mut Expander<'_, E>,
) -> Result<Option<String>, ExpandError<E>> {
    Ok(match value {
        Some(v) => Some(f(v)?).filter(|v| !v.is_empty()),
        None => None,
    })
}

fn expand_chmod<E>(
    value: &Option<Deferred<Chmod>>,
    f: &mut Expander<'_, E>,
) -> Result<Option<Deferred<Chmod>>, ExpandError<E>> {
    let Some(d) = value else { return Ok(None) };
    let expanded = f(&d.raw)?;
    if expanded.is_empty() {
        return Ok(None);
    }
    let chmod = Chmod::parse(&expanded)
        .map_err(|e| ExpandError::Invalid(Diagnostic::new(e.to_string()).with_help(e.help())))?;
    Ok(Some(Deferred {
        raw: d.raw.clone(),
        value: Some(chmod),
    }))
}

fn expand_words<E>(words: &[String], f: &mut Expander<'_, E>) -> Result<Vec<String>, E> {
    words.iter().map(|w| f(w)).collect()
}

fn expand_copy<E>(x: &Copy, f: &mut Expander<'_, E>) -> Result<Copy, ExpandError<E>> {
    Ok(Copy {
        srcs: expand_words(&x.srcs, f)?,
        dest: f(&x.dest)?,
        chown: expand_opt(&x.chown, f)?,
        chmod: expand_chmod(&x.chmod, f)?,
        ..x.clone()
    })
}

fn expand_add<E>(x: &Add, f: &mut Expander<'_, E>) -> Result<Add, ExpandError<E>> {
    let out = Add {
        srcs: expand_words(&x.srcs, f)?,
        dest: f(&x.dest)?,
        chown: expand_opt(&x.chown, f)?,
        chmod: expand_chmod(&x.chmod, f)?,
        checksum: expand_opt(&x.checksum, f)?,
        ..x.clone()
    };
    if out.checksum.is_some() && out.srcs.len() != 1 {
        return Err(invalid("checksum can't be specified for multiple sources"));
    }
    Ok(out)
}

/// BuildKit expands each EXPOSE word into possibly several words (`ProcessWords`);
/// with a single-word expander that is: expand, then split on whitespace.
fn expand_expose<E>(x: &Expose, f: &mut Expander<'_, E>) -> Result<Expose, ExpandError<E>> {
    let mut ports = Vec::new();
    for p in &x.ports {
        ports.extend(f(p)?.split_whitespace().map(str::to_string));
    }
    Ok(Expose { ports })
}

#[cfg(test)]
#[path = "expand_tests.rs"]
mod tests;
