//! `FROM [--platform=<p>] <image> [AS <name>]`: starts a build stage.

use serde::Serialize;

use super::{Ctx, FlagSpec};
use crate::error::Diagnostic;

/// A stage's base and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct From {
    /// The base: an image reference, another stage's name, or `scratch`. May hold
    /// variables from the global ARGs (expanded by [`super::Instruction::expand`]).
    pub image: String,
    /// `--platform=`, unexpanded (`$BUILDPLATFORM` is common).
    pub platform: Option<String>,
    /// `AS <name>`, lower-cased (stage names are case-insensitive).
    pub alias: Option<String>,
    /// The description from a `# <name> <text>` comment just above the FROM.
    pub doc: Option<String>,
}

const FLAGS: &[FlagSpec] = &[FlagSpec::string("platform")];

pub(super) fn parse(cx: &Ctx<'_>) -> Result<From, Diagnostic> {
    let words = cx.words();
    // BuildKit checks the shape of the arguments before the flags.
    let alias = stage_name(words).map_err(|(msg, help)| cx.error(msg).with_help(help))?;
    let flags = cx.flags(FLAGS)?;
    let image = words.first().cloned().unwrap_or_default();
    let doc = alias
        .as_deref()
        .and_then(|name| doc_comment(&cx.node.comments, name));
    Ok(From {
        image,
        platform: flags
            .string("platform")
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        alias,
        doc,
    })
}

/// `^[a-z][a-z0-9-_.]*$`, checked on the lower-cased name.
pub fn is_valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

fn stage_name(words: &[String]) -> Result<Option<String>, (String, &'static str)> {
    match words {
        [_] => Ok(None),
        [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
            let lower = name.to_lowercase();
            if is_valid_stage_name(&lower) {
                Ok(Some(lower))
            } else {
                Err((
                    format!(
                        "invalid name for build stage: {}, name can't start with a number or contain symbols",
                        super::strconv::quote(name)
                    ),
                    "stage names start with a letter and use only letters, digits, '-', '_' and '.'",
                ))
            }
        }
        _ => Err((
            "FROM requires either one or three arguments".to_string(),
            "FROM [--platform=<platform>] <image> [AS <name>]",
        )),
    }
}

/// BuildKit's doc comments: the comment line that starts with `<name> `, rest of it.
pub(super) fn doc_comment(comments: &[String], name: &str) -> Option<String> {
    if name.is_empty() {
        return None;
    }
    let prefix = format!("{name} ");
    comments
        .iter()
        .find_map(|line| line.strip_prefix(&prefix).map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::super::Instruction;
    use super::super::test_node::{error, node, parse};
    use super::*;

    fn from(n: &crate::syntax::Node) -> From {
        match parse(n) {
            Ok(Instruction::From(f)) => f,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn image_only() {
        let f = from(&node("from", &[], &["alpine:3.20"]));
        assert_eq!(f.image, "alpine:3.20");
        assert_eq!(f.alias, None);
        assert_eq!(f.platform, None);
    }

    #[test]
    fn alias_and_platform() {
        let f = from(&node(
            "from",
            &["--platform=$BUILDPLATFORM"],
            &["golang", "AS", "Build-1.x_y"],
        ));
        assert_eq!(f.alias.as_deref(), Some("build-1.x_y"));
        assert_eq!(f.platform.as_deref(), Some("$BUILDPLATFORM"));
        let f = from(&node("from", &["--platform="], &["a", "as", "b"]));
        assert_eq!(f.platform, None, "an empty platform is no platform");
        assert_eq!(f.alias.as_deref(), Some("b"));
    }

    #[test]
    fn doc_comment_names_the_stage() {
        let mut n = node("from", &[], &["busybox", "AS", "base"]);
        n.comments = vec!["base defines first stage".into()];
        assert_eq!(from(&n).doc.as_deref(), Some("defines first stage"));
        n.comments = vec!["other words".into()];
        assert_eq!(from(&n).doc, None);
    }

    #[test]
    fn argument_count() {
        for words in [
            &[][..],
            &["a", "b"],
            &["a", "b", "c"],
            &["a", "as", "b", "c"],
        ] {
            assert_eq!(
                error(&node("from", &[], words)),
                "FROM requires either one or three arguments",
                "{words:?}"
            );
        }
    }

    #[test]
    fn invalid_stage_names() {
        for name in ["1st", "a!", "-x", "_x", "a/b", "é"] {
            assert_eq!(
                error(&node("from", &[], &["img", "AS", name])),
                format!(
                    "invalid name for build stage: \"{name}\", name can't start with a number or contain symbols"
                ),
            );
        }
        assert!(is_valid_stage_name("a.b-c_d9"));
    }

    #[test]
    fn flags_checked_after_arguments() {
        let e = parse(&node("from", &["--platfrom=x"], &["a"])).unwrap_err();
        assert_eq!(e.message, "unknown flag: --platfrom");
        assert_eq!(e.help.as_deref(), Some("did you mean --platform?"));
        assert_eq!(e.pos.map(|p| p.column), Some(6), "points at the flag");
        assert_eq!(
            error(&node("from", &["--bogus"], &["a", "b"])),
            "FROM requires either one or three arguments"
        );
        assert_eq!(
            error(&node("from", &["--platform"], &["a"])),
            "missing a value on flag: --platform"
        );
    }
}
