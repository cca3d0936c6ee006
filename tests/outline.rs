//! `rbuild outline` on the multi-stage fixture and on generated Dockerfiles.

use std::time::{Duration, Instant};

use crate::util::{Run, TempDir, rbuild, rbuild_in};

const MULTISTAGE: &str = "fixtures/multistage";

/// The part of the output before the "skipped" line: the stages that will be built.
fn built_part(out: &str) -> &str {
    out.split("\nskipped").next().unwrap_or(out)
}

#[test]
fn full_plan_shows_every_stage_with_build_args_expanded() {
    let run = rbuild(&["outline", "--build-arg", "VERSION=2.5", MULTISTAGE]).success();
    let out = &run.stdout;
    for stage in ["\"base\"", "\"build\"", "\"docs\"", "\"final\""] {
        assert!(built_part(out).contains(stage), "{stage} missing:\n{out}");
    }
    assert!(out.contains("target: stage 4 \"final\""), "{out}");
    assert!(
        out.contains("9 | ENV APP_VERSION=2.5 APP_HOME=/app"),
        "{out}"
    );
    assert!(
        out.contains("24 | LABEL org.opencontainers.image.version=2.5"),
        "{out}"
    );
    assert!(out.contains("7 | FROM busybox:latest AS base"), "{out}");
    assert!(out.contains("10 | WORKDIR /app"), "{out}");
    // base and docs depend on nothing but the image: the first wave runs both.
    assert!(
        out.contains("wave 1 of 3: 2 stages, can run concurrently"),
        "{out}"
    );
    assert!(
        out.contains("needs stage 2 \"docs\" (COPY --from, line 26)"),
        "{out}"
    );
    assert!(
        out.contains("skipped (not needed for stage 4 \"final\"): stage 3 \"test\""),
        "{out}"
    );
    assert!(!out.contains("warnings:"), "{out}");

    let run = rbuild(&["outline", MULTISTAGE]).success();
    assert!(
        run.stdout.contains("ENV APP_VERSION=1.0 APP_HOME=/app"),
        "{}",
        run.stdout
    );
}

#[test]
fn target_lists_only_the_stages_it_needs() {
    let run = rbuild(&["outline", "--target", "test", MULTISTAGE]).success();
    let out = &run.stdout;
    let built = built_part(out);
    for needed in ["stage 0 \"base\"", "stage 1 \"build\"", "stage 3 \"test\""] {
        assert!(built.contains(needed), "{needed} missing:\n{out}");
    }
    for skipped in ["\"docs\"", "\"final\""] {
        assert!(
            !built.contains(skipped),
            "{skipped} should be skipped:\n{out}"
        );
    }
    assert!(
        out.contains(
            "skipped (not needed for stage 3 \"test\"): stage 2 \"docs\", stage 4 \"final\""
        ),
        "{out}"
    );
    assert!(
        out.contains("needs stage 1 \"build\" (RUN --mount from, line 20)"),
        "{out}"
    );
    let waves: Vec<&str> = out.lines().filter(|l| l.starts_with("wave ")).collect();
    assert_eq!(
        waves,
        ["wave 1 of 3", "wave 2 of 3", "wave 3 of 3"],
        "{out}"
    );
}

#[test]
fn json_is_the_plan() {
    let run = rbuild(&["outline", "--json", "--target", "test", MULTISTAGE]).success();
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("valid JSON");
    assert_eq!(v["target"], 3);
    assert_eq!(v["waves"], serde_json::json!([[0], [1], [3]]));
    assert_eq!(v["skipped"], serde_json::json!([2, 4]));
    assert_eq!(v["stages"].as_array().map(Vec::len), Some(5));
    assert_eq!(
        v["stages"][1]["base"],
        serde_json::json!({"kind": "stage", "value": 0})
    );
    assert_eq!(
        v["stages"][0]["steps"][1]["text"],
        "ENV APP_VERSION=1.0 APP_HOME=/app"
    );
    assert_eq!(v["images"], serde_json::json!(["busybox:latest"]));
}

#[test]
fn unknown_target_lists_the_stage_names() {
    rbuild(&["outline", "--target", "tset", MULTISTAGE])
        .failure()
        .stderr_contains(
            "target stage \"tset\" could not be found; stages are: base, build, docs, test, final",
        )
        .stderr_contains("did you mean test?");
}

