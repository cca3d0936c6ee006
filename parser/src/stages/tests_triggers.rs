//! ONBUILD triggers of base images and base stages: where they go in the stage, what
//! they expand with, the edges they add, and their errors.

use super::tests::{opts, plan_err, plan_ok, texts};
use super::*;

fn with_triggers(image: &str, triggers: &[&str]) -> PlanOptions {
    let mut o = opts(&[]);
    o.base_image_triggers.insert(
        image.to_string(),
        triggers.iter().map(|t| t.to_string()).collect(),
    );
    o
}

#[test]
fn image_triggers_run_first_at_the_from_line() {
    let o = with_triggers("base", &["ENV A=1", "COPY . /app", "RUN echo $A"]);
    let p = plan_ok("FROM base\nENV B=2\n", &o);
    assert_eq!(
        texts(&p, 0),
        ["ENV A=1", "COPY . /app", "RUN echo $A", "ENV B=2"]
    );
    let s = &p.stages[0].steps;
    assert!(s[..3].iter().all(|s| s.start_line == 1 && s.end_line == 1));
    assert_eq!(
        s[1].trigger,
        Some(Trigger {
            expression: "COPY . /app".into(),
            of: "image base".into()
        })
    );
    assert_eq!(s[3].trigger, None);
    assert_eq!(s[3].start_line, 2);
}

#[test]
fn triggers_expand_with_the_stage_variables_and_args() {
    let o = with_triggers("base", &["ARG V", "ENV W=${V}-x", "COPY ${W} /"]);
    let mut o2 = o.clone();
    o2.build_args.insert("V".into(), "7".into());
    let p = plan_ok("FROM base\n", &o2);
    assert_eq!(texts(&p, 0), ["ARG V=7", "ENV W=7-x", "COPY 7-x /"]);
    assert!(
        p.unused_build_args.is_empty(),
        "the trigger's ARG consumed V"
    );
    // Only the image the stage uses contributes triggers.
    let p = plan_ok("FROM other\n", &o);
    assert!(p.stages[0].steps.is_empty());
}

#[test]
fn trigger_copy_from_adds_edges_and_images() {
    let o = with_triggers(
        "base",
        &["COPY --from=build /o /o", "COPY --from=tools:1 /t /t"],
    );
    let p = plan_ok(
        "FROM scratch AS build\nFROM scratch AS unused\nFROM base\n",
        &o,
    );
    assert_eq!(p.skipped, [1]);
    assert_eq!(p.waves, [vec![0], vec![2]]);
    assert_eq!(p.images, ["base", "tools:1"]);
    let deps: Vec<(Reason, usize, DependsOn)> = p.stages[2]
        .deps
        .iter()
        .map(|d| (d.reason, d.line, d.on.clone()))
        .collect();
    assert_eq!(
        deps,
        [
            (Reason::CopyFrom, 3, DependsOn::Stage(0)),
            (Reason::CopyFrom, 3, DependsOn::Image("tools:1".into())),
        ]
    );
}

#[test]
fn a_stage_base_passes_on_its_own_onbuild_instructions_only() {
    let o = with_triggers("img", &["LABEL from=img"]);
    let df = "FROM img AS base\nONBUILD RUN echo child\nONBUILD ENV X=1\n\
              FROM base AS child\nRUN true\n\
              FROM child\n";
    let p = plan_ok(df, &o);
    assert_eq!(
        texts(&p, 0),
        [
            "LABEL from=img",
            "ONBUILD RUN echo child",
            "ONBUILD ENV X=1"
        ],
        "the image's triggers run in the stage on it; its own ONBUILDs do not"
    );
    assert_eq!(texts(&p, 1), ["RUN echo child", "ENV X=1", "RUN true"]);
    assert_eq!(
        p.stages[1].steps[0].trigger.as_ref().unwrap().of,
        "stage base"
    );
    assert_eq!(p.stages[1].steps[0].start_line, 4);
    assert!(texts(&p, 2).is_empty(), "triggers are not inherited twice");
}

#[test]
fn bad_triggers_fail_at_the_from_line_when_needed() {
    let o = with_triggers("base", &["BOGUS x"]);
    let e = plan_err("FROM scratch\nFROM base\n", &o);
    assert!(
        e.starts_with(
            "Dockerfile:2:1: ONBUILD trigger \"BOGUS x\" of image base: unknown instruction: BOGUS"
        ),
        "{e}"
    );
    assert!(e.contains(" 2 | FROM base"), "{e}");
    // A stage nobody needs does not fail the build.
    let mut o = o;
    o.target = Some("ok".into());
    plan_ok("FROM scratch AS ok\nFROM base\n", &o);

    let e = plan_err("FROM base\n", &with_triggers("base", &["FROM x"]));
    assert!(
        e.contains("FROM isn't allowed as an ONBUILD trigger"),
        "{e}"
    );
    let mut o = with_triggers("base", &["COPY --from=later / /"]);
    o.target = Some("first".into());
    let e = plan_err("FROM base AS first\nFROM scratch AS later\n", &o);
    assert!(e.starts_with("Dockerfile:1"), "{e}");
    let e = plan_err(
        "FROM base\n",
        &with_triggers("base", &["ENV X=${Y:?unset}"]),
    );
    assert!(
        e.starts_with("Dockerfile:1:1: ONBUILD trigger \"ENV X=${Y:?unset}\" of image base:"),
        "{e}"
    );
}
