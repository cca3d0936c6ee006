//! ONBUILD triggers of base images and stages, `--platform` and the automatic platform
//! build arguments, and `--pull` (refused until there is a registry client).

use crate::build::{config, ctx_arg, outcomes, setup, upper};
use crate::imagetar::{RawTar, sha256_hex};
use crate::util::{TempDir, TestStore};

/// The machine's platform as Go names it, and one that is not.
fn native_and_foreign() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "x86_64" => ("linux/amd64", "linux/arm64"),
        "aarch64" => ("linux/arm64", "linux/amd64"),
        other => panic!("these tests know amd64 and arm64 hosts, not {other}"),
    }
}

/// Builds `dockerfile` in a fresh context holding `files`, tagged `tag`.
fn build(store: &TestStore, tag: &str, dockerfile: &str, files: &[(&str, &str)]) -> String {
    let ctx = TempDir::new(&format!("onbuild-{tag}"));
    ctx.write("Dockerfile", dockerfile);
    for (name, content) in files {
        ctx.write(name, content);
    }
    store
        .run(&["build", "--progress", "plain", "-t", tag, ctx_arg(&ctx)])
        .success()
        .stderr
}

fn read(store: &TestStore, image: &str, path: &str) -> String {
    std::fs::read_to_string(upper(store, image).join(path))
        .unwrap_or_else(|e| panic!("{path} in {image}'s last layer: {e}"))
}

const BASE: &str = "FROM busybox
ONBUILD COPY . /app
ONBUILD RUN echo hi > /app/trig
ONBUILD ENV TRIGGERED=yes
";

