//! Instructions that carry a command line: `RUN`, `CMD`, `ENTRYPOINT`, and `SHELL` which
//! sets the shell the others' shell form runs in.

use serde::Serialize;

use super::deferred::Deferred;
use super::mount::Mount;
use super::{Ctx, FlagSpec};
use crate::error::Diagnostic;
use crate::syntax::Heredoc;

/// A command in shell form (run through the stage's SHELL) or exec form (a JSON array,
/// run as is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShellOrExec {
    /// `RUN echo $HOME`: the text after the flags, continuations joined. Variables are
    /// left to the shell.
    Shell(String),
    /// `RUN ["echo", "hi"]`.
    Exec(Vec<String>),
}

impl ShellOrExec {
    /// BuildKit's `handleJSONArgs`: JSON words as they are, shell words joined by a space.
    fn from_words(words: &[String], json: bool) -> ShellOrExec {
        if json {
            ShellOrExec::Exec(words.to_vec())
        } else {
            ShellOrExec::Shell(words.join(" "))
        }
    }
}

/// `RUN --network=` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    Default,
    None,
    Host,
}

/// `RUN --security=` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    Sandbox,
    Insecure,
}

/// `RUN [--mount=...] [--network=...] [--security=...] <command>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    pub cmd: ShellOrExec,
    /// Heredoc bodies (`RUN <<EOF`), in order; the shell form text still names them.
    pub heredocs: Vec<Heredoc>,
    /// `--mount` flags in order; see [`Deferred`] for when they are validated.
    pub mounts: Vec<Deferred<Mount>>,
    /// `--network`; `None` when not given (BuildKit's `default`).
    pub network: Option<Network>,
    /// `--security`; `None` when not given (BuildKit's `sandbox`).
    pub security: Option<Security>,
}

/// What a shell-form RUN with heredocs gives its shell, as BuildKit's `dispatchRun`
/// decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script<'a> {
    /// Text for the shell's `-c`: the command line as written, or with the heredoc
    /// bodies put back under it so the shell reads them (`RUN cat <<EOF > /f`), or the
    /// body alone for `RUN <<EOF` (so shells without heredocs run it too).
    Shell(std::borrow::Cow<'a, str>),
    /// `RUN <<EOF` whose body starts with `#!`: the body is a script file
    /// (`/dev/pipes/NAME`, mode 0755) that is executed itself, not through the shell.
    File { name: &'a str, content: &'a str },
}

impl Run {
    /// The shell-form command with its heredocs, `None` in exec form.
    pub fn script(&self) -> Option<Script<'_>> {
        let ShellOrExec::Shell(line) = &self.cmd else {
            return None;
        };
        let Some(first) = self.heredocs.first() else {
            return Some(Script::Shell(line.into()));
        };
        // The whole command is one heredoc (`RUN <<EOF`, `RUN <<-"EOT"`).
        if self.heredocs.len() == 1 && super::copy::heredoc_word(line.trim()).is_some() {
            if first.content.starts_with("#!") {
                return Some(Script::File {
                    name: &first.name,
                    content: &first.content,
                });
            }
            return Some(Script::Shell(first.content.as_str().into()));
        }
        let mut full = line.clone();
        for h in &self.heredocs {
            full.push('\n');
            full.push_str(&h.content);
            full.push_str(&h.name);
        }
        Some(Script::Shell(full.into()))
    }
}

/// `CMD <command>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cmd {
    pub cmd: ShellOrExec,
}

/// `ENTRYPOINT <command>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entrypoint {
    pub cmd: ShellOrExec,
}

/// `SHELL ["executable", "parameters"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shell {
    pub args: Vec<String>,
}

const RUN_FLAGS: &[FlagSpec] = &[
    FlagSpec::strings("device"),
    FlagSpec::strings("mount"),
    FlagSpec::string("network"),
    FlagSpec::string("security"),
];

pub(super) fn parse_run(cx: &Ctx<'_>) -> Result<Run, Diagnostic> {
    let flags = cx.flags(RUN_FLAGS)?;
    let cmd = ShellOrExec::from_words(cx.words(), cx.node.json);
    let mounts = flags
        .strings("mount")
        .iter()
        .map(|spec| {
            Deferred::mount(spec).map_err(|e| {
                let diag = cx.error_at_flag("--mount", e.to_string());
                match e.help() {
                    Some(h) => diag.with_help(h),
                    None => diag,
                }
            })
        })
        .collect::<Result<_, _>>()?;
    let network = match flags.string("network") {
        None => None,
        Some("default") => Some(Network::Default),
        Some("none") => Some(Network::None),
        Some("host") => Some(Network::Host),
        Some(other) => {
            return Err(cx
                .error_at_flag(
                    "--network",
                    format!("invalid network mode {}", super::strconv::quote(other)),
                )
                .with_help("network modes: default, none, host"));
        }
    };
    let security = match flags.string("security") {
        None => None,
        Some("sandbox") => Some(Security::Sandbox),
        Some("insecure") => Some(Security::Insecure),
        Some(other) => {
            return Err(cx
                .error_at_flag(
                    "--security",
                    format!("security {} is not valid", super::strconv::quote(other)),
                )
                .with_help("security modes: sandbox, insecure"));
        }
    };
    if !flags.strings("device").is_empty() {
        // Stable BuildKit accepts the flag and refuses it when the step runs.
        return Err(cx.error_at_flag(
            "--device",
            "device feature is only supported in Dockerfile frontend 1.14.0-labs or later",
        ));
    }
    Ok(Run {
        cmd,
        heredocs: cx.node.heredocs.clone(),
        mounts,
        network,
        security,
    })
}

