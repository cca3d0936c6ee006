//! The expansion field list: a marking expander (`w` → `<w>`) shows exactly which fields
//! were expanded.

use super::super::test_node::{json_node, node, onbuild_node, pairs_node, parse, with_heredoc};
use super::super::*;
use super::ExpandError;
use crate::syntax::Node;

fn mark(w: &str) -> Result<String, String> {
    Ok(format!("<{w}>"))
}

fn expanded(n: &Node) -> Instruction {
    let i = parse(n).unwrap_or_else(|e| panic!("{}: {}", n.original, e.message));
    i.expand(&mut mark).unwrap()
}

#[test]
fn from_image_and_platform() {
    let Instruction::From(f) = expanded(&node("from", &["--platform=$P"], &["$IMG", "AS", "b"]))
    else {
        panic!()
    };
    assert_eq!(f.image, "<$IMG>");
    assert_eq!(f.platform.as_deref(), Some("<$P>"));
    assert_eq!(f.alias.as_deref(), Some("b"), "alias not expanded");
}

#[test]
fn from_blank_results_are_errors() {
    let i = parse(&node("from", &["--platform=$P"], &["$IMG"])).unwrap();
    let err = i
        .expand(&mut |_| Ok::<_, String>(String::new()))
        .unwrap_err();
    assert_eq!(
        err,
        ExpandError::Invalid(crate::Diagnostic::new(
            "base name ($IMG) should not be blank"
        ))
    );
    let err = i
        .expand(&mut |w| Ok::<_, String>(if w == "$P" { String::new() } else { "x".into() }))
        .unwrap_err();
    assert_eq!(err.to_string(), "empty platform value from expression $P");
}

#[test]
fn run_expands_mount_values_only() {
    let n = node(
        "run",
        &["--mount=type=cache,target=$T,ro", "--network=host"],
        &["echo $HOME"],
    );
    let i = parse(&n).unwrap();
    let mut seen = Vec::new();
    let out = i
        .expand(&mut |w: &str| {
            seen.push(w.to_string());
            Ok::<_, String>(if w == "$T" {
                "/cache".into()
            } else {
                w.to_string()
            })
        })
        .unwrap();
    assert_eq!(
        seen,
        ["cache", "$T"],
        "values only: no keys, no bare options, no command"
    );
    let Instruction::Run(r) = out else { panic!() };
    assert_eq!(r.cmd, ShellOrExec::Shell("echo $HOME".into()));
    let m = r.mounts[0].get().unwrap();
    assert_eq!(m.target.as_deref(), Some("/cache"));
    assert!(m.readonly);
    assert_eq!(r.mounts[0].raw, "type=cache,target=$T,ro");
    assert_eq!(r.network, Some(Network::Host));
}

#[test]
fn run_mounts_are_validated_after_expansion() {
    let i = parse(&node(
        "run",
        &["--mount=type=cache,target=/c,uid=$UID"],
        &["x"],
    ))
    .unwrap();
    let Instruction::Run(r) = i
        .expand(&mut |w| Ok::<_, String>(w.replace("$UID", "1000")))
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(r.mounts[0].get().and_then(|m| m.uid), Some(1000));
    let err = i
        .expand(&mut |w| Ok::<_, String>(w.replace("$UID", "bob")))
        .unwrap_err();
    assert_eq!(err.to_string(), "invalid value bob for uid");
    let i = parse(&node("run", &["--mount=type=$T,target=/c"], &["x"])).unwrap();
    let ExpandError::Invalid(d) = i
        .expand(&mut |w| Ok::<_, String>(w.replace("$T", "cahce")))
        .unwrap_err()
    else {
        panic!()
    };
    assert_eq!(d.message, "unsupported mount type \"cahce\"");
    assert_eq!(d.help.as_deref(), Some("did you mean cache?"));
}

#[test]
fn env_and_label_keys_and_values() {
    for kw in ["env", "label"] {
        let out = expanded(&pairs_node(kw, &[("$K", "\"v v\"", "=")]));
        let pairs = match out {
            Instruction::Env(e) => e.pairs,
            Instruction::Label(l) => l.pairs,
            other => panic!("{other:?}"),
        };
        assert_eq!(pairs[0].key, "<$K>");
        assert_eq!(pairs[0].value, "<\"v v\">");
    }
}

#[test]
fn arg_defaults_only() {
    let Instruction::Arg(a) = expanded(&node("arg", &[], &["$N=$V", "B"])) else {
        panic!()
    };
    assert_eq!(a.args[0].name, "$N");
    assert_eq!(a.args[0].default.as_deref(), Some("<$V>"));
    assert_eq!(a.args[1].default, None);
}

