//! The stage graph's errors, each a located [`Diagnostic`]. Wording is BuildKit's where
//! BuildKit has the error, so people can search for it; rbuild adds a hint.

use crate::error::Diagnostic;
use crate::instruction::{Instruction, Located};
use crate::suggest::closest;

/// An instruction other than ARG before the first FROM.
pub fn no_stage_yet(src: &str, at: &Located<Instruction>) -> Diagnostic {
    Diagnostic::new("no build stage in current context")
        .at(src, at.span.start)
        .with_help(format!(
            "only ARG may come before the first FROM; start a stage with FROM <image> before this {}",
            at.inner.keyword()
        ))
}

/// No FROM at all.
pub fn no_stages() -> Diagnostic {
    Diagnostic::new("dockerfile contains no stages to build")
        .with_help("a build stage starts with FROM <image> [AS <name>]")
}

/// BuildKit's `DuplicateStageName` lint rule, made an error: references to the name
/// would be ambiguous.
pub fn duplicate_name(
    src: &str,
    at: &Located<Instruction>,
    name: &str,
    first_line: usize,
) -> Diagnostic {
    Diagnostic::new(format!(
        "Duplicate stage name {name:?}, stage names should be unique"
    ))
    .at(src, at.span.start)
    .with_help(format!(
        "the first stage named {name:?} starts on line {first_line}"
    ))
}

/// BuildKit's `ReservedStageName` lint rule, made an error: `FROM scratch` and
/// `COPY --from=context` would no longer mean what they say.
pub fn reserved_name(src: &str, at: &Located<Instruction>, name: &str) -> Diagnostic {
    Diagnostic::new(format!(
        "Stage name should not use the same name as reserved stage {name:?}"
    ))
    .at(src, at.span.start)
    .with_help("\"scratch\" and \"context\" are reserved; choose another name for this stage")
}

/// `--target` names no stage.
pub fn unknown_target(target: &str, names: &[&str]) -> Diagnostic {
    let listing = if names.is_empty() {
        "no stage has a name (use FROM <image> AS <name>)".to_string()
    } else {
        format!("stages are: {}", names.join(", "))
    };
    let diag = Diagnostic::new(format!(
        "target stage {target:?} could not be found; {listing}"
    ));
    match closest(target, names.iter().copied()) {
        Some(best) => diag.with_help(format!("did you mean {best}?")),
        None => diag,
    }
}

/// `COPY --from=<n>` with no stage `n`.
pub fn invalid_index(
    src: &str,
    at: &Located<Instruction>,
    index: i64,
    stages: usize,
) -> Diagnostic {
    Diagnostic::new(format!("invalid stage index {index}"))
        .at(src, at.span.start)
        .with_help(format!(
            "stages are numbered from 0 in the order of their FROM lines; this Dockerfile has {stages}"
        ))
}

/// Stages that need each other. `path` names the stages along the cycle, the first
/// repeated at the end; `line` is where the first of them needs the second.
pub fn cycle(src: &str, path: &[String], line: usize) -> Diagnostic {
    let first = path.first().map(String::as_str).unwrap_or_default();
    Diagnostic::new(format!(
        "circular dependency detected on stage: {first} ({})",
        path.join(" → ")
    ))
    .at_line(src, line, 1)
    .with_help("a stage can only use stages defined before it")
}

/// `COPY --from=` a stage that comes later in the Dockerfile.
pub fn copy_from_later(src: &str, line: usize, from: &str, stage: &str) -> Diagnostic {
    Diagnostic::new(format!(
        "cannot copy from stage {from:?}, it needs to be defined before current stage {stage:?}"
    ))
    .at_line(src, line, 1)
    .with_help("move the stage it copies from above this one")
}

/// `RUN --mount=from=` a stage that comes later in the Dockerfile.
pub fn mount_from_later(src: &str, line: usize, from: &str, target: Option<&str>) -> Diagnostic {
    let to = target.map(|t| format!(" to {t:?}")).unwrap_or_default();
    Diagnostic::new(format!(
        "cannot mount from stage {from:?}{to}, stage needs to be defined before current command"
    ))
    .at_line(src, line, 1)
    .with_help("move the stage it mounts from above this one")
}
