//! `build --cache-to` / `--cache-from`: two CI runners share one build cache through a
//! registry (or an OCI layout directory). Every RUN here fetches a URL from a counting
//! HTTP server on 127.0.0.1, a marker written outside the store and the rootfs: if the
//! count does not move, no RUN ran.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::build::{ctx_arg, outcomes};
use crate::registry_util::{Registry, RegistryAuth, http_request};
use crate::util::{Run, TempDir, TestStore, p};

/// Counts the requests made to each path; answers each with `ok`.
struct Marker {
    addr: String,
    hits: Arc<std::sync::Mutex<Vec<String>>>,
    _count: Arc<AtomicUsize>,
}

impl Marker {
    fn start() -> Marker {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let hits = Arc::new(std::sync::Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let (h, c) = (hits.clone(), count.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut buf = [0u8; 4096];
                let n = conn.read(&mut buf).unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = req.split(' ').nth(1).unwrap_or("").to_string();
                h.lock().unwrap().push(path);
                c.fetch_add(1, Ordering::SeqCst);
                let _ = conn.write_all(
                    b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n",
                );
            }
        });
        Marker {
            addr,
            hits,
            _count: count,
        }
    }

    /// A RUN that leaves its mark at `/NAME` on the server (and in the image).
    fn run(&self, name: &str) -> String {
        format!(
            "RUN wget -q -O /{name}.mark http://{}/{name} && echo ran {name}",
            self.addr
        )
    }

    fn hits(&self, name: &str) -> usize {
        let want = format!("/{name}");
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|p| **p == want)
            .count()
    }
}

fn id(store: &TestStore, image: &str) -> String {
    store
        .run(&["inspect", "-f", "{{.Id}}", image])
        .success()
        .stdout
        .trim()
        .to_string()
}

