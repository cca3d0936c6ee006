//! Variable scoping and expansion: global and stage ARGs, build arguments, predefined
//! and proxy arguments, ENV, inheritance between stages, errors and warnings.

use std::collections::BTreeMap;

use super::*;
use crate::syntax::parse;

/// Fixed platforms so expectations do not depend on the machine running the tests.
pub(super) fn opts(build_args: &[(&str, &str)]) -> PlanOptions {
    PlanOptions {
        build_args: build_args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        target: None,
        build_platform: Platform::new("linux", "amd64", ""),
        target_platform: Platform::new("linux", "arm64", ""),
        base_image_env: BTreeMap::new(),
        base_image_triggers: BTreeMap::new(),
    }
}

pub(super) fn try_plan(df: &str, opts: &PlanOptions) -> Result<Plan, String> {
    let tree = parse(df.as_bytes(), "Dockerfile").map_err(|e| e.to_string())?;
    plan(&tree, df, opts).map_err(|d| d.in_file("Dockerfile").to_string())
}

#[track_caller]
pub(super) fn plan_ok(df: &str, opts: &PlanOptions) -> Plan {
    try_plan(df, opts).unwrap_or_else(|e| panic!("planning failed:\n{e}\n--- Dockerfile ---\n{df}"))
}

#[track_caller]
pub(super) fn plan_err(df: &str, opts: &PlanOptions) -> String {
    match try_plan(df, opts) {
        Ok(p) => panic!("expected an error, got {p:#?}"),
        Err(e) => e,
    }
}

