//! Whole-parser behaviour, much of it ported from BuildKit's parser tests
//! (`parser_test.go`, `parser_heredoc_test.go`) with their expected values.

use super::{Args, Dockerfile, Heredoc, dump, parse};

fn ok(src: &str) -> Dockerfile {
    parse(src.as_bytes(), "Dockerfile").unwrap_or_else(|e| panic!("{e}"))
}

fn err(src: &str) -> String {
    match parse(src.as_bytes(), "Dockerfile") {
        Ok(df) => panic!("expected an error, got\n{}", dump(&df)),
        Err(e) => e.to_string(),
    }
}

fn doc(name: &str, content: &str, expand: bool, chomp: bool, fd: u32) -> Heredoc {
    Heredoc {
        name: name.into(),
        content: content.into(),
        expand,
        chomp,
        file_descriptor: fd,
    }
}

#[test]
fn extracts_heredocs_like_buildkit() {
    let src = "
FROM alpine:3.6

USER <<INVALID
INVALID

RUN <<EMPTY
EMPTY

RUN 3<<EMPTY2
EMPTY2

RUN \"<<NOHEREDOC\"

RUN <<INDENT
\tfoo
\tbar
INDENT

RUN <<-UNINDENT
\tbaz
\tquux
\tUNINDENT

RUN <<-'NOEXPAND'
\tdon't expand $NAME
NOEXPAND

RUN --mount=type=cache,target=/foo <<MOUNT
echo hello
MOUNT

COPY <<FILE1 <<FILE2 /dest
content 1
FILE1
content 2
FILE2

COPY <<X <<Y /dest
Y
X
X
Y

RUN <<eo'f'
echo foo
eof

RUN <<eo\\'f
echo foo
eo'f

RUN <<'e'o\\'f
echo foo
eo'f

RUN <<'one two'
echo bar
one two

RUN <<$EOF
$EOF

RUN <<  EOF  > foo
EOF
";
    let df = ok(src);
    let expected: Vec<Vec<Heredoc>> = vec![
        vec![],
        vec![], // USER <<INVALID
        vec![], // INVALID
        vec![doc("EMPTY", "", true, false, 0)],
        vec![doc("EMPTY2", "", true, false, 3)],
        vec![],
        vec![doc("INDENT", "\tfoo\n\tbar\n", true, false, 0)],
        // Our tree holds chomped bodies (BuildKit chomps when it builds the step).
        vec![doc("UNINDENT", "baz\nquux\n", true, true, 0)],
        vec![doc("NOEXPAND", "don't expand $NAME\n", false, true, 0)],
        vec![doc("MOUNT", "echo hello\n", true, false, 0)],
        vec![
            doc("FILE1", "content 1\n", true, false, 0),
            doc("FILE2", "content 2\n", true, false, 0),
        ],
        vec![
            doc("X", "Y\n", true, false, 0),
            doc("Y", "X\n", true, false, 0),
        ],
        vec![doc("eof", "echo foo\n", false, false, 0)],
        vec![doc("eo'f", "echo foo\n", true, false, 0)],
        vec![doc("eo'f", "echo foo\n", false, false, 0)],
        vec![doc("one two", "echo bar\n", false, false, 0)],
        vec![doc("$EOF", "", true, false, 0)],
        vec![doc("EOF", "", true, false, 0)],
    ];
    let got: Vec<Vec<Heredoc>> = df.nodes.iter().map(|n| n.heredocs.clone()).collect();
    assert_eq!(got, expected);
    assert_eq!(df.nodes[3].words(), ["<<EMPTY"]);
    assert_eq!(df.nodes[10].words(), ["<<FILE1", "<<FILE2", "/dest"]);
}

#[test]
fn json_form_has_no_heredocs() {
    let df = ok("FROM a\nRUN [\"<<EOF\"]\nRUN [\"<<'EOF'\"]\nCMD <<EOF\n");
    assert!(df.nodes.iter().all(|n| n.heredocs.is_empty()));
    assert_eq!(df.nodes.len(), 4);
}

#[test]
fn heredoc_lines_and_spans_cover_the_body() {
    let src = "FROM a\nRUN <<EOF\necho hi\nEOF\nCOPY <<-A <<B /d\n\tx\n\tA\ny\nB\n";
    let df = ok(src);
    let run = &df.nodes[1];
    assert_eq!((run.start_line, run.end_line), (2, 4));
    assert_eq!(
        &src[run.span.start..run.span.end],
        "RUN <<EOF\necho hi\nEOF"
    );
    assert_eq!(run.original, "RUN <<EOF");
    let copy = &df.nodes[2];
    assert_eq!((copy.start_line, copy.end_line), (5, 9));
    assert_eq!(
        copy.heredocs,
        [
            doc("A", "x\n", true, true, 0),
            doc("B", "y\n", true, false, 0)
        ]
    );
}

