use super::test_node::{error, json_node, node, onbuild_node, pairs_node, parse};
use super::*;
use crate::syntax::{Directives, Dockerfile};

#[test]
fn unknown_instruction_names_it_as_written() {
    let e = parse(&node("coppy", &[], &["a", "b"])).unwrap_err();
    assert_eq!(e.message, "unknown instruction: COPPY");
    assert_eq!(e.help.as_deref(), Some("did you mean COPY?"));
    let mut n = node("coppy", &[], &["a", "b"]);
    n.original = "coppy a b".into();
    let e = parse(&n).unwrap_err();
    assert_eq!(e.message, "unknown instruction: coppy");
    assert_eq!(e.help.as_deref(), Some("did you mean copy?"));
    let e = parse(&node("foo", &[], &["bar"])).unwrap_err();
    assert_eq!(e.message, "unknown instruction: FOO");
    assert_eq!(e.help, None);
    assert_eq!(e.pos.map(|p| (p.line, p.column)), Some((1, 1)));
}

#[test]
fn every_keyword_is_typed() {
    let nodes = [
        node("from", &[], &["a"]),
        node("run", &[], &["x"]),
        node("cmd", &[], &["x"]),
        pairs_node("label", &[("a", "b", "=")]),
        node("maintainer", &[], &["me"]),
        node("expose", &[], &["80"]),
        pairs_node("env", &[("a", "b", "=")]),
        node("add", &[], &["a", "b"]),
        node("copy", &[], &["a", "b"]),
        node("entrypoint", &[], &["x"]),
        node("volume", &[], &["/v"]),
        node("user", &[], &["u"]),
        node("workdir", &[], &["/w"]),
        node("arg", &[], &["A"]),
        onbuild_node(&[], node("run", &[], &["x"])),
        node("stopsignal", &[], &["9"]),
        node("healthcheck", &[], &["NONE"]),
        json_node("shell", &[], &["sh"]),
    ];
    assert_eq!(nodes.len(), KEYWORDS.len());
    for n in &nodes {
        let i = parse(n).unwrap_or_else(|e| panic!("{}: {}", n.original, e.message));
        assert_eq!(i.keyword().to_lowercase(), n.keyword);
        assert!(KEYWORDS.contains(&n.keyword.as_str()));
        let json = serde_json::to_value(&i).unwrap();
        assert_eq!(json["instruction"], n.keyword.as_str(), "{json}");
    }
}

#[test]
fn errors_point_at_the_instruction_line() {
    let src = "FROM alpine\n\nCOPY only\n";
    let mut copy = node("copy", &[], &["only"]);
    copy.span = Span { start: 13, end: 22 };
    copy.start_line = 3;
    copy.end_line = 3;
    let e = from_node(&copy, src).unwrap_err();
    assert_eq!(e.pos.map(|p| (p.line, p.column)), Some((3, 1)));
    assert_eq!(e.line_text.as_deref(), Some("COPY only"));
    let shown = e.in_file("Dockerfile").to_string();
    assert!(
        shown.starts_with("Dockerfile:3:1: COPY requires at least two arguments"),
        "{shown}"
    );
}

#[test]
fn flag_errors_point_at_the_flag() {
    let src = "FROM a\nCOPY --link --chwon=1 a b\n";
    let mut n = node("copy", &["--link", "--chwon=1"], &["a", "b"]);
    n.span = Span { start: 7, end: 33 };
    let e = from_node(&n, src).unwrap_err();
    assert_eq!(e.pos.map(|p| (p.line, p.column)), Some((2, 13)));
    assert_eq!(e.help.as_deref(), Some("did you mean --chown?"));
    // A flag that cannot be found in the text falls back to the instruction.
    let mut n = node("copy", &["--chwon=1"], &["a", "b"]);
    n.span = Span { start: 0, end: 6 };
    let e = from_node(&n, src).unwrap_err();
    assert_eq!(e.pos.map(|p| (p.line, p.column)), Some((1, 1)));
}