/// The expanded text of each step of stage `i`.
pub(super) fn texts(plan: &Plan, i: usize) -> Vec<String> {
    plan.stages[i]
        .steps
        .iter()
        .map(|s| s.text.clone())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn global_args_are_seen_only_by_from() {
    let p = plan_ok("ARG V=1\nFROM alpine:$V\nENV X=${V:-unset}\n", &opts(&[]));
    assert_eq!(p.stages[0].from, "FROM alpine:1");
    assert_eq!(p.stages[0].base, Base::Image("alpine:1".into()));
    assert_eq!(texts(&p, 0), ["ENV X=unset"]);
    assert_eq!(p.stages[0].used_args, set(&["V"]));
    assert_eq!(
        p.global_args,
        [ArgValue {
            name: "V".into(),
            value: Some("1".into())
        }]
    );
}

#[test]
fn redeclared_global_arg_takes_the_global_value() {
    let df = "ARG V=1\nFROM a\nARG V\nENV X=$V\n";
    assert_eq!(texts(&plan_ok(df, &opts(&[])), 0), ["ARG V=1", "ENV X=1"]);
    let p = plan_ok(df, &opts(&[("V", "2")]));
    assert_eq!(texts(&p, 0), ["ARG V=2", "ENV X=2"], "the build arg wins");
    assert_eq!(p.global_args[0].value.as_deref(), Some("2"));
}

#[test]
fn build_args_override_defaults_which_are_then_not_expanded() {
    let df = "FROM a\nARG V=${X:?boom}\nENV Y=$V\n";
    let p = plan_ok(df, &opts(&[("V", "given")]));
    assert_eq!(texts(&p, 0), ["ARG V=given", "ENV Y=given"]);
    let err = plan_err(df, &opts(&[]));
    assert!(err.starts_with("Dockerfile:2:"), "{err}");
    assert!(err.contains("X: boom"), "{err}");
}

#[test]
fn arg_without_default_or_build_arg_is_unset() {
    let p = plan_ok(
        "FROM a\nARG V\nENV X=${V-unset} Y=${V:-empty}\nRUN true\n",
        &opts(&[]),
    );
    assert_eq!(texts(&p, 0)[..2], ["ARG V", "ENV X=unset Y=empty"]);
    let run = &p.stages[0].steps[2];
    assert_eq!(
        run.args,
        [ArgValue {
            name: "V".into(),
            value: None
        }]
    );
}

#[test]
fn global_defaults_use_earlier_globals_and_predefined_args() {
    let df = "ARG A=x\nARG B=$A-y\nARG P=$TARGETARCH\nFROM img:$B-$P\n";
    let p = plan_ok(df, &opts(&[]));
    assert_eq!(p.stages[0].base, Base::Image("img:x-y-arm64".into()));
    let p = plan_ok(df, &opts(&[("A", "z")]));
    assert_eq!(p.stages[0].base, Base::Image("img:z-y-arm64".into()));
}

#[test]
fn predefined_args_need_arg_inside_a_stage() {
    let df = "FROM --platform=$BUILDPLATFORM img AS a\n\
              ENV T=${TARGETARCH:-none}\n\
              ARG TARGETARCH TARGETPLATFORM BUILDOS TARGETVARIANT\n\
              ENV T=$TARGETARCH P=$TARGETPLATFORM O=$BUILDOS V=$TARGETVARIANT\n";
    let p = plan_ok(df, &opts(&[]));
    assert_eq!(p.stages[0].platform.to_string(), "linux/amd64");
    assert_eq!(p.stages[0].from, "FROM --platform=linux/amd64 img AS a");
    assert_eq!(texts(&p, 0)[0], "ENV T=none");
    assert_eq!(
        texts(&p, 0)[2],
        "ENV T=arm64 P=linux/arm64 O=linux V=''",
        "TARGETVARIANT is set, to nothing"
    );
    assert!(p.stages[0].used_args.contains("BUILDPLATFORM"));
}

#[test]
fn target_stage_arg_names_the_target() {
    let df = "FROM a AS one\nARG TARGETSTAGE\nENV S=$TARGETSTAGE\nFROM a AS two\n";
    let mut o = opts(&[]);
    o.target = Some("ONE".into());
    assert_eq!(
        texts(&plan_ok(df, &o), 0)[1],
        "ENV S=ONE",
        "as given, like BuildKit"
    );
    let p = plan_ok("FROM a\nARG TARGETSTAGE\n", &opts(&[]));
    assert_eq!(texts(&p, 0), ["ARG TARGETSTAGE=default"]);
}

#[test]
fn proxy_args_need_no_declaration_and_count_as_consumed() {
    let p = plan_ok(
        "FROM a\nRUN wget x\n",
        &opts(&[("HTTP_PROXY", "h"), ("no_proxy", "n")]),
    );
    assert_eq!(p.proxy.get("http_proxy").map(String::as_str), Some("h"));
    assert_eq!(p.proxy.get("no_proxy").map(String::as_str), Some("n"));
    assert!(p.unused_build_args.is_empty());
    assert!(p.warnings.is_empty());
}

#[test]
fn child_stages_inherit_args_and_env() {
    let df = "FROM img AS a\nARG V=1\nENV E=2\nFROM a AS b\nENV X=$V-$E\nRUN true\n";
    let p = plan_ok(df, &opts(&[]));
    assert_eq!(texts(&p, 1)[0], "ENV X=1-2");
    assert!(
        p.stages[1].used_args.contains("V"),
        "BuildKit carries used args over"
    );
    assert_eq!(
        p.stages[1].steps[1].args,
        [ArgValue {
            name: "V".into(),
            value: Some("1".into())
        }]
    );
    // A sibling based on the image, not the stage, sees none of it.
    let p = plan_ok(
        "FROM img AS a\nARG V=1\nFROM img\nENV X=${V:-no}\n",
        &opts(&[]),
    );
    assert_eq!(texts(&p, 1), ["ENV X=no"]);
}

#[test]
fn env_accumulates_and_the_last_setting_wins() {
    let df = "FROM a\nENV A=1\nENV A=2 B=$A\nENV X=e\nARG X=a\nENV Y=$X\nARG Z=z\nENV Z=env\nLABEL l=$Z\n";
    let p = plan_ok(df, &opts(&[]));
    assert_eq!(
        texts(&p, 0),
        [
            "ENV A=1",
            "ENV A=2 B=1",
            "ENV X=e",
            "ARG X=a",
            "ENV Y=a",
            "ARG Z=z",
            "ENV Z=env",
            "LABEL l=env"
        ]
    );
}

#[test]
fn run_commands_stay_as_written_but_mounts_expand() {
    let df = "FROM a\nARG T=/cache\nRUN --mount=type=cache,target=$T echo $T\nCMD echo $T\n";
    let p = plan_ok(df, &opts(&[]));
    let run = &p.stages[0].steps[1];
    assert_eq!(run.text, "RUN --mount=type=cache,target=/cache echo $T");
    assert_eq!(run.used, set(&["T"]));
    assert_eq!(texts(&p, 0)[2], "CMD echo $T");
}

#[test]
fn each_step_records_the_variables_it_read() {
    let df =
        "FROM a\nENV SRC=app DST=/opt\nCOPY $SRC ${DST}/ \nWORKDIR $DST\nUSER ${NOBODY:-1000}\n";
    let p = plan_ok(df, &opts(&[]));
    let steps = &p.stages[0].steps;
    assert_eq!(steps[1].text, "COPY app /opt/");
    assert_eq!(steps[1].used, set(&["DST", "SRC"]));
    assert_eq!(steps[2].used, set(&["DST"]));
    assert_eq!(steps[3].text, "USER 1000");
    assert!(steps[3].used.is_empty(), "unset variables are not 'used'");
    assert!(steps[1].args.is_empty(), "only RUN carries args");
}

#[test]
fn unconsumed_build_args_are_reported() {
    let df = "ARG G\nFROM a AS x\nARG X\nFROM a AS y\nARG Y\n";
    let p = plan_ok(
        df,
        &opts(&[("G", "1"), ("Y", "1"), ("NOPE", "1"), ("X", "1")]),
    );
    assert_eq!(
        p.unused_build_args,
        ["NOPE", "X"],
        "X is declared only in a skipped stage"
    );
    assert_eq!(
        p.warnings.last().map(|w| w.message.as_str()),
        Some("[Warning] One or more build-args [NOPE X] were not consumed")
    );
}

#[test]
fn base_image_env_seeds_expansion_and_path_defaults() {
    let p = plan_ok("FROM img\nENV P=$PATH:/x\n", &opts(&[]));
    assert_eq!(texts(&p, 0), [format!("ENV P={}:/x", build::DEFAULT_PATH)]);
    let p = plan_ok("FROM scratch\nENV P=$PATH\n", &opts(&[]));
    assert_eq!(texts(&p, 0), [format!("ENV P={}", build::DEFAULT_PATH)]);
    let mut o = opts(&[]);
    o.base_image_env.insert(
        "img".into(),
        vec![("PATH".into(), "/bin".into()), ("HOME".into(), "/h".into())],
    );
    o.target = None;
    let p = plan_ok("FROM img\nENV P=$PATH:/x H=$HOME\n", &o);
    assert_eq!(texts(&p, 0), ["ENV P=/bin:/x H=/h"]);
}

#[test]
fn heredoc_bodies_expand_with_quotes_kept() {
    let df = "FROM a\nARG V=1\nCOPY <<EOF <<'RAW' /dst/\n\"$V\"\nEOF\n$V\nRAW\n";
    let p = plan_ok(df, &opts(&[]));
    let Instruction::Copy(c) = &p.stages[0].steps[1].instruction else {
        panic!("not a COPY")
    };
    assert_eq!(c.heredocs[0].content, "\"1\"\n");
    assert_eq!(c.heredocs[1].content, "$V\n", "quoted delimiter: literal");
}

#[test]
fn expansion_errors_point_into_the_word() {
    let err = plan_err("FROM a\nENV X=${NOPE:?required}\n", &opts(&[]));
    assert!(err.starts_with("Dockerfile:2:7: NOPE: required"), "{err}");
    let err = plan_err("FROM a\nARG M=644\nCOPY --chmod=9$M a /b\n", &opts(&[]));
    assert!(err.starts_with("Dockerfile:3:1:"), "{err}");
}

#[test]
fn stages_not_needed_are_left_unexpanded() {
    let df = "FROM a AS x\nENV Y=${Q:?boom}\nFROM b\n";
    let p = plan_ok(df, &opts(&[]));
    assert!(!p.stages[0].needed);
    assert_eq!(texts(&p, 0), ["ENV Y='${Q:?boom}'"]);
    assert_eq!(p.skipped, [0]);
}

#[test]
fn every_from_line_is_expanded_even_when_skipped() {
    let err = plan_err("ARG B\nFROM ${B:?needed} AS x\nFROM b\n", &opts(&[]));
    assert!(err.starts_with("Dockerfile:2:6: B: needed"), "{err}");
    let err = plan_err("ARG B\nFROM $B\n", &opts(&[]));
    assert!(
        err.starts_with("Dockerfile:2:1: base name ($B) should not be blank"),
        "{err}"
    );
}

#[test]
fn platform_errors_suggest_the_predefined_name() {
    let err = plan_err("FROM --platform=$TARGETPLATFROM img\n", &opts(&[]));
    assert!(
        err.starts_with("Dockerfile:1:1: empty platform value from expression $TARGETPLATFROM"),
        "{err}"
    );
    assert!(err.contains("did you mean TARGETPLATFORM?"), "{err}");
    let err = plan_err("FROM --platform=linux/amd64/v1/x img\n", &opts(&[]));
    assert!(
        err.contains("failed to parse platform linux/amd64/v1/x"),
        "{err}"
    );
}

#[test]
fn undeclared_from_args_are_warned_about() {
    let p = plan_ok("ARG VERSION=1\nFROM img:${VERSOIN:-x}\n", &opts(&[]));
    assert_eq!(p.warnings.len(), 1);
    assert_eq!(p.warnings[0].line, Some(2));
    assert_eq!(
        p.warnings[0].message,
        "FROM argument 'VERSOIN' is not declared (did you mean VERSION?)"
    );
}

#[test]
fn platforms_come_from_base_stage_then_flag_then_target() {
    let df = "FROM --platform=linux/arm/v7 img AS a\n\
              FROM a AS b\n\
              FROM --platform=linux/s390x a AS c\n\
              FROM img\n\
              COPY --from=b / /\n\
              COPY --from=c / /\n";
    let p = plan_ok(df, &opts(&[]));
    let got: Vec<String> = p.stages.iter().map(|s| s.platform.to_string()).collect();
    assert_eq!(
        got,
        [
            "linux/arm/v7",
            "linux/arm/v7",
            "linux/arm/v7",
            "linux/arm64"
        ],
        "a stage keeps its base stage's platform"
    );
}

#[test]
fn onbuild_triggers_are_neither_expanded_nor_followed() {
    let df = "FROM a AS x\nFROM a\nARG V=1\nONBUILD COPY --from=x $V /\n";
    let p = plan_ok(df, &opts(&[]));
    assert_eq!(texts(&p, 1)[1], "ONBUILD COPY --from=x $V /");
    assert!(p.stages[1].deps.is_empty());
    assert_eq!(p.skipped, [0]);
}

#[test]
fn plan_serializes_to_json() {
    let p = plan_ok("FROM a AS x\nFROM x\nCOPY --from=img:1 / /\n", &opts(&[]));
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(
        v["stages"][1]["base"],
        serde_json::json!({"kind": "stage", "value": 0})
    );
    assert_eq!(v["stages"][1]["platform"], "linux/arm64");
    assert_eq!(v["stages"][1]["deps"][1]["reason"], "copy_from");
    assert_eq!(v["images"], serde_json::json!(["a", "img:1"]));
    assert_eq!(v["waves"], serde_json::json!([[0], [1]]));
}
