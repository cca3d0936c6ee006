//! Pull and push under faults and under auth, end to end (issue 5): `rbuild pull` and
//! `rbuild push` talk to a real `docker-registry` through [`FaultProxy`], which breaks
//! chosen requests on purpose (5xx, 429, a body cut or corrupted, a server that stops
//! answering, redirects to other hosts, an upload cut mid-way), and with Basic and
//! Bearer auth (scoped tokens, reused, fetched again when the registry refuses one).
//! After each fault the store is as it was, or holds the right image, and passes
//! `system check`; no output of any command here holds a password, a Basic or Bearer
//! value, a token or a registry URL's query string.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::fault_proxy::{EvilServer, Fault, FaultProxy, Seen, StorageServer};
use crate::login::base64;
use crate::registry_seed::{digest, skopeo};
use crate::registry_transport::{assert_clean, bearer};
use crate::registry_util::{Registry, RegistryAuth, http_request};
use crate::token_server::basic_auth;
use crate::util::{Run, TempDir, TestStore, require_root, run_command};

/// A docker config directory and HOME for one test, shared by its stores, and the
/// secrets no output may show.
struct Docker {
    dir: TempDir,
    secrets: Vec<String>,
}

impl Docker {
    /// `user`/`password`: the credentials the test logs in with, if any.
    fn new(tag: &str, creds: Option<(&str, &str)>) -> Docker {
        require_root();
        let dir = TempDir::new(&format!("{tag}-docker"));
        for sub in ["docker", "home"] {
            std::fs::create_dir_all(dir.0.join(sub)).unwrap();
        }
        let secrets = creds
            .map(|(u, p)| vec![p.to_string(), base64(&format!("{u}:{p}"))])
            .unwrap_or_default();
        Docker { dir, secrets }
    }

    /// `rbuild --root STORE ARGS` with this DOCKER_CONFIG and HOME, and `envs`; checks
    /// that nothing secret was printed, whatever the outcome.
    fn run(
        &self,
        store: &TestStore,
        args: &[&str],
        stdin: Option<&str>,
        envs: &[(&str, &str)],
    ) -> Run {
        let root = store.root().to_str().unwrap();
        let mut all = vec!["--root", root];
        all.extend_from_slice(args);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rbuild"));
        cmd.env("DOCKER_CONFIG", self.dir.0.join("docker"))
            .env("HOME", self.dir.0.join("home"))
            .env_remove("RBUILD_INSECURE_REGISTRIES")
            .env_remove("RBUILD_REGISTRY_TIMEOUT")
            .env_remove("RBUILD_PUSH_CHUNK_SIZE")
            .envs(envs.iter().copied())
            .current_dir(store.root());
        let (run, _) = run_command(cmd, &all, stdin.map(str::as_bytes));
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        assert_clean(&run, &secrets);
        run
    }

    fn rb(&self, store: &TestStore, args: &[&str]) -> Run {
        self.run(store, args, None, &[])
    }

    fn login(&self, store: &TestStore, server: &str, user: &str, password: &str) -> Run {
        self.run(
            store,
            &["login", "-u", user, "--password-stdin", server],
            Some(password),
            &[],
        )
    }
}

/// Bytes that gzip cannot shrink (xorshift), so a layer of `len` bytes stays that big
/// on the wire.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A layer tar holding one file.
fn tar_of(name: &str, data: &[u8]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, name, data).unwrap();
    tar.into_inner().unwrap()
}

/// Imports a one-layer image into `store` (a file of `len` bytes of noise) as `name`;
/// returns its ID.
fn import_noise(store: &TestStore, name: &str, len: usize, seed: u64) -> String {
    let tmp = TempDir::new("faults-layer");
    let tar = tmp.0.join("layer.tar");
    std::fs::write(&tar, tar_of("noise.bin", &noise(len, seed))).unwrap();
    store
        .run(&["import", tar.to_str().unwrap(), name])
        .success()
        .stdout
        .trim()
        .to_string()
}

