//! Behaviour of the whole expander, operator by operator. The conformance data in
//! `parser/tests/conformance/shell.rs` covers quoting and `$` edge cases; these
//! cover what it does not: every operator, `used`/`unset`, options, errors, limits.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn word(input: &str, vars: &[(&str, &str)]) -> String {
    match Lexer::new('\\').expand_word(input, &env(vars)) {
        Ok(ok) => ok.value,
        Err(e) => panic!("{input:?} failed: {e}"),
    }
}

fn error(input: &str, vars: &[(&str, &str)]) -> ExpandError {
    match Lexer::new('\\').expand_word(input, &env(vars)) {
        Ok(ok) => panic!("{input:?} expanded to {:?}, expected an error", ok.value),
        Err(e) => e,
    }
}

fn words(input: &str, vars: &[(&str, &str)]) -> Vec<String> {
    match Lexer::new('\\').expand_words(input, &env(vars)) {
        Ok(ok) => ok.value,
        Err(e) => panic!("{input:?} failed: {e}"),
    }
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

const SET_EMPTY: &[(&str, &str)] = &[("FOO", "xxx"), ("BAR", "")];

#[test]
fn plain_references() {
    assert_eq!(word("$FOO/${FOO}x", SET_EMPTY), "xxx/xxxx");
    assert_eq!(word("a${BAR}b$BAZ.c", SET_EMPTY), "ab.c");
    assert_eq!(word("$", &[]), "$");
    assert_eq!(word("a$ b", &[]), "a$ b");
    assert_eq!(word("$1x$@y", &[]), "xy");
}

#[test]
fn default_operators() {
    assert_eq!(word("${FOO-a} ${BAR-b} ${BAZ-c}", SET_EMPTY), "xxx  c");
    assert_eq!(word("${FOO:-a} ${BAR:-b} ${BAZ:-c}", SET_EMPTY), "xxx b c");
    assert_eq!(word("${BAZ:-}", SET_EMPTY), "");
    assert_eq!(word("${BAZ:-$FOO-${BAR:-z}}", SET_EMPTY), "xxx-z");
    assert_eq!(word("${BAZ:-a b}", SET_EMPTY), "a b");
}

#[test]
fn alternative_operators() {
    assert_eq!(word("${FOO+a} ${BAR+b} ${BAZ+c}", SET_EMPTY), "a b ");
    assert_eq!(word("${FOO:+a} ${BAR:+b} ${BAZ:+c}", SET_EMPTY), "a  ");
    let release = "v-${ARCH}${VARIANT:+-${VARIANT}}.tgz";
    assert_eq!(
        word(release, &[("ARCH", "arm"), ("VARIANT", "v7")]),
        "v-arm-v7.tgz"
    );
    assert_eq!(
        word(release, &[("ARCH", "arm"), ("VARIANT", "")]),
        "v-arm.tgz"
    );
    assert_eq!(word(release, &[("ARCH", "arm")]), "v-arm.tgz");
}

#[test]
fn required_operators() {
    assert_eq!(word("${FOO?a}${FOO:?b}", SET_EMPTY), "xxxxxx");
    assert_eq!(word("${BAR?b}", SET_EMPTY), "");
    assert_eq!(error("${BAR:?bad}", SET_EMPTY).to_string(), "BAR: bad");
    assert_eq!(
        error("${BAZ?}", SET_EMPTY).to_string(),
        "BAZ: is not allowed to be unset"
    );
    assert_eq!(
        error("${BAZ:?}", SET_EMPTY).to_string(),
        "BAZ: is not allowed to be unset"
    );
    assert_eq!(
        error("${BAR:?}", SET_EMPTY).to_string(),
        "BAR: is not allowed to be empty"
    );
    // The message is itself expanded.
    let vars = &[("VAR", ""), ("ARG", "x")];
    assert_eq!(
        error("${VAR:?message here$ARG}", vars).to_string(),
        "VAR: message herex"
    );
    assert_eq!(word("${VAR?message here$ARG}", vars), "");
    assert_eq!(
        error("${NO?message here$ARG}", vars).to_string(),
        "NO: message herex"
    );
}

#[test]
fn prefix_removal() {
    let foo = &[("FOO", "xxyy")];
    assert_eq!(word("${FOO#*x*y}", foo), "y");
    assert_eq!(word("${FOO#*}", foo), "xxyy");
    assert_eq!(word("${FOO#}", foo), "xxyy");
    assert_eq!(word("${FOO##*x}", foo), "yy");
    assert_eq!(word("${FOO##}", foo), "xxyy");
    assert_eq!(word("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "x")]), "xyy");
    assert_eq!(word("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "")]), "xxyy");
    assert_eq!(word("${FOO#?\\?}", &[("FOO", "???y")]), "?y");
    assert_eq!(word("${NOPE#x}", &[]), "");
    let specials = &[("FOO", "()[]{}^$.*?|\\x")];
    assert_eq!(word("${FOO#()[]{\\}^$.\\*\\?|\\\\}", specials), "x");
    assert_eq!(word("${K#한}", &[("K", "한국어")]), "국어");
}

#[test]
fn suffix_removal() {
    let path = &[("P", "/usr/lib/file.tar.gz")];
    assert_eq!(word("${P%.*}", path), "/usr/lib/file.tar");
    assert_eq!(word("${P%%.*}", path), "/usr/lib/file");
    assert_eq!(word("${P%/*}", path), "/usr/lib");
    assert_eq!(word("${P##*/}", path), "file.tar.gz");
    assert_eq!(word("${FOO%%\\**}", &[("FOO", "xx**")]), "xx");
    assert_eq!(word("${FOO%%\\**\\*}", &[("FOO", "a***yy*")]), "a");
    assert_eq!(word("${FOO%}", &[("FOO", "xxyy")]), "xxyy");
    assert_eq!(
        word("${ABC:-.}${FOO%x}${ABC:-.}", &[("FOO", "xxyy")]),
        ".xxyy."
    );
    assert_eq!(word("${K%어}", &[("K", "한국어")]), "한국");
}

#[test]
fn pattern_quirks_follow_buildkit() {
    // Quotes do not make pattern characters literal (unlike sh)...
    assert_eq!(word("${F#'*'}", &[("F", "abc")]), "abc");
    assert_eq!(word("${F##'*'}", &[("F", "abc")]), "");
    // ...and a doubled operator can come from a variable.
    assert_eq!(word("${F#$P}", &[("F", "aab"), ("P", "#*a")]), "b");
    // Inside a pattern, escapes are kept for the pattern compiler, so `"\*"`
    // becomes `\\*`: a literal backslash, then a wildcard.
    assert_eq!(word("${F#\"\\*\"}", &[("F", "\\abc")]), "abc");
    // Wildcards never match a newline.
    assert_eq!(word("${F#*/}", &[("F", "a\nb/c")]), "a\nb/c");
}

#[test]
fn replacement() {
    let v = &[("FOO", "/foo*/*/*.txt"), ("NEEDLE", "\\*/")];
    assert_eq!(
        word("${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}", v),
        "/foo.*/*.txt - /foo..*.txt"
    );
    let v = &[("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")];
    assert_eq!(
        word("${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}", v),
        "/tmp/bar.txt - /bar.txt"
    );
    let v = &[("FOO", "/a/foo/b/c.txt"), ("N", "/?/"), ("R", "/")];
    assert_eq!(
        word("${FOO/$N/$R} - ${FOO//$N/$R}", v),
        "/foo/b/c.txt - /foo/c.txt"
    );
    let v = &[
        ("U", "http://google.de"),
        ("N", "http://"),
        ("R", "https://"),
    ];
    assert_eq!(word("${U/$N/$R}", v), "https://google.de");
    // Escaped separators: the backslash stays in the replacement.
    assert_eq!(
        word("${FOO//\\//\\/}", &[("FOO", "/tmp/foo.txt")]),
        "\\/tmp\\/foo.txt"
    );
    assert_eq!(
        word("${FOO/$BAR/ww}", &[("FOO", "xxyy"), ("BAR", "")]),
        "wwxxyy"
    );
    assert_eq!(word("${FOO///}", &[("FOO", "xxyy")]), "xxyy");
    assert_eq!(word("${FOO///}", &[]), "");
    assert_eq!(word("${K/국/-}", &[("K", "한국어")]), "한-어");
    // Replace-all reads Go's `$0` (the match) in the replacement; replace-first does not.
    assert_eq!(word("${F//o/'[$0]'}", &[("F", "foo")]), "f[o][o]");
    assert_eq!(word("${F/o/'[$0]'}", &[("F", "foo")]), "f[$0]o");
}

#[test]
fn used_and_unset_are_reported() {
    let lexer = Lexer::new('\\');
    let vars = env(SET_EMPTY);
    let got = lexer
        .expand_word("x ${FOO:-a} ${BAR} $BAZ '$QUOTED' \\$ESCAPED", &vars)
        .unwrap();
    assert_eq!(got.value, "x xxx   $QUOTED $ESCAPED");
    assert_eq!(got.used, set(&["BAR", "FOO"]));
    assert_eq!(got.unset, set(&["BAZ"]));
    // Words that the operator ends up not using are still expanded and counted.
    let got = lexer
        .expand_word("${FOO:-$A}${BAZ:+$B}${FOO#$C}", &vars)
        .unwrap();
    assert_eq!(got.value, "xxxxxx");
    assert_eq!(got.used, set(&["FOO"]));
    assert_eq!(got.unset, set(&["A", "B", "BAZ", "C"]));
    // Positional and special parameters are names like any other.
    let got = lexer.expand_word("$1${@}", &vars).unwrap();
    assert_eq!(got.unset, set(&["1", "@"]));
    let got = lexer.expand_words("$FOO $NOPE", &vars).unwrap();
    assert_eq!(got.value, vec!["xxx"]);
    assert_eq!((got.used, got.unset), (set(&["FOO"]), set(&["NOPE"])));
    let got = lexer.expand_word("plain", &vars).unwrap();
    assert!(got.used.is_empty() && got.unset.is_empty());
}

#[test]
fn backtick_escape() {
    let lexer = Lexer::new('`');
    let vars = env(&[("PWD", "/home")]);
    let w = |s: &str| lexer.expand_word(s, &vars).map(|e| e.value);
    assert_eq!(w("he`$PWD").unwrap(), "he$PWD");
    assert_eq!(w("he``$PWD").unwrap(), "he`/home");
    assert_eq!(w("C:\\path\\$PWD").unwrap(), "C:\\path\\/home");
    assert_eq!(w("\"a`\"b\"").unwrap(), "a\"b");
    assert_eq!(w("\"a\\\"").unwrap(), "a\\");
    assert_eq!(w("\"`$PWD ``x `y\"").unwrap(), "$PWD `x `y");
    assert_eq!(w("a`").unwrap(), "a");
    assert_eq!(w("${X:-`}}").unwrap(), "}");
    assert_eq!(lexer.escape(), '`');
    let split = lexer.expand_words("a` b c", &vars).unwrap().value;
    assert_eq!(split, vec!["a b", "c"]);
}

#[test]
fn quotes_and_escapes() {
    assert_eq!(word("'a b'\"c $X\"\\ d", &[("X", "x")]), "a bc x d");
    assert_eq!(word("\"\\a\\\\\\$\\\"\"", &[]), "\\a\\$\"");
    assert_eq!(word("'\\$X'", &[("X", "x")]), "\\$X");
    assert_eq!(word("\"'$X'\"", &[("X", "x")]), "'x'");
    assert_eq!(word("${X:-'}'}", &[]), "}");
    assert_eq!(word("${X:-\"a b\"}", &[]), "a b");
    assert_eq!(word("\u{feff}a\u{feff}", &[]), "a\u{feff}");
}

#[test]
fn word_splitting() {
    let vars = &[("S", " a  b "), ("E", "")];
    assert_eq!(words("x${S}y", vars), vec!["x", "a", "b", "y"]);
    assert_eq!(words("x\"${S}\"y", vars), vec!["x a  b y"]);
    assert_eq!(words("a \"\" '' $E b", vars), vec!["a", "b"]);
    assert_eq!(words("  a\tb\nc  ", vars), vec!["a", "b", "c"]);
    assert_eq!(words("", vars), Vec::<String>::new());
    // Text before a `${X:-…}` is kept (BuildKit's ProcessWords loses it).
    assert_eq!(words("a${X:-b}c d", vars), vec!["abc", "d"]);
    assert_eq!(words("a${X:-b c}d", vars), vec!["ab", "cd"]);
}

#[test]
fn heredoc_markers_stay_whole() {
    assert_eq!(
        words("cat << EOF > f", &[]),
        vec!["cat", "<< EOF", ">", "f"]
    );
    assert_eq!(words("a <b <<-x", &[]), vec!["a", "<b", "<<-x"]);
    assert_eq!(word("a<<  b", &[]), "a<<  b");
}

#[test]
fn options() {
    let vars = env(&[("X", "x")]);
    let raw = Lexer::new('\\').raw_quotes(true);
    assert_eq!(
        raw.expand_word("'a'\"$X\"", &vars).unwrap().value,
        "'a'\"x\""
    );
    let raw = Lexer::new('\\').raw_escapes(true);
    assert_eq!(
        raw.expand_word("a\\ b\\$X", &vars).unwrap().value,
        "a\\ b\\$X"
    );
    let literal = Lexer::new('\\').literal_quotes(true);
    assert_eq!(
        literal.expand_word("'$X' \"$X\"", &vars).unwrap().value,
        "'x' \"x\""
    );
    let keep = Lexer::new('\\').keep_unset(true);
    let got = keep
        .expand_word("$X $Y ${Y} ${Y:-d} ${Y?m} ${Y#p} ${Y//a/b} ${Y/a/b}", &vars)
        .unwrap();
    assert_eq!(
        got.value,
        "x $Y ${Y} ${Y:-d} ${Y?m} ${Y#p} ${Y//a/b} ${Y/a/b}"
    );
    assert_eq!(got.unset, set(&["Y"]));
}

#[test]
fn split_words_expands_nothing() {
    let lexer = Lexer::new('\\');
    assert_eq!(
        lexer.split_words("a \"b c\" $X ${Y:?no} 'd'").unwrap(),
        vec!["a", "b c", "$X", "${Y:?no}", "d"]
    );
    let heredoc = lexer.raw_quotes(true).raw_escapes(true);
    assert_eq!(
        heredoc.split_words("cat <<'EOF'").unwrap(),
        vec!["cat", "<<'EOF'"]
    );
    assert!(lexer.split_words("'open").is_err());
}

#[test]
fn error_messages() {
    let msg = |s: &str| error(s, &[("PWD", "/home")]).to_string();
    assert_eq!(
        msg("he'llo"),
        "unexpected end of statement while looking for matching single-quote"
    );
    assert_eq!(
        msg("\"hello\\\""),
        "unexpected end of statement while looking for matching double-quote"
    );
    assert_eq!(msg("he${PWD"), "syntax error: missing '}' in \"${PWD\"");
    assert_eq!(msg("${X:-abc"), "syntax error: missing '}' in \"${X:-abc\"");
    assert_eq!(
        msg("${X:-\"abc}"),
        "syntax error: missing '}' in \"${X:-\"abc}\""
    );
    assert_eq!(msg("${"), "syntax error: missing '}' in \"${\"");
    assert_eq!(msg("a${}b"), "syntax error: bad substitution in \"${}\"");
    assert_eq!(
        msg("${{aaa}"),
        "syntax error: bad substitution in \"${{aaa}\""
    );
    assert_eq!(
        msg("${:-x}"),
        "syntax error: bad substitution in \"${:-x}\""
    );
    assert_eq!(
        msg("he${.}"),
        "unsupported modifier (.) in substitution \"${.}\""
    );
    assert_eq!(
        msg("${PWD:=000}x"),
        "unsupported modifier (:=) in substitution \"${PWD:=000}\""
    );
    assert_eq!(
        msg("${PWD=x}"),
        "unsupported modifier (=) in substitution \"${PWD=x}\""
    );
    assert_eq!(
        msg("${X:YYY}"),
        "unsupported modifier (:Y) in substitution \"${X:YYY}\""
    );
    assert_eq!(
        msg("${FOO:#}"),
        "unsupported modifier (:#) in substitution \"${FOO:#}\""
    );
    assert_eq!(
        msg("${FOO:%%x}"),
        "unsupported modifier (:%) in substitution \"${FOO:%%x}\""
    );
    assert_eq!(
        msg("${FOO//ww}"),
        "syntax error: missing '/' in \"${FOO//ww}\""
    );
    assert_eq!(msg("${FOO//}"), "syntax error: missing '/' in \"${FOO//}\"");
    assert_eq!(
        msg("${PWD#\\x}"),
        "invalid pattern (\\x) in substitution: invalid escape '\\x'"
    );
    assert_eq!(
        msg("${PWD/a\\b/c}"),
        "invalid pattern (a\\b) in substitution: invalid escape '\\b'"
    );
    // An inner error stays itself unless the word ran out first.
    assert_eq!(msg("${A:-${B:?boom}}"), "B: boom");
    assert_eq!(
        msg("${A:-${B:?boom}"),
        "syntax error: missing '}' in \"${A:-${B:?boom}\""
    );
}

#[test]
fn errors_point_into_the_word() {
    let e = error("ab${}", &[]);
    assert_eq!(e.offset(), 2);
    assert_eq!(error("x 'y", &[]).offset(), 2);
    assert_eq!(error("한${X:?}", &[]).offset(), 3);
    let src = "FROM a\nCOPY ab${} /x\n";
    let d = e.diagnostic(src, src.find("ab").unwrap());
    let pos = d.pos.unwrap();
    assert_eq!((pos.line, pos.column), (2, 8));
    assert_eq!(d.line_text.as_deref(), Some("COPY ab${} /x"));
}

#[test]
fn nesting_is_bounded() {
    let nested = |n: usize| format!("{}x{}", "${A:-".repeat(n), "}".repeat(n));
    assert_eq!(word(&nested(MAX_DEPTH), &[]), "x");
    let err = error(&nested(MAX_DEPTH + 1), &[]);
    assert_eq!(
        err,
        ExpandError::TooDeep {
            limit: MAX_DEPTH,
            offset: MAX_DEPTH * 5
        }
    );
    assert_eq!(
        err.to_string(),
        "substitutions nested more than 64 levels deep"
    );
    // Far past the limit, and unterminated: still an error, no stack overflow.
    assert!(
        Lexer::new('\\')
            .expand_word(&"${A:-".repeat(100_000), &EmptyEnv)
            .is_err()
    );
    assert!(
        Lexer::new('\\')
            .expand_word(&"\"${A:-".repeat(100_000), &EmptyEnv)
            .is_err()
    );
}

#[test]
fn detects_variables_cheaply() {
    assert!(contains_vars("a$B", '\\'));
    assert!(contains_vars("${B}", '\\'));
    assert!(contains_vars("${}", '\\'));
    assert!(contains_vars("$1 $@", '\\'));
    assert!(contains_vars("\"$B\"", '\\'));
    assert!(contains_vars("\"\\a$B\"", '\\'));
    assert!(contains_vars("\\\\$B", '\\'));
    assert!(contains_vars("`$B", '\\'));
    assert!(contains_vars("한$국", '\\'));
    assert!(!contains_vars("plain", '\\'));
    assert!(!contains_vars("$ $. a$", '\\'));
    assert!(!contains_vars("'$B'", '\\'));
    assert!(!contains_vars("\\$B", '\\'));
    assert!(!contains_vars("\"\\$B\"", '\\'));
    assert!(!contains_vars("`$B", '`'));
    assert!(!contains_vars("'open $B", '\\'));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any input ends in a value or an error, the same way in both modes.
    #[test]
    fn never_panics_and_modes_agree(input in "[${}:+?#%/\\\\'\"<` a-zA-Z0-9_@*\\-\n한]{0,40}") {
        let vars = env(&[("a", "x y"), ("b", ""), ("Z", "*/")]);
        for escape in ['\\', '`'] {
            let lexer = Lexer::new(escape);
            let one = lexer.expand_word(&input, &vars);
            let many = lexer.expand_words(&input, &vars);
            match (&one, &many) {
                (Ok(a), Ok(b)) => {
                    prop_assert_eq!(&a.used, &b.used);
                    prop_assert_eq!(&a.unset, &b.unset);
                }
                (Err(a), Err(b)) => prop_assert_eq!(a, b),
                _ => prop_assert!(false, "modes disagree on {:?}: {:?} vs {:?}", input, one, many),
            }
            if !contains_vars(&input, escape)
                && let Ok(a) = &one {
                    prop_assert!(a.used.is_empty() && a.unset.is_empty(), "{:?}", input);
                }
            let _ = lexer.keep_unset(true).raw_quotes(true).raw_escapes(true).split_words(&input);
        }
    }

    /// Text without any special character comes back unchanged.
    #[test]
    fn plain_text_is_unchanged(input in "[a-zA-Z0-9_./:=,한국어 -]{0,40}") {
        let got = Lexer::new('\\').expand_word(&input, &EmptyEnv).unwrap();
        prop_assert_eq!(got.value, input);
    }
}
