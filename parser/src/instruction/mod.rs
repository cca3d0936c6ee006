//! Stage 2: typed instructions.
//!
//! Each syntax-tree [`Node`] becomes one [`Instruction`] variant holding its arguments and
//! validated flags, following BuildKit's `frontend/dockerfile/instructions` package: the
//! same argument-count rules, the same flag tables (`bflag.go`), the same messages. Every
//! error is a [`Diagnostic`] pointing at the instruction (or at the offending flag).
//!
//! Values are kept as written: variables are *not* expanded here, because which variables
//! are in scope depends on the stage and the build arguments. [`Instruction::expand`]
//! applies a caller-supplied expander to exactly the fields BuildKit expands.
//!
//! Deliberate differences from BuildKit, each to report problems earlier:
//! - flag values BuildKit checks only when a step runs (`--mount` options, `--chmod`,
//!   `ADD --checksum` with several sources, `ssh` mounts with `source=`) are checked here
//!   when they hold nothing expansion could change (see [`Deferred`]);
//! - an ONBUILD trigger is typed (and so validated) now, not when a child image builds.
//!
//! Like BuildKit, ARG, STOPSIGNAL and `HEALTHCHECK NONE` ignore any `--flag` words.

mod chmod;
mod config;
mod copy;
mod deferred;
mod duration;
mod expand;
mod flags;
mod from;
mod healthcheck;
mod kv;
mod mount;
mod onbuild;
mod run;
mod size;
mod strconv;

#[cfg(test)]
mod test_node;

use serde::Serialize;

use crate::error::Diagnostic;
use crate::syntax::{Dockerfile, Node, Span};

pub use chmod::{Chmod, ChmodError};
pub use config::{Expose, Maintainer, Stopsignal, User, Volume, Workdir};
pub use copy::{Add, Copy, InlineSource};
pub use deferred::{Deferred, may_expand};
pub use duration::{DurationError, parse_go_duration};
pub use expand::{ExpandError, Expander};
pub use flags::{FlagError, FlagKind, FlagSpec, Flags};
pub use from::{From, is_valid_stage_name};
pub use healthcheck::{Healthcheck, HealthcheckCmd};
pub use kv::{Arg, ArgDef, Env, Label, Pair};
pub use mount::{Mount, MountError, MountType, Sharing};
pub use onbuild::Onbuild;
pub use run::{Cmd, Entrypoint, Network, Run, Script, Security, Shell, ShellOrExec};

/// One Dockerfile instruction, typed, with its validated flags.
///
/// Serialized (for `rbuild parse --json`) as an object whose `"instruction"` field names
/// the variant in lower case, next to the variant's own fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "instruction", rename_all = "lowercase")]
pub enum Instruction {
    From(From),
    Run(Run),
    Cmd(Cmd),
    Label(Label),
    Maintainer(Maintainer),
    Expose(Expose),
    Env(Env),
    Add(Add),
    Copy(Copy),
    Entrypoint(Entrypoint),
    Volume(Volume),
    User(User),
    Workdir(Workdir),
    Arg(Arg),
    Onbuild(Onbuild),
    Stopsignal(Stopsignal),
    Healthcheck(Healthcheck),
    Shell(Shell),
}

/// The instruction keywords, lower-case, as the syntax tree spells them.
pub const KEYWORDS: [&str; 18] = [
    "add",
    "arg",
    "cmd",
    "copy",
    "entrypoint",
    "env",
    "expose",
    "from",
    "healthcheck",
    "label",
    "maintainer",
    "onbuild",
    "run",
    "shell",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

impl Instruction {
    /// The keyword in upper case (`"COPY"`), as messages and history entries write it.
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::From(_) => "FROM",
            Instruction::Run(_) => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Label(_) => "LABEL",
            Instruction::Maintainer(_) => "MAINTAINER",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Env(_) => "ENV",
            Instruction::Add(_) => "ADD",
            Instruction::Copy(_) => "COPY",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Volume(_) => "VOLUME",
            Instruction::User(_) => "USER",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::Arg(_) => "ARG",
            Instruction::Onbuild(_) => "ONBUILD",
            Instruction::Stopsignal(_) => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Shell(_) => "SHELL",
        }
    }
}

/// A value with the place in the Dockerfile it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Located<T> {
    #[serde(flatten)]
    pub inner: T,
    /// 1-based first and last line, heredoc bodies included.
    pub start_line: usize,
    pub end_line: usize,
    /// Byte range in the source.
    pub span: Span,
}

