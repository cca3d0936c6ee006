//! `rbuild push` against a real `docker-registry` on 127.0.0.1, read back by real tools
//! (Debian's `skopeo` and `umoci`; a missing one fails the test).

use std::fs;
use std::process::Command;

use crate::build::{ctx_arg, setup};
use crate::fault_proxy::{Fault, FaultProxy};
use crate::imagetar::{assert_same_tree, listing, sha256_hex};
use crate::registry_util::{Registry, RegistryAuth, http_request};
use crate::util::{Run, TempDir, TestStore, json, p, tool};

/// `rbuild --root STORE ARGS` with extra environment variables.
fn run_env(store: &TestStore, env: &[(&str, &str)], args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_rbuild"))
        .arg("--root")
        .arg(store.root())
        .args(args)
        .envs(env.iter().copied())
        .current_dir(store.root())
        .output()
        .expect("starting rbuild");
    Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        status: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A three-layer image built by rbuild on busybox, named `name`.
fn built_image(store: &TestStore, ctx: &TempDir, name: &str) {
    ctx.write("hello.txt", "hello from the context\n");
    ctx.write(
        "Dockerfile",
        "FROM busybox\nCOPY hello.txt /hello.txt\nRUN echo run > /run.txt && mkdir -p /data\n",
    );
    store
        .run(&["build", "-q", "-t", name, ctx_arg(ctx)])
        .success();
}

/// The short diff IDs of an image's layers, as push lines name them.
fn short_layer_ids(store: &TestStore, image: &str) -> Vec<String> {
    let layers = store
        .run(&["inspect", "-f", "{{json .RootFS.Layers}}", image])
        .success()
        .stdout;
    let layers: Vec<String> = serde_json::from_str(layers.trim()).unwrap();
    layers.iter().map(|l| l[7..19].to_string()).collect()
}

fn image_id(store: &TestStore, image: &str) -> String {
    store
        .run(&["inspect", "-f", "{{.Id}}", image])
        .success()
        .stdout
        .trim()
        .to_string()
}

/// The `TAG: digest: sha256:… size: N` line's digest and size.
#[track_caller]
fn pushed_digest(run: &Run, tag: &str) -> (String, u64) {
    let prefix = format!("{tag}: digest: ");
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{}", run.stdout));
    let rest = &line[prefix.len()..];
    let (digest, size) = rest.split_once(" size: ").unwrap();
    (digest.to_string(), size.parse().unwrap())
}

#[test]
fn pushed_image_reads_back_through_skopeo_and_umoci() {
    let (store, ctx) = setup("push-interop");
    let reg = Registry::start("push-interop", RegistryAuth::Anonymous);
    let name = format!("{}/app:1.0", reg.addr);
    built_image(&store, &ctx, &name);
    let id = image_id(&store, &name);

    let run = store.run(&["push", &name]).success();
    assert!(
        run.stdout.starts_with(&format!(
            "The push refers to repository [{}/app]\n",
            reg.addr
        )),
        "{}",
        run.stdout
    );
    let ids = short_layer_ids(&store, &name);
    assert_eq!(ids.len(), 3);
    for short in &ids {
        for status in ["Preparing", "Pushed"] {
            let line = format!("{short}: {status}\n");
            assert!(
                run.stdout.contains(&line),
                "no {line:?} in:\n{}",
                run.stdout
            );
        }
    }
    let (digest, size) = pushed_digest(&run, "1.0");

    // The registry holds what was announced: the manifest's digest and size, docker's
    // media types, this image's config.
    let src = format!("docker://{name}");
    let raw = tool("skopeo", &["inspect", "--tls-verify=false", "--raw", &src]);
    assert_eq!(format!("sha256:{}", sha256_hex(raw.as_bytes())), digest);
    assert_eq!(raw.len() as u64, size);
    let manifest = json(&raw);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(manifest["config"]["digest"], id.as_str(), "{manifest}");
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3, "{manifest}");
    for l in layers {
        assert_eq!(
            l["mediaType"], "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "{manifest}"
        );
    }
    let config = tool(
        "skopeo",
        &["inspect", "--tls-verify=false", "--config", "--raw", &src],
    );
    assert_eq!(format!("sha256:{}", sha256_hex(config.as_bytes())), id);
    let info = json(&tool("skopeo", &["inspect", "--tls-verify=false", &src]));
    assert_eq!(info["Digest"], digest.as_str());

    // Copied out (skopeo verifies every blob) and unpacked by umoci: the same tree as
    // rbuild's own archive of the image, unpacked the same way.
    let tmp = TempDir::new("push-interop-out");
    let oci = tmp.0.join("oci");
    tool(
        "skopeo",
        &[
            "copy",
            "-q",
            "--src-tls-verify=false",
            &src,
            &format!("oci:{}:pushed", p(&oci)),
        ],
    );
    let pushed = tmp.0.join("pushed");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:pushed", p(&oci)),
            p(&pushed),
        ],
    );
    let archive = tmp.0.join("saved.tar");
    store.run(&["save", "-o", p(&archive), &name]).success();
    let layout = tmp.0.join("layout");
    fs::create_dir(&layout).unwrap();
    tar::Archive::new(fs::File::open(&archive).unwrap())
        .unpack(&layout)
        .unwrap();
    let saved = tmp.0.join("saved");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:1.0", p(&layout)),
            p(&saved),
        ],
    );
    let pushed_tree = listing(&pushed.join("rootfs"));
    assert_same_tree(
        &listing(&saved.join("rootfs")),
        &pushed_tree,
        "rbuild save vs push, both unpacked by umoci",
    );
    assert_eq!(
        fs::read_to_string(pushed.join("rootfs/hello.txt")).unwrap(),
        "hello from the context\n"
    );
    assert_eq!(
        fs::read_to_string(pushed.join("rootfs/run.txt")).unwrap(),
        "run\n"
    );
    assert_eq!(pushed_tree["bin/busybox"].kind, "file");
}