#[test]
fn errors_name_the_dockerfile_line() {
    let dir = TempDir::new("outline-typo");
    dir.write("Dockerfile", "FROM busybox AS a\nRUN true\nCOPPY x /y\n");
    rbuild_in(&dir.0, &["outline"], None)
        .failure()
        .stderr_contains("Dockerfile:3:1: unknown instruction: COPPY")
        .stderr_contains("did you mean COPY");
    dir.write(
        "Dockerfile",
        "FROM busybox AS a\nCOPY --from=b / /\nFROM busybox AS b\nCOPY --from=a / /\n",
    );
    rbuild_in(&dir.0, &["outline"], None)
        .failure()
        .stderr_contains("Dockerfile:2:1: circular dependency detected on stage: a (a → b → a)");
}

#[test]
fn dockerfile_defaults_to_the_context_and_f_overrides_it() {
    let dir = TempDir::new("outline-files");
    dir.write("ctx/Dockerfile", "FROM busybox AS in-context\n");
    dir.write("other.Dockerfile", "FROM busybox AS from-f\n");
    let run = rbuild_in(&dir.0, &["outline", "ctx"], None).success();
    assert!(run.stdout.contains("\"in-context\""), "{}", run.stdout);
    let run = rbuild_in(&dir.0, &["outline", "-f", "other.Dockerfile", "ctx"], None).success();
    assert!(run.stdout.contains("\"from-f\""), "{}", run.stdout);
    let run = rbuild_in(&dir.0.join("ctx"), &["outline"], None).success();
    assert!(run.stdout.contains("\"in-context\""), "{}", run.stdout);
}

/// Runs `rbuild ARGS` in `dir` with one extra environment variable.
fn rbuild_with_env(dir: &std::path::Path, args: &[&str], var: (&str, &str)) -> Run {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rbuild"))
        .args(args)
        .current_dir(dir)
        .env(var.0, var.1)
        .output()
        .expect("running rbuild");
    Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        status: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn build_arg_without_value_comes_from_the_environment() {
    let dir = TempDir::new("outline-env-arg");
    dir.write("Dockerfile", "FROM busybox\nARG V=default\nENV X=$V\n");
    let run =
        rbuild_with_env(&dir.0, &["outline", "--build-arg", "V"], ("V", "from-env")).success();
    assert!(run.stdout.contains("ENV X=from-env"), "{}", run.stdout);
    let run = rbuild_with_env(&dir.0, &["outline", "--build-arg", "V"], ("OTHER", "x")).success();
    assert!(
        run.stdout.contains("ENV X=default"),
        "unset is left out:\n{}",
        run.stdout
    );
    rbuild_in(&dir.0, &["outline", "--build-arg", "=x"], None)
        .failure()
        .stderr_contains("the name is empty");
}

#[test]
fn unconsumed_build_args_are_warned_about() {
    rbuild(&[
        "outline",
        "--build-arg",
        "NOPE=1",
        "--build-arg",
        "VERSION=3",
        MULTISTAGE,
    ])
    .success()
    .stdout_contains("warnings:\n  [Warning] One or more build-args [NOPE] were not consumed")
    .stdout_contains("ENV APP_VERSION=3 APP_HOME=/app");
}

#[test]
fn two_thousand_stages_finish_fast() {
    let dir = TempDir::new("outline-many");
    let mut df = String::from("FROM busybox AS s0\n");
    for i in 1..2000 {
        df.push_str(&format!(
            "FROM s{} AS s{i}\nENV N={i}\nCOPY --from=s{} /a /b\n",
            i - 1,
            i / 2
        ));
    }
    dir.write("Dockerfile", &df);
    let start = Instant::now();
    let run = rbuild_in(&dir.0, &["outline", "--json"], None).success();
    let took = start.elapsed();
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("valid JSON");
    assert_eq!(v["stages"].as_array().map(Vec::len), Some(2000));
    assert_eq!(v["waves"].as_array().map(Vec::len), Some(2000));
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let run = rbuild_in(&dir.0, &["outline", "--target", "s10"], None).success();
    assert!(
        run.stdout.contains("wave 11 of 11"),
        "{}",
        &run.stdout[..run.stdout.len().min(2000)]
    );
}