pub(super) fn parse_cmd(cx: &Ctx<'_>) -> Result<Cmd, Diagnostic> {
    cx.flags(&[])?;
    Ok(Cmd {
        cmd: ShellOrExec::from_words(cx.words(), cx.node.json),
    })
}

pub(super) fn parse_entrypoint(cx: &Ctx<'_>) -> Result<Entrypoint, Diagnostic> {
    cx.flags(&[])?;
    Ok(Entrypoint {
        cmd: ShellOrExec::from_words(cx.words(), cx.node.json),
    })
}

pub(super) fn parse_shell(cx: &Ctx<'_>) -> Result<Shell, Diagnostic> {
    cx.flags(&[])?;
    let usage = "SHELL [\"executable\", \"parameters\"]";
    if cx.words().is_empty() {
        return Err(cx
            .error("SHELL requires at least one argument")
            .with_help(usage));
    }
    if !cx.node.json {
        return Err(cx
            .error("SHELL requires the arguments to be in JSON form")
            .with_help(usage));
    }
    Ok(Shell {
        args: cx.words().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::Instruction;
    use super::super::mount::MountType;
    use super::super::test_node::{error, json_node, node, parse, with_heredoc};
    use super::*;

    fn run(n: &crate::syntax::Node) -> Run {
        match parse(n) {
            Ok(Instruction::Run(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn shell_and_exec_forms() {
        let r = run(&node("run", &[], &["echo $HOME && ls"]));
        assert_eq!(r.cmd, ShellOrExec::Shell("echo $HOME && ls".into()));
        assert!(r.mounts.is_empty());
        assert_eq!((r.network, r.security), (None, None));
        let r = run(&json_node("run", &[], &["echo", "hi"]));
        assert_eq!(r.cmd, ShellOrExec::Exec(vec!["echo".into(), "hi".into()]));
        let r = run(&node("run", &[], &[]));
        assert_eq!(r.cmd, ShellOrExec::Shell(String::new()));
        let r = run(&json_node("run", &[], &[]));
        assert_eq!(r.cmd, ShellOrExec::Exec(vec![]));
    }

    #[test]
    fn heredocs_are_kept() {
        let n = with_heredoc(
            node("run", &[], &["<<EOF"]),
            "EOF",
            "echo hi\n",
            true,
            false,
        );
        let r = run(&n);
        assert_eq!(r.heredocs.len(), 1);
        assert_eq!(r.heredocs[0].content, "echo hi\n");
    }

    #[test]
    fn mounts_in_order() {
        let r = run(&node(
            "run",
            &[
                "--mount=type=cache,target=/root/.cache",
                "--mount=type=secret,id=tok",
                "--mount=type=bind,from=stage,target=/x,uid=$U",
            ],
            &["make"],
        ));
        assert_eq!(r.mounts.len(), 3);
        assert_eq!(r.mounts[0].get().map(|m| m.kind), Some(MountType::Cache));
        assert_eq!(r.mounts[1].get().map(|m| m.kind), Some(MountType::Secret));
        assert_eq!(r.mounts[2].get(), None, "waits for expansion");
        assert_eq!(r.mounts[2].raw, "type=bind,from=stage,target=/x,uid=$U");
    }

    #[test]
    fn mount_errors_point_at_the_flag() {
        let n = node(
            "run",
            &["--network=host", "--mount=type=cache,target=/c,sharing=x"],
            &["true"],
        );
        let e = parse(&n).unwrap_err();
        assert_eq!(e.message, "unsupported sharing value \"x\"");
        assert_eq!(e.pos.map(|p| p.column), Some(20));
        let e = parse(&node("run", &["--mount=type=bnid"], &["x"])).unwrap_err();
        assert_eq!(e.help.as_deref(), Some("did you mean bind?"));
        assert_eq!(
            error(&node("run", &["--mount=from=$STAGE,target=/x"], &["x"])),
            "'from' doesn't support variable expansion, define alias stage instead"
        );
        assert_eq!(
            error(&node("run", &["--mount="], &["x"])),
            "failed to parse csv mounts: EOF"
        );
        assert_eq!(
            error(&node("run", &["--mount"], &["x"])),
            "missing a value on flag: --mount"
        );
    }

    #[test]
    fn network_and_security() {
        for (v, want) in [
            ("default", Network::Default),
            ("none", Network::None),
            ("host", Network::Host),
        ] {
            let r = run(&node("run", &[&format!("--network={v}")], &["x"]));
            assert_eq!(r.network, Some(want));
        }
        assert_eq!(
            error(&node("run", &["--network=bridge"], &["x"])),
            "invalid network mode \"bridge\""
        );
        assert_eq!(
            error(&node("run", &["--network="], &["x"])),
            "invalid network mode \"\""
        );
        assert_eq!(
            error(&node("run", &["--network=host", "--network=none"], &["x"])),
            "duplicate flag specified: --network"
        );
        for (v, want) in [
            ("sandbox", Security::Sandbox),
            ("insecure", Security::Insecure),
        ] {
            let r = run(&node("run", &[&format!("--security={v}")], &["x"]));
            assert_eq!(r.security, Some(want));
        }
        assert_eq!(
            error(&node("run", &["--security=Insecure"], &["x"])),
            "security \"Insecure\" is not valid"
        );
    }

    #[test]
    fn run_flag_errors() {
        let e = parse(&node("run", &["--mout=type=cache"], &["x"])).unwrap_err();
        assert_eq!(e.message, "unknown flag: --mout");
        assert_eq!(e.help.as_deref(), Some("did you mean --mount?"));
        assert_eq!(
            error(&node("run", &["--device=nvidia.com/gpu=all"], &["x"])),
            "device feature is only supported in Dockerfile frontend 1.14.0-labs or later"
        );
    }

    #[test]
    fn cmd_and_entrypoint() {
        assert_eq!(
            parse(&node("cmd", &[], &["npm start"])),
            Ok(Instruction::Cmd(Cmd {
                cmd: ShellOrExec::Shell("npm start".into())
            }))
        );
        assert_eq!(
            parse(&json_node("entrypoint", &[], &[])),
            Ok(Instruction::Entrypoint(Entrypoint {
                cmd: ShellOrExec::Exec(vec![])
            }))
        );
        assert_eq!(
            parse(&json_node("entrypoint", &[], &["/init", "--"])),
            Ok(Instruction::Entrypoint(Entrypoint {
                cmd: ShellOrExec::Exec(vec!["/init".into(), "--".into()])
            }))
        );
        assert_eq!(error(&node("cmd", &["--x=1"], &["a"])), "unknown flag: --x");
        assert_eq!(
            error(&node("entrypoint", &["--x=1"], &["a"])),
            "unknown flag: --x"
        );
    }

    #[test]
    fn shell_requires_json() {
        assert_eq!(
            parse(&json_node("shell", &[], &["/bin/bash", "-c"])),
            Ok(Instruction::Shell(Shell {
                args: vec!["/bin/bash".into(), "-c".into()]
            }))
        );
        assert_eq!(
            error(&node("shell", &[], &["/bin/bash -c"])),
            "SHELL requires the arguments to be in JSON form"
        );
        assert_eq!(
            error(&json_node("shell", &[], &[])),
            "SHELL requires at least one argument"
        );
        assert_eq!(
            error(&node("shell", &[], &[])),
            "SHELL requires at least one argument"
        );
    }
}

#[cfg(test)]
mod script_tests {
    use super::*;

    fn run(line: &str, docs: &[(&str, &str)]) -> Run {
        Run {
            cmd: ShellOrExec::Shell(line.into()),
            heredocs: docs
                .iter()
                .map(|(name, content)| Heredoc {
                    name: name.to_string(),
                    content: content.to_string(),
                    expand: true,
                    chomp: false,
                    file_descriptor: 0,
                })
                .collect(),
            mounts: Vec::new(),
            network: None,
            security: None,
        }
    }

    #[test]
    fn heredocs_become_what_buildkit_runs() {
        let plain = run("make all", &[]);
        assert_eq!(plain.script(), Some(Script::Shell("make all".into())));
        // The command is the heredoc: its body is the script.
        let body = run("<<EOF", &[("EOF", "echo a\necho b\n")]);
        assert_eq!(
            body.script(),
            Some(Script::Shell("echo a\necho b\n".into()))
        );
        let quoted = run("<<-\"EOT\"", &[("EOT", "echo a\n")]);
        assert_eq!(quoted.script(), Some(Script::Shell("echo a\n".into())));
        // With a shebang it is a file run by its interpreter.
        let shebang = run("<<EOF", &[("EOF", "#!/usr/bin/env python3\nprint(1)\n")]);
        assert_eq!(
            shebang.script(),
            Some(Script::File {
                name: "EOF",
                content: "#!/usr/bin/env python3\nprint(1)\n"
            })
        );
        // Otherwise the shell gets the heredocs back under the command line.
        let fed = run(
            "cat /proc/self/fd/5 5<<A > /f <<B",
            &[("A", "one\n"), ("B", "two\n")],
        );
        assert_eq!(
            fed.script(),
            Some(Script::Shell(
                "cat /proc/self/fd/5 5<<A > /f <<B\none\nA\ntwo\nB".into()
            ))
        );
        let exec = Run {
            cmd: ShellOrExec::Exec(vec!["true".into()]),
            ..plain
        };
        assert_eq!(exec.script(), None);
    }
}