/// Blobs in a store (layers are kept as their blobs until first use).
fn blob_count(store: &TestStore) -> usize {
    std::fs::read_dir(store.root().join("blobs/sha256"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn all_cached(stderr: &str, steps: usize) {
    let o = outcomes(stderr);
    assert_eq!(o.len(), steps, "{stderr}");
    assert!(o.iter().all(|(_, r)| r == "CACHED"), "{o:?}\n{stderr}");
}

#[test]
fn two_ci_runners_share_a_registry_cache() {
    let reg = Registry::start("cache-two-runners", RegistryAuth::Anonymous);
    let marker = Marker::start();
    let base = format!("{}/base:1", reg.addr);
    let cache = format!("type=registry,ref={}/cache:main", reg.addr);

    // Runner A: the base comes from the registry, as on a CI runner.
    let a = TestStore::new("cache-runner-a");
    a.busybox(&base);
    a.run(&["push", &base]).success();
    let ctx = TempDir::new("cache-two-runners-ctx");
    ctx.write("app/main.txt", "v1\n");
    ctx.write(
        "Dockerfile",
        &format!(
            "FROM {base}\nENV APP=/app\nCOPY app/ /app/\n{}\nWORKDIR /work\nCMD [\"cat\", \"/app/main.txt\"]\n",
            marker.run("build")
        ),
    );
    let run_a = a
        .run(&[
            "build",
            "--progress",
            "plain",
            "--cache-to",
            &cache,
            "-t",
            "app",
            ctx_arg(&ctx),
        ])
        .success();
    assert_eq!(marker.hits("build"), 1, "{}", run_a.stderr);
    assert!(
        run_a.stderr.contains("exporting cache to"),
        "{}",
        run_a.stderr
    );
    let id_a = id(&a, "app");

    // The artifact: an OCI manifest with rbuild's artifact and config types.
    let m = http_request(
        "GET",
        &reg.addr,
        "/v2/cache/manifests/main",
        &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
        b"",
    )
    .unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&m.body).unwrap();
    assert_eq!(
        manifest["artifactType"], "application/vnd.rbuild.cache.v1",
        "{manifest}"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.rbuild.cache.config.v1+json"
    );

    // Runner B: an empty store; the build pulls the base and takes every step from the
    // cache. No RUN executes: the marker server sees no second request.
    let b = TestStore::new("cache-runner-b");
    let run_b = b
        .run(&[
            "build",
            "--progress",
            "plain",
            "--cache-from",
            &cache,
            "-t",
            "app",
            ctx_arg(&ctx),
        ])
        .success();
    all_cached(&run_b.stderr, 5);
    assert_eq!(marker.hits("build"), 1, "{}", run_b.stderr);
    assert_eq!(id(&b, "app"), id_a);
    // The image is whole: its files are there, and the store checks out.
    b.run(&["save", "-o", p(&b.root().join("app.tar")), "app"])
        .success();
    b.run(&["system", "check"]).success();
    // Intermediate images came with it, as on runner A (`history` walks them).
    let hist = b.run(&["history", "-q", "app"]).success().stdout;
    assert!(
        hist.lines().filter(|l| !l.contains("missing")).count() >= 5,
        "{hist}"
    );

    // A changed source file: the steps before it stay cached, it and those after run.
    ctx.write("app/main.txt", "v2\n");
    let c = TestStore::new("cache-runner-c");
    let run_c = c
        .run(&[
            "build",
            "--progress",
            "plain",
            "--cache-from",
            &cache,
            "-t",
            "app",
            ctx_arg(&ctx),
        ])
        .success();
    let o = outcomes(&run_c.stderr);
    let states: Vec<bool> = o.iter().map(|(_, r)| r == "CACHED").collect();
    assert_eq!(states, [true, false, false, false, false], "{o:?}");
    assert_eq!(marker.hits("build"), 2, "{}", run_c.stderr);
    assert_ne!(id(&c, "app"), id_a);
}

#[test]
fn pulled_images_are_no_cache_source() {
    let reg = Registry::start("cache-pulled", RegistryAuth::Anonymous);
    let marker = Marker::start();
    let base = format!("{}/base:1", reg.addr);
    let app = format!("{}/app:1", reg.addr);
    let a = TestStore::new("cache-pulled-a");
    a.busybox(&base);
    a.run(&["push", &base]).success();
    let ctx = TempDir::new("cache-pulled-ctx");
    ctx.write("f.txt", "f\n");
    ctx.write(
        "Dockerfile",
        &format!("FROM {base}\nCOPY f.txt /\n{}\n", marker.run("p")),
    );
    a.run(&["build", "-t", &app, ctx_arg(&ctx)]).success();
    a.run(&["push", &app]).success();
    // B holds the very image A built, pulled; without --cache-from nothing is cached.
    let b = TestStore::new("cache-pulled-b");
    b.run(&["pull", &app]).success();
    let run = b
        .run(&["build", "--progress", "plain", "-t", "x", ctx_arg(&ctx)])
        .success();
    let o = outcomes(&run.stderr);
    assert!(o.iter().all(|(_, r)| r != "CACHED"), "{o:?}");
    assert_eq!(marker.hits("p"), 2);
}

#[test]
fn local_cache_min_and_max_modes() {
    let marker = Marker::start();
    let a = TestStore::new("cache-local-a");
    a.busybox("base:1");
    let base_tar = a.root().join("base.tar");
    a.run(&["save", "-o", p(&base_tar), "base:1"]).success();
    let ctx = TempDir::new("cache-local-ctx");
    ctx.write("src.txt", "source\n");
    ctx.write(
        "Dockerfile",
        &format!(
            "FROM base:1 AS builder\nCOPY src.txt /src.txt\n{} && cp /src.txt /out.txt\n\
             FROM base:1\nCOPY --from=builder /out.txt /out.txt\n{}\n",
            marker.run("builder"),
            marker.run("final")
        ),
    );
    let dirs = TempDir::new("cache-local-dirs");
    let min = dirs.0.join("min");
    let max = dirs.0.join("max");
    a.run(&[
        "build",
        "--cache-to",
        &format!("type=local,dest={}", p(&min)),
        "--cache-to",
        &format!("type=local,dest={},mode=max", p(&max)),
        "-t",
        "app",
        ctx_arg(&ctx),
    ])
    .success();
    let id_a = id(&a, "app");
    assert_eq!((marker.hits("builder"), marker.hits("final")), (1, 1));
    for d in [&min, &max] {
        assert!(d.join("oci-layout").is_file());
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join("index.json")).unwrap()).unwrap();
        assert_eq!(
            index["manifests"][0]["artifactType"],
            "application/vnd.rbuild.cache.v1"
        );
    }

    // mode=max: every stage's steps are in the cache; nothing runs.
    let b = TestStore::new("cache-local-b");
    b.run(&["load", "-i", p(&base_tar)]).success();
    let run = b
        .run(&[
            "build",
            "--progress",
            "plain",
            "--cache-from",
            &format!("type=local,src={}", p(&max)),
            "-t",
            "app",
            ctx_arg(&ctx),
        ])
        .success();
    all_cached(&run.stderr, 4);
    assert_eq!((marker.hits("builder"), marker.hits("final")), (1, 1));
    assert_eq!(id(&b, "app"), id_a);

    // mode=min: only the final image's stage: the builder stage runs again, and the
    // final stage's steps are cached (its COPY --from finds the same content).
    let c = TestStore::new("cache-local-c");
    c.run(&["load", "-i", p(&base_tar)]).success();
    let run = c
        .run(&[
            "build",
            "--progress",
            "plain",
            "--cache-from",
            &format!("type=local,src={}", p(&min)),
            "-t",
            "app",
            ctx_arg(&ctx),
        ])
        .success();
    let o = outcomes(&run.stderr);
    let cached: Vec<&str> = o
        .iter()
        .filter(|(_, r)| r == "CACHED")
        .map(|(s, _)| s.as_str())
        .collect();
    assert_eq!(cached.len(), 2, "{o:?}");
    assert!(
        cached.iter().all(|s| !s.contains("src.txt /src.txt")),
        "{o:?}"
    );
    assert_eq!((marker.hits("builder"), marker.hits("final")), (2, 1));
    assert_eq!(id(&c, "app"), id_a);
}