#[test]
fn second_push_skips_every_layer_and_another_repository_mounts_them() {
    let (store, ctx) = setup("push-again");
    let reg = Registry::start("push-again", RegistryAuth::Anonymous);
    let name = format!("{}/app:1.0", reg.addr);
    built_image(&store, &ctx, &name);
    let ids = short_layer_ids(&store, &name);

    let first = store.run(&["push", &name]).success();
    let (digest, size) = pushed_digest(&first, "1.0");

    let again = store.run(&["push", &name]).success();
    for short in &ids {
        let line = format!("{short}: Layer already exists\n");
        assert!(
            again.stdout.contains(&line),
            "no {line:?} in:\n{}",
            again.stdout
        );
    }
    assert!(!again.stdout.contains("Pushed"), "{}", again.stdout);
    assert_eq!(pushed_digest(&again, "1.0"), (digest.clone(), size));

    // The image now has a RepoDigest, as after a docker push.
    let digests = store
        .run(&[
            "images",
            "--digests",
            "--format",
            "{{.Repository}} {{.Digest}}",
        ])
        .success()
        .stdout;
    assert!(
        digests.contains(&format!("{}/app {digest}", reg.addr)),
        "{digests}"
    );

    // Another repository of the same registry: every layer mounted, none uploaded.
    let other = format!("{}/team/copy:2", reg.addr);
    store.run(&["tag", &name, &other]).success();
    // One upload at a time: the config goes first, every layer waits its turn.
    let mounted = store
        .run(&["--max-concurrent-uploads", "1", "push", &other])
        .success();
    for short in &ids {
        for status in ["Waiting", "Mounted from app"] {
            let line = format!("{short}: {status}\n");
            assert!(
                mounted.stdout.contains(&line),
                "no {line:?} in:\n{}",
                mounted.stdout
            );
        }
    }
    assert_eq!(pushed_digest(&mounted, "2").0, digest);
    let log = reg.log();
    let mounts = log
        .lines()
        .filter(|l| l.contains("POST /v2/team/copy/blobs/uploads/?") && l.contains("mount="))
        .count();
    // The three layers and the config.
    assert_eq!(mounts, 4, "{log}");
    let manifest = reg.get("/v2/team/copy/manifests/2");
    assert_eq!(manifest.status, 200, "{manifest:?}");
}