#[test]
fn heredoc_marker_in_a_continuation_line() {
    let df = ok("FROM a\nRUN --mount=type=cache,target=/c \\\n  <<EOF\nls\nEOF\n");
    let run = &df.nodes[1];
    assert_eq!(run.heredocs, [doc("EOF", "ls\n", true, false, 0)]);
    assert_eq!((run.start_line, run.end_line), (2, 5));
}

#[test]
fn onbuild_heredocs_attach_to_the_onbuild_node() {
    let df = ok("FROM a\nONBUILD RUN <<EOF\nx\nEOF\n");
    let onbuild = &df.nodes[1];
    assert_eq!(onbuild.heredocs, [doc("EOF", "x\n", true, false, 0)]);
    let Args::Nested(run) = &onbuild.args else {
        panic!("{:?}", onbuild.args)
    };
    assert_eq!((run.start_line, run.end_line), (2, 4));
    assert_eq!(dump(&df), "(from \"a\")\n(onbuild (run \"<<EOF\"))\n");
}

#[test]
fn crlf_bodies_keep_their_line_endings() {
    let df = ok("FROM a\r\nRUN <<EOF\r\nx\r\nEOF\r\nRUN b \\\r\n c\r\n");
    assert_eq!(df.nodes[1].heredocs, [doc("EOF", "x\r\n", true, false, 0)]);
    assert_eq!(df.nodes[2].words(), ["b  c"]);
}

#[test]
fn line_numbers_match_buildkit_testfile_line() {
    let src = "# ESCAPE=\\\n\n\n\nFROM brimstone/ubuntu:14.04\n\n\n\
# TORUN -v /var/run/docker.sock:/var/run/docker.sock\n\n\nENV GOPATH \\\n/go\n\n\n\n\
# Install the packages we need, clean up after them and us\nRUN apt-get update \\\n\
\t&& dpkg -l | awk '/^ii/ {print $2}' > /tmp/dpkg.clean \\\n\n\n\
    && apt-get --no-install-recommends install -y git golang ca-certificates \\\n\
    && apt-get clean \\\n    && rm -rf /var/lib/apt/lists \\\n\n\
\t&& go get -v github.com/brimstone/consuldock \\\n\
    && mv $GOPATH/bin/consuldock /usr/local/bin/consuldock \\\n\n\
\t&& dpkg -l | awk '/^ii/ {print $2}' > /tmp/dpkg.dirty \\\n\
\t&& apt-get remove --purge -y $(diff /tmp/dpkg.clean /tmp/dpkg.dirty | awk '/^>/ {print $2}') \\\n\
\t&& rm /tmp/dpkg.* \\\n\t&& rm -rf $GOPATH\n\n\n\n\n";
    let df = ok(src);
    let lines: Vec<(usize, usize)> = df
        .nodes
        .iter()
        .map(|n| (n.start_line, n.end_line))
        .collect();
    assert_eq!(lines, [(5, 5), (11, 12), (17, 31)]);
    assert_eq!(
        df.nodes[2].comments,
        ["Install the packages we need, clean up after them and us"]
    );
    assert_eq!(df.directives.escape, Some('\\'));
}

#[test]
fn warns_on_empty_continuation_lines() {
    let src = "
FROM alpine:3.6

RUN valid \\
    continuation

RUN something \\

    following \\

    more

RUN another \\

    thing

RUN non-indented \\
# this is a comment
   after-comment

RUN indented \\
    # this is an indented comment
    comment
\t";
    let df = ok(src);
    assert_eq!(df.warnings.len(), 2, "{:?}", df.warnings);
    assert_eq!(
        df.warnings[0].message,
        "Empty continuation line found in: RUN something     following     more"
    );
    assert_eq!(df.warnings[0].line, 11);
    assert!(df.warnings[1].message.contains("RUN another     thing"));
    assert_eq!(df.nodes[4].words(), ["non-indented    after-comment"]);
}

#[test]
fn comments_above_an_instruction_are_kept() {
    let df =
        ok("# syntax=x\n# about a\n\n# more\nARG a\n#\n# b only\nARG b\n  # c\nARG c\nARG d\n");
    let comments: Vec<Vec<String>> = df.nodes.iter().map(|n| n.comments.clone()).collect();
    assert_eq!(
        comments,
        [
            vec!["about a".to_string(), "more".to_string()],
            vec!["b only".to_string()],
            vec!["# c".to_string()],
            vec![],
        ]
    );
    assert_eq!(df.directives.syntax.as_deref(), Some("x"));
}

