//! Instructions that only set a field of the image config from their words:
//! `MAINTAINER`, `EXPOSE`, `VOLUME`, `USER`, `WORKDIR`, `STOPSIGNAL`.

use serde::Serialize;

use super::Ctx;
use crate::error::Diagnostic;

/// `MAINTAINER <name>` (deprecated; becomes the image's `author`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Maintainer {
    pub name: String,
}

/// `EXPOSE <port>[/<proto>] ...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expose {
    /// The port words as written, sorted as BuildKit sorts them. Port syntax
    /// (`80`, `80/udp`, `8000-8010`) is checked after expansion by whoever applies them.
    pub ports: Vec<String>,
}

/// `VOLUME ["/a", "/b"]` or `VOLUME /a /b`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Volume {
    /// Each path with surrounding whitespace trimmed.
    pub paths: Vec<String>,
}

/// `USER <user>[:<group>]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub user: String,
}

/// `WORKDIR <path>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Workdir {
    pub path: String,
}

/// `STOPSIGNAL <signal>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stopsignal {
    pub signal: String,
}

/// The one word of MAINTAINER/USER/WORKDIR/STOPSIGNAL (their syntax keeps the rest of
/// the line as a single word).
fn exactly_one(cx: &Ctx<'_>, keyword: &str, usage: &str) -> Result<String, Diagnostic> {
    match cx.words() {
        [one] => Ok(one.clone()),
        _ => Err(cx
            .error(format!("{keyword} requires exactly one argument"))
            .with_help(usage.to_string())),
    }
}

fn at_least_one(cx: &Ctx<'_>, keyword: &str, usage: &str) -> Result<(), Diagnostic> {
    if cx.words().is_empty() {
        return Err(cx
            .error(format!("{keyword} requires at least one argument"))
            .with_help(usage.to_string()));
    }
    Ok(())
}

pub(super) fn parse_maintainer(cx: &Ctx<'_>) -> Result<Maintainer, Diagnostic> {
    let name = exactly_one(cx, "MAINTAINER", "MAINTAINER <name>")?;
    cx.flags(&[])?;
    Ok(Maintainer { name })
}

pub(super) fn parse_expose(cx: &Ctx<'_>) -> Result<Expose, Diagnostic> {
    at_least_one(cx, "EXPOSE", "EXPOSE <port>[/<protocol>] ...")?;
    cx.flags(&[])?;
    let mut ports = cx.words().to_vec();
    ports.sort();
    Ok(Expose { ports })
}

pub(super) fn parse_volume(cx: &Ctx<'_>) -> Result<Volume, Diagnostic> {
    at_least_one(
        cx,
        "VOLUME",
        "VOLUME <path> ... or VOLUME [\"<path>\", ...]",
    )?;
    cx.flags(&[])?;
    let paths = cx
        .words()
        .iter()
        .map(|w| {
            let path = w.trim();
            if path.is_empty() {
                Err(cx.error("VOLUME specified can not be an empty string"))
            } else {
                Ok(path.to_string())
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(Volume { paths })
}

pub(super) fn parse_user(cx: &Ctx<'_>) -> Result<User, Diagnostic> {
    let user = exactly_one(cx, "USER", "USER <user>[:<group>]")?;
    cx.flags(&[])?;
    Ok(User { user })
}

pub(super) fn parse_workdir(cx: &Ctx<'_>) -> Result<Workdir, Diagnostic> {
    let path = exactly_one(cx, "WORKDIR", "WORKDIR <path>")?;
    cx.flags(&[])?;
    Ok(Workdir { path })
}

/// BuildKit never parses STOPSIGNAL's flags, so `--anything` is ignored, as there.
pub(super) fn parse_stopsignal(cx: &Ctx<'_>) -> Result<Stopsignal, Diagnostic> {
    let signal = exactly_one(cx, "STOPSIGNAL", "STOPSIGNAL <signal>")?;
    Ok(Stopsignal { signal })
}

#[cfg(test)]
mod tests {
    use super::super::Instruction;
    use super::super::test_node::{error, json_node, node, parse};

    #[test]
    fn exactly_one_argument() {
        for (kw, up) in [
            ("maintainer", "MAINTAINER"),
            ("user", "USER"),
            ("workdir", "WORKDIR"),
            ("stopsignal", "STOPSIGNAL"),
        ] {
            assert_eq!(
                error(&node(kw, &[], &[])),
                format!("{up} requires exactly one argument")
            );
        }
    }

    #[test]
    fn single_word_values() {
        assert_eq!(
            parse(&node("maintainer", &[], &["Jane <j@example.com>"])),
            Ok(Instruction::Maintainer(super::Maintainer {
                name: "Jane <j@example.com>".into()
            }))
        );
        assert_eq!(
            parse(&node("user", &[], &["app:app"])),
            Ok(Instruction::User(super::User {
                user: "app:app".into()
            }))
        );
        assert_eq!(
            parse(&node("workdir", &[], &["/srv/my app"])),
            Ok(Instruction::Workdir(super::Workdir {
                path: "/srv/my app".into()
            }))
        );
        assert_eq!(
            parse(&node("stopsignal", &[], &["SIGTERM"])),
            Ok(Instruction::Stopsignal(super::Stopsignal {
                signal: "SIGTERM".into()
            }))
        );
    }

    #[test]
    fn flags_are_refused_except_on_stopsignal() {
        for kw in ["maintainer", "user", "workdir", "expose", "volume"] {
            assert_eq!(error(&node(kw, &["--boo"], &["x"])), "unknown flag: --boo");
        }
        assert!(parse(&node("stopsignal", &["--boo"], &["9"])).is_ok());
    }

    #[test]
    fn expose_sorts_ports() {
        let Ok(Instruction::Expose(e)) =
            parse(&node("expose", &[], &["8080", "443/tcp", "53/udp"]))
        else {
            panic!()
        };
        assert_eq!(e.ports, ["443/tcp", "53/udp", "8080"]);
        assert_eq!(
            error(&node("expose", &[], &[])),
            "EXPOSE requires at least one argument"
        );
    }

    #[test]
    fn volume_forms() {
        let Ok(Instruction::Volume(v)) = parse(&json_node("volume", &[], &[" /data ", "/logs"]))
        else {
            panic!()
        };
        assert_eq!(v.paths, ["/data", "/logs"]);
        let Ok(Instruction::Volume(v)) = parse(&node("volume", &[], &["/a", "/b"])) else {
            panic!()
        };
        assert_eq!(v.paths, ["/a", "/b"]);
        assert_eq!(
            error(&json_node("volume", &[], &["/a", "  "])),
            "VOLUME specified can not be an empty string"
        );
        assert_eq!(
            error(&json_node("volume", &[], &[])),
            "VOLUME requires at least one argument"
        );
    }
}