/// Two runners sharing a local cache directory: store A (with the busybox base) builds
/// `ctx` and exports its cache with `mode`; an empty store B loads the same base and
/// builds `ctx` from that cache. Returns A, B, B's build and B's blob count before it.
fn local_runners(name: &str, ctx: &TempDir, mode: &str) -> (TestStore, TestStore, Run, usize) {
    let a = TestStore::new(&format!("{name}-a"));
    a.busybox("base:1");
    let base_tar = a.root().join("base.tar");
    a.run(&["save", "-o", p(&base_tar), "base:1"]).success();
    let dir = TempDir::new(&format!("{name}-dir"));
    a.run(&[
        "build",
        "--cache-to",
        &format!("type=local,dest={},mode={mode}", p(&dir.0)),
        "-t",
        "app",
        ctx_arg(ctx),
    ])
    .success();
    let b = TestStore::new(&format!("{name}-b"));
    b.run(&["load", "-i", p(&base_tar)]).success();
    let before = blob_count(&b);
    let run = b
        .run(&[
            "build",
            "--progress",
            "plain",
            "--cache-from",
            &format!("type=local,src={}", p(&dir.0)),
            "-t",
            "app",
            ctx_arg(ctx),
        ])
        .success();
    (a, b, run, before)
}

#[test]
fn import_fetches_only_the_final_images_missing_layers() {
    // Layers the store holds (the base) are not fetched again; the two COPY layers and
    // the configs of the images recorded are all that comes in.
    let ctx = TempDir::new("cache-lazy-ctx");
    ctx.write("big.bin", &"x".repeat(1 << 16));
    ctx.write("small.txt", "s\n");
    ctx.write(
        "Dockerfile",
        "FROM base:1\nCOPY big.bin /\nENV X=1\nCOPY small.txt /\n",
    );
    let (a, b, run, before) = local_runners("cache-lazy", &ctx, "min");
    all_cached(&run.stderr, 3);
    assert_eq!(blob_count(&b), before + 2 + 3, "{}", run.stderr);
    assert_eq!(id(&b, "app"), id(&a, "app"));
}

