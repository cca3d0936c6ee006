//! ONBUILD triggers: the instructions a base leaves for the stages built on it.
//!
//! BuildKit (`dockerfile2llb/convert.go`: `resolveStages`, `initOnBuildTriggers`) takes a
//! stage's triggers from its base image's config (`OnBuild`), or, when the base is an
//! earlier stage, from that stage's own ONBUILD instructions (what its image's `OnBuild`
//! will hold: a stage's triggers from *its* base ran in it and are not passed on). Each
//! trigger is parsed again as a one-line Dockerfile and runs before the stage's own
//! instructions, in order, located at the stage's FROM line. A trigger can do anything
//! an instruction can except FROM, ONBUILD and MAINTAINER, including `COPY --from`,
//! which makes it a dependency of the stage.

use serde::Serialize;

use super::Base;
use super::graph::RawStage;
use crate::error::Diagnostic;
use crate::instruction::{self, Instruction, Located};
use crate::syntax;

/// Where a step comes from when it is an ONBUILD trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trigger {
    /// The trigger as the base stores it (`RUN make`), without `ONBUILD`.
    pub expression: String,
    /// What left it: `image NAME` or `stage NAME`.
    pub of: String,
}

/// A stage's triggers, typed and located at its FROM line, each with where it came from.
#[derive(Default)]
pub struct Triggers {
    pub at: Vec<Located<Instruction>>,
    pub info: Vec<Trigger>,
}

/// The triggers stage `raw` runs before its own instructions. `image_triggers` is the
/// `OnBuild` of its base image when the base is one (an image the builder has not looked
/// at has none); `stages` are all the stages, for a stage base.
pub fn of_stage(
    raw: &RawStage<'_>,
    base: &Base,
    stages: &[RawStage<'_>],
    stage_name: impl Fn(usize) -> String,
    image_triggers: Option<&Vec<String>>,
    src: &str,
) -> Result<Triggers, Diagnostic> {
    let (of, expressions): (String, Vec<&str>) = match base {
        Base::Scratch => return Ok(Triggers::default()),
        Base::Image(image) => (
            format!("image {image}"),
            image_triggers
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect(),
        ),
        Base::Stage(j) => (
            format!("stage {}", stage_name(*j)),
            stages
                .get(*j)
                .map_or(&[][..], |s| s.body)
                .iter()
                .filter_map(|l| match &l.inner {
                    Instruction::Onbuild(o) => Some(o.expression.as_str()),
                    _ => None,
                })
                .collect(),
        ),
    };
    let mut out = Triggers::default();
    for expression in expressions {
        let trigger = Trigger {
            expression: expression.to_string(),
            of: of.clone(),
        };
        let inner = parse(expression).map_err(|d| located_error(&trigger, d, raw.at, src))?;
        out.at.push(Located {
            inner,
            start_line: raw.at.start_line,
            end_line: raw.at.end_line,
            span: raw.at.span,
        });
        out.info.push(trigger);
    }
    Ok(out)
}

/// A problem with a trigger, said at the FROM line of the stage that runs it: the
/// trigger's own text is not in the Dockerfile.
pub fn located_error(
    trigger: &Trigger,
    d: Diagnostic,
    from: &Located<Instruction>,
    src: &str,
) -> Diagnostic {
    let out = Diagnostic::new(format!(
        "ONBUILD trigger {:?} of {}: {}",
        trigger.expression, trigger.of, d.message
    ))
    .at(src, from.span.start);
    match d.help {
        Some(h) => out.with_help(h),
        None => out,
    }
}

/// A trigger is a Dockerfile of one instruction, in BuildKit's default syntax (its own
/// escape character, whatever the child Dockerfile uses).
fn parse(expression: &str) -> Result<Instruction, Diagnostic> {
    let tree = syntax::parse(expression.as_bytes(), "ONBUILD").map_err(|e| e.diagnostic)?;
    if tree.nodes.len() != 1 {
        return Err(Diagnostic::new(
            "onbuild trigger should be a single expression",
        ));
    }
    let typed = instruction::from_dockerfile(&tree, expression)?;
    let Some(first) = typed.into_iter().next() else {
        return Err(Diagnostic::new(
            "onbuild trigger should be a single expression",
        ));
    };
    match first.inner {
        Instruction::From(_) | Instruction::Onbuild(_) | Instruction::Maintainer(_) => {
            Err(Diagnostic::new(format!(
                "{} isn't allowed as an ONBUILD trigger",
                first.inner.keyword()
            )))
        }
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_one_instruction_with_heredocs() {
        assert!(matches!(parse("COPY . /app"), Ok(Instruction::Copy(_))));
        let Ok(Instruction::Run(r)) = parse("RUN <<EOF\necho hi\nEOF") else {
            panic!()
        };
        assert_eq!(r.heredocs.len(), 1);
    }

    #[test]
    fn refuses_what_an_image_should_not_hold() {
        let msg = |e: &str| parse(e).unwrap_err().message;
        assert_eq!(msg(""), "file with no instructions");
        assert_eq!(
            msg("RUN a\nRUN b"),
            "onbuild trigger should be a single expression"
        );
        assert_eq!(msg("FROM x"), "FROM isn't allowed as an ONBUILD trigger");
        assert_eq!(
            msg("MAINTAINER me"),
            "MAINTAINER isn't allowed as an ONBUILD trigger"
        );
        assert!(msg("ONBUILD RUN x").contains("ONBUILD"));
        assert_eq!(msg("BOGUS x"), "unknown instruction: BOGUS");
    }
}
