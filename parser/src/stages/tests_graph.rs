//! The graph: dependencies of each kind, targets and pruning, build order, and every
//! structural error.

use std::time::{Duration, Instant};

use super::tests::{opts, plan_err, plan_ok};
use super::*;

fn dep(reason: Reason, line: usize, written: &str, on: DependsOn) -> Dependency {
    Dependency {
        reason,
        line,
        written: written.to_string(),
        on,
    }
}

fn with_target(target: &str) -> PlanOptions {
    let mut o = opts(&[]);
    o.target = Some(target.to_string());
    o
}

/// The shape of `fixtures/multistage`: base ← build ← test, docs from the image,
/// final from base copying from build and docs.
const MULTI: &str = "ARG BASE=busybox:latest
FROM ${BASE} AS base
FROM base AS build
RUN --mount=type=cache,target=/cache make
FROM ${BASE} AS docs
FROM base AS test
RUN --mount=type=bind,from=build,source=/o,target=/t check
FROM base AS final
COPY --from=build /o ./o
COPY --from=docs /d /d
";

#[test]
fn every_kind_of_dependency() {
    let df = "FROM img AS First\n\
              FROM first AS second\n\
              COPY --from=FIRST /a /a\n\
              COPY --from=0 /b /b\n\
              COPY --from=alpine:3 /c /c\n\
              COPY --from=scratch /d /d\n\
              FROM img AS third\n\
              RUN --mount=from=second,target=/s --mount=from=golang,target=/g --mount=from=0,target=/z --mount=type=cache,target=/c true\n";
    let p = plan_ok(df, &opts(&[]));
    let stage = |i: usize| DependsOn::Stage(i);
    let image = |s: &str| DependsOn::Image(s.to_string());
    assert_eq!(p.stages[0].name.as_deref(), Some("first"));
    assert_eq!(p.stages[1].base, Base::Stage(0));
    assert_eq!(
        p.stages[1].deps,
        [
            dep(Reason::From, 2, "first", stage(0)),
            dep(Reason::CopyFrom, 3, "FIRST", stage(0)),
            dep(Reason::CopyFrom, 4, "0", stage(0)),
            dep(Reason::CopyFrom, 5, "alpine:3", image("alpine:3")),
        ],
        "scratch needs nothing"
    );
    assert_eq!(
        p.stages[2].deps,
        [
            dep(Reason::RunMount, 8, "second", stage(1)),
            dep(Reason::RunMount, 8, "golang", image("golang")),
            dep(Reason::RunMount, 8, "0", image("0")),
        ],
        "a mount's from= is never an index; a cache mount without from= needs nothing"
    );
    assert_eq!(p.waves, [vec![0], vec![1], vec![2]]);
    assert_eq!(p.images, ["img", "alpine:3", "golang", "0"]);
}

#[test]
fn from_only_sees_earlier_stages_by_exact_name() {
    let p = plan_ok(
        "FROM b AS a\nFROM img AS b\nFROM A\nFROM scratch\n",
        &opts(&[]),
    );
    assert_eq!(
        p.stages[0].base,
        Base::Image("b".into()),
        "b is declared later"
    );
    assert_eq!(
        p.stages[2].base,
        Base::Image("A".into()),
        "names match exactly"
    );
    assert_eq!(p.stages[3].base, Base::Scratch);
    assert!(p.stages[0].deps.is_empty());
    let p = plan_ok("FROM img\nFROM 0\n", &opts(&[]));
    assert_eq!(
        p.stages[1].base,
        Base::Image("0".into()),
        "FROM takes no index"
    );
}

#[test]
fn copy_from_index_must_exist() {
    let err = plan_err("FROM a\nFROM b\nCOPY --from=5 / /\n", &opts(&[]));
    assert!(
        err.starts_with("Dockerfile:3:1: invalid stage index 5"),
        "{err}"
    );
    assert!(err.contains("this Dockerfile has 2"), "{err}");
    let err = plan_err("FROM a\nCOPY --from=-1 / /\n", &opts(&[]));
    assert!(err.contains("invalid stage index -1"), "{err}");
    let p = plan_ok("FROM a\nFROM b\nCOPY --from=+0 / /\n", &opts(&[]));
    assert_eq!(
        p.stages[1].deps[0].on,
        DependsOn::Stage(0),
        "Go's Atoi takes a sign"
    );
}

#[test]
fn later_stages_cannot_be_used_when_built() {
    let df = "FROM img AS a\nCOPY --from=b / /\nFROM img AS b\nFROM img AS c\n";
    let err = plan_err(df, &with_target("a"));
    assert!(
        err.starts_with(
            "Dockerfile:2:1: cannot copy from stage \"b\", it needs to be defined before current stage \"a\""
        ),
        "{err}"
    );
    let p = plan_ok(df, &opts(&[]));
    assert_eq!(p.skipped, [0, 1], "fine while nothing needs stage a");
    let err = plan_err(
        "FROM img AS a\nRUN --mount=from=later,target=/l true\nFROM img AS later\n",
        &with_target("a"),
    );
    assert!(
        err.contains("cannot mount from stage \"later\" to \"/l\", stage needs to be defined before current command"),
        "{err}"
    );
    let err = plan_err(
        "FROM img AS a\nCOPY --from=1 / /\nFROM img\n",
        &with_target("a"),
    );
    assert!(err.contains("cannot copy from stage \"1\""), "{err}");
}

