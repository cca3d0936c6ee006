//! Expanding variables with the scope each instruction sees: the global ARGs for FROM
//! lines, the stage's ARG and ENV values (in order) for everything after.

use std::collections::{BTreeMap, BTreeSet};

use super::Step;
use super::args::{ArgValue, Scope};
use super::render::render;
use crate::error::Diagnostic;
use crate::instruction::{Arg, ArgDef, ExpandError, From, Instruction, Located};
use crate::shell::{self, Lexer};
use crate::suggest::closest;

/// What every expansion needs besides the variables.
pub struct Cx<'a> {
    pub lexer: Lexer,
    pub src: &'a str,
    pub build_args: &'a BTreeMap<String, String>,
}

/// A stage's variables while its instructions are expanded.
#[derive(Debug, Clone, Default)]
pub struct StageVars {
    /// ARG and ENV values in force.
    pub scope: Scope,
    /// ARG names declared so far (the base stage's first), each once.
    pub args: Vec<String>,
    /// Build arguments the stage uses.
    pub used_args: BTreeSet<String>,
}

/// The global scope: `predefined` plus the ARGs before the first FROM, with the build
/// arguments applied. Returns it and each global ARG's resulting value.
pub fn global_scope(
    globals: &[(&Located<Instruction>, &Arg)],
    predefined: Scope,
    cx: &Cx<'_>,
) -> Result<(Scope, Vec<ArgValue>), Diagnostic> {
    let mut scope = predefined;
    let mut values = Vec::new();
    for (at, arg) in globals {
        for def in &arg.args {
            let value = match (cx.build_args.get(&def.name), &def.default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(default)) => Some(expand_word(default, &scope, cx, at)?.value),
                (None, None) => None,
            };
            if let Some(v) = value {
                scope.set(&def.name, v);
            }
            values.push(ArgValue {
                name: def.name.clone(),
                value: scope.get(&def.name).map(str::to_string),
            });
        }
    }
    Ok((scope, values))
}

/// A FROM line expanded with the global scope: its base and platform, the variables it
/// read, and those it read that were unset.
pub struct ExpandedFrom {
    pub from: From,
    pub used: BTreeSet<String>,
    pub unset: BTreeSet<String>,
}

pub fn expand_from(
    at: &Located<Instruction>,
    from: &From,
    globals: &Scope,
    cx: &Cx<'_>,
) -> Result<ExpandedFrom, Diagnostic> {
    let mut used = BTreeSet::new();
    let mut unset = BTreeSet::new();
    let mut failed = None;
    let result = Instruction::From(from.clone()).expand(&mut |word: &str| match cx
        .lexer
        .expand_word(word, globals)
    {
        Ok(e) => {
            used.extend(e.used);
            unset.extend(e.unset);
            Ok(e.value)
        }
        Err(err) => {
            failed = Some(word.to_string());
            Err(err)
        }
    });
    match result {
        Ok(Instruction::From(from)) => Ok(ExpandedFrom { from, used, unset }),
        Ok(_) => {
            Err(Diagnostic::new("FROM expanded to another instruction").at(cx.src, at.span.start))
        }
        Err(e) => {
            Err(expand_error(e, failed.as_deref(), at, cx.src)
                .and_help(suggest_unset(&unset, globals)))
        }
    }
}

/// "did you mean TARGETPLATFORM?" for an unset variable close to a set one.
pub fn suggest_unset(unset: &BTreeSet<String>, scope: &Scope) -> Option<String> {
    let names = scope.names();
    unset
        .iter()
        .find_map(|u| closest(u, names.iter().copied()))
        .map(|best| format!("did you mean {best}?"))
}

/// Expands a stage's instructions in order, updating `vars` as ARG and ENV set values.
pub fn expand_body(
    body: &[Located<Instruction>],
    vars: &mut StageVars,
    globals: &Scope,
    cx: &Cx<'_>,
) -> Result<Vec<Step>, Diagnostic> {
    let mut steps = Vec::with_capacity(body.len());
    for at in body {
        let mut used = BTreeSet::new();
        let mut args = Vec::new();
        let instruction = match &at.inner {
            Instruction::Arg(arg) => {
                Instruction::Arg(declare_args(arg, at, vars, globals, &mut used, cx)?)
            }
            other => {
                let expanded = expand_instruction(other, at, &vars.scope, &mut used, cx)?;
                match &expanded {
                    Instruction::Env(env) => {
                        for pair in &env.pairs {
                            vars.scope.set(&pair.key, pair.value.clone());
                        }
                    }
                    Instruction::Run(_) => {
                        args = vars
                            .args
                            .iter()
                            .map(|name| ArgValue {
                                name: name.clone(),
                                value: vars.scope.get(name).map(str::to_string),
                            })
                            .collect();
                    }
                    _ => {}
                }
                expanded
            }
        };
        steps.push(Step {
            start_line: at.start_line,
            end_line: at.end_line,
            text: render(&instruction),
            instruction,
            used,
            args,
            trigger: None,
        });
    }
    Ok(steps)
}

