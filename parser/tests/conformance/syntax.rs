//! BuildKit's parser test files: every `parser/<case>/Dockerfile` must dump exactly to
//! its `result`, every `parser-negative/<case>/Dockerfile` must be rejected.

use std::fs;
use std::path::{Path, PathBuf};

use rbuild_parser::syntax::{dump, parse};

use crate::conformance_dir;

/// How many cases BuildKit's test data holds; a change means cases were lost or added.
const POSITIVE_CASES: usize = 33;
const NEGATIVE_CASES: usize = 4;

fn case_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn name(dir: &Path) -> String {
    dir.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// A line-by-line comparison that shows only what differs.
fn diff(expected: &str, actual: &str) -> String {
    let exp: Vec<&str> = expected.split('\n').collect();
    let act: Vec<&str> = actual.split('\n').collect();
    let mut out = String::new();
    for i in 0..exp.len().max(act.len()) {
        let (e, a) = (exp.get(i), act.get(i));
        if e != a {
            if let Some(e) = e {
                out.push_str(&format!("    line {}: - {e}\n", i + 1));
            }
            if let Some(a) = a {
                out.push_str(&format!("    line {}: + {a}\n", i + 1));
            }
        }
    }
    out
}

#[test]
fn buildkit_parser_cases_dump_exactly() {
    let dirs = case_dirs(&conformance_dir("parser"));
    let mut failures = Vec::new();
    for dir in &dirs {
        let src = fs::read(dir.join("Dockerfile")).expect("Dockerfile");
        let expected = fs::read_to_string(dir.join("result")).expect("result");
        match parse(&src, "Dockerfile") {
            Err(e) => failures.push(format!("{}: parse failed:\n{e}", name(dir))),
            Ok(df) => {
                let actual = dump(&df);
                if actual != expected {
                    failures.push(format!(
                        "{}: dump differs (- expected, + actual):\n{}",
                        name(dir),
                        diff(&expected, &actual)
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n")
    );
    assert_eq!(dirs.len(), POSITIVE_CASES, "number of parser cases");
}

#[test]
fn buildkit_negative_cases_are_rejected() {
    let dirs = case_dirs(&conformance_dir("parser-negative"));
    let accepted: Vec<String> = dirs
        .iter()
        .filter_map(|dir| {
            let src = fs::read(dir.join("Dockerfile")).expect("Dockerfile");
            parse(&src, "Dockerfile")
                .ok()
                .map(|df| format!("{}: accepted, dumped as\n{}", name(dir), dump(&df)))
        })
        .collect();
    assert!(
        accepted.is_empty(),
        "{} of {} negative cases were accepted:\n{}",
        accepted.len(),
        dirs.len(),
        accepted.join("\n")
    );
    assert_eq!(dirs.len(), NEGATIVE_CASES, "number of negative cases");
}
