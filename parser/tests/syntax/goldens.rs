//! Golden files under `fixtures/parser/<case>/` (a `Dockerfile` and the `result` its
//! dump must equal, plus a `heredocs` file listing the heredoc bodies, which BuildKit's
//! dump format does not show) and `fixtures/parser-errors/<case>/` (a `Dockerfile` and the
//! `error` text it must fail with). `RBUILD_BLESS=1` rewrites the expected files from
//! what the parser does now; check every rewritten file by hand before committing.

use std::fs;
use std::path::{Path, PathBuf};

use rbuild_parser::syntax::{Dockerfile, dump, go_quote, parse};

/// Lower bounds, so that cases cannot silently vanish.
const MIN_DUMP_CASES: usize = 10;
const MIN_ERROR_CASES: usize = 5;

fn fixtures(sub: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(sub);
    assert!(dir.is_dir(), "missing fixtures at {}", dir.display());
    dir
}

fn cases(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.join("Dockerfile").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn blessing() -> bool {
    std::env::var_os("RBUILD_BLESS").is_some_and(|v| v == "1")
}

/// Compares `actual` with the file `expected_path`, or rewrites it when blessing.
fn check(expected_path: &Path, actual: &str, failures: &mut Vec<String>) {
    if blessing() {
        fs::write(expected_path, actual).expect("writing blessed file");
        return;
    }
    let expected = fs::read_to_string(expected_path).unwrap_or_default();
    if expected != actual {
        failures.push(format!(
            "{}:\n--- expected\n{expected}\n+++ actual\n{actual}",
            expected_path.display()
        ));
    }
}

/// One entry per heredoc: the instruction's line, the delimiter and its settings,
/// then the body, all quoted like the dump.
fn render_heredocs(df: &Dockerfile) -> String {
    let mut out = String::new();
    for node in &df.nodes {
        for doc in &node.heredocs {
            out.push_str(&format!(
                "line {}: {} fd={} expand={} chomp={}\n  {}\n",
                node.start_line,
                go_quote(&doc.name),
                doc.file_descriptor,
                doc.expand,
                doc.chomp,
                go_quote(&doc.content)
            ));
        }
    }
    out
}

fn report(failures: &[String], total: usize) {
    assert!(
        failures.is_empty(),
        "{} of {total} golden cases differ (RBUILD_BLESS=1 rewrites them):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn dumps_match_golden_results() {
    let dirs = cases(&fixtures("parser"));
    let mut failures = Vec::new();
    for dir in &dirs {
        let src = fs::read(dir.join("Dockerfile")).expect("Dockerfile");
        match parse(&src, "Dockerfile") {
            Ok(df) => {
                check(&dir.join("result"), &dump(&df), &mut failures);
                let heredocs = render_heredocs(&df);
                let path = dir.join("heredocs");
                if !heredocs.is_empty() || path.exists() {
                    check(&path, &heredocs, &mut failures);
                }
            }
            Err(e) => failures.push(format!("{}: parse failed:\n{e}", dir.display())),
        }
    }
    report(&failures, dirs.len());
    assert!(
        dirs.len() >= MIN_DUMP_CASES,
        "only {} dump cases",
        dirs.len()
    );
}

#[test]
fn errors_match_golden_text() {
    let dirs = cases(&fixtures("parser-errors"));
    let mut failures = Vec::new();
    for dir in &dirs {
        let src = fs::read(dir.join("Dockerfile")).expect("Dockerfile");
        match parse(&src, "Dockerfile") {
            Ok(df) => failures.push(format!("{}: accepted:\n{}", dir.display(), dump(&df))),
            Err(e) => check(&dir.join("error"), &format!("{e}\n"), &mut failures),
        }
    }
    report(&failures, dirs.len());
    assert!(
        dirs.len() >= MIN_ERROR_CASES,
        "only {} error cases",
        dirs.len()
    );
}