#[test]
fn cycles_are_reported_with_their_path() {
    let df = "FROM img AS a\nCOPY --from=b / /\nFROM img AS b\nCOPY --from=a / /\nFROM img\n";
    let err = plan_err(df, &opts(&[]));
    assert!(
        err.starts_with("Dockerfile:2:1: circular dependency detected on stage: a (a → b → a)"),
        "{err}"
    );
    let err = plan_err("FROM img\nCOPY --from=0 / /\n", &opts(&[]));
    assert!(
        err.contains("circular dependency detected on stage: stage-0 (stage-0 → stage-0)"),
        "{err}"
    );
    let err = plan_err(
        "FROM img AS a\nRUN --mount=from=c,target=/x true\nFROM a AS b\nFROM b AS c\n",
        &opts(&[]),
    );
    assert!(err.contains("(a → c → b → a)"), "{err}");
}

#[test]
fn default_target_is_the_last_stage_and_waves_run_independent_stages_together() {
    let p = plan_ok(MULTI, &opts(&[]));
    assert_eq!(p.target, 4);
    assert_eq!(p.waves, [vec![0, 2], vec![1], vec![4]]);
    assert_eq!(p.skipped, [3]);
    assert!(
        p.stages
            .iter()
            .all(|s| s.needed != p.skipped.contains(&s.index))
    );
    assert_eq!(p.images, ["busybox:latest"]);
}

#[test]
fn target_prunes_to_what_it_needs() {
    let p = plan_ok(MULTI, &with_target("TEST"));
    assert_eq!(p.target, 3);
    assert_eq!(p.waves, [vec![0], vec![1], vec![3]]);
    assert_eq!(p.skipped, [2, 4]);
    assert!(p.stages[4].steps.iter().all(|s| s.used.is_empty()));
    let p = plan_ok(MULTI, &with_target("docs"));
    assert_eq!(p.waves, [vec![2]]);
}

#[test]
fn unknown_target_lists_the_stages() {
    let err = plan_err(MULTI, &with_target("tset"));
    assert_eq!(
        err,
        "Dockerfile: target stage \"tset\" could not be found; stages are: base, build, docs, test, final\n help: did you mean test?"
    );
    let err = plan_err("FROM a\n", &with_target("x"));
    assert!(err.contains("no stage has a name"), "{err}");
}

#[test]
fn duplicate_and_reserved_names_are_refused() {
    let err = plan_err("FROM a AS x\nFROM b AS X\n", &opts(&[]));
    assert!(
        err.starts_with("Dockerfile:2:1: Duplicate stage name \"x\", stage names should be unique"),
        "{err}"
    );
    assert!(err.contains("starts on line 1"), "{err}");
    for name in ["scratch", "context", "Scratch"] {
        let err = plan_err(&format!("FROM a AS {name}\n"), &opts(&[]));
        assert!(
            err.contains(&format!(
                "Stage name should not use the same name as reserved stage \"{}\"",
                name.to_lowercase()
            )),
            "{err}"
        );
    }
}

#[test]
fn missing_or_late_from() {
    let err = plan_err("ARG A=1\n", &opts(&[]));
    assert!(
        err.starts_with("Dockerfile: dockerfile contains no stages to build"),
        "{err}"
    );
    let err = plan_err("ARG A=1\n# c\nRUN echo\nFROM a\n", &opts(&[]));
    assert!(
        err.starts_with("Dockerfile:3:1: no build stage in current context"),
        "{err}"
    );
    assert!(
        err.contains("only ARG may come before the first FROM"),
        "{err}"
    );
}

#[test]
fn typing_errors_come_through_located() {
    let err = plan_err("FROM a\nCOPPY x /y\n", &opts(&[]));
    assert!(
        err.starts_with("Dockerfile:2:1: unknown instruction: COPPY"),
        "{err}"
    );
}

/// A generated Dockerfile: a chain of `n` stages, each based on the one before, copying
/// from the one before that, setting an ENV, with a side stage every tenth.
fn many_stages(n: usize) -> String {
    let mut df = String::from("ARG BASE=busybox\nFROM $BASE AS s0\n");
    for i in 1..n {
        df.push_str(&format!("FROM s{} AS s{i}\nENV V{i}=$PATH\n", i - 1));
        if i >= 2 {
            df.push_str(&format!("COPY --from=s{} /x /x{i}\n", i - 2));
        }
        if i % 10 == 0 {
            df.push_str(&format!("RUN --mount=from=s{},target=/m true\n", i / 2));
        }
    }
    df
}

#[test]
fn two_thousand_stages_plan_quickly() {
    let df = many_stages(2000);
    let start = Instant::now();
    let p = plan_ok(&df, &opts(&[]));
    let took = start.elapsed();
    assert_eq!(p.stages.len(), 2000);
    assert_eq!(p.waves.len(), 2000, "a chain: one stage per wave");
    assert!(p.skipped.is_empty());
    assert_eq!(
        p.stages[1999].steps[0].text,
        format!("ENV V1999={}", build::DEFAULT_PATH)
    );
    // About 50 ms unoptimised; generous for a loaded shared machine.
    assert!(took < Duration::from_secs(3), "took {took:?}");

    // Wide rather than deep: 2,000 independent stages and one that needs them all.
    let mut wide = String::new();
    for i in 0..2000 {
        wide.push_str(&format!("FROM img AS w{i}\n"));
    }
    wide.push_str("FROM img\n");
    for i in 0..2000 {
        wide.push_str(&format!("COPY --from=w{i} / /\n"));
    }
    let start = Instant::now();
    let p = plan_ok(&wide, &opts(&[]));
    assert!(start.elapsed() < Duration::from_secs(3));
    assert_eq!(p.waves.len(), 2);
    assert_eq!(p.waves[0].len(), 2000);
}