/// Types one syntax-tree node. `src` is the whole Dockerfile, used to locate errors.
pub fn from_node(node: &Node, src: &str) -> Result<Instruction, Diagnostic> {
    let cx = Ctx { node, src };
    Ok(match node.keyword.as_str() {
        "from" => Instruction::From(from::parse(&cx)?),
        "run" => Instruction::Run(run::parse_run(&cx)?),
        "cmd" => Instruction::Cmd(run::parse_cmd(&cx)?),
        "entrypoint" => Instruction::Entrypoint(run::parse_entrypoint(&cx)?),
        "shell" => Instruction::Shell(run::parse_shell(&cx)?),
        "label" => Instruction::Label(kv::parse_label(&cx)?),
        "env" => Instruction::Env(kv::parse_env(&cx)?),
        "arg" => Instruction::Arg(kv::parse_arg(&cx)?),
        "maintainer" => Instruction::Maintainer(config::parse_maintainer(&cx)?),
        "expose" => Instruction::Expose(config::parse_expose(&cx)?),
        "volume" => Instruction::Volume(config::parse_volume(&cx)?),
        "user" => Instruction::User(config::parse_user(&cx)?),
        "workdir" => Instruction::Workdir(config::parse_workdir(&cx)?),
        "stopsignal" => Instruction::Stopsignal(config::parse_stopsignal(&cx)?),
        "add" => Instruction::Add(copy::parse_add(&cx)?),
        "copy" => Instruction::Copy(copy::parse_copy(&cx)?),
        "onbuild" => Instruction::Onbuild(onbuild::parse(&cx)?),
        "healthcheck" => Instruction::Healthcheck(healthcheck::parse(&cx)?),
        _ => return Err(unknown_instruction(&cx)),
    })
}

/// Types every instruction of a parsed Dockerfile, stopping at the first error.
pub fn from_dockerfile(
    df: &Dockerfile,
    src: &str,
) -> Result<Vec<Located<Instruction>>, Diagnostic> {
    df.nodes
        .iter()
        .map(|node| {
            Ok(Located {
                inner: from_node(node, src)?,
                start_line: node.start_line,
                end_line: node.end_line,
                span: node.span,
            })
        })
        .collect()
}

/// `unknown instruction: COPPY`, naming the keyword as written and suggesting the
/// closest known one in the same letter case.
fn unknown_instruction(cx: &Ctx<'_>) -> Diagnostic {
    let written = cx
        .node
        .original
        .split_whitespace()
        .next()
        .filter(|w| w.eq_ignore_ascii_case(&cx.node.keyword))
        .unwrap_or(&cx.node.keyword);
    let diag = cx.error(format!("unknown instruction: {written}"));
    match crate::suggest::closest(written, KEYWORDS) {
        Some(best) => {
            let best = if written == written.to_lowercase() {
                best.to_string()
            } else {
                best.to_uppercase()
            };
            diag.with_help(format!("did you mean {best}?"))
        }
        None => diag,
    }
}

/// What every instruction parser needs: the node and the source to locate errors in.
pub(crate) struct Ctx<'a> {
    pub node: &'a Node,
    pub src: &'a str,
}

impl Ctx<'_> {
    /// An error located at the start of the instruction.
    pub fn error(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(message).at(self.src, self.node.span.start)
    }

    /// An error located at `--name` in the instruction's text when it can be found there,
    /// else at the instruction.
    pub fn error_at_flag(&self, flag: &str, message: impl Into<String>) -> Diagnostic {
        let offset = self.find_flag(flag).unwrap_or(self.node.span.start);
        Diagnostic::new(message).at(self.src, offset)
    }

    /// Checks the node's flags against `table`.
    pub fn flags(&self, table: &[FlagSpec]) -> Result<Flags, Diagnostic> {
        Flags::parse(&self.node.flags, table).map_err(|e| {
            let diag = self.error_at_flag(e.flag(), e.to_string());
            match e.help() {
                Some(help) => diag.with_help(help),
                None => diag,
            }
        })
    }

    /// The words of the instruction (empty for pair or nested arguments).
    pub fn words(&self) -> &[String] {
        self.node.words()
    }

    /// Byte offset of `flag` (`--name`, followed by `=`, a space or the end) in the
    /// instruction's source text.
    fn find_flag(&self, flag: &str) -> Option<usize> {
        let start = self.node.span.start;
        let text = self.src.get(start..self.node.span.end)?;
        let mut from = 0;
        while let Some(i) = text.get(from..)?.find(flag) {
            let at = from + i;
            let after = text[at + flag.len()..].chars().next();
            if after.is_none_or(|c| c == '=' || c.is_whitespace()) {
                return Some(start + at);
            }
            from = at + flag.len();
        }
        None
    }
}

#[cfg(test)]
mod tests;
