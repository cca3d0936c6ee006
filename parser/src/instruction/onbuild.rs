//! `ONBUILD <instruction>`: a trigger stored in the image and run when another build
//! uses it as a base.

use serde::Serialize;

use super::{Ctx, Instruction, from_node};
use crate::error::Diagnostic;
use crate::syntax::Args;

/// An ONBUILD trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Onbuild {
    /// The trigger, typed and validated now (BuildKit waits for the child build).
    pub trigger: Box<Instruction>,
    /// The trigger's text as the image config stores it: the line without `ONBUILD`,
    /// followed by each heredoc body and its terminator.
    pub expression: String,
}

pub(super) fn parse(cx: &Ctx<'_>) -> Result<Onbuild, Diagnostic> {
    let trigger_node = match &cx.node.args {
        Args::Nested(node) => node,
        _ => {
            return Err(cx
                .error("ONBUILD requires at least one argument")
                .with_help("ONBUILD <instruction>"));
        }
    };
    cx.flags(&[])?;
    let keyword = trigger_node.keyword.trim().to_uppercase();
    match keyword.as_str() {
        "ONBUILD" => {
            return Err(cx.error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"));
        }
        "MAINTAINER" | "FROM" => {
            return Err(cx.error(format!("{keyword} isn't allowed as an ONBUILD trigger")));
        }
        _ => {}
    }
    // BuildKit attaches heredoc bodies to the ONBUILD node itself; the trigger needs them.
    let trigger = if trigger_node.heredocs.is_empty() && !cx.node.heredocs.is_empty() {
        let mut with_bodies = (**trigger_node).clone();
        with_bodies.heredocs = cx.node.heredocs.clone();
        from_node(&with_bodies, cx.src)?
    } else {
        // Depth is bounded: a nested ONBUILD was refused above.
        from_node(trigger_node, cx.src)?
    };
    Ok(Onbuild {
        trigger: Box::new(trigger),
        expression: expression(cx),
    })
}

/// BuildKit's `Expression`: the original line minus a leading `ONBUILD` (any case) and
/// the whitespace around it, then `\n<body><name>` per heredoc.
fn expression(cx: &Ctx<'_>) -> String {
    let original = cx.node.original.trim_start();
    let mut out = match original.get(..7) {
        Some(head) if head.eq_ignore_ascii_case("onbuild") => original[7..].trim_start(),
        _ => original,
    }
    .to_string();
    let heredocs = match &cx.node.args {
        Args::Nested(n) if !n.heredocs.is_empty() => &n.heredocs,
        _ => &cx.node.heredocs,
    };
    for h in heredocs {
        out.push('\n');
        out.push_str(&h.content);
        out.push_str(&h.name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::run::{Run, ShellOrExec};
    use super::super::test_node::{error, node, onbuild_node, parse, with_heredoc};
    use super::*;

    #[test]
    fn typed_trigger_and_expression() {
        let n = onbuild_node(&[], node("run", &[], &["make install"]));
        let Ok(Instruction::Onbuild(o)) = parse(&n) else {
            panic!()
        };
        assert_eq!(o.expression, "RUN make install");
        let Instruction::Run(Run { cmd, .. }) = *o.trigger else {
            panic!()
        };
        assert_eq!(cmd, ShellOrExec::Shell("make install".into()));
    }

    #[test]
    fn expression_appends_heredocs() {
        let trigger = with_heredoc(
            node("run", &[], &["<<EOF"]),
            "EOF",
            "echo hi\n",
            true,
            false,
        );
        let n = onbuild_node(&[], trigger);
        let Ok(Instruction::Onbuild(o)) = parse(&n) else {
            panic!()
        };
        assert_eq!(o.expression, "RUN <<EOF\necho hi\nEOF");
    }

    #[test]
    fn heredocs_on_the_onbuild_node_reach_the_trigger() {
        let n = with_heredoc(
            onbuild_node(&[], node("run", &[], &["<<EOF"])),
            "EOF",
            "x\n",
            true,
            false,
        );
        let Ok(Instruction::Onbuild(o)) = parse(&n) else {
            panic!()
        };
        assert_eq!(o.expression, "RUN <<EOF\nx\nEOF");
        let Instruction::Run(run) = *o.trigger else {
            panic!()
        };
        assert_eq!(run.heredocs.len(), 1);
    }

    #[test]
    fn forbidden_triggers() {
        assert_eq!(
            error(&onbuild_node(
                &[],
                onbuild_node(&[], node("run", &[], &["x"]))
            )),
            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
        );
        assert_eq!(
            error(&onbuild_node(&[], node("from", &[], &["scratch"]))),
            "FROM isn't allowed as an ONBUILD trigger"
        );
        assert_eq!(
            error(&onbuild_node(&[], node("maintainer", &[], &["me"]))),
            "MAINTAINER isn't allowed as an ONBUILD trigger"
        );
    }

    #[test]
    fn empty_and_flags() {
        assert_eq!(
            error(&node("onbuild", &[], &[])),
            "ONBUILD requires at least one argument"
        );
        assert_eq!(
            error(&onbuild_node(&["--x"], node("run", &[], &["a"]))),
            "unknown flag: --x"
        );
    }

    #[test]
    fn trigger_is_validated() {
        assert_eq!(
            error(&onbuild_node(
                &[],
                node("copy", &["--chwon=1"], &["a", "b"])
            )),
            "unknown flag: --chwon"
        );
        let e = parse(&onbuild_node(&[], node("coppy", &[], &["a", "b"]))).unwrap_err();
        assert_eq!(e.message, "unknown instruction: COPPY");
        assert_eq!(e.help.as_deref(), Some("did you mean COPY?"));
    }
}
