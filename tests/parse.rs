//! `rbuild parse` against BuildKit's published parser cases and on broken input.

use crate::util::{TempDir, case_dirs, conformance_dir, rbuild, rbuild_in};

#[test]
fn dumps_every_conformance_case_byte_for_byte() {
    let cases = case_dirs(&conformance_dir("parser"));
    assert_eq!(cases.len(), 33, "expected BuildKit's 33 parser cases");
    let mut failures = Vec::new();
    for case in &cases {
        let df = case.join("Dockerfile");
        let want = std::fs::read_to_string(case.join("result")).unwrap();
        let run = rbuild(&["parse", "-f", df.to_str().unwrap()]);
        if run.status != Some(0) || run.stdout != want {
            failures.push(format!(
                "{}: exit {:?}\n{}\n--- want ---\n{want}--- got ---\n{}",
                case.display(),
                run.status,
                run.stderr,
                run.stdout
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn rejects_every_negative_case() {
    let cases = case_dirs(&conformance_dir("parser-negative"));
    assert_eq!(cases.len(), 4);
    for case in &cases {
        let df = case.join("Dockerfile");
        rbuild(&["parse", "-f", df.to_str().unwrap()])
            .failure()
            .stderr_contains("error: ");
    }
}

#[test]
fn reads_stdin_with_dash() {
    let dir = TempDir::new("parse-stdin");
    let run = rbuild_in(
        &dir.0,
        &["parse", "-f", "-"],
        Some(b"FROM a\nRUN echo hi\n"),
    )
    .success();
    assert_eq!(run.stdout, "(from \"a\")\n(run \"echo hi\")\n");
}

#[test]
fn default_file_is_dockerfile_in_working_dir() {
    let dir = TempDir::new("parse-default");
    dir.write("Dockerfile", "FROM scratch\n");
    let run = rbuild_in(&dir.0, &["parse"], None).success();
    assert_eq!(run.stdout, "(from \"scratch\")\n");
}

#[test]
fn misspelt_instruction_names_line_and_suggests() {
    let dir = TempDir::new("parse-typo");
    dir.write("Dockerfile", "FROM a\nCOPPY x /y\n");
    rbuild_in(&dir.0, &["parse", "--json"], None)
        .failure()
        .stderr_contains("Dockerfile:2:1:")
        .stderr_contains("COPPY x /y")
        .stderr_contains("did you mean COPY");
}

#[test]
fn json_lists_typed_instructions_with_lines() {
    let dir = TempDir::new("parse-json");
    dir.write(
        "Dockerfile",
        "FROM busybox AS base\nCOPY --chown=1:2 a \\\n  b /dst/\n",
    );
    let run = rbuild_in(&dir.0, &["parse", "--json"], None).success();
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("valid JSON");
    let items = v.as_array().expect("a JSON array");
    assert_eq!(items.len(), 2);
    assert_eq!(items[1]["start_line"], 2);
    assert_eq!(items[1]["end_line"], 3);
    run.stdout_contains("\"1:2\"").stdout_contains("\"/dst/\"");
}

#[test]
fn missing_file_is_a_clear_error() {
    rbuild(&["parse", "-f", "/nonexistent/Dockerfile"])
        .failure()
        .stderr_contains("/nonexistent/Dockerfile");
}
