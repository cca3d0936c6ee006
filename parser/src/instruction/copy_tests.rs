use super::super::Instruction;
use super::super::test_node::{error, json_node, node, parse, with_heredoc};
use super::*;

fn copy(flags: &[&str], words: &[&str]) -> Copy {
    match parse(&node("copy", flags, words)) {
        Ok(Instruction::Copy(c)) => c,
        other => panic!("{other:?}"),
    }
}

fn add(flags: &[&str], words: &[&str]) -> Add {
    match parse(&node("add", flags, words)) {
        Ok(Instruction::Add(a)) => a,
        other => panic!("{other:?}"),
    }
}

#[test]
fn copy_sources_and_dest() {
    let c = copy(&[], &["a", "b/*.txt", "/dst/"]);
    assert_eq!(c.srcs, ["a", "b/*.txt"]);
    assert_eq!(c.dest, "/dst/");
    assert_eq!(c.from, None);
    assert_eq!(c.chown, None);
    assert_eq!(c.chmod, None);
    assert!(!c.link && !c.parents);
    assert!(c.exclude.is_empty() && c.heredocs.is_empty());
}

#[test]
fn copy_json_form() {
    let Ok(Instruction::Copy(c)) = parse(&json_node("copy", &[], &["my file", "/x y/"])) else {
        panic!()
    };
    assert_eq!(c.srcs, ["my file"]);
    assert_eq!(c.dest, "/x y/");
}

#[test]
fn copy_all_flags() {
    let c = copy(
        &[
            "--from=builder",
            "--chown=app:app",
            "--chmod=0755",
            "--link",
            "--parents=true",
            "--exclude=*.md",
            "--exclude=.git",
        ],
        &["src", "/app"],
    );
    assert_eq!(c.from.as_deref(), Some("builder"));
    assert_eq!(c.chown.as_deref(), Some("app:app"));
    let chmod = c.chmod.as_ref().and_then(|d| d.get()).unwrap();
    assert_eq!(chmod.octal(), Some(0o755));
    assert!(c.link && c.parents);
    assert_eq!(c.exclude, ["*.md", ".git"]);
}

#[test]
fn empty_string_flags_are_unset() {
    let c = copy(&["--from=", "--chown=", "--chmod="], &["a", "b"]);
    assert_eq!((c.from, c.chown, c.chmod), (None, None, None));
}

#[test]
fn chmod_forms() {
    let c = copy(&["--chmod=u=rwx,go=rx"], &["a", "b"]);
    let mode = c.chmod.as_ref().and_then(|d| d.get()).unwrap();
    assert_eq!(mode.apply(0, false), 0o755);
    let c = copy(&["--chmod=$MODE"], &["a", "b"]);
    let d = c.chmod.unwrap();
    assert_eq!(d.raw, "$MODE");
    assert_eq!(d.get(), None, "checked after expansion");
    let e = parse(&node("copy", &["--chmod=999"], &["a", "b"])).unwrap_err();
    assert_eq!(
        e.message,
        "invalid chmod parameter: '999'. it should be octal string and between 0 and 07777"
    );
    assert_eq!(e.pos.map(|p| p.column), Some(6));
    assert!(e.help.is_some());
    assert_eq!(
        error(&node("add", &["--chmod=u+z"], &["a", "b"])),
        "invalid chmod parameter: 'u+z': invalid syntax"
    );
}

#[test]
fn from_refuses_variables() {
    for from in ["$STAGE", "${STAGE}", "a$B", "'quoted'", "a\\b"] {
        assert_eq!(
            error(&node("copy", &[&format!("--from={from}")], &["a", "b"])),
            "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround",
            "{from}"
        );
    }
    assert_eq!(
        copy(&["--from=a$"], &["x", "y"]).from.as_deref(),
        Some("a$")
    );
    assert_eq!(copy(&["--from=0"], &["x", "y"]).from.as_deref(), Some("0"));
}

#[test]
fn argument_count() {
    for kw in ["copy", "add"] {
        let up = kw.to_uppercase();
        for words in [&[][..], &["only"]] {
            assert_eq!(
                error(&node(kw, &[], words)),
                format!(
                    "{up} requires at least two arguments, but only one was provided. Destination could not be determined"
                )
            );
        }
        assert_eq!(
            error(&node(kw, &["--bogus"], &["only"])),
            format!(
                "{up} requires at least two arguments, but only one was provided. Destination could not be determined"
            ),
            "the count is checked before the flags"
        );
    }
}