/// BuildKit's `dispatchArg`, one name at a time so a default can use the names before
/// it: the build argument wins; else the default, expanded; a bare name takes the
/// global value. The result lists each name with the value it got.
fn declare_args(
    arg: &Arg,
    at: &Located<Instruction>,
    vars: &mut StageVars,
    globals: &Scope,
    used: &mut BTreeSet<String>,
    cx: &Cx<'_>,
) -> Result<Arg, Diagnostic> {
    let mut out = Vec::with_capacity(arg.args.len());
    for def in &arg.args {
        let value = match (cx.build_args.get(&def.name), &def.default) {
            (Some(v), _) => Some(v.clone()),
            (None, Some(default)) => {
                let e = expand_word(default, &vars.scope, cx, at)?;
                used.extend(e.used);
                Some(e.value)
            }
            (None, None) => globals.get(&def.name).map(str::to_string),
        };
        if let Some(v) = &value {
            vars.scope.set(&def.name, v.clone());
        }
        if !vars.args.contains(&def.name) {
            vars.args.push(def.name.clone());
        }
        vars.used_args.insert(def.name.clone());
        out.push(ArgDef {
            name: def.name.clone(),
            default: value,
            doc: def.doc.clone(),
        });
    }
    Ok(Arg { args: out })
}

/// [`Instruction::expand`] with the stage's lexer, then the bodies of COPY/ADD heredocs
/// with BuildKit's raw lexer (`\` escapes, quotes kept).
fn expand_instruction(
    instr: &Instruction,
    at: &Located<Instruction>,
    scope: &Scope,
    used: &mut BTreeSet<String>,
    cx: &Cx<'_>,
) -> Result<Instruction, Diagnostic> {
    let mut failed = None;
    let mut with = |lexer: Lexer, word: &str| match lexer.expand_word(word, scope) {
        Ok(e) => {
            used.extend(e.used);
            Ok(e.value)
        }
        Err(err) => {
            failed = Some(word.to_string());
            Err(err)
        }
    };
    let raw = Lexer::new('\\').literal_quotes(true);
    let expanded = match instr.expand(&mut |w: &str| with(cx.lexer, w)) {
        Ok(i) => i
            .expand_heredocs(&mut |w: &str| with(raw, w))
            .map_err(ExpandError::Expander),
        Err(e) => Err(e),
    };
    expanded.map_err(|e| expand_error(e, failed.as_deref(), at, cx.src))
}

/// One word expanded with `scope`, its errors located in the instruction.
fn expand_word(
    word: &str,
    scope: &Scope,
    cx: &Cx<'_>,
    at: &Located<Instruction>,
) -> Result<shell::Expanded<String>, Diagnostic> {
    cx.lexer
        .expand_word(word, scope)
        .map_err(|e| word_error(&e, word, at, cx.src))
}

fn expand_error(
    e: ExpandError<shell::ExpandError>,
    word: Option<&str>,
    at: &Located<Instruction>,
    src: &str,
) -> Diagnostic {
    match e {
        ExpandError::Expander(err) => word_error(&err, word.unwrap_or_default(), at, src),
        ExpandError::Invalid(d) => d.at(src, at.span.start),
    }
}

/// Points at the problem inside `word` when the word can be found in the instruction's
/// text, else at the instruction.
fn word_error(
    err: &shell::ExpandError,
    word: &str,
    at: &Located<Instruction>,
    src: &str,
) -> Diagnostic {
    let text = src.get(at.span.start..at.span.end).unwrap_or_default();
    match text.find(word) {
        Some(k) if !word.is_empty() => err.diagnostic(src, at.span.start + k),
        _ => Diagnostic::new(err.to_string()).at(src, at.span.start),
    }
}

/// Adds a help line only when there is one.
trait AndHelp {
    fn and_help(self, help: Option<String>) -> Self;
}

impl AndHelp for Diagnostic {
    fn and_help(self, help: Option<String>) -> Self {
        match help {
            Some(h) if self.help.is_none() => self.with_help(h),
            _ => self,
        }
    }
}