#[test]
fn copy_from_an_imported_stage_fetches_none_of_its_layers() {
    // mode=max, a builder stage with a big layer whose output the final stage copies:
    // on an empty runner every step is a hit, and only the final image's own layer
    // comes in (COPY --from is found by the builder image's ID, not its files).
    let marker = Marker::start();
    let ctx = TempDir::new("cache-from-stage-ctx");
    ctx.write("big.bin", &"y".repeat(1 << 18));
    ctx.write(
        "Dockerfile",
        &format!(
            "FROM base:1 AS builder\nCOPY big.bin /big.bin\n{} && head -c 10 /big.bin > /out\n\
             FROM base:1\nCOPY --from=builder /out /out\n",
            marker.run("builder")
        ),
    );
    let (a, b, run, before) = local_runners("cache-from-stage", &ctx, "max");
    all_cached(&run.stderr, 3);
    assert_eq!(marker.hits("builder"), 1);
    // The final image's COPY layer and its config; nothing of the builder stage.
    assert_eq!(blob_count(&b), before + 2, "{}", run.stderr);
    assert_eq!(id(&b, "app"), id(&a, "app"));
    b.run(&["system", "check"]).success();
}

#[test]
fn missing_and_broken_caches_are_warnings() {
    let reg = Registry::start("cache-broken", RegistryAuth::Anonymous);
    let s = TestStore::new("cache-broken");
    let base = format!("{}/base:1", reg.addr);
    s.busybox(&base);
    s.run(&["push", &base]).success();
    let ctx = TempDir::new("cache-broken-ctx");
    ctx.write("Dockerfile", &format!("FROM {base}\nENV A=1\n"));

    // No such tag: a warning, then a normal build.
    let missing = format!("{}/cache:none", reg.addr);
    let run = s
        .run(&[
            "build",
            "--progress",
            "plain",
            "--cache-from",
            &format!("type=registry,ref={missing}"),
            ctx_arg(&ctx),
        ])
        .success();
    assert!(
        run.stderr.contains(&format!("cache {missing} not found")),
        "{}",
        run.stderr
    );

    // A tag that holds an image, not a cache: named in the warning, the build goes on.
    let run = s
        .run(&[
            "build",
            "--progress",
            "plain",
            "--cache-from",
            &base,
            ctx_arg(&ctx),
        ])
        .success();
    assert!(
        run.stderr
            .contains(&format!("cache {base} cannot be imported")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("is not an rbuild cache"),
        "{}",
        run.stderr
    );

    // A local cache whose index is garbage, and one whose manifest blob was altered.
    let dir = TempDir::new("cache-broken-dir");
    s.run(&[
        "build",
        "--cache-to",
        &format!("type=local,dest={}", p(&dir.0)),
        ctx_arg(&ctx),
    ])
    .success();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.0.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let blob = dir
        .0
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap());
    std::fs::write(&blob, b"{\"not\": \"a manifest\"}").unwrap();
    let src = format!("type=local,src={}", p(&dir.0));
    let run = s
        .run(&[
            "build",
            "--progress",
            "plain",
            "--cache-from",
            &src,
            ctx_arg(&ctx),
        ])
        .success();
    assert!(
        run.stderr
            .contains(&format!("cache {} cannot be imported", p(&dir.0))),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&digest), "{}", run.stderr);
    std::fs::write(dir.0.join("index.json"), "garbage").unwrap();
    let run = s
        .run(&[
            "build",
            "--progress",
            "plain",
            "--cache-from",
            &src,
            ctx_arg(&ctx),
        ])
        .success();
    assert!(
        run.stderr.contains("index.json is not an OCI index"),
        "{}",
        run.stderr
    );

    // An export that fails fails the build (the image is built and named), unless
    // ignore-error=true makes it a warning, as in BuildKit.
    let not_dir = dir.write("plain-file", "x");
    let dest = format!("type=local,dest={}/sub", p(&not_dir));
    s.run(&["build", "--cache-to", &dest, ctx_arg(&ctx)])
        .failure()
        .stderr_contains("exporting cache to");
    let run = s
        .run(&[
            "build",
            "--progress",
            "plain",
            "--cache-to",
            &format!("{dest},ignore-error=true"),
            ctx_arg(&ctx),
        ])
        .success();
    assert!(run.stderr.contains("ignore-error=true"), "{}", run.stderr);

    // Flags are checked before anything runs.
    s.run(&["build", "--cache-to", "type=gha", ctx_arg(&ctx)])
        .failure()
        .stderr_contains("unsupported cache type");
}
