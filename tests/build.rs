//! `rbuild build` and `rbuild -t NAME CONTEXT`: metadata steps, COPY, the build cache
//! and its miss reasons, intermediate images, output and errors. RUN has its own
//! module, `build_run`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::util::{TempDir, TestStore};

/// A store with busybox imported and a context directory.
pub(crate) fn setup(tag: &str) -> (TestStore, TempDir) {
    let store = TestStore::new(tag);
    store.busybox("busybox");
    (store, TempDir::new(&format!("{tag}-ctx")))
}

pub(crate) fn ctx_arg(ctx: &TempDir) -> &str {
    ctx.0.to_str().unwrap()
}

/// The image config JSON of `image`, read from the store's blob (the ID is its digest).
pub(crate) fn config(store: &TestStore, image: &str) -> serde_json::Value {
    let id = store
        .run(&["inspect", "-f", "{{.Id}}", image])
        .success()
        .stdout;
    let hex = id.trim().strip_prefix("sha256:").unwrap().to_string();
    let bytes = std::fs::read(store.root().join("blobs/sha256").join(hex)).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The layer directory an image added last.
pub(crate) fn upper(store: &TestStore, image: &str) -> PathBuf {
    let out = store
        .run(&["inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", image])
        .success()
        .stdout;
    PathBuf::from(out.trim())
}

/// Step lines of a plain progress output that say CACHED or why the cache missed, as
/// `(step text, outcome)`.
pub(crate) fn outcomes(stderr: &str) -> Vec<(String, String)> {
    let mut names = std::collections::HashMap::new();
    let mut out = Vec::new();
    for line in stderr.lines() {
        let Some((id, rest)) = line.split_once(' ') else {
            continue;
        };
        if rest == "CACHED" || rest.starts_with("cache miss: ") {
            let name: &String = &names[id];
            let step = name.split_once("] ").map_or(name.as_str(), |x| x.1);
            out.push((step.to_string(), rest.to_string()));
        } else if !names.contains_key(id) {
            names.insert(id.to_string(), rest.to_string());
        }
    }
    out
}

#[test]
fn metadata_steps_make_config_history_and_intermediate_images() {
    let (store, ctx) = setup("build-meta");
    ctx.write(
        "Dockerfile",
        r#"FROM busybox
MAINTAINER someone <a@b.c>
LABEL org.example.a="one two" b=2
ENV LANG=en_US.UTF-8 PATH=/opt/bin:$PATH
ARG VERSION=1.0
ENV V=$VERSION
EXPOSE 22 80/udp
VOLUME ["/data"]
USER daemon
WORKDIR /srv
WORKDIR app
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=30s CMD ["true"]
SHELL ["/bin/sh", "-ec"]
ONBUILD LABEL child=yes
ENTRYPOINT ["/bin/echo"]
CMD echo $LANG
"#,
    );
    let run = store
        .run(&["build", "--progress", "plain", "-t", "meta", ctx_arg(&ctx)])
        .success();
    assert!(
        run.stderr
            .contains("#1 [internal] load build definition from Dockerfile")
    );
    assert!(
        run.stderr.contains("] LABEL org.example.a='one two' b=2"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("naming to docker.io/library/meta:latest done"),
        "{}",
        run.stderr
    );

    let c = config(&store, "meta");
    let cc = &c["config"];
    assert_eq!(cc["Labels"]["org.example.a"], "one two");
    assert_eq!(cc["Labels"]["b"], "2");
    assert_eq!(
        cc["Env"],
        serde_json::json!([
            "PATH=/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG=en_US.UTF-8",
            "V=1.0"
        ])
    );
    assert_eq!(
        cc["ExposedPorts"],
        serde_json::json!({"22/tcp": {}, "80/udp": {}})
    );
    assert_eq!(cc["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(cc["User"], "daemon");
    assert_eq!(cc["WorkingDir"], "/srv/app");
    assert_eq!(cc["StopSignal"], "SIGQUIT");
    assert_eq!(
        cc["Healthcheck"]["Test"],
        serde_json::json!(["CMD", "true"])
    );
    assert_eq!(cc["Healthcheck"]["Interval"], 30_000_000_000i64);
    assert_eq!(cc["Shell"], serde_json::json!(["/bin/sh", "-ec"]));
    assert_eq!(cc["OnBuild"], serde_json::json!(["LABEL child=yes"]));
    assert_eq!(cc["Entrypoint"], serde_json::json!(["/bin/echo"]));
    // Shell form under the SHELL in force; set after ENTRYPOINT, so it stays.
    assert_eq!(
        cc["Cmd"],
        serde_json::json!(["/bin/sh", "-ec", "echo $LANG"])
    );
    assert_eq!(c["author"], "someone <a@b.c>");

    // Through inspect too.
    let j = store
        .run(&["inspect", "-f", "{{json .Config}}", "meta"])
        .success()
        .stdout;
    let j: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(j["WorkingDir"], "/srv/app");

    // History: the base's entry, then one per step; only the WORKDIRs that created
    // their directory have a layer.
    let h = c["history"].as_array().unwrap();
    assert_eq!(h.len(), 17, "{h:#?}");
    let built: Vec<&serde_json::Value> = h[1..].iter().collect();
    for e in &built {
        let workdir = e["created_by"].as_str().unwrap().starts_with("WORKDIR");
        assert_eq!(e["empty_layer"].as_bool().unwrap_or(false), !workdir, "{e}");
        assert_eq!(e["comment"], "buildkit.dockerfile.v0");
    }
    let by: Vec<&str> = built
        .iter()
        .map(|e| e["created_by"].as_str().unwrap())
        .collect();
    assert_eq!(
        by[2],
        "ENV LANG=en_US.UTF-8 PATH=/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    );
    assert_eq!(by[3], "ARG VERSION=1.0");
    assert_eq!(by[5], "EXPOSE map[22/tcp:{} 80/udp:{}]");
    assert_eq!(by[6], "VOLUME [/data]");
    assert_eq!(by[9], "WORKDIR /srv/app");
    assert_eq!(by[15], r#"CMD ["/bin/sh" "-ec" "echo $LANG"]"#);
    assert_eq!(c["rootfs"]["diff_ids"].as_array().unwrap().len(), 3);

    // Every step committed an image: `history` shows their real IDs, `images -a` lists them.
    let ids = store
        .run(&["history", "-q", "--no-trunc", "meta"])
        .success()
        .stdout;
    let ids: Vec<&str> = ids.lines().collect();
    assert_eq!(ids.len(), 17);
    assert!(ids.iter().all(|i| i.starts_with("sha256:")), "{ids:?}");
    // WORKDIR app made /srv/app as USER daemon (1:1), its parent taken from below.
    let layer = upper(&store, ids[6]);
    let m = std::fs::metadata(layer.join("srv/app")).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o755, 1, 1));
    assert!(layer.join("srv").is_dir() && !layer.join("bin").exists());
    let all = store.run(&["images", "-a", "-q"]).success().stdout;
    assert_eq!(all.lines().count(), 17, "{all}");
    let top = store.run(&["images", "-q"]).success().stdout;
    assert_eq!(top.lines().count(), 2, "{top}");
}

#[test]
fn copy_files_dirs_globs_owners_modes_and_dockerignore() {
    let (store, ctx) = setup("build-copy");
    ctx.write("app.py", "print('app')\n");
    ctx.write("one.txt", "one\n");
    ctx.write("src/a.py", "a\n");
    ctx.write("src/skip.log", "log\n");
    ctx.write("src/sub/b.py", "b\n");
    ctx.write("lib/l.py", "l\n");
    ctx.write("secret.key", "k\n");
    ctx.write(".dockerignore", "src/*.log\nsecret.key\n");
    std::fs::set_permissions(
        ctx.0.join("src/a.py"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    ctx.write(
        "Dockerfile",
        "FROM busybox
COPY --chown=daemon:daemon --chmod=0640 app.py /srv/
COPY src /app
COPY src/*.py lib/ /multi/
COPY --chown=7:8 one.txt /renamed.txt
WORKDIR /w
COPY one.txt rel/
",
    );
    store.run(&["build", "-t", "copy", ctx_arg(&ctx)]).success();
    let ids = store
        .run(&["history", "-q", "--no-trunc", "copy"])
        .success()
        .stdout;
    // Newest first: COPY rel, WORKDIR, COPY renamed, COPY multi, COPY src, COPY srv, base.
    let ids: Vec<&str> = ids.lines().collect();
    assert_eq!(ids.len(), 7);
    let layer = |i: usize| upper(&store, ids[i]);

    let l = layer(5);
    let m = std::fs::metadata(l.join("srv/app.py")).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o640, 1, 1));
    assert_eq!(
        std::fs::read_to_string(l.join("srv/app.py")).unwrap(),
        "print('app')\n"
    );
    assert!(
        !l.join("bin").exists(),
        "only what COPY adds is in its layer"
    );

    let l = layer(4);
    assert_eq!(std::fs::read_to_string(l.join("app/a.py")).unwrap(), "a\n");
    let m = std::fs::metadata(l.join("app/a.py")).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o755, 0, 0));
    assert!(l.join("app/sub/b.py").is_file());
    assert!(!l.join("app/skip.log").exists(), ".dockerignore applies");
    assert!(
        !l.join("app/src").exists(),
        "a directory's contents are copied"
    );

    let l = layer(3);
    let mut names: Vec<String> = std::fs::read_dir(l.join("multi"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["a.py", "l.py"]);

    let l = layer(2);
    let m = std::fs::metadata(l.join("renamed.txt")).unwrap();
    assert_eq!((m.uid(), m.gid()), (7, 8));
    assert_eq!(std::fs::read_to_string(l.join("w/rel/one.txt")).ok(), None);
    assert_eq!(
        std::fs::read_to_string(layer(0).join("w/rel/one.txt")).unwrap(),
        "one\n",
        "a relative destination is under WORKDIR"
    );

    // An ignored file is not there for COPY.
    ctx.write("Dockerfile", "FROM busybox\nCOPY secret.key /\n");
    store
        .run(&["build", ctx_arg(&ctx)])
        .failure()
        .stderr_contains("Dockerfile:2: COPY secret.key /: \"/secret.key\": not found");
}

#[test]
fn copy_destination_symlinks_stay_inside_the_image() {
    let (store, ctx) = setup("build-link");
    // A name nothing else on the host uses, so finding it outside the image is proof.
    let probe = format!("rbuild-escape-probe-{}", std::process::id());
    for host in ["/tmp", "/etc"] {
        assert!(!Path::new(host).join(&probe).exists());
    }
    ctx.write(&probe, "x\n");
    // Links copied as links (a directory's entries are not followed), then used as
    // destinations: they resolve inside the image, never on the host.
    std::fs::create_dir_all(ctx.0.join("links")).unwrap();
    std::os::unix::fs::symlink("/etc", ctx.0.join("links/up")).unwrap();
    std::os::unix::fs::symlink("../../../../../../tmp", ctx.0.join("links/escape")).unwrap();
    ctx.write(
        "Dockerfile",
        &format!("FROM busybox\nCOPY links /links/\nCOPY {probe} /links/up/\nCOPY {probe} /links/escape/\n"),
    );
    store
        .run(&["build", "-t", "links", ctx_arg(&ctx)])
        .success();
    let ids = store
        .run(&["history", "-q", "--no-trunc", "links"])
        .success()
        .stdout;
    let ids: Vec<&str> = ids.lines().collect();
    assert!(
        upper(&store, ids[1]).join("etc").join(&probe).is_file(),
        "absolute link resolved in the image"
    );
    assert!(
        upper(&store, ids[0]).join("tmp").join(&probe).is_file(),
        "`..` stops at the image root"
    );
    for host in ["/tmp", "/etc"] {
        assert!(
            !Path::new(host).join(&probe).exists(),
            "COPY wrote {host}/{probe} on the host"
        );
    }
}

#[test]
fn cache_hits_and_miss_reasons() {
    let (store, ctx) = setup("build-cache");
    ctx.write("one.txt", "one\n");
    ctx.write("src/app.py", "v1\n");
    ctx.write("src/other.py", "o\n");
    ctx.write(
        "Dockerfile",
        "FROM busybox\nENV A=1\nCOPY one.txt /\nCOPY src /src\nARG VERSION=1\nLABEL v=$VERSION\nCMD [\"sh\"]\n",
    );
    let ctxs = ctx_arg(&ctx);
    let first = store.run(&["build", "-t", "c", ctxs]).success();
    let o = outcomes(&first.stderr);
    assert_eq!(o.len(), 6, "{}", first.stderr);
    assert!(
        o.iter().all(|(_, r)| r == "cache miss: first build"),
        "{o:?}"
    );
    let id1 = store
        .run(&["inspect", "-f", "{{.Id}}", "c"])
        .success()
        .stdout;

    let again = store.run(&["build", "-t", "c", ctxs]).success();
    let o = outcomes(&again.stderr);
    assert!(o.iter().all(|(_, r)| r == "CACHED"), "{}", again.stderr);
    let id2 = store
        .run(&["inspect", "-f", "{{.Id}}", "c"])
        .success()
        .stdout;
    assert_eq!(id1, id2, "a fully cached build gives the same image");

    // Touching a file changes nothing; changing one re-runs from the COPY that uses it.
    std::thread::sleep(std::time::Duration::from_millis(10));
    ctx.write("src/other.py", "o\n");
    let o = outcomes(&store.run(&["build", "-t", "c", ctxs]).success().stderr);
    assert!(o.iter().all(|(_, r)| r == "CACHED"), "{o:?}");
    ctx.write("src/app.py", "v2\n");
    let o = outcomes(&store.run(&["build", "-t", "c", ctxs]).success().stderr);
    let expect = [
        ("ENV A=1", "CACHED"),
        ("COPY one.txt /", "CACHED"),
        ("COPY src /src", "cache miss: file src/app.py changed"),
        ("ARG VERSION=1", "cache miss: parent changed"),
        ("LABEL v=1", "cache miss: parent changed"),
        ("CMD [\"sh\"]", "cache miss: parent changed"),
    ];
    let got: Vec<(&str, &str)> = o.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(got, expect);

    // A build arg re-runs only from the step that uses it.
    let run = store
        .run(&["build", "--build-arg", "VERSION=2", "-t", "c", ctxs])
        .success();
    let o = outcomes(&run.stderr);
    let got: Vec<(&str, &str)> = o.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(
        got,
        [
            ("ENV A=1", "CACHED"),
            ("COPY one.txt /", "CACHED"),
            ("COPY src /src", "CACHED"),
            ("ARG VERSION=2", "cache miss: build arg VERSION changed"),
            ("LABEL v=2", "cache miss: parent changed"),
            ("CMD [\"sh\"]", "cache miss: parent changed"),
        ]
    );

    // --no-cache runs everything and says so.
    let o = outcomes(
        &store
            .run(&["build", "--no-cache", "-t", "c", ctxs])
            .success()
            .stderr,
    );
    assert_eq!(o.len(), 6);
    assert!(
        o.iter().all(|(_, r)| r == "cache miss: --no-cache"),
        "{o:?}"
    );

    // A removed result is rebuilt, and the reason says why.
    store.run(&["rmi", "-f", "c"]).success();
    store.run(&["image", "prune", "-f"]).success();
    let o = outcomes(&store.run(&["build", "-t", "c", ctxs]).success().stderr);
    assert!(o.iter().any(|(_, r)| r.starts_with("cache miss")), "{o:?}");
}

#[test]
fn quiet_iidfile_labels_and_the_shorthand() {
    let (store, ctx) = setup("build-quiet");
    ctx.write("Dockerfile", "FROM busybox\nLABEL a=1\n");
    let iid = ctx.0.join("iid");
    let run = store
        .run(&[
            "build",
            "-q",
            "--iidfile",
            iid.to_str().unwrap(),
            "--label",
            "extra=yes",
            ctx_arg(&ctx),
        ])
        .success();
    assert_eq!(run.stderr, "");
    let id = run.stdout.trim();
    assert!(
        id.starts_with("sha256:") && run.stdout.lines().count() == 1,
        "{}",
        run.stdout
    );
    assert_eq!(std::fs::read_to_string(&iid).unwrap(), id);
    let c = config(&store, id);
    assert_eq!(
        c["config"]["Labels"],
        serde_json::json!({"a": "1", "extra": "yes"})
    );

    // `rbuild -t NAME CONTEXT` is `rbuild build -t NAME CONTEXT`.
    let run = store.run(&["-t", "short:1", ctx_arg(&ctx)]).success();
    assert!(run.stderr.contains("CACHED"), "{}", run.stderr);
    store
        .run(&["images", "short"])
        .success()
        .stdout_contains("short        1");
    let q = store
        .run(&["build", "--progress", "quiet", ctx_arg(&ctx)])
        .success();
    assert_eq!((q.stdout.as_str(), q.stderr.as_str()), ("", ""));
}

#[test]
fn errors_name_the_dockerfile_line() {
    let (store, ctx) = setup("build-errors");
    ctx.write("Dockerfile", "# base\nFROM nope:1\nLABEL a=b\n");
    store
        .run(&["build", ctx_arg(&ctx)])
        .failure()
        .stderr_contains("error: Dockerfile:2: image not found locally: nope:1");
    ctx.write(
        "Dockerfile",
        "FROM busybox\nENV A=1\nCOPY missing.py /app/\n",
    );
    store
        .run(&["build", ctx_arg(&ctx)])
        .failure()
        .stderr_contains("Dockerfile:3: COPY missing.py /app/: \"/missing.py\": not found");
    ctx.write("Dockerfile", "FROM busybox\nCOPY *.rs /app/\n");
    store
        .run(&["build", ctx_arg(&ctx)])
        .failure()
        .stderr_contains("Dockerfile:2: COPY *.rs /app/: no source files were specified");
    ctx.write("a", "");
    ctx.write("b", "");
    ctx.write("Dockerfile", "FROM busybox\nCOPY a b /app\n");
    store
        .run(&["build", ctx_arg(&ctx)])
        .failure()
        .stderr_contains("Dockerfile:2: When using COPY with more than one source file");
    ctx.write("Dockerfile", "FROM busybox\n\nRUN echo hi && exit 3\n");
    store
        .run(&["build", ctx_arg(&ctx)])
        .failure()
        .stderr_contains(" hi\n")
        .stderr_contains(
            "Dockerfile:3: process \"/bin/sh -c echo hi && exit 3\" did not complete successfully: exit code: 3",
        );
    ctx.write("Dockerfile", "FROM busybox\nCOPY --chown=ghost a /\n");
    store
        .run(&["build", ctx_arg(&ctx)])
        .failure()
        .stderr_contains("Dockerfile:2: unable to find user ghost");
    // ADD copies plain files and extracts archives (more in `build_copy`).
    ctx.write("Dockerfile", "FROM busybox\nADD a /added\n");
    store.run(&["build", ctx_arg(&ctx)]).success();
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(0);
    h.set_cksum();
    tar.append_data(&mut h, "x", &[][..]).unwrap();
    std::fs::write(ctx.0.join("t.tar"), tar.into_inner().unwrap()).unwrap();
    ctx.write("Dockerfile", "FROM busybox\nADD t.tar /t/\n");
    store.run(&["build", ctx_arg(&ctx)]).success();
    // -f names the file it read.
    let df = ctx.write("other.Dockerfile", "FROM busybox\nFROOM x\n");
    store
        .run(&["build", "-f", df.to_str().unwrap(), ctx_arg(&ctx)])
        .failure()
        .stderr_contains("other.Dockerfile:2");
    // What rbuild will not do is refused, not silently weakened.
    ctx.write("Dockerfile", "FROM busybox\nRUN --security=insecure true\n");
    store
        .run(&["build", ctx_arg(&ctx)])
        .failure()
        .stderr_contains("Dockerfile:2: RUN --security=insecure: granting entitlement security.insecure is not allowed");
}

#[test]
fn stages_build_in_order_and_unneeded_ones_are_skipped() {
    let (store, ctx) = setup("build-stages");
    ctx.write("a.py", "a\n");
    ctx.write("b.py", "b\n");
    ctx.write(
        "Dockerfile",
        "FROM busybox AS base
ENV A=1
COPY a.py /a.py

FROM scratch AS unused
LABEL x=y

FROM base
COPY b.py /
CMD [\"cat\", \"/a.py\"]
",
    );
    let run = store
        .run(&[
            "build",
            "--build-arg",
            "NOPE=1",
            "-t",
            "multi",
            ctx_arg(&ctx),
        ])
        .success();
    let e = &run.stderr;
    assert!(e.contains("] FROM docker.io/library/busybox:latest"), "{e}");
    assert!(e.contains("[base 3/3] COPY a.py /a.py"), "{e}");
    assert!(e.contains("[stage-2 1/3] FROM base"), "{e}");
    assert!(e.contains("[stage-2 2/3] COPY b.py /"), "{e}");
    assert!(!e.contains("LABEL x=y"), "unneeded stage built: {e}");
    assert!(
        e.contains("WARNING: One or more build-args [NOPE] were not consumed"),
        "{e}"
    );
    let c = config(&store, "multi");
    assert_eq!(c["config"]["Env"][1], "A=1");
    assert_eq!(c["config"]["Cmd"], serde_json::json!(["cat", "/a.py"]));
    assert_eq!(c["rootfs"]["diff_ids"].as_array().unwrap().len(), 3);

    // --target builds only what that stage needs; FROM scratch starts empty.
    let id = store
        .run(&["build", "-q", "--target", "unused", ctx_arg(&ctx)])
        .success()
        .stdout;
    let c = config(&store, id.trim());
    assert_eq!(c["config"]["Labels"]["x"], "y");
    assert!(c["rootfs"]["diff_ids"].as_array().unwrap().is_empty());
}
