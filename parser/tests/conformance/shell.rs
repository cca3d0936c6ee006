//! BuildKit's shell-lexer vectors (`shell/envVarTest`, `shell/wordsTest`), run
//! through [`rbuild_parser::shell::Lexer`]. Every case runs; all failures are
//! reported together.

use std::fs;

use rbuild_parser::shell::Lexer;

use crate::conformance_dir;

fn read(name: &str) -> String {
    let path = conformance_dir("shell").join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn fail_if_any(file: &str, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} of the {file} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// `PLATFORM|INPUT|EXPECTED`; `A` and `U` run, `W` (Windows) is skipped.
#[test]
fn env_var_test() {
    let text = read("envVarTest");
    let env = vec![
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ];
    let lexer = Lexer::new('\\');

    // Counted independently of the loop below, so a parsing slip there cannot
    // make cases vanish unnoticed.
    let expected_cases = text
        .lines()
        .filter(|l| l.starts_with("A|") || l.starts_with("U|"))
        .count();

    let mut ran = 0;
    let mut skipped = 0;
    let mut failures = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(
            fields.len(),
            3,
            "envVarTest:{lineno}: expected 3 fields in {line:?}"
        );
        let (platform, input, expected) = (fields[0].trim(), fields[1].trim(), fields[2].trim());
        match platform {
            "A" | "U" => {}
            "W" => {
                skipped += 1;
                continue;
            }
            other => panic!("envVarTest:{lineno}: unknown platform {other:?}"),
        }
        ran += 1;
        let got = lexer.expand_word(input, &env);
        match (expected, got) {
            ("error", Err(_)) => {}
            ("error", Ok(ok)) => failures.push(format!(
                "envVarTest:{lineno}: {input:?}: expected an error, got {:?}",
                ok.value
            )),
            (want, Ok(ok)) if ok.value == want => {}
            (want, Ok(ok)) => failures.push(format!(
                "envVarTest:{lineno}: {input:?}: expected {want:?}, got {:?}",
                ok.value
            )),
            (want, Err(e)) => failures.push(format!(
                "envVarTest:{lineno}: {input:?}: expected {want:?}, got error: {e}"
            )),
        }
    }
    fail_if_any("envVarTest", &failures);
    assert!(ran > 0, "envVarTest ran no case");
    assert_eq!(
        ran, expected_cases,
        "envVarTest: cases run vs A/U lines in the file"
    );
    assert!(
        skipped > 0,
        "envVarTest: expected some Windows-only cases to skip"
    );
}

/// `INPUT | EXPECTED` (words joined by `,`, or `error`); `ENV name=value` lines
/// add to the environment of the cases after them.
#[test]
fn words_test() {
    let text = read("wordsTest");
    let lexer = Lexer::new('\\');

    let expected_cases = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("ENV ") && l.contains('|'))
        .count();

    let mut env: Vec<(String, String)> = Vec::new();
    let mut ran = 0;
    let mut failures = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        if line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("ENV ") {
            // Leading spaces go, trailing spaces are part of the value.
            let assignment = rest.trim_start_matches(' ');
            let (name, value) = assignment.split_once('=').unwrap_or((assignment, ""));
            env.push((name.to_string(), value.to_string()));
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(
            fields.len(),
            2,
            "wordsTest:{lineno}: expected exactly one '|' in {line:?}"
        );
        let input = fields[0].trim();
        let expected: Vec<&str> = fields[1].trim_start_matches(' ').split(',').collect();
        ran += 1;
        let got = match lexer.expand_words(input, &env) {
            Ok(ok) => ok.value,
            Err(_) => vec!["error".to_string()],
        };
        if got != expected {
            failures.push(format!(
                "wordsTest:{lineno}: {input:?}: expected {expected:?}, got {got:?}"
            ));
        }
    }
    fail_if_any("wordsTest", &failures);
    assert!(ran > 0, "wordsTest ran no case");
    assert_eq!(
        ran, expected_cases,
        "wordsTest: cases run vs case lines in the file"
    );
    assert!(!env.is_empty(), "wordsTest: expected ENV lines");
}