#[test]
fn pull_then_push_keeps_the_manifest_digest() {
    // An OCI image made by umoci and put into the registry by skopeo: its manifest is
    // not one rbuild would write, so a rebuilt manifest could not match by chance.
    let store = TestStore::new("push-keep");
    let reg = Registry::start("push-keep", RegistryAuth::Anonymous);
    let tmp = TempDir::new("push-keep-tools");
    let layout = tmp.0.join("layout");
    let image = format!("{}:t", p(&layout));
    tool("umoci", &["init", "--layout", p(&layout)]);
    tool("umoci", &["new", "--image", &image]);
    let bundle = tmp.0.join("bundle");
    tool("umoci", &["unpack", "--image", &image, p(&bundle)]);
    fs::create_dir_all(bundle.join("rootfs/etc")).unwrap();
    fs::write(bundle.join("rootfs/etc/hello"), "hello from umoci\n").unwrap();
    tool("umoci", &["repack", "--image", &image, p(&bundle)]);
    let src = format!("docker://{}/src:1", reg.addr);
    tool(
        "skopeo",
        &[
            "copy",
            "-q",
            "--dest-tls-verify=false",
            &format!("oci:{image}"),
            &src,
        ],
    );
    let src_digest = json(&tool("skopeo", &["inspect", "--tls-verify=false", &src]))["Digest"]
        .as_str()
        .unwrap()
        .to_string();

    // Into the store with its manifest (until `rbuild pull` lands, through an OCI
    // archive, which `load` records the manifest of).
    let archive = tmp.0.join("src.tar");
    tool(
        "skopeo",
        &[
            "copy",
            "-q",
            "--src-tls-verify=false",
            &src,
            &format!("oci-archive:{}:src", p(&archive)),
        ],
    );
    store.run(&["load", "-i", p(&archive)]).success();
    let ids = store.run(&["images", "-q", "--no-trunc"]).success().stdout;
    let id = ids.lines().next().expect("an image was loaded");
    let dst = format!("{}/dst:1", reg.addr);
    store.run(&["tag", id, &dst]).success();

    let run = store.run(&["push", &dst]).success();
    assert_eq!(pushed_digest(&run, "1").0, src_digest, "{}", run.stdout);
    let info = json(&tool(
        "skopeo",
        &["inspect", "--tls-verify=false", &format!("docker://{dst}")],
    ));
    assert_eq!(info["Digest"], src_digest.as_str());
}

#[test]
fn large_blobs_go_up_in_chunks() {
    let store = TestStore::new("push-chunks");
    store.busybox("busybox");
    let reg = Registry::start("push-chunks", RegistryAuth::Anonymous);
    let name = format!("{}/chunky:1", reg.addr);
    store.run(&["tag", "busybox", &name]).success();

    let chunk = 256 * 1024;
    let run = run_env(
        &store,
        &[("RBUILD_PUSH_CHUNK_SIZE", &chunk.to_string())],
        &["push", &name],
    )
    .success();
    let (digest, _) = pushed_digest(&run, "1");
    // (The harness's GET sends `Accept: */*`, to which distribution answers with a
    // converted schema 1 manifest; skopeo asks for what was pushed.)
    let raw = tool(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--raw",
            &format!("docker://{name}"),
        ],
    );
    assert_eq!(format!("sha256:{}", sha256_hex(raw.as_bytes())), digest);
    let layer = &json(&raw)["layers"][0];
    let layer_digest = layer["digest"].as_str().unwrap();
    let layer_size = layer["size"].as_u64().unwrap();
    assert!(
        layer_size > 2 * chunk,
        "busybox's layer ({layer_size} bytes) should need several chunks"
    );

    // The access log shows one PATCH per chunk of the layer, and what the registry
    // serves hashes to the digest.
    let log = reg.log();
    let patches = log
        .lines()
        .filter(|l| l.contains("\"PATCH /v2/chunky/blobs/uploads/"))
        .count() as u64;
    assert_eq!(patches, layer_size.div_ceil(chunk), "{log}");
    let blob = reg.get(&format!("/v2/chunky/blobs/{layer_digest}"));
    assert_eq!(blob.status, 200);
    assert_eq!(format!("sha256:{}", sha256_hex(&blob.body)), layer_digest);
}