/// The Docker v2 manifest of `repo:tag` as the registry at `addr` holds it, asked with
/// `auth` when given (the tests' own client).
fn manifest(addr: &str, repo: &str, tag: &str, auth: Option<&str>) -> serde_json::Value {
    let mut headers = vec![(
        "Accept",
        "application/vnd.docker.distribution.manifest.v2+json",
    )];
    if let Some(a) = auth {
        headers.push(("Authorization", a));
    }
    let res = http_request(
        "GET",
        addr,
        &format!("/v2/{repo}/manifests/{tag}"),
        &headers,
        b"",
    )
    .unwrap();
    assert_eq!(
        res.status,
        200,
        "manifest {repo}:{tag}: {res:?}\n{}",
        String::from_utf8_lossy(&res.body)
    );
    serde_json::from_slice(&res.body).unwrap()
}

/// The layer blob digests a manifest lists, bottom first.
fn layer_digests(m: &serde_json::Value) -> Vec<String> {
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// An image in a registry, as its source store knows it.
struct Seeded {
    id: String,
    /// The one layer's blob digest.
    layer: String,
    layer_size: u64,
    /// `{{json .RootFS.Layers}}` in the source store.
    diff_ids: String,
    /// What the layer's one file, `noise.bin`, holds.
    content: Vec<u8>,
}

/// Imports a one-layer image of `len` bytes into `src` as `registry/repo:1` and pushes
/// it there (to the registry itself or through a proxy, with `docker`'s credentials).
fn seed(
    src: &TestStore,
    docker: &Docker,
    registry: &str,
    repo: &str,
    len: usize,
    manifest_from: (&str, Option<&str>),
) -> Seeded {
    let name = format!("{registry}/{repo}:1");
    let seed = 0x5eed ^ len as u64;
    let id = import_noise(src, &name, len, seed);
    docker.rb(src, &["push", &name]).success();
    let m = manifest(manifest_from.0, repo, "1", manifest_from.1);
    assert_eq!(m["config"]["digest"], id.as_str(), "{m}");
    Seeded {
        id,
        layer: layer_digests(&m).remove(0),
        layer_size: m["layers"][0]["size"].as_u64().unwrap(),
        diff_ids: inspect(src, &name, "{{json .RootFS.Layers}}"),
        content: noise(len, seed),
    }
}

fn inspect(store: &TestStore, image: &str, format: &str) -> String {
    store
        .run(&["inspect", "-f", format, image])
        .success()
        .stdout
        .trim()
        .to_string()
}

/// What a failed pull must leave as it found it: images and tags, blobs, layers.
#[derive(Debug, PartialEq, Eq)]
struct StoreState {
    images: String,
    blobs: Vec<String>,
    layers: Vec<String>,
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

fn state(store: &TestStore) -> StoreState {
    StoreState {
        images: store
            .run(&["images", "-a", "--no-trunc", "--digests"])
            .success()
            .stdout,
        blobs: names(&store.root().join("blobs/sha256")),
        layers: names(&store.root().join("layers")),
    }
}

/// `system check` finds nothing wrong and no write was left unfinished.
#[track_caller]
fn check_store(store: &TestStore) {
    let check = store.run(&["system", "check"]).success();
    assert!(
        check.stdout.contains("no problems found") && !check.stdout.contains("unfinished"),
        "{}",
        check.stdout
    );
    for dir in ["ingest", "tmp"] {
        let left = names(&store.root().join(dir));
        assert!(left.is_empty(), "left in {dir}/: {left:?}");
    }
}

/// The requests for `path`, as (fault applied, Range, status).
fn requests_for(seen: &[Seen], path: &str) -> Vec<(bool, Option<String>, Option<u16>)> {
    seen.iter()
        .filter(|s| s.path == path)
        .map(|s| (s.fault.is_some(), s.range.clone(), s.status))
        .collect()
}

/// An anonymous registry holding `big:1` (one layer of `len` bytes), a proxy in front of
/// it, and an empty store to pull into.
fn pull_setup(tag: &str, len: usize) -> (Registry, FaultProxy, Docker, Seeded, TestStore) {
    let reg = Registry::start(tag, RegistryAuth::Anonymous);
    let docker = Docker::new(tag, None);
    let src = TestStore::new(&format!("{tag}-src"));
    let seeded = seed(&src, &docker, &reg.addr, "big", len, (&reg.addr, None));
    let proxy = FaultProxy::start(&reg.addr);
    (reg, proxy, docker, seeded, TestStore::new(tag))
}

/// The pulled image is the one pushed: same ID and layers, the layer blob stored under
/// its digest with bytes that hash to it, and, once the packed layer is extracted on
/// first use, the file in the layer as it was.
#[track_caller]
fn assert_pulled(store: &TestStore, reference: &str, seeded: &Seeded) {
    assert_eq!(inspect(store, reference, "{{.Id}}"), seeded.id);
    assert_eq!(
        inspect(store, reference, "{{json .RootFS.Layers}}"),
        seeded.diff_ids
    );
    let blob = store
        .root()
        .join("blobs/sha256")
        .join(seeded.layer.trim_start_matches("sha256:"));
    let bytes = std::fs::read(&blob).unwrap_or_else(|e| panic!("{}: {e}", blob.display()));
    assert_eq!(bytes.len() as u64, seeded.layer_size);
    assert_eq!(digest(&bytes), seeded.layer);
    let diff_ids: Vec<String> = serde_json::from_str(&seeded.diff_ids).unwrap();
    let tree = store
        .root()
        .join("layers")
        .join(diff_ids[0].trim_start_matches("sha256:"));
    assert!(
        !tree.exists(),
        "a pull extracts nothing: {}",
        tree.display()
    );
    check_store(store);
    let lib = rbuild_builder::store::Store::open(store.root()).unwrap();
    let extracted = lib.layer_tree(&diff_ids[0].parse().unwrap()).unwrap();
    assert_eq!(extracted, tree.join("diff"));
    let file = tree.join("diff/noise.bin");
    let got = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert!(got == seeded.content, "{} differs", file.display());
    check_store(store);
}

#[test]
fn pull_retries_a_layer_answered_503() {
    let (_reg, proxy, docker, seeded, s) = pull_setup("faults-503", 1 << 20);
    let layer_path = format!("/v2/big/blobs/{}", seeded.layer);
    proxy.fail("GET", &layer_path, 2, Fault::status(503));
    let reference = format!("{}/big:1", proxy.addr());
    docker.rb(&s, &["pull", &reference]).success();
    assert_eq!(
        requests_for(&proxy.seen(), &layer_path),
        [
            (true, None, Some(503)),
            (true, None, Some(503)),
            (false, None, Some(200))
        ]
    );
    assert_pulled(&s, &reference, &seeded);
}

#[test]
fn pull_waits_for_retry_after_on_a_429_manifest() {
    let (_reg, proxy, docker, seeded, s) = pull_setup("faults-429", 256 << 10);
    proxy.fail(
        "GET",
        "/v2/big/manifests/1",
        1,
        Fault::Status(429, vec![("Retry-After".into(), "1".into())]),
    );
    let reference = format!("{}/big:1", proxy.addr());
    let start = Instant::now();
    docker.rb(&s, &["pull", &reference]).success();
    let took = start.elapsed();
    let manifests: Vec<Option<u16>> = proxy
        .seen()
        .iter()
        .filter(|s| s.path == "/v2/big/manifests/1")
        .map(|s| s.status)
        .collect();
    assert_eq!(manifests, [Some(429), Some(200)]);
    // The client's own first backoff is 250 ms: a second means Retry-After was obeyed.
    assert!(took >= Duration::from_secs(1), "pulled in {took:?}");
    assert_pulled(&s, &reference, &seeded);
}

#[test]
fn pull_resumes_a_layer_cut_halfway() {
    let (_reg, proxy, docker, seeded, s) = pull_setup("faults-drop", 3 << 20);
    let layer_path = format!("/v2/big/blobs/{}", seeded.layer);
    let half = seeded.layer_size / 2;
    proxy.fail("GET", &layer_path, 1, Fault::DropAfter(half));
    let reference = format!("{}/big:1", proxy.addr());
    docker.rb(&s, &["pull", &reference]).success();
    // The second request asks for the rest, and the registry's 206 gives it.
    assert_eq!(
        requests_for(&proxy.seen(), &layer_path),
        [
            (true, None, Some(200)),
            (false, Some(format!("bytes={half}-")), Some(206))
        ]
    );
    assert_pulled(&s, &reference, &seeded);
}

#[test]
fn pull_asks_again_for_a_manifest_and_config_cut_mid_body() {
    let (_reg, proxy, docker, seeded, s) = pull_setup("faults-small-cut", 256 << 10);
    let manifest_path = "/v2/big/manifests/1";
    let config_path = format!("/v2/big/blobs/{}", seeded.id);
    proxy.fail("GET", manifest_path, 1, Fault::DropAfter(100));
    proxy.fail("GET", &config_path, 1, Fault::DropAfter(50));
    let reference = format!("{}/big:1", proxy.addr());
    docker.rb(&s, &["pull", &reference]).success();
    // Each small body is read whole: a cut one is asked for again, from the start.
    for path in [manifest_path, config_path.as_str()] {
        let got = requests_for(&proxy.seen(), path);
        assert_eq!(got.len(), 2, "{path}: {got:?}");
        assert!(
            got.iter().all(|(_, range, _)| range.is_none()),
            "{path}: {got:?}"
        );
    }
    assert_pulled(&s, &reference, &seeded);
}

#[test]
fn pull_of_a_corrupted_layer_names_the_digest_and_stores_nothing() {
    let (_reg, proxy, docker, seeded, s) = pull_setup("faults-corrupt", 1 << 20);
    let layer_path = format!("/v2/big/blobs/{}", seeded.layer);
    proxy.fail("GET", &layer_path, 100, Fault::CorruptBody);
    let before = state(&s);
    let reference = format!("{}/big:1", proxy.addr());
    docker
        .rb(&s, &["pull", &reference])
        .failure()
        .stderr_contains("digest mismatch")
        .stderr_contains(&seeded.layer);
    assert!(proxy.count("GET", &layer_path) >= 1);
    assert_eq!(state(&s), before);
    assert_eq!(s.run(&["images", "-a", "-q"]).success().stdout, "");
    check_store(&s);
}

#[test]
fn pull_from_a_registry_that_stops_answering_times_out_naming_the_host() {
    let (_reg, proxy, docker, seeded, s) = pull_setup("faults-stall", 256 << 10);
    let layer_path = format!("/v2/big/blobs/{}", seeded.layer);
    proxy.fail("GET", &layer_path, 100, Fault::Stall);
    let before = state(&s);
    let reference = format!("{}/big:1", proxy.addr());
    let start = Instant::now();
    docker
        .run(
            &s,
            &["pull", &reference],
            None,
            &[("RBUILD_REGISTRY_TIMEOUT", "1")],
        )
        .failure()
        .stderr_contains(&format!("{} did not answer", proxy.addr()))
        .stderr_contains(&seeded.layer);
    let took = start.elapsed();
    assert!(took < Duration::from_secs(20), "gave up after {took:?}");
    let tries = proxy.count("GET", &layer_path);
    assert!((2..=5).contains(&tries), "{tries} tries");
    assert_eq!(state(&s), before);
    check_store(&s);
}

/// Credentials go to the registry, never along a redirect to another host: one that
/// asks for them gets none and the pull fails saying so; a blob store that needs none
/// (as real registries redirect blob downloads to) serves the layer.
#[test]
fn pull_with_credentials_follows_redirects_without_them() {
    let (user, password) = ("alice", "pw-faults-Rd71");
    let reg = Registry::start("faults-redirect", RegistryAuth::htpasswd(user, password));
    let proxy = FaultProxy::start(&reg.addr);
    let docker = Docker::new("faults-redirect", Some((user, password)));
    let src = TestStore::new("faults-redirect-src");
    docker
        .login(&src, proxy.addr(), user, password)
        .success()
        .stdout_contains("Login Succeeded");
    let auth = basic_auth(user, password);
    let seeded = seed(
        &src,
        &docker,
        proxy.addr(),
        "big",
        1 << 20,
        (&reg.addr, Some(&auth)),
    );
    let layer_path = format!("/v2/big/blobs/{}", seeded.layer);
    let reference = format!("{}/big:1", proxy.addr());

    let mark = proxy.seen().len();
    let evil = EvilServer::start();
    proxy.fail(
        "GET",
        &layer_path,
        1,
        Fault::Redirect(format!("http://{}{layer_path}", evil.addr())),
    );
    let s = TestStore::new("faults-redirect");
    let before = state(&s);
    docker
        .rb(&s, &["pull", &reference])
        .failure()
        .stderr_contains(&seeded.layer)
        .stderr_contains(&format!("{} redirected to {}", proxy.addr(), evil.addr()))
        .stderr_contains("they are not sent to another host");
    let asked: Vec<bool> = proxy.seen()[mark..]
        .iter()
        .filter(|s| s.path == layer_path)
        .map(|s| s.authorization)
        .collect();
    assert_eq!(asked, [true], "the redirected request carried credentials");
    let at_evil = evil.seen();
    assert!(!at_evil.is_empty(), "the redirect was not followed");
    assert!(
        at_evil.iter().all(|s| !s.authorization),
        "credentials went to {}: {at_evil:#?}",
        evil.addr()
    );
    assert_eq!(state(&s), before);
    check_store(&s);

    let storage = StorageServer::start(&reg.dir.0.join("storage"));
    proxy.fail(
        "GET",
        &layer_path,
        1,
        Fault::Redirect(format!("http://{}{layer_path}", storage.addr())),
    );
    docker.rb(&s, &["pull", &reference]).success();
    let at_storage: Vec<(Option<u16>, bool)> = storage
        .seen()
        .iter()
        .map(|s| (s.status, s.authorization))
        .collect();
    assert_eq!(at_storage, [(Some(200), false)]);
    assert_pulled(&s, &reference, &seeded);
}

/// A three-layer image in `store` named `name` (an imported layer and two COPYs, each a
/// file of noise), with its manifest recorded by a push to `scratch`: its blob digests
/// (bottom first) and its config's.
fn three_layers(store: &TestStore, docker: &Docker, name: &str, scratch: &Registry) -> Vec<String> {
    import_noise(store, "faults-base", 900 << 10, 1);
    let ctx = TempDir::new("faults-ctx");
    std::fs::write(ctx.0.join("a.bin"), noise(700 << 10, 2)).unwrap();
    std::fs::write(ctx.0.join("b.bin"), noise(500 << 10, 3)).unwrap();
    ctx.write(
        "Dockerfile",
        "FROM faults-base\nCOPY a.bin /a.bin\nCOPY b.bin /b.bin\n",
    );
    store
        .run(&["build", "-q", "-t", name, ctx.0.to_str().unwrap()])
        .success();
    // A push elsewhere records the manifest, so the push under test sends the same
    // blobs; the digests say which upload requests to break.
    let other = format!("{}/dry:1", scratch.addr);
    store.run(&["tag", name, &other]).success();
    docker.rb(store, &["push", &other]).success();
    let m = manifest(&scratch.addr, "dry", "1", None);
    let mut blobs = layer_digests(&m);
    blobs.push(m["config"]["digest"].as_str().unwrap().to_string());
    blobs
}

fn short_diff_ids(store: &TestStore, image: &str) -> Vec<String> {
    let layers: Vec<String> =
        serde_json::from_str(&inspect(store, image, "{{json .RootFS.Layers}}")).unwrap();
    layers.iter().map(|l| l[7..19].to_string()).collect()
}

/// The `TAG: digest: sha256:… size: N` line's digest.
#[track_caller]
fn pushed_digest(run: &Run, tag: &str) -> String {
    let prefix = format!("{tag}: digest: ");
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{}", run.stdout));
    line[prefix.len()..].split(' ').next().unwrap().to_string()
}

#[track_caller]
fn blob_status(reg: &Registry, repo: &str, digest: &str) -> u16 {
    http_request(
        "HEAD",
        &reg.addr,
        &format!("/v2/{repo}/blobs/{digest}"),
        &[],
        b"",
    )
    .unwrap()
    .status
}

/// One layer's upload fails whatever is tried: the push fails naming it and the host,
/// no manifest is put, the other blobs are up. Run again without the fault, it skips
/// them, pushes the missing one and puts the manifest last.
#[test]
fn an_interrupted_push_run_again_skips_what_is_there() {
    let reg = Registry::start("faults-push", RegistryAuth::Anonymous);
    let scratch = Registry::start("faults-push-dry", RegistryAuth::Anonymous);
    let proxy = FaultProxy::start(&reg.addr);
    let docker = Docker::new("faults-push", None);
    let store = TestStore::new("faults-push");
    let name = format!("{}/app:1", proxy.addr());
    let blobs = three_layers(&store, &docker, &name, &scratch);
    let ids = short_diff_ids(&store, &name);
    let broken = &blobs[1];
    let broken_hex = broken.trim_start_matches("sha256:");
    proxy.fail_query(
        "PUT",
        "/v2/app/blobs/uploads/",
        broken_hex,
        1000,
        Fault::status(500),
    );
    docker
        .rb(&store, &["push", &name])
        .failure()
        .stderr_contains(broken)
        .stderr_contains(proxy.addr());
    let puts: Vec<Option<u16>> = proxy
        .seen()
        .iter()
        .filter(|s| s.method == "PUT" && s.query.contains(broken_hex))
        .map(|s| s.status)
        .collect();
    assert!(
        puts.len() >= 5 && puts.iter().all(|s| *s == Some(500)),
        "{puts:?}"
    );
    assert_eq!(proxy.count("PUT", "/manifests/"), 0, "{:#?}", proxy.seen());
    assert_eq!(
        http_request("GET", &reg.addr, "/v2/app/manifests/1", &[], b"")
            .unwrap()
            .status,
        404
    );
    for b in blobs.iter().filter(|b| *b != broken) {
        assert_eq!(blob_status(&reg, "app", b), 200, "{b} was not uploaded");
    }
    assert_eq!(blob_status(&reg, "app", broken), 404);
    check_store(&store);

    proxy.clear();
    let mark = proxy.seen().len();
    let run = docker.rb(&store, &["push", &name]).success();
    for (i, id) in ids.iter().enumerate() {
        let line = if i == 1 {
            format!("{id}: Pushed\n")
        } else {
            format!("{id}: Layer already exists\n")
        };
        assert!(
            run.stdout.contains(&line),
            "no {line:?} in:\n{}",
            run.stdout
        );
    }
    let again: Vec<Seen> = proxy.seen()[mark..].to_vec();
    let last = again.last().unwrap();
    assert!(
        last.method == "PUT" && last.path == "/v2/app/manifests/1" && last.status == Some(201),
        "the manifest is not last: {again:#?}"
    );
    assert_eq!(proxy.count("PUT", "/manifests/"), 1);
    let digest = pushed_digest(&run, "1");
    let out = skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{}/app:1", reg.addr),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["Digest"], digest.as_str());
    assert_eq!(blob_status(&reg, "app", broken), 200);
    check_store(&store);
}

/// An upload chunk whose connection breaks mid-body (the registry read half of it):
/// the push goes on, from the registry's count or a new session, and the registry
/// ends up with the right bytes.
#[test]
fn a_push_whose_connection_breaks_mid_upload_completes() {
    let reg = Registry::start("faults-cut", RegistryAuth::Anonymous);
    let proxy = FaultProxy::start(&reg.addr);
    let docker = Docker::new("faults-cut", None);
    let store = TestStore::new("faults-cut");
    let name = format!("{}/cut:1", proxy.addr());
    import_noise(&store, &name, 2 << 20, 7);
    let chunk = 512 << 10;
    // The second chunk: the first went through, so the registry's session has moved on.
    proxy.fail_after(
        "PATCH",
        "/v2/cut/blobs/uploads/",
        1,
        1,
        Fault::CutRequest(200_000),
    );
    let run = docker
        .run(
            &store,
            &["push", &name],
            None,
            &[("RBUILD_PUSH_CHUNK_SIZE", &chunk.to_string())],
        )
        .success();
    let cut = proxy
        .seen()
        .iter()
        .filter(|s| s.method == "PATCH" && s.fault.is_some())
        .count();
    assert_eq!(cut, 1, "{:#?}", proxy.seen());
    // After the cut the client asks the registry how much of the session it holds.
    // distribution 2.8 has dropped a session whose PATCH broke (404), so the layer
    // starts over in a new one, announced as docker does.
    let seen = proxy.seen();
    let after_cut: Vec<(&str, Option<u16>)> = seen
        .iter()
        .skip_while(|s| s.fault.is_none())
        .skip(1)
        .filter(|s| s.path.starts_with("/v2/cut/blobs/uploads/"))
        .map(|s| (s.method.as_str(), s.status))
        .take(3)
        .collect();
    assert_eq!(
        after_cut,
        [
            ("PATCH", Some(404)),
            ("GET", Some(404)),
            ("POST", Some(202))
        ],
        "{seen:#?}"
    );
    assert!(run.stdout.contains("Retrying in"), "{}", run.stdout);
    let pushed = pushed_digest(&run, "1");
    let m = manifest(&reg.addr, "cut", "1", None);
    let raw = http_request(
        "GET",
        &reg.addr,
        "/v2/cut/manifests/1",
        &[(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )],
        b"",
    )
    .unwrap();
    assert_eq!(digest(&raw.body), pushed);
    let layer = &layer_digests(&m)[0];
    let blob = http_request(
        "GET",
        &reg.addr,
        &format!("/v2/cut/blobs/{layer}"),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(blob.status, 200);
    assert_eq!(&digest(&blob.body), layer);
    check_store(&store);
}

/// Requests rbuild made to the registry, from its access log.
fn registry_requests(reg: &Registry) -> usize {
    reg.log()
        .lines()
        .filter(|l| l.contains("\"rbuild/") && l.contains(" /v2/"))
        .count()
}

/// Push after `rbuild login`, pull back into an empty store with the same credentials:
/// the same image. Without a login the pull is refused naming the host, storing nothing.
fn push_and_pull_back(tag: &str, auth: RegistryAuth, user: &str, password: &str) -> Registry {
    let reg = Registry::start(tag, auth);
    let docker = Docker::new(tag, Some((user, password)));
    let src = TestStore::new(&format!("{tag}-src"));
    let name = format!("{}/team/app:1", reg.addr);
    let id = import_noise(&src, &name, 600 << 10, 11);

    // Nobody logged in yet.
    let dst = TestStore::new(tag);
    let before = state(&dst);
    docker
        .rb(&dst, &["pull", &name])
        .failure()
        .stderr_contains("unauthorized")
        .stderr_contains(&reg.addr);
    assert_eq!(state(&dst), before);

    docker
        .login(&src, &reg.addr, user, password)
        .success()
        .stdout_contains("Login Succeeded");
    let pushed = docker.rb(&src, &["push", &name]).success();
    let digest = pushed_digest(&pushed, "1");
    docker.rb(&dst, &["pull", &name]).success();
    assert_eq!(inspect(&dst, &name, "{{.Id}}"), id);
    assert!(
        inspect(&dst, &name, "{{.RepoDigests}}").contains(&digest),
        "{}",
        inspect(&dst, &name, "{{.RepoDigests}}")
    );
    check_store(&dst);
    check_store(&src);
    reg
}

#[test]
fn push_and_pull_with_basic_auth() {
    let (user, password) = ("alice", "pw-faults-Bb44");
    let reg = push_and_pull_back(
        "faults-basic",
        RegistryAuth::htpasswd(user, password),
        user,
        password,
    );
    // Once a command has met the challenge, every request carries the credentials:
    // 401s only for the first requests of each command, the pull without login (1),
    // login (1), push (2: config and layer start at once) and pull (1).
    let log = reg.log();
    let refused = log
        .lines()
        .filter(|l| l.contains("\"rbuild/") && l.contains("\" 401 "))
        .count();
    assert!(refused <= 5, "{refused} refused requests:\n{log}");
    assert!(registry_requests(&reg) >= 3 * refused, "{log}");
}

#[test]
fn push_and_pull_with_scoped_tokens_reused() {
    let (user, password) = ("alice", "pw-faults-Tk29");
    let reg = push_and_pull_back(
        "faults-token",
        RegistryAuth::token(user, password),
        user,
        password,
    );
    let tokens = reg.token_requests();
    let granted: Vec<String> = tokens
        .iter()
        .filter(|t| t.status == 200 && t.basic_user.as_deref() == Some(user))
        .map(|t| {
            let mut s = t.scopes.clone();
            s.sort();
            s.join(" ")
        })
        .collect();
    for scope in ["repository:team/app:pull,push", "repository:team/app:pull"] {
        assert!(
            granted.iter().any(|g| g == scope),
            "no token for {scope}: {tokens:#?}"
        );
    }
    // One token per scope set and command, give or take concurrent first requests; far
    // fewer than the registry requests they authorised.
    let mut distinct = granted.clone();
    distinct.sort();
    distinct.dedup();
    let requests = registry_requests(&reg);
    eprintln!(
        "{} token requests ({} granted to {user}, {} scope sets) for {requests} registry requests",
        tokens.len(),
        granted.len(),
        distinct.len()
    );
    assert!(
        granted.len() <= 2 * distinct.len(),
        "{} tokens for {} scope sets: {tokens:#?}",
        granted.len(),
        distinct.len()
    );
    assert!(
        tokens.len() * 2 <= requests,
        "{} token requests for {requests} registry requests",
        tokens.len()
    );
}

/// A token the registry stops accepting in the middle of a pull (the token server said
/// 300 s; the registry refuses it after 4 s, and the layer request is held 5.5 s): the
/// registry's 401 makes the client fetch a new token once and the layer comes.
#[test]
fn a_token_refused_mid_pull_is_fetched_again() {
    let (user, password) = ("alice", "pw-faults-Rf63");
    let reg = Registry::start("faults-refresh", RegistryAuth::token(user, password));
    let proxy = FaultProxy::start(&reg.addr);
    let docker = Docker::new("faults-refresh", Some((user, password)));
    let src = TestStore::new("faults-refresh-src");
    docker.login(&src, proxy.addr(), user, password).success();
    let token = bearer(&reg, user, password, &["repository:big:pull".to_string()]);
    let seeded = seed(
        &src,
        &docker,
        proxy.addr(),
        "big",
        256 << 10,
        (&reg.addr, Some(&token)),
    );
    let layer_path = format!("/v2/big/blobs/{}", seeded.layer);

    reg.token_server().set_valid_for(4);
    proxy.fail(
        "GET",
        &layer_path,
        1,
        Fault::Delay(Duration::from_millis(5500)),
    );
    let before = reg.token_requests().len();
    let mark = proxy.seen().len();
    let s = TestStore::new("faults-refresh");
    let reference = format!("{}/big:1", proxy.addr());
    let run = docker.rb(&s, &["pull", &reference]).success();
    assert!(!run.stderr.contains("unauthorized"), "{}", run.stderr);
    let layer: Vec<(bool, Option<u16>, bool)> = proxy.seen()[mark..]
        .iter()
        .filter(|s| s.path == layer_path)
        .map(|s| (s.fault.is_some(), s.status, s.authorization))
        .collect();
    assert_eq!(
        layer,
        [(true, Some(401), true), (false, Some(200), true)],
        "the held request's token was refused, then a new one worked"
    );
    let scopes: Vec<Vec<String>> = reg.token_requests()[before..]
        .iter()
        .map(|t| {
            assert_eq!(
                (t.status, t.basic_user.as_deref()),
                (200, Some(user)),
                "{t:?}"
            );
            t.scopes.clone()
        })
        .collect();
    assert_eq!(
        scopes,
        [
            vec!["repository:big:pull".to_string()],
            vec!["repository:big:pull".to_string()]
        ]
    );
    assert_pulled(&s, &reference, &seeded);
}