#[test]
fn directives_only_count_at_the_top() {
    let df = ok("# escape=`\n# check=skip=all\nFROM a\nRUN x `\n  y\n");
    assert_eq!(df.escape, '`');
    assert_eq!(df.directives.check.as_deref(), Some("skip=all"));
    assert_eq!(df.nodes[1].words(), ["x   y"]);

    let df = ok("# hello\n# escape=`\nFROM a\nRUN x `\n");
    assert_eq!(df.escape, '\\');
    assert_eq!(df.directives.escape, None);

    let df = ok("\u{feff}# escape=`\nFROM a `\n b\n");
    assert_eq!(df.escape, '`');
    assert_eq!(df.nodes[0].words(), ["a", "b"]);
}

#[test]
fn directive_errors_are_located() {
    assert_eq!(
        err("# syntax=a\n# SYNTAX=b\nFROM a\n"),
        "Dockerfile:2:1: only one syntax parser directive can be used\n 2 | # SYNTAX=b\n   | ^"
    );
    assert!(
        err("# escape=x\nFROM a\n")
            .starts_with("Dockerfile:1:1: invalid escape token 'x' does not match ` or \\\n")
    );
}

#[test]
fn whole_file_errors() {
    assert!(err("").starts_with("Dockerfile: file with no instructions"));
    assert!(
        err("# only\n\n   \n# comments\n").starts_with("Dockerfile: file with no instructions")
    );
}

#[test]
fn instruction_errors_are_located() {
    assert_eq!(
        err("FROM busybox\n\nENV PATH\n"),
        "Dockerfile:3:1: ENV must have two arguments\n 3 | ENV PATH\n   | ^\n \
         help: write ENV <key>=<value> (or the legacy ENV <key> <value>)"
    );
    assert!(
        err("FROM a\n  CMD [ \"echo\", [ \"nested json\" ] ]\n").starts_with(
            "Dockerfile:2:3: when using JSON array syntax, arrays must be comprised of strings only"
        )
    );
    assert!(err("FROM a\nLABEL a=b c\n").starts_with(
        "Dockerfile:2:1: Syntax error - can't find = in \"c\". Must be of the form: name=value"
    ));
}

#[test]
fn unterminated_heredoc_names_marker_and_line() {
    let e = err("FROM a\n\nRUN echo <<-EOF\nhello\n");
    assert_eq!(
        e,
        "Dockerfile:3:10: unterminated heredoc <<-EOF starting at line 3\n \
         3 | RUN echo <<-EOF\n   |          ^\n help: end the heredoc with a line that holds only EOF"
    );
    // The second of two heredocs is the unterminated one.
    assert!(
        err("FROM a\nCOPY <<A <<B /d\nA\n").contains("unterminated heredoc <<B starting at line 2")
    );
}

#[test]
fn substitution_in_a_marker_is_kept_as_written() {
    // BuildKit's lexer shares one word buffer between nesting levels, so there a
    // `${…:-…}` wipes the `<<` in front of it and no heredoc is read. We split with the
    // shell module, which keeps the word whole: the delimiter is the text as written.
    let df = ok("FROM a\nRUN <<${a:-x}\nbody\n${a:-x}\nRUN <<${a}\n${a}\n");
    assert_eq!(
        df.nodes[1].heredocs,
        [doc("${a:-x}", "body\n", true, false, 0)]
    );
    assert_eq!(df.nodes[2].heredocs, [doc("${a}", "", true, false, 0)]);
}

#[test]
fn invalid_utf8_names_the_line() {
    let mut src = b"FROM a\nRUN echo ".to_vec();
    src.extend_from_slice(&[0xff, 0xfe]);
    src.extend_from_slice(b"\n");
    let e = parse(&src, "Dockerfile").unwrap_err();
    assert_eq!(e.line(), Some(2));
    assert!(
        e.to_string()
            .starts_with("Dockerfile:2:10: invalid UTF-8 (byte 0xff)"),
        "{e}"
    );
}

#[test]
fn nul_bytes_are_ordinary_characters() {
    let df = ok("FROM a\nRUN a\0b\n");
    assert_eq!(df.nodes[1].words(), ["a\0b"]);
    assert_eq!(dump(&df), "(from \"a\")\n(run \"a\\x00b\")\n");
}

#[test]
fn unknown_instructions_keep_words_but_dump_like_buildkit() {
    let df = ok("FROM a\nFROBNICATE --x=1 a  b\n");
    let node = &df.nodes[1];
    assert_eq!(node.keyword, "frobnicate");
    assert_eq!(node.words(), ["a", "b"]);
    assert_eq!(dump(&df), "(from \"a\")\n(frobnicate [\"--x=1\"] \"\")\n");
}

#[test]
fn spans_point_at_the_instruction() {
    let src = "\u{feff}FROM a\n  RUN b \\\n   c\n";
    let df = ok(src);
    assert_eq!(&src[df.nodes[0].span.start..df.nodes[0].span.end], "FROM a");
    assert_eq!(
        &src[df.nodes[1].span.start..df.nodes[1].span.end],
        "RUN b \\\n   c"
    );
}