#[test]
fn all_tags_quiet_and_missing_images() {
    let store = TestStore::new("push-tags");
    store.busybox("busybox");
    let reg = Registry::start("push-tags", RegistryAuth::Anonymous);
    let repo = format!("{}/multi", reg.addr);
    for t in ["a", "b"] {
        store
            .run(&["tag", "busybox", &format!("{repo}:{t}")])
            .success();
    }
    let run = store.run(&["push", "-a", &repo]).success();
    assert_eq!(
        run.stdout
            .matches(&format!("The push refers to repository [{repo}]"))
            .count(),
        1,
        "{}",
        run.stdout
    );
    let (da, _) = pushed_digest(&run, "a");
    let (db, _) = pushed_digest(&run, "b");
    assert_eq!(da, db, "one image under two tags");
    let tags = reg.get("/v2/multi/tags/list");
    let tags = json(std::str::from_utf8(&tags.body).unwrap());
    let mut listed: Vec<&str> = tags["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    listed.sort();
    assert_eq!(listed, ["a", "b"], "{tags}");

    // Quiet: only the reference pushed.
    let q = store.run(&["push", "-q", &format!("{repo}:a")]).success();
    assert_eq!(q.stdout, format!("{repo}:a\n"));

    // Without a tag, docker pushes :latest, which this repository does not have.
    store
        .run(&["push", &repo])
        .failure()
        .stderr_contains(&format!("tag does not exist: {repo}:latest"));
    store
        .run(&["push", "-a", &format!("{repo}:a")])
        .failure()
        .stderr_contains("tag can't be used with --all-tags/-a");
    store
        .run(&["push", &format!("{}/nothere:1", reg.addr)])
        .failure()
        .stderr_contains(&format!(
            "An image does not exist locally with the tag: {}/nothere",
            reg.addr
        ));
    assert_eq!(reg.get("/v2/nothere/tags/list").status, 404);
}

#[test]
fn failed_pushes_name_the_host_or_blob_and_put_no_manifest() {
    let store = TestStore::new("push-fail");
    // A gzip layer is kept as received, so it is pushed as it is stored.
    let gz = TempDir::new("push-fail-gz");
    let tar_gz = gz.0.join("busybox.tar.gz");
    let mut enc = flate2::write::GzEncoder::new(
        fs::File::create(&tar_gz).unwrap(),
        flate2::Compression::fast(),
    );
    std::io::copy(
        &mut fs::File::open(crate::util::busybox_tar()).unwrap(),
        &mut enc,
    )
    .unwrap();
    enc.finish().unwrap();
    store.run(&["import", p(&tar_gz), "busybox"]).success();

    // Nothing listening: the error names the host, after the retries.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gone = format!("127.0.0.1:{port}/x:1");
    store.run(&["tag", "busybox", &gone]).success();
    store
        .run(&["push", &gone])
        .failure()
        .stderr_contains(&format!("cannot reach 127.0.0.1:{port}"));

    // A layer whose stored bytes no longer match its digest: the registry refuses it,
    // the error names it, and the tag is never written.
    let reg = Registry::start("push-fail", RegistryAuth::Anonymous);
    let name = format!("{}/broken:1", reg.addr);
    store.run(&["tag", "busybox", &name]).success();
    let diff_id = store
        .run(&["inspect", "-f", "{{index .RootFS.Layers 0}}", "busybox"])
        .success()
        .stdout
        .trim()
        .to_string();
    let blobs = store.root().join("blobs/sha256");
    let gz_blob = fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|f| {
            fs::read(f).is_ok_and(|b| b.starts_with(&[0x1f, 0x8b]))
                && !diff_id.ends_with(&*f.file_name().unwrap().to_string_lossy())
        })
        .expect("the stored gzip layer");
    let mut bytes = fs::read(&gz_blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&gz_blob, &bytes).unwrap();
    let digest = format!("sha256:{}", gz_blob.file_name().unwrap().to_string_lossy());
    let run = store
        .run(&["push", &name])
        .failure()
        .stderr_contains(&digest);
    assert!(run.stdout.contains("Retrying in"), "{}", run.stdout);
    assert_eq!(reg.get("/v2/broken/manifests/1").status, 404);
    assert_eq!(reg.get("/v2/broken/tags/list").status, 404);
}

