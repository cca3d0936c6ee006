//! Hostile and huge inputs: the parser must give a located error or the right tree,
//! quickly (well under a second each in a debug build on an idle machine), never panic
//! and never recurse deeply.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use rbuild_parser::ParseError;
use rbuild_parser::syntax::{Args, Dockerfile, dump, parse};

/// Wall-clock time per parse. A quadratic parser would take minutes on these inputs;
/// 3 s leaves room for a 2-core CI machine running the whole suite (1 s was missed
/// there at 1.3 s under load).
const BUDGET: Duration = Duration::from_secs(3);

/// Parses `src`, failing the test if that takes longer than the budget.
fn timed(src: &[u8]) -> Result<Dockerfile, ParseError> {
    let start = Instant::now();
    let result = parse(src, "Dockerfile");
    let took = start.elapsed();
    assert!(took < BUDGET, "parsing {} bytes took {took:?}", src.len());
    result
}

fn ok(src: &str) -> Dockerfile {
    timed(src.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn one_megabyte_line() {
    let long = "a".repeat(1 << 20);
    let df = ok(&format!("FROM x\nRUN echo {long}\n"));
    assert_eq!(df.nodes[1].words()[0].len(), (1 << 20) + 5);

    let words = "w ".repeat(1 << 19);
    let df = ok(&format!("FROM x\nCOPY {words}/d\n"));
    assert_eq!(df.nodes[1].words().len(), (1 << 19) + 1);

    let quoted = "'a b' \"c\" ".repeat(100_000);
    let df = ok(&format!("FROM x\nRUN <<EOF {quoted}\nbody\nEOF\n"));
    assert_eq!(df.nodes[1].heredocs.len(), 1);

    let pairs = "k=\"v w\" ".repeat(100_000);
    let df = ok(&format!("FROM x\nENV {pairs}\n"));
    assert!(matches!(&df.nodes[1].args, Args::Pairs(p) if p.len() == 100_000));
}

#[test]
fn hundred_thousand_continuation_lines() {
    let src = format!("FROM x\nRUN a \\\n{}end\n", "b \\\n".repeat(100_000));
    let df = ok(&src);
    assert_eq!(df.nodes.len(), 2);
    assert_eq!((df.nodes[1].start_line, df.nodes[1].end_line), (2, 100_003));
    assert!(df.nodes[1].words()[0].ends_with("b end"));

    // Blank and comment lines inside one continuation: one warning, not 100,000.
    let src = format!("FROM x\nRUN a \\\n{}end\n", "\n# c\n".repeat(100_000));
    let df = ok(&src);
    assert_eq!(df.warnings.len(), 1);
    assert_eq!(df.nodes[1].words(), ["a end"]);
}

#[test]
fn two_thousand_from_lines() {
    let src: String = (0..2000)
        .map(|i| format!("FROM image{i} AS s{i}\n"))
        .collect();
    let df = ok(&src);
    assert_eq!(df.nodes.len(), 2000);
    assert_eq!(df.nodes[1999].words(), ["image1999", "AS", "s1999"]);
    assert_eq!(dump(&df).lines().count(), 2000);
}

#[test]
fn unterminated_heredoc_is_located() {
    let src = format!("FROM x\nRUN <<EOF\n{}", "line\n".repeat(100_000));
    let err = timed(src.as_bytes()).unwrap_err();
    assert_eq!(err.line(), Some(2));
    assert!(
        err.to_string()
            .contains("unterminated heredoc <<EOF starting at line 2"),
        "{err}"
    );
}

#[test]
fn many_heredocs_on_one_line() {
    let markers: String = (0..5000).map(|i| format!("<<E{i} ")).collect();
    let bodies: String = (0..5000).map(|i| format!("body {i}\nE{i}\n")).collect();
    let df = ok(&format!("FROM x\nCOPY {markers}/dest\n{bodies}"));
    assert_eq!(df.nodes[1].heredocs.len(), 5000);
    assert_eq!(df.nodes[1].heredocs[4999].content, "body 4999\n");
    assert_eq!(df.nodes[1].end_line, 2 + 2 * 5000);

    // The last of 5,000 markers never ends, on a 1 MB line whose markers cannot be
    // pointed at (an escape hides the name): the error still comes fast.
    let markers: String = (0..5000).map(|i| format!("<<\\E{i} ")).collect();
    let bodies: String = (0..4999).map(|i| format!("E{i}\n")).collect();
    let pad = "p".repeat(1 << 20);
    let src = format!("FROM x\nCOPY {markers}{pad} /dest\n{bodies}");
    let err = timed(src.as_bytes()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Dockerfile:2:1: unterminated heredoc <<E4999 starting at line 2"),
        "{}",
        err.to_string().lines().next().unwrap_or_default()
    );
}

#[test]
fn unterminated_json_and_quotes_fall_back_like_buildkit() {
    let df =
        ok("FROM x\nCMD [\"a\", \"b\nENTRYPOINT [\"a\"\nENV a=\"b\nLABEL 'x y\nRUN <<EOF \"open\n");
    assert_eq!(df.nodes[1].words(), ["[\"a\", \"b"]);
    assert!(!df.nodes[1].json);
    assert_eq!(df.nodes[2].words(), ["[\"a\""]);
    assert!(matches!(&df.nodes[3].args, Args::Pairs(p) if p[0].value == "\"b"));
    assert!(matches!(&df.nodes[4].args, Args::Pairs(p) if p[0].key == "'x" && p[0].value == "y"));
    // The quote cannot be closed, so BuildKit sees no heredoc on that line.
    assert!(df.nodes[5].heredocs.is_empty());

    let open = "[".repeat(1 << 20);
    let df = ok(&format!("FROM x\nCMD {open}\n"));
    assert_eq!(df.nodes[1].words()[0].len(), 1 << 20);
}

#[test]
fn deep_nesting_never_recurses_deeply() {
    // JSON deeper than Go's limit is "not JSON": the shell form.
    let deep = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
    let df = ok(&format!("FROM x\nCMD {deep}\n"));
    assert!(!df.nodes[1].json);

    // Valid JSON within the limit whose element is an array: BuildKit's error.
    let nested = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    let err = timed(format!("FROM x\nCMD {nested}\n").as_bytes()).unwrap_err();
    assert!(
        err.to_string()
            .contains("arrays must be comprised of strings only")
    );

    // Nested `${…}` on a heredoc line.
    let subst = format!("{}{}", "${a:-".repeat(100_000), "}".repeat(100_000));
    let df = ok(&format!("FROM x\nRUN <<EOF {subst}\n"));
    assert!(df.nodes[1].heredocs.is_empty());

    // ONBUILD chains.
    let chain = "ONBUILD ".repeat(100_000);
    let err = timed(format!("FROM x\n{chain}RUN x\n").as_bytes()).unwrap_err();
    assert!(
        err.to_string().contains("ONBUILD nested more than"),
        "{err}"
    );
    let df = ok("FROM x\nONBUILD ONBUILD RUN x\n");
    assert_eq!(dump(&df), "(from \"x\")\n(onbuild (onbuild (run \"x\")))\n");
}

#[test]
fn nul_bytes_and_control_characters() {
    let df = ok("FROM x\0y\nRUN \0\x01\x7f\n");
    assert_eq!(dump(&df), "(from \"x\\x00y\")\n(run \"\\x00\\x01\\x7f\")\n");
}

#[test]
fn invalid_utf8_is_a_located_error() {
    let mut src = b"FROM x\n\nRUN ok\nRUN \xc3\x28\n".to_vec();
    let err = timed(&src).unwrap_err();
    assert_eq!(err.line(), Some(4));
    src.truncate(3);
    src.push(0x80);
    let err = timed(&src).unwrap_err();
    assert_eq!(err.line(), Some(1));
    assert!(
        err.to_string().starts_with("Dockerfile:1:4: invalid UTF-8"),
        "{err}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Dockerfile-flavoured noise never panics, and what parses also dumps.
    #[test]
    fn never_panics_on_dockerfile_noise(
        src in proptest::collection::vec(
            prop_oneof![
                Just("FROM a\n"), Just("RUN "), Just("COPY "), Just("ENV "), Just("LABEL "),
                Just("ARG "), Just("ONBUILD "), Just("HEALTHCHECK "), Just("CMD "), Just("ADD "),
                Just("<<"), Just("<<-"), Just("EOF"), Just("3"), Just("\n"), Just("\r\n"),
                Just("\\"), Just("`"), Just("\""), Just("'"), Just("["), Just("]"), Just(","),
                Just("="), Just(" "), Just("\t"), Just("#"), Just("# escape=`\n"),
                Just("--flag=x "), Just("${a:-"), Just("}"), Just("$"), Just("\0"), Just("é"),
                Just("\u{feff}"), Just("\u{a0}"), Just("x"),
            ],
            0..64,
        )
    ) {
        let src: String = src.concat();
        if let Ok(df) = parse(src.as_bytes(), "Dockerfile") {
            prop_assert!(dump(&df).ends_with('\n'));
            prop_assert!(!df.nodes.is_empty());
            for node in &df.nodes {
                prop_assert!(node.start_line <= node.end_line);
                prop_assert!(node.span.start <= node.span.end && node.span.end <= src.len());
            }
        }
    }

    /// Arbitrary bytes never panic.
    #[test]
    fn never_panics_on_bytes(src in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse(&src, "Dockerfile").map(|df| dump(&df));
    }
}
