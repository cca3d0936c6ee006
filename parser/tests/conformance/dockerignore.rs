//! moby/patternmatcher's match table (`dockerignore/matches.tsv`): every row must give
//! Docker's answer. All rows run; failures are collected and reported together.

use rbuild_parser::dockerignore::Matcher;

use crate::conformance_dir;

/// Rows in the table; a change means cases were lost or added.
const EXPECTED_ROWS: usize = 72;

#[test]
fn patternmatcher_table() {
    let file = conformance_dir("dockerignore").join("matches.tsv");
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));

    let mut rows = 0;
    let mut failures = Vec::new();
    // The first line is the header.
    for (index, line) in text.lines().enumerate().skip(1) {
        if line.is_empty() {
            continue;
        }
        rows += 1;
        let line_no = index + 1;
        let fields: Vec<&str> = line.split('\t').collect();
        let [patterns, path, expected] = fields[..] else {
            failures.push(format!(
                "line {line_no}: expected 3 tab-separated fields: {line:?}"
            ));
            continue;
        };
        let expected = match expected {
            "true" => true,
            "false" => false,
            other => {
                failures.push(format!(
                    "line {line_no}: expected true/false, got {other:?}"
                ));
                continue;
            }
        };
        let patterns: Vec<&str> = patterns.split(" | ").collect();
        match Matcher::new(&patterns) {
            Ok(m) => {
                let got = m.excluded(path);
                if got != expected {
                    failures.push(format!(
                        "line {line_no}: patterns {patterns:?}, path {path:?}: expected {expected}, got {got}"
                    ));
                }
            }
            Err(e) => failures.push(format!(
                "line {line_no}: patterns {patterns:?} rejected: {e}"
            )),
        }
    }

    assert!(
        failures.is_empty(),
        "{} of {rows} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(rows, EXPECTED_ROWS, "row count of {}", file.display());
}