/// Pushes busybox as `repo:1` through `proxy` in chunks of 256 KiB (several for its
/// layer); returns the run and the registry's access log.
fn push_through(
    store: &TestStore,
    reg: &Registry,
    proxy: &FaultProxy,
    repo: &str,
) -> (Run, String) {
    let name = format!("{}/{repo}:1", proxy.addr());
    store.run(&["tag", "busybox", &name]).success();
    let run = run_env(
        store,
        &[("RBUILD_PUSH_CHUNK_SIZE", "262144")],
        &["push", &name],
    );
    (run, reg.log())
}

/// The push succeeded and the registry holds its manifest, whose layers it serves with
/// the right digests.
#[track_caller]
fn assert_pushed_whole(run: Run, reg: &Registry, name: &str) {
    let run = run.success();
    let (digest, _) = pushed_digest(&run, "1");
    let raw = tool(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--raw",
            &format!("docker://{}/{name}:1", reg.addr),
        ],
    );
    assert_eq!(format!("sha256:{}", sha256_hex(raw.as_bytes())), digest);
    for l in json(&raw)["layers"].as_array().unwrap() {
        let d = l["digest"].as_str().unwrap();
        let blob = reg.get(&format!("/v2/{name}/blobs/{d}"));
        assert_eq!(blob.status, 200);
        assert_eq!(format!("sha256:{}", sha256_hex(&blob.body)), d);
    }
}

#[test]
fn a_refused_chunk_resumes_from_the_registrys_count() {
    let store = TestStore::new("push-resume");
    store.busybox("busybox");
    let reg = Registry::start("push-resume", RegistryAuth::Anonymous);
    let proxy = FaultProxy::start(&reg.addr);
    // The second PATCH never reaches the registry; the client asks the registry how much
    // it has and goes on from there, in the same session.
    proxy.fail_after(
        "PATCH",
        "/v2/resume/blobs/uploads/",
        1,
        1,
        Fault::status(416),
    );
    let (run, log) = push_through(&store, &reg, &proxy, "resume");
    let status_gets = log
        .lines()
        .filter(|l| l.contains("\"GET /v2/resume/blobs/uploads/"))
        .count();
    assert_eq!(status_gets, 1, "{log}");
    let sessions = log
        .lines()
        .filter(|l| l.contains("\"POST /v2/resume/blobs/uploads/"))
        .count();
    // One for the config, one for the layer: no second session for the layer.
    assert_eq!(sessions, 2, "{log}");
    // The refused chunk was sent again and the registry got every chunk once.
    let patches: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.method == "PATCH")
        .collect();
    assert!(patches[1].fault.is_some(), "{patches:?}");
    assert!(
        patches.iter().skip(2).all(|p| p.fault.is_none()),
        "{patches:?}"
    );
    let forwarded = log
        .lines()
        .filter(|l| l.contains("\"PATCH /v2/resume/blobs/uploads/"))
        .count();
    assert_eq!(forwarded, patches.len() - 1, "{log}");
    assert!(!run.stdout.contains("Retrying"), "{}", run.stdout);
    assert_pushed_whole(run, &reg, "resume");
}

#[test]
fn a_lost_upload_session_starts_over() {
    let store = TestStore::new("push-restart");
    store.busybox("busybox");
    let reg = Registry::start("push-restart", RegistryAuth::Anonymous);
    let proxy = FaultProxy::start(&reg.addr);
    // A PATCH fails and the session is gone too (the registry lost it): a new session
    // from byte 0, announced as docker does.
    proxy.fail_after(
        "PATCH",
        "/v2/restart/blobs/uploads/",
        1,
        1,
        Fault::status(400),
    );
    proxy.fail("GET", "/v2/restart/blobs/uploads/", 1, Fault::status(404));
    let (run, log) = push_through(&store, &reg, &proxy, "restart");
    let sessions = log
        .lines()
        .filter(|l| l.contains("\"POST /v2/restart/blobs/uploads/"))
        .count();
    // The config's, the layer's first, and the layer's second.
    assert_eq!(sessions, 3, "{log}");
    assert!(run.stdout.contains("Retrying in"), "{}", run.stdout);
    assert_pushed_whole(run, &reg, "restart");
}