#[test]
fn flags_differ_between_copy_and_add() {
    let e = parse(&node("add", &["--from=x"], &["a", "b"])).unwrap_err();
    assert_eq!(e.message, "unknown flag: --from");
    assert_eq!(
        error(&node("add", &["--parents"], &["a", "b"])),
        "unknown flag: --parents"
    );
    for flag in ["--checksum=sha256:0", "--keep-git-dir", "--unpack"] {
        let msg = error(&node("copy", &[flag], &["a", "b"]));
        assert!(msg.starts_with("unknown flag: --"), "{flag}: {msg}");
    }
    let e = parse(&node("copy", &["--chwon=1"], &["a", "b"])).unwrap_err();
    assert_eq!(e.help.as_deref(), Some("did you mean --chown?"));
    assert_eq!(
        error(&node("copy", &["--link=maybe"], &["a", "b"])),
        "expecting boolean value for flag --link, not: maybe"
    );
    assert_eq!(
        error(&node("copy", &["--chown=a", "--chown=b"], &["a", "b"])),
        "duplicate flag specified: --chown"
    );
}

#[test]
fn add_all_flags() {
    let a = add(
        &[
            "--chown=1:1",
            "--chmod=644",
            "--link=false",
            "--keep-git-dir=true",
            "--checksum=sha256:abc",
            "--unpack=false",
            "--exclude=x",
        ],
        &["https://example.com/a.tar.gz", "/"],
    );
    assert_eq!(a.chown.as_deref(), Some("1:1"));
    assert_eq!(
        a.chmod
            .as_ref()
            .and_then(|d| d.get())
            .and_then(|c| c.octal()),
        Some(0o644)
    );
    assert!(!a.link);
    assert_eq!(a.keep_git_dir, Some(true));
    assert_eq!(a.checksum.as_deref(), Some("sha256:abc"));
    assert_eq!(a.unpack, Some(false));
    assert_eq!(a.exclude, ["x"]);
    let a = add(&[], &["a", "b"]);
    assert_eq!((a.keep_git_dir, a.unpack, a.checksum), (None, None, None));
}

#[test]
fn add_checksum_needs_one_source() {
    assert_eq!(
        error(&node("add", &["--checksum=sha256:0"], &["a", "b", "/c"])),
        "checksum can't be specified for multiple sources"
    );
    assert_eq!(
        add(&["--checksum=$SUM"], &["a", "b", "/c"])
            .checksum
            .as_deref(),
        Some("$SUM"),
        "checked after expansion"
    );
}

#[test]
fn heredoc_sources() {
    let n = node("copy", &[], &["<<EOF", "<<-\"EOT\"", "plain", "/dst/"]);
    let n = with_heredoc(n, "EOF", "hello $USER\n", true, false);
    let n = with_heredoc(n, "EOT", "\tindented\n\t\tdeeper\n", false, true);
    let Ok(Instruction::Copy(c)) = parse(&n) else {
        panic!()
    };
    assert_eq!(c.srcs, ["plain"]);
    assert_eq!(
        c.heredocs,
        vec![
            InlineSource {
                name: "EOF".into(),
                content: "hello $USER\n".into(),
                expand: true
            },
            InlineSource {
                name: "EOT".into(),
                content: "indented\ndeeper\n".into(),
                expand: false
            },
        ]
    );
}

#[test]
fn heredoc_destination_refused() {
    assert_eq!(
        error(&node("copy", &[], &["a", "<<EOF"])),
        "COPY cannot accept a heredoc as a destination"
    );
    assert_eq!(
        error(&node("add", &[], &["a", "3<<-EOF"])),
        "ADD cannot accept a heredoc as a destination"
    );
}

#[test]
fn heredoc_words() {
    let w = |s| heredoc_word(s);
    assert_eq!(
        w("<<EOF"),
        Some(HeredocWord {
            name: "EOF".into(),
            chomp: false,
            expand: true
        })
    );
    assert_eq!(
        w("2<<-'E O'"),
        Some(HeredocWord {
            name: "E O".into(),
            chomp: true,
            expand: false
        })
    );
    assert_eq!(
        w("<<E\\\"F").map(|h| (h.name, h.expand)),
        Some(("E\"F".into(), true))
    );
    for not in ["<<", "<EOF", "a<<EOF", "<<EOF<", "<<'EOF", "<<a b", "x"] {
        assert_eq!(w(not), None, "{not}");
    }
}

#[test]
fn chomp_strips_leading_tabs_per_line() {
    assert_eq!(chomp("\ta\n  \tb\n\t\t\n"), "a\n  \tb\n\n");
    assert_eq!(chomp("a"), "a");
}