#[test]
fn copy_fields() {
    let n = node(
        "copy",
        &[
            "--from=stage",
            "--chown=$U",
            "--chmod=$M",
            "--exclude=$X",
            "--link",
        ],
        &["$S1", "$S2", "$D"],
    );
    let i = parse(&n).unwrap();
    let Instruction::Copy(c) = i
        .expand(&mut |w| {
            Ok::<_, String>(match w {
                "$M" => "0640".into(),
                w => format!("<{w}>"),
            })
        })
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(c.srcs, ["<$S1>", "<$S2>"]);
    assert_eq!(c.dest, "<$D>");
    assert_eq!(c.chown.as_deref(), Some("<$U>"));
    assert_eq!(
        c.chmod
            .as_ref()
            .and_then(|d| d.get())
            .and_then(|m| m.octal()),
        Some(0o640)
    );
    assert_eq!(c.from.as_deref(), Some("stage"), "--from not expanded");
    assert_eq!(c.exclude, ["$X"], "--exclude not expanded");
    let err = i
        .expand(&mut |w| Ok::<_, String>(if w == "$M" { "99".into() } else { w.into() }))
        .unwrap_err();
    assert!(err.to_string().starts_with("invalid chmod parameter: '99'"));
    let Instruction::Copy(c) = i.expand(&mut |_| Ok::<_, String>(String::new())).unwrap() else {
        panic!()
    };
    assert_eq!(
        (c.chown, c.chmod),
        (None, None),
        "empty after expansion = not given"
    );
}

#[test]
fn add_fields() {
    let n = node(
        "add",
        &["--chown=$U", "--checksum=$C", "--exclude=$X", "--unpack"],
        &["$S", "$D"],
    );
    let Instruction::Add(a) = expanded(&n) else {
        panic!()
    };
    assert_eq!(a.srcs, ["<$S>"]);
    assert_eq!(a.dest, "<$D>");
    assert_eq!(a.chown.as_deref(), Some("<$U>"));
    assert_eq!(a.checksum.as_deref(), Some("<$C>"));
    assert_eq!(a.exclude, ["$X"]);
    assert_eq!(a.unpack, Some(true));
    let i = parse(&node("add", &["--checksum=$C"], &["a", "b", "/d"])).unwrap();
    assert_eq!(
        i.expand(&mut mark).unwrap_err().to_string(),
        "checksum can't be specified for multiple sources"
    );
}

#[test]
fn single_value_instructions() {
    let Instruction::Workdir(w) = expanded(&node("workdir", &[], &["$D"])) else {
        panic!()
    };
    assert_eq!(w.path, "<$D>");
    let Instruction::User(u) = expanded(&node("user", &[], &["$U"])) else {
        panic!()
    };
    assert_eq!(u.user, "<$U>");
    let Instruction::Stopsignal(s) = expanded(&node("stopsignal", &[], &["$S"])) else {
        panic!()
    };
    assert_eq!(s.signal, "<$S>");
    let Instruction::Volume(v) = expanded(&json_node("volume", &[], &["$A", "/b"])) else {
        panic!()
    };
    assert_eq!(v.paths, ["<$A>", "</b>"]);
}

#[test]
fn expose_may_split() {
    let i = parse(&node("expose", &[], &["$PORTS", "22"])).unwrap();
    let Instruction::Expose(e) = i
        .expand(&mut |w| {
            Ok::<_, String>(if w == "$PORTS" {
                "80 443/tcp".into()
            } else {
                w.into()
            })
        })
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(e.ports, ["80", "443/tcp", "22"]);
}

#[test]
fn untouched_instructions() {
    let nodes = [
        node("cmd", &[], &["echo $X"]),
        node("entrypoint", &[], &["$X"]),
        json_node("shell", &[], &["$SH", "-c"]),
        node("healthcheck", &["--interval=5s"], &["CMD", "$X"]),
        node("maintainer", &[], &["$X"]),
        onbuild_node(&[], node("workdir", &[], &["$X"])),
    ];
    for n in &nodes {
        let i = parse(n).unwrap();
        let mut calls = 0;
        let out = i
            .expand(&mut |w| {
                calls += 1;
                mark(w)
            })
            .unwrap();
        assert_eq!(out, i, "{}", n.original);
        assert_eq!(calls, 0, "{}", n.original);
    }
}

#[test]
fn expander_errors_pass_through() {
    let i = parse(&node("workdir", &[], &["${X:?no}"])).unwrap();
    let err = i
        .expand(&mut |_| Err::<String, _>("X: no".to_string()))
        .unwrap_err();
    assert_eq!(err, ExpandError::Expander("X: no".to_string()));
}

#[test]
fn heredoc_bodies_expand_separately() {
    let n = node("copy", &[], &["<<A", "<<'B'", "/d"]);
    let n = with_heredoc(
        with_heredoc(n, "A", "$X\n", true, false),
        "B",
        "$Y\n",
        false,
        false,
    );
    let i = parse(&n).unwrap();
    let Instruction::Copy(plain) = i.expand(&mut mark).unwrap() else {
        panic!()
    };
    assert_eq!(
        plain.heredocs[0].content, "$X\n",
        "expand() leaves bodies alone"
    );
    let Instruction::Copy(c) = i.expand_heredocs(&mut mark).unwrap() else {
        panic!()
    };
    assert_eq!(c.heredocs[0].content, "<$X\n>");
    assert_eq!(c.heredocs[1].content, "$Y\n", "quoted delimiter: literal");
    assert_eq!(c.dest, "/d", "expand_heredocs touches bodies only");
    let run = parse(&with_heredoc(
        node("run", &[], &["<<A"]),
        "A",
        "$X",
        true,
        false,
    ))
    .unwrap();
    assert_eq!(run.expand_heredocs(&mut mark).unwrap(), run);
}
