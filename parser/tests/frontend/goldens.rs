//! Golden cases for the typed-instruction pass: `fixtures/typed/errors.golden` (each
//! Dockerfile and the exact error it must print) and `fixtures/typed/<case>/` (a
//! Dockerfile and the `result.json` of its typed instructions). `RBUILD_BLESS=1`
//! rewrites the expected parts from what the code does now; review them by hand.

use std::fs;
use std::path::{Path, PathBuf};

use rbuild_parser::instruction;
use rbuild_parser::syntax;

fn fixtures() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/typed");
    assert!(dir.is_dir(), "missing fixtures at {}", dir.display());
    dir
}

fn blessing() -> bool {
    std::env::var_os("RBUILD_BLESS").is_some_and(|v| v == "1")
}

/// Parses and types `src` as the CLI does, returning the printed error if any.
fn type_error(src: &str) -> Option<String> {
    let df = match syntax::parse(src.as_bytes(), "Dockerfile") {
        Ok(df) => df,
        Err(e) => return Some(e.to_string()),
    };
    instruction::from_dockerfile(&df, src)
        .err()
        .map(|d| d.in_file("Dockerfile").to_string())
}

/// One `=== name` block: its name, Dockerfile text and expected error.
struct Case {
    name: String,
    dockerfile: String,
    error: String,
}

fn read_cases(text: &str) -> (String, Vec<Case>) {
    let mut header = String::new();
    let mut cases: Vec<Case> = Vec::new();
    let mut in_error = false;
    for line in text.split_inclusive('\n') {
        if let Some(name) = line.strip_prefix("=== ") {
            cases.push(Case {
                name: name.trim_end().to_string(),
                dockerfile: String::new(),
                error: String::new(),
            });
            in_error = false;
        } else if let Some(case) = cases.last_mut() {
            if line == "--- error\n" || line == "--- error" {
                in_error = true;
            } else if in_error {
                case.error.push_str(line);
            } else {
                case.dockerfile.push_str(line);
            }
        } else {
            header.push_str(line);
        }
    }
    for case in &mut cases {
        case.error.truncate(case.error.trim_end_matches('\n').len());
    }
    (header, cases)
}

#[test]
fn every_error_message_is_golden() {
    let path = fixtures().join("errors.golden");
    let text = fs::read_to_string(&path).unwrap();
    let (header, cases) = read_cases(&text);
    assert!(
        cases.len() >= 50,
        "only {} error cases in {}",
        cases.len(),
        path.display()
    );
    let mut failures = Vec::new();
    let mut blessed = header;
    for case in &cases {
        let actual = type_error(&case.dockerfile);
        if blessing() {
            let Some(err) = actual else {
                failures.push(format!("{}: expected an error, got none", case.name));
                continue;
            };
            blessed.push_str(&format!(
                "=== {}\n{}--- error\n{err}\n",
                case.name, case.dockerfile
            ));
            continue;
        }
        match actual {
            None => failures.push(format!("{}: expected an error, got none", case.name)),
            Some(err) if err != case.error => failures.push(format!(
                "{}:\n--- expected\n{}\n+++ actual\n{err}",
                case.name, case.error
            )),
            Some(_) => {}
        }
    }
    if blessing() {
        fs::write(&path, blessed).unwrap();
    }
    assert!(
        failures.is_empty(),
        "{} of {} error cases differ (RBUILD_BLESS=1 rewrites them):\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn typed_instructions_are_golden() {
    let mut dirs: Vec<PathBuf> = fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Dockerfile").is_file())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no typed golden cases");
    let mut failures = Vec::new();
    for dir in &dirs {
        let src = fs::read_to_string(dir.join("Dockerfile")).unwrap();
        let df = syntax::parse(src.as_bytes(), "Dockerfile").unwrap();
        let typed = instruction::from_dockerfile(&df, &src)
            .unwrap_or_else(|d| panic!("{}: {}", dir.display(), d.in_file("Dockerfile")));
        let actual = serde_json::to_string_pretty(&typed).unwrap() + "\n";
        let expected_path = dir.join("result.json");
        if blessing() {
            fs::write(&expected_path, &actual).unwrap();
        } else if fs::read_to_string(&expected_path).unwrap_or_default() != actual {
            failures.push(format!("{} differs from {actual}", expected_path.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