#[test]
fn triggers_run_in_the_child_only() {
    let (store, _) = setup("onbuild-child");
    let out = build(&store, "obbase", BASE, &[("base-only.txt", "x")]);
    assert!(!out.contains("load build context"), "nothing copied: {out}");
    let base = config(&store, "obbase");
    assert!(
        !base["history"].to_string().contains("# buildkit"),
        "the base ran no trigger: {}",
        base["history"]
    );
    assert_eq!(
        base["config"]["OnBuild"],
        serde_json::json!([
            "COPY . /app",
            "RUN echo hi > /app/trig",
            "ENV TRIGGERED=yes"
        ])
    );
    let shown = store
        .run(&["inspect", "-f", "{{.Config.OnBuild}}", "obbase"])
        .success()
        .stdout;
    assert!(shown.contains("RUN echo hi > /app/trig"), "{shown}");

    let child = "FROM obbase\nRUN cat /app/hello.txt /app/trig > /out; echo $TRIGGERED >> /out\nONBUILD RUN echo own > /own\n";
    let out = build(&store, "obchild", child, &[("hello.txt", "hello\n")]);
    for line in [
        "[2/6] ONBUILD COPY . /app",
        "[3/6] ONBUILD RUN echo hi > /app/trig",
        "[4/6] ONBUILD ENV TRIGGERED=yes",
        "[5/6] RUN cat /app/hello.txt",
    ] {
        assert!(out.contains(line), "no {line:?} in\n{out}");
    }
    assert_eq!(read(&store, "obchild", "out"), "hello\nhi\nyes\n");
    let c = config(&store, "obchild");
    assert_eq!(
        c["config"]["OnBuild"],
        serde_json::json!(["RUN echo own > /own"]),
        "the base's triggers are used up; only the child's own remain"
    );
    let history: Vec<&str> = c["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["created_by"].as_str().unwrap_or_default())
        .collect();
    let n = history.len();
    assert_eq!(
        history[n - 5..n - 2],
        [
            "COPY . /app # buildkit",
            "RUN /bin/sh -c echo hi > /app/trig # buildkit",
            "ENV TRIGGERED=yes"
        ],
        "trigger steps are recorded like instructions: {history:?}"
    );

    // The grandchild runs the child's trigger, not the base's again.
    let out = build(&store, "obgrand", "FROM obchild\n", &[]);
    assert!(out.contains("[2/2] ONBUILD RUN echo own > /own"), "{out}");
    assert!(!out.contains("ONBUILD COPY"), "{out}");
    assert_eq!(read(&store, "obgrand", "own"), "own\n");
    assert!(config(&store, "obgrand")["config"]["OnBuild"].is_null());
}

#[test]
fn trigger_steps_are_cached_like_instructions() {
    let (store, ctx) = setup("onbuild-cache");
    build(&store, "obbase", BASE, &[]);
    ctx.write("Dockerfile", "FROM obbase\n");
    ctx.write("hello.txt", "one\n");
    let args = ["build", "--progress", "plain", "-t", "c", ctx_arg(&ctx)];
    let first = store.run(&args).success().stderr;
    assert!(
        outcomes(&first)
            .iter()
            .all(|(_, o)| o.starts_with("cache miss")),
        "{first}"
    );
    let id = store
        .run(&["inspect", "-f", "{{.Id}}", "c"])
        .success()
        .stdout;

    let again = store.run(&args).success().stderr;
    let got = outcomes(&again);
    assert_eq!(got.len(), 3, "{again}");
    assert!(
        got.iter()
            .all(|(s, o)| s.starts_with("ONBUILD ") && o == "CACHED"),
        "{got:?}"
    );
    let id2 = store
        .run(&["inspect", "-f", "{{.Id}}", "c"])
        .success()
        .stdout;
    assert_eq!(id, id2);

    ctx.write("hello.txt", "two\n");
    let changed = store.run(&args).success().stderr;
    let got = outcomes(&changed);
    assert_eq!(got[0].0, "ONBUILD COPY . /app");
    assert!(got[0].1.starts_with("cache miss"), "{got:?}");
}

#[test]
fn triggers_copy_from_stages_and_come_from_stages() {
    let (store, _) = setup("onbuild-from");
    build(
        &store,
        "obfrom",
        "FROM busybox\nONBUILD COPY --from=maker /made /made\n\
         ONBUILD COPY --from=Other /other /other\n",
        &[],
    );
    // `maker` and `other` are needed only through the base image's triggers, which
    // both sit on the FROM line.
    let df = "FROM busybox AS maker\nRUN echo made > /made\n\
              FROM busybox AS other\nRUN echo other > /other\n\
              FROM obfrom\nRUN cat /made /other > /seen\n";
    let out = build(&store, "obuser", df, &[]);
    assert!(
        out.contains("[stage-2 2/4] ONBUILD COPY --from=maker /made /made"),
        "{out}"
    );
    assert_eq!(read(&store, "obuser", "seen"), "made\nother\n");

    // An earlier stage's ONBUILD instructions run in the stages built on it.
    let df = "FROM busybox AS base\nONBUILD RUN echo stage > /s\n\
              FROM base\nRUN cat /s > /t\n";
    let out = build(&store, "obstage", df, &[]);
    assert!(out.contains("ONBUILD RUN echo stage > /s"), "{out}");
    assert_eq!(read(&store, "obstage", "t"), "stage\n");
}

#[test]
fn a_failing_trigger_names_itself_and_the_from_line() {
    let (store, ctx) = setup("onbuild-bad");
    build(
        &store,
        "obbad",
        "FROM busybox\nONBUILD COPY missing.txt /\n",
        &[],
    );
    ctx.write("Dockerfile", "ARG X=1\nFROM obbad\nRUN true\n");
    let run = store.run(&["build", "-t", "c", ctx_arg(&ctx)]).failure();
    assert!(
        run.stderr
            .contains("Dockerfile:2: ONBUILD trigger \"COPY missing.txt /\" of image obbad:"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("missing.txt"), "{}", run.stderr);

    build(&store, "obexit", "FROM busybox\nONBUILD RUN exit 3\n", &[]);
    ctx.write("Dockerfile", "FROM obexit\n");
    let run = store.run(&["build", "-t", "c", ctx_arg(&ctx)]).failure();
    assert!(
        run.stderr
            .contains("Dockerfile:1: ONBUILD trigger \"RUN exit 3\" of image obexit:"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("exit code: 3"), "{}", run.stderr);

    // An image only a trigger names is looked up too, and missing it says so.
    build(
        &store,
        "obnope",
        "FROM busybox\nONBUILD COPY --from=nope:1 /x /x\n",
        &[],
    );
    ctx.write("Dockerfile", "FROM obnope\n");
    let run = store.run(&["build", "-t", "c", ctx_arg(&ctx)]).failure();
    // Not in the store, so it is pulled, which fails (no docker.io here, or no such
    // image there).
    assert!(
        run.stderr.contains(
            "Dockerfile:1: image not found locally: nope:1, and pulling it failed: manifest docker.io/library/nope:1: "
        ) && run
            .stderr
            .contains("; an ONBUILD trigger of image obnope uses it"),
        "{}",
        run.stderr
    );
}

#[test]
fn platform_args_are_the_native_platform() {
    let (store, ctx) = setup("onbuild-platform");
    let (native, foreign) = native_and_foreign();
    let (os, arch) = native.split_once('/').unwrap();
    ctx.write(
        "Dockerfile",
        "ARG TARGETPLATFORM\n\
         FROM --platform=$BUILDPLATFORM busybox AS b\n\
         ARG TARGETARCH TARGETOS TARGETVARIANT TARGETPLATFORM\n\
         ARG BUILDPLATFORM BUILDOS BUILDARCH BUILDVARIANT\n\
         RUN echo \"$TARGETPLATFORM $TARGETOS $TARGETARCH v=$TARGETVARIANT\" > /arch; \
             echo \"$BUILDPLATFORM $BUILDOS $BUILDARCH v=$BUILDVARIANT\" >> /arch\n\
         FROM --platform=${TARGETPLATFORM} busybox\n\
         COPY --from=b /arch /arch\n",
    );
    let spelt = if arch == "amd64" { "x86_64" } else { "aarch64" };
    for flag in [
        native.to_string(),
        format!("linux/{spelt}"),
        arch.to_string(),
    ] {
        store
            .run(&["build", "--platform", &flag, "-t", "p", ctx_arg(&ctx)])
            .success();
        let line = format!("{native} {os} {arch} v=");
        assert_eq!(
            read(&store, "p", "arch"),
            format!("{line}\n{line}\n"),
            "--platform {flag}"
        );
    }
    let c = config(&store, "p");
    assert_eq!(
        (c["os"].as_str(), c["architecture"].as_str()),
        (Some(os), Some(arch))
    );

    let run = store
        .run(&["build", "--platform", foreign, "-t", "p", ctx_arg(&ctx)])
        .failure();
    assert!(
        run.stderr.contains(&format!(
            "--platform {foreign}: rbuild builds for the native platform ({native}) only"
        )),
        "{}",
        run.stderr
    );
    let run = store
        .run(&["-t", "p", "--platform=bogus", ctx_arg(&ctx)])
        .failure();
    assert!(run.stderr.contains("bogus"), "{}", run.stderr);

    ctx.write(
        "Dockerfile",
        &format!("FROM busybox\nFROM --platform={foreign} busybox\nRUN true\n"),
    );
    let run = store.run(&["build", "-t", "p", ctx_arg(&ctx)]).failure();
    assert!(
        run.stderr.contains(&format!(
            "Dockerfile:2: FROM --platform={foreign} busybox: the stage is for {foreign}"
        )),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("RUN true"),
        "nothing ran: {}",
        run.stderr
    );
}

/// A one-layer image whose config says it is for `platform`, loaded as `tag`.
fn load_foreign(store: &TestStore, tag: &str, platform: &str) {
    let (os, arch) = platform.split_once('/').unwrap();
    let mut layer = RawTar::new();
    layer.file("hello", b"hi\n");
    let layer = layer.finish();
    let diff = sha256_hex(&layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch,
        "os": os,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff}")]},
    }))
    .unwrap();
    let config_hex = sha256_hex(&config);
    let manifest = serde_json::json!([{
        "Config": format!("blobs/sha256/{config_hex}"),
        "RepoTags": [tag],
        "Layers": [format!("blobs/sha256/{diff}")],
    }]);
    let mut t = RawTar::new();
    t.file(&format!("blobs/sha256/{config_hex}"), &config);
    t.file(&format!("blobs/sha256/{diff}"), &layer);
    t.file("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    store.run_stdin(&["load"], Some(&t.finish())).success();
}

#[test]
fn a_base_image_for_another_platform_is_refused() {
    let (store, ctx) = setup("onbuild-foreign");
    let (native, foreign) = native_and_foreign();
    load_foreign(&store, "foreign:1", foreign);
    ctx.write(
        "Dockerfile",
        "FROM busybox\nCOPY --from=foreign:1 /hello /hello\n",
    );
    store.run(&["build", "-t", "ok", ctx_arg(&ctx)]).success();
    ctx.write("Dockerfile", "FROM foreign:1\nCOPY Dockerfile /\n");
    let run = store.run(&["build", "-t", "bad", ctx_arg(&ctx)]).failure();
    assert!(
        run.stderr.contains(&format!(
            "Dockerfile:1: image foreign:1 is for {foreign}, but rbuild builds for the native platform ({native}) only"
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn a_failed_pull_stops_the_build_before_anything_runs() {
    let (store, ctx) = setup("onbuild-pull");
    // In the store, but `--pull` asks its registry, where nothing listens.
    store.run(&["tag", "busybox", "127.0.0.1:1/bb"]).success();
    ctx.write(
        "Dockerfile",
        "FROM scratch AS s\nFROM 127.0.0.1:1/bb\nRUN echo ran > /ran\n",
    );
    let before = store.run(&["images", "-a", "-q"]).success().stdout;
    let run = store
        .run(&["--pull", "-t", "x", "--progress", "plain", ctx_arg(&ctx)])
        .failure();
    assert!(
        run.stderr.contains(
            "Dockerfile:2: --pull: pulling 127.0.0.1:1/bb:latest failed: manifest 127.0.0.1:1/bb:latest: cannot reach 127.0.0.1:1"
        ),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("RUN echo"), "{}", run.stderr);
    assert_eq!(store.run(&["images", "-a", "-q"]).success().stdout, before);
    // Without --pull the image in the store is used as it is.
    store.run(&["build", "-t", "x", ctx_arg(&ctx)]).success();
    // A build that uses no image has nothing to pull.
    ctx.write("Dockerfile", "FROM scratch\nCOPY Dockerfile /\n");
    store
        .run(&["build", "--pull", "-t", "x", ctx_arg(&ctx)])
        .success();
}