#[test]
fn a_refused_mount_uploads_in_the_session_the_registry_opened() {
    let store = TestStore::new("push-mount-202");
    store.busybox("busybox");
    let reg = Registry::start("push-mount-202", RegistryAuth::Anonymous);
    let first = format!("{}/first:1", reg.addr);
    store.run(&["tag", "busybox", &first]).success();
    store.run(&["push", &first]).success();

    // The store still believes `first` holds the layer, but the registry no longer
    // links it there: the mount is refused and an upload session opened instead.
    let raw = tool(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            "--raw",
            &format!("docker://{first}"),
        ],
    );
    let layer = json(&raw)["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        http_request(
            "DELETE",
            &reg.addr,
            &format!("/v2/first/blobs/{layer}"),
            &[],
            b""
        )
        .unwrap()
        .status,
        202,
        "{}",
        reg.log()
    );
    let second = format!("{}/second:1", reg.addr);
    store.run(&["tag", "busybox", &second]).success();
    let run = store.run(&["push", &second]).success();
    assert!(run.stdout.contains(": Pushed\n"), "{}", run.stdout);
    assert!(!run.stdout.contains("Mounted"), "{}", run.stdout);
    let log = reg.log();
    let posts: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"POST /v2/second/blobs/uploads/"))
        .collect();
    // One mount request per blob (the config mounts, the layer is refused), and no
    // session opened beside the one the refused mount opened.
    assert_eq!(posts.len(), 2, "{log}");
    assert!(posts.iter().all(|l| l.contains("mount=")), "{log}");
    let blob = reg.get(&format!("/v2/second/blobs/{layer}"));
    assert_eq!(blob.status, 200);
    assert_eq!(format!("sha256:{}", sha256_hex(&blob.body)), layer);
    store.run(&["system", "check"]).success();
}

#[test]
fn token_auth_push_asks_for_the_mount_source_too() {
    use base64::Engine;
    let store = TestStore::new("push-token");
    store.busybox("busybox");
    let reg = Registry::start("push-token", RegistryAuth::token("dora", "pw"));
    let home = TempDir::new("push-token-home");
    let docker = home.0.join("docker");
    fs::create_dir_all(&docker).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("dora:pw");
    fs::write(
        docker.join("config.json"),
        format!(r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#, reg.addr),
    )
    .unwrap();
    let env = [
        ("DOCKER_CONFIG", docker.to_str().unwrap()),
        ("HOME", home.0.to_str().unwrap()),
    ];

    // Without credentials: refused, naming the host, and nothing is tagged.
    let first = format!("{}/team/a:1", reg.addr);
    store.run(&["tag", "busybox", &first]).success();
    let empty = home.0.join("empty");
    fs::create_dir_all(&empty).unwrap();
    run_env(
        &store,
        &[
            ("DOCKER_CONFIG", empty.to_str().unwrap()),
            ("HOME", home.0.to_str().unwrap()),
        ],
        &["push", &first],
    )
    .failure()
    .stderr_contains(&format!("{}: unauthorized", reg.addr));

    run_env(&store, &env, &["push", &first]).success();
    let second = format!("{}/team/b:1", reg.addr);
    store.run(&["tag", "busybox", &second]).success();
    let run = run_env(&store, &env, &["push", &second]).success();
    assert!(
        run.stdout.contains(": Mounted from team/a\n"),
        "{}",
        run.stdout
    );
    // The mount's token covers both repositories in one request.
    let tokens = reg.token_requests();
    assert!(
        tokens.iter().any(|t| {
            t.status == 200
                && t.scopes.iter().any(|s| s == "repository:team/b:pull,push")
                && t.scopes.iter().any(|s| s == "repository:team/a:pull")
        }),
        "{tokens:#?}"
    );
    // Every token for the second push was asked for with the stored credentials.
    let for_b: Vec<_> = tokens
        .iter()
        .filter(|t| t.scopes.iter().any(|s| s.starts_with("repository:team/b:")))
        .collect();
    assert!(
        !for_b.is_empty()
            && for_b
                .iter()
                .all(|t| t.basic_user.as_deref() == Some("dora")),
        "{tokens:#?}"
    );
    assert!(!run.stdout.contains("pw") && !run.stderr.contains("pw"));
}
