//! Key/value instructions: `ENV`, `LABEL` and `ARG`.
//!
//! Values are stored exactly as written, quotes included (`ENV a="x y"` stores `"x y"`),
//! because that is what BuildKit does: its instruction pass only splits the pairs, and
//! the quotes disappear when the value goes through single-word expansion (its
//! `ProcessWord`), which treats `"x y"` as one word `x y`. Consumers must therefore call
//! [`super::Instruction::expand`] before using a value; `rbuild parse --json` shows the
//! raw text on purpose.

use serde::Serialize;

use super::Ctx;
use super::from::doc_comment;
use crate::error::Diagnostic;
use crate::syntax::Args;

/// One `key=value` of ENV or LABEL, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pair {
    pub key: String,
    /// The raw value, quotes and escapes included.
    pub value: String,
    /// True for the legacy `ENV key value` form (no `=`), where the value is the rest of
    /// the line.
    pub legacy: bool,
}

/// `ENV key=value ...` / `ENV key value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Env {
    pub pairs: Vec<Pair>,
}

/// `LABEL key=value ...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Label {
    pub pairs: Vec<Pair>,
}

/// One variable declared by ARG.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDef {
    pub name: String,
    /// The default after `=`, raw (quotes kept); `None` for a bare `ARG name`.
    pub default: Option<String>,
    /// The description from a `# <name> <text>` comment just above the ARG.
    pub doc: Option<String>,
}

/// `ARG name[=default] ...` (several per line are allowed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Arg {
    pub args: Vec<ArgDef>,
}

pub(super) fn parse_env(cx: &Ctx<'_>) -> Result<Env, Diagnostic> {
    cx.flags(&[])?;
    Ok(Env {
        pairs: pairs(cx, "ENV")?,
    })
}

pub(super) fn parse_label(cx: &Ctx<'_>) -> Result<Label, Diagnostic> {
    cx.flags(&[])?;
    Ok(Label {
        pairs: pairs(cx, "LABEL")?,
    })
}

/// BuildKit's `parseKvps`.
fn pairs(cx: &Ctx<'_>, keyword: &str) -> Result<Vec<Pair>, Diagnostic> {
    let kvs = match &cx.node.args {
        Args::Pairs(kvs) if !kvs.is_empty() => kvs,
        Args::Pairs(_) => return Err(at_least_one(cx, keyword)),
        Args::Words(w) if w.is_empty() => return Err(at_least_one(cx, keyword)),
        // The syntax pass always gives pairs; anything else is malformed input.
        Args::Words(_) | Args::Nested(_) => {
            return Err(cx.error(format!("Bad input to {keyword}, too many arguments")));
        }
    };
    kvs.iter()
        .map(|kv| {
            if kv.key.is_empty() {
                return Err(cx
                    .error(format!("{keyword} names can not be blank"))
                    .with_help(format!("{keyword} <key>=<value> ...")));
            }
            Ok(Pair {
                key: kv.key.clone(),
                value: kv.value.clone(),
                legacy: kv.sep.is_empty(),
            })
        })
        .collect()
}

fn at_least_one(cx: &Ctx<'_>, keyword: &str) -> Diagnostic {
    cx.error(format!("{keyword} requires at least one argument"))
        .with_help(format!("{keyword} <key>=<value> ..."))
}

/// BuildKit's `parseArg`. It never looks at the flags, so neither do we.
pub(super) fn parse_arg(cx: &Ctx<'_>) -> Result<Arg, Diagnostic> {
    let words = cx.words();
    if words.is_empty() {
        return Err(cx
            .error("ARG requires at least one argument")
            .with_help("ARG <name>[=<default value>] ..."));
    }
    let args = words
        .iter()
        .map(|word| {
            let (name, default) = match word.split_once('=') {
                Some(("", _)) => {
                    return Err(cx
                        .error("ARG names can not be blank")
                        .with_help("ARG <name>[=<default value>] ..."));
                }
                Some((name, value)) => (name, Some(value.to_string())),
                None => (word.as_str(), None),
            };
            Ok(ArgDef {
                name: name.to_string(),
                default,
                doc: doc_comment(&cx.node.comments, name),
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Arg { args })
}

#[cfg(test)]
mod tests {
    use super::super::Instruction;
    use super::super::test_node::{error, node, pairs_node, parse};
    use super::*;

    #[test]
    fn env_pairs_keep_raw_values() {
        let n = pairs_node("env", &[("a", "\"x y\"", "="), ("b", "", "=")]);
        let Ok(Instruction::Env(env)) = parse(&n) else {
            panic!()
        };
        assert_eq!(
            env.pairs,
            vec![
                Pair {
                    key: "a".into(),
                    value: "\"x y\"".into(),
                    legacy: false
                },
                Pair {
                    key: "b".into(),
                    value: "".into(),
                    legacy: false
                },
            ]
        );
    }

    #[test]
    fn legacy_env_keeps_rest_of_line() {
        let n = pairs_node("env", &[("PATH", "/a b  c", "")]);
        let Ok(Instruction::Env(env)) = parse(&n) else {
            panic!()
        };
        assert_eq!(env.pairs[0].value, "/a b  c");
        assert!(env.pairs[0].legacy);
    }

    #[test]
    fn label_pairs() {
        let n = pairs_node("label", &[("org.opencontainers.image.title", "'t'", "=")]);
        let Ok(Instruction::Label(l)) = parse(&n) else {
            panic!()
        };
        assert_eq!(l.pairs[0].key, "org.opencontainers.image.title");
        assert_eq!(l.pairs[0].value, "'t'");
    }

    #[test]
    fn env_and_label_errors() {
        for (kw, up) in [("env", "ENV"), ("label", "LABEL")] {
            assert_eq!(
                error(&pairs_node(kw, &[])),
                format!("{up} requires at least one argument")
            );
            assert_eq!(
                error(&node(kw, &[], &[])),
                format!("{up} requires at least one argument")
            );
            assert_eq!(
                error(&pairs_node(kw, &[("", "v", "=")])),
                format!("{up} names can not be blank")
            );
            assert_eq!(
                error(&node(kw, &[], &["a", "b"])),
                format!("Bad input to {up}, too many arguments")
            );
            let mut n = pairs_node(kw, &[("a", "b", "=")]);
            n.flags = vec!["--x".into()];
            assert_eq!(error(&n), "unknown flag: --x");
        }
    }

    #[test]
    fn args_with_and_without_defaults() {
        let mut n = node("arg", &[], &["A", "B=", "C=x=y", "D=\"q q\""]);
        n.comments = vec!["A is the first".into(), "C the third".into()];
        let Ok(Instruction::Arg(a)) = parse(&n) else {
            panic!()
        };
        let got: Vec<_> = a
            .args
            .iter()
            .map(|d| (d.name.as_str(), d.default.as_deref(), d.doc.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("A", None, Some("is the first")),
                ("B", Some(""), None),
                ("C", Some("x=y"), Some("the third")),
                ("D", Some("\"q q\""), None),
            ]
        );
    }

    #[test]
    fn arg_errors_and_ignored_flags() {
        assert_eq!(
            error(&node("arg", &[], &[])),
            "ARG requires at least one argument"
        );
        assert_eq!(
            error(&node("arg", &[], &["A", "=x"])),
            "ARG names can not be blank"
        );
        assert!(
            matches!(
                parse(&node("arg", &["--bogus"], &["A"])),
                Ok(Instruction::Arg(_))
            ),
            "BuildKit does not parse ARG flags"
        );
    }
}