#[test]
fn flag_search_skips_longer_flags_and_bad_spans() {
    let src = "RUN --networking --network=bad x";
    let mut n = node("run", &["--network=bad"], &["x"]);
    n.span = Span {
        start: 0,
        end: src.len(),
    };
    let e = from_node(&n, src).unwrap_err();
    assert_eq!(e.pos.map(|p| p.column), Some(18));
    n.span = Span { start: 5, end: 500 };
    assert!(
        from_node(&n, src).is_err(),
        "out-of-range spans must not panic"
    );
}

#[test]
fn from_dockerfile_locates_each_instruction() {
    let src = "FROM a AS b\nRUN x\n";
    let mut from = node("from", &[], &["a", "AS", "b"]);
    from.span = Span { start: 0, end: 11 };
    let mut run = node("run", &[], &["x"]);
    run.span = Span { start: 12, end: 17 };
    run.start_line = 2;
    run.end_line = 2;
    let df = Dockerfile {
        directives: Directives::default(),
        escape: '\\',
        nodes: vec![from, run],
        warnings: vec![],
    };
    let typed = from_dockerfile(&df, src).unwrap();
    assert_eq!(typed.len(), 2);
    assert!(matches!(typed[0].inner, Instruction::From(_)));
    assert_eq!(typed[1].start_line, 2);
    assert_eq!(typed[1].span, Span { start: 12, end: 17 });
    let json = serde_json::to_value(&typed[1]).unwrap();
    assert_eq!(json["instruction"], "run");
    assert_eq!(json["start_line"], 2);

    let mut bad = df.clone();
    bad.nodes[1].keyword = "rnu".into();
    bad.nodes[1].original = "RNU x".into();
    let e = from_dockerfile(&bad, src).unwrap_err();
    assert_eq!(e.message, "unknown instruction: RNU");
    assert_eq!(e.pos.map(|p| p.line), Some(2));
}

#[test]
fn maintainer_unknown_flag_like_buildkit() {
    assert_eq!(
        error(&node("maintainer", &["--boo"], &["joe@example.com"])),
        "unknown flag: --boo"
    );
}

mod no_panics {
    use super::super::test_node::{json_node, node};
    use super::*;
    use proptest::prelude::*;

    /// Words drawn from the characters that matter to these parsers.
    fn word() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[-=,:$'\"\\\\<a-zA-Z0-9/. µé\t]{0,12}").unwrap()
    }

    proptest! {
        #[test]
        fn typing_never_panics(
            kw in proptest::sample::select(KEYWORDS.to_vec()),
            flags in proptest::collection::vec(word().prop_map(|w| format!("--{w}")), 0..4),
            words in proptest::collection::vec(word(), 0..5),
            json in any::<bool>(),
        ) {
            let f: Vec<&str> = flags.iter().map(String::as_str).collect();
            let w: Vec<&str> = words.iter().map(String::as_str).collect();
            let n = if json { json_node(kw, &f, &w) } else { node(kw, &f, &w) };
            if let Ok(i) = from_node(&n, &n.original) {
                let _ = i.expand(&mut |w: &str| Ok::<_, ()>(format!("{w}1")));
                let _ = i.expand_heredocs(&mut |w: &str| Ok::<_, ()>(w.to_string()));
                prop_assert!(serde_json::to_string(&i).is_ok());
            }
        }

        #[test]
        fn value_parsers_never_panic(s in "\\PC{0,16}", mode in 0u32..0o20000, dir in any::<bool>()) {
            let _ = Mount::parse(&s);
            let _ = parse_go_duration(&s);
            let _ = super::super::size::ram_in_bytes(&s);
            if let Ok(c) = Chmod::parse(&s) {
                prop_assert!(c.apply(mode, dir) <= 0o7777);
            }
        }
    }
}
