//! `rbuild pull` and builds that pull, against a real `docker-registry` on 127.0.0.1
//! filled by other tools: `skopeo copy` of `rbuild save` archives (Docker schema 2,
//! plain tar layers) and `buildah` (OCI manifests, gzip layers, an image index). What
//! the registry must not hold (schema 1, lying digests) comes from a one-shot server.

use sha2::{Digest as _, Sha256};

use crate::registry_util::{Registry, RegistryAuth};
use crate::util::{TempDir, TestStore, json, serve, tool_output};

fn sha256(b: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(b))
}

/// The manifest bytes the registry holds for `reference` (`name:tag` or `name@digest`).
fn raw_manifest(reg: &Registry, reference: &str) -> Vec<u8> {
    tool_output(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}/{reference}", reg.addr),
        ],
    )
}

/// `rbuild save`s `image` from `store` and copies it into the registry as `target`.
fn push_saved(store: &TestStore, image: &str, reg: &Registry, target: &str) {
    let tmp = TempDir::new("pull-push");
    let archive = tmp.0.join("image.tar");
    store
        .run(&["save", "-o", archive.to_str().unwrap(), image])
        .success();
    tool_output(
        "skopeo",
        &[
            "copy",
            "-q",
            "--dest-tls-verify=false",
            &format!("docker-archive:{}", archive.display()),
            &format!("docker://{}/{target}", reg.addr),
        ],
    );
}

/// Blob downloads the registry has served so far (its access log).
fn blob_gets(reg: &Registry) -> usize {
    reg.log()
        .lines()
        .filter(|l| l.contains("\"GET /v2/") && l.contains("/blobs/sha256:"))
        .count()
}

#[track_caller]
fn check_store(s: &TestStore) {
    s.run(&["system", "check"])
        .success()
        .stdout_contains("no problems found");
}

/// The docker lines of a pull that downloads each of `layers` (short IDs), for a
/// non-terminal output.
fn downloaded(tag: &str, repo: &str, layers: &[&str], digest: &str, reference: &str) -> String {
    let mut out = format!("{tag}: Pulling from {repo}\n");
    for l in layers {
        out += &format!("{l}: Pulling fs layer\n");
    }
    for l in layers {
        for s in ["Verifying Checksum", "Download complete", "Pull complete"] {
            out += &format!("{l}: {s}\n");
        }
    }
    out +=
        &format!("Digest: {digest}\nStatus: Downloaded newer image for {reference}\n{reference}\n");
    out
}

#[test]
fn pull_gives_the_image_skopeo_pushed() {
    let reg = Registry::start("pull-basic", RegistryAuth::Anonymous);
    let src = TestStore::new("pull-basic-src");
    src.busybox("bb:1");
    push_saved(&src, "bb:1", &reg, "bb:1");
    let raw = raw_manifest(&reg, "bb:1");
    let digest = sha256(&raw);
    let m = json(&raw);
    let config = m["config"]["digest"].as_str().unwrap().to_string();
    let layer = m["layers"][0]["digest"].as_str().unwrap()[7..19].to_string();
    let addr = &reg.addr;
    let reference = format!("{addr}/bb:1");

    let s = TestStore::new("pull-basic");
    let run = s.run(&["pull", &reference]).success();
    assert_eq!(
        run.stdout,
        downloaded("1", "bb", &[&layer], &digest, &reference),
        "{}",
        run.stderr
    );
    assert_eq!(blob_gets(&reg), 2, "config and layer:\n{}", reg.log());
    // The image ID is the config digest the registry holds, with the same layers.
    let id = s.run(&["inspect", "-f", "{{.Id}}", &reference]).success();
    assert_eq!(id.stdout.trim(), config);
    let diff = |st: &TestStore, r: &str| {
        st.run(&["inspect", "-f", "{{json .RootFS.Layers}}", r])
            .success()
            .stdout
    };
    assert_eq!(diff(&s, &reference), diff(&src, "bb:1"));
    s.run(&["images", "--digests", "--no-trunc"])
        .success()
        .stdout_contains(&format!("{addr}/bb   1         {digest}   {config}"));
    s.run(&["inspect", "-f", "{{.RepoDigests}}", &reference])
        .success()
        .stdout_contains(&format!("{addr}/bb@{digest}"));
    check_store(&s);

    // Again: nothing downloaded, docker's words for it.
    let run = s.run(&["pull", &reference]).success();
    assert_eq!(
        run.stdout,
        format!(
            "1: Pulling from bb\nDigest: {digest}\nStatus: Image is up to date for {reference}\n{reference}\n"
        )
    );
    assert_eq!(blob_gets(&reg), 2, "{}", reg.log());
    // -q: the reference alone.
    let run = s.run(&["pull", "-q", &reference]).success();
    assert_eq!(run.stdout, format!("{reference}\n"));

    // No tag means latest; a tag that is new counts as newer even if the image is not.
    push_saved(&src, "bb:1", &reg, "bb:latest");
    let run = s.run(&["pull", &format!("{addr}/bb")]).success();
    assert_eq!(
        run.stdout,
        format!(
            "Using default tag: latest\nlatest: Pulling from bb\nDigest: {digest}\nStatus: Downloaded newer image for {addr}/bb:latest\n{addr}/bb:latest\n"
        )
    );

    // By digest, into another store: the reference is the digest one.
    let s2 = TestStore::new("pull-digest");
    let by_digest = format!("{addr}/bb@{digest}");
    let run = s2.run(&["pull", &by_digest]).success();
    assert_eq!(
        run.stdout,
        downloaded(&digest, "bb", &[&layer], &digest, &by_digest)
    );
    s2.run(&["images", "--digests", "--no-trunc"])
        .success()
        .stdout_contains(&format!("{addr}/bb   <none>    {digest}   {config}"));
    // A digest the registry does not have.
    let wrong = format!(
        "{}{}",
        &digest[..70],
        if digest.ends_with('0') { "1" } else { "0" }
    );
    let run = s2.run(&["pull", &format!("{addr}/bb@{wrong}")]).failure();
    assert!(
        run.stderr.contains(&format!(
            "error: manifest {addr}/bb@{wrong}: not found on {addr}: MANIFEST_UNKNOWN"
        )),
        "{}",
        run.stderr
    );
    // A single-platform image for this machine is refused for another.
    let run = s2
        .run(&["pull", "--platform", "linux/s390x", &reference])
        .failure();
    assert!(
        run.stderr
            .contains("does not match the specified platform: wanted linux/s390x"),
        "{}",
        run.stderr
    );
    let tags = s2.run(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(tags.success().stdout, format!("{addr}/bb:<none>\n"));
    check_store(&s2);
}

#[test]
fn stored_layers_are_not_fetched_and_builds_pull_their_bases() {
    let reg = Registry::start("pull-shared", RegistryAuth::Anonymous);
    let src = TestStore::new("pull-shared-src");
    src.busybox("busybox");
    let ctx = TempDir::new("pull-shared-ctx");
    ctx.write("Dockerfile", "FROM busybox\nRUN echo hi > /hi\n");
    src.run(&["build", "-q", "-t", "child:1", ctx.0.to_str().unwrap()])
        .success();
    push_saved(&src, "busybox", &reg, "bb:1");
    push_saved(&src, "child:1", &reg, "child:1");
    let addr = &reg.addr;
    let m = json(&raw_manifest(&reg, "child:1"));
    let short = |i: usize| m["layers"][i]["digest"].as_str().unwrap()[7..19].to_string();

    // A build whose base is not in the store pulls it, in the base's metadata step.
    let s = TestStore::new("pull-shared");
    let ctx2 = TempDir::new("pull-shared-ctx2");
    ctx2.write(
        "Dockerfile",
        &format!("FROM {addr}/bb:1\nRUN test -x /bin/sh\n"),
    );
    let run = s
        .run(&[
            "build",
            "--progress",
            "plain",
            "-t",
            "mine",
            ctx2.0.to_str().unwrap(),
        ])
        .success();
    for line in [
        format!("[internal] load metadata for {addr}/bb:1"),
        "1: Pulling from bb".to_string(),
        format!("{}: Pull complete", short(0)),
        format!("Status: Downloaded newer image for {addr}/bb:1"),
    ] {
        assert!(run.stderr.contains(&line), "{line}:\n{}", run.stderr);
    }
    s.run(&["images"])
        .success()
        .stdout_contains(&format!("{addr}/bb "));
    let gets = blob_gets(&reg);
    assert_eq!(gets, 2, "{}", reg.log());
    // --pull asks the registry again; up to date, nothing is downloaded.
    let run = s
        .run(&[
            "build",
            "--pull",
            "--progress",
            "plain",
            ctx2.0.to_str().unwrap(),
        ])
        .success();
    assert!(
        run.stderr
            .contains(&format!("Status: Image is up to date for {addr}/bb:1")),
        "{}",
        run.stderr
    );
    assert_eq!(blob_gets(&reg), gets, "{}", reg.log());

    // The child shares the base layer: only its config and its own layer come.
    let reference = format!("{addr}/child:1");
    let run = s.run(&["pull", &reference]).success();
    let out = &run.stdout;
    assert!(
        out.starts_with(&format!(
            "1: Pulling from child\n{}: Already exists\n{}: Pulling fs layer\n",
            short(0),
            short(1)
        )) && out.contains(&format!("{}: Pull complete\n", short(1))),
        "{out}"
    );
    assert_eq!(blob_gets(&reg), gets + 2, "{}", reg.log());
    let id = |st: &TestStore| {
        st.run(&["inspect", "-f", "{{.Id}}", "child:1"])
            .success()
            .stdout
    };
    assert_eq!(
        s.run(&["inspect", "-f", "{{.Id}}", &reference])
            .success()
            .stdout,
        id(&src)
    );
    check_store(&s);

    // The child's own layer stays packed, counted at its blob's size, until a build
    // uses it; then it is extracted (and checked), and sized as where it was built.
    let inspect =
        |st: &TestStore, name: &str, f: &str| st.run(&["inspect", "-f", f, name]).success().stdout;
    let diff_ids: Vec<String> =
        serde_json::from_str(inspect(&s, &reference, "{{json .RootFS.Layers}}").trim()).unwrap();
    let tree = |d: &str| s.root().join("layers").join(&d["sha256:".len()..]);
    assert!(tree(&diff_ids[0]).is_dir(), "the base was used by a build");
    assert!(
        !tree(&diff_ids[1]).exists(),
        "the child's layer is not extracted yet"
    );
    let packed_size = inspect(&s, &reference, "{{.Size}}");
    assert_ne!(packed_size, inspect(&src, "child:1", "{{.Size}}"));
    let ctx3 = TempDir::new("pull-shared-ctx3");
    ctx3.write(
        "Dockerfile",
        &format!("FROM {reference}\nRUN test \"$(cat /hi)\" = hi\n"),
    );
    s.run(&["build", "-q", ctx3.0.to_str().unwrap()]).success();
    assert!(tree(&diff_ids[1]).join("diff/hi").is_file());
    assert_eq!(
        inspect(&s, &reference, "{{.Size}}"),
        inspect(&src, "child:1", "{{.Size}}")
    );
    check_store(&s);
}

#[test]
fn pull_all_tags() {
    let reg = Registry::start("pull-all", RegistryAuth::Anonymous);
    let src = TestStore::new("pull-all-src");
    src.busybox("bb:1");
    for tag in ["1", "2"] {
        push_saved(&src, "bb:1", &reg, &format!("bb:{tag}"));
    }
    let addr = &reg.addr;
    let s = TestStore::new("pull-all");
    let run = s.run(&["pull", "-a", &format!("{addr}/bb")]).success();
    let out = &run.stdout;
    assert!(
        // In the order the registry lists the tags.
        out.contains("1: Pulling from bb\n")
            && out.contains("2: Pulling from bb\n")
            && out.ends_with(&format!(
                "Status: Downloaded newer image for {addr}/bb\n{addr}/bb\n"
            )),
        "{out}"
    );
    let tags = s.run(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(tags.success().stdout, format!("{addr}/bb:1\n{addr}/bb:2\n"));
    s.run(&["pull", "-a", &format!("{addr}/bb:1")])
        .failure()
        .stderr_contains("tag can't be used with --all-tags/-a");
    check_store(&s);
}

/// Two one-file images for linux/arm64 and linux/amd64 and an index of both, made and
/// pushed by buildah with its own storage; returns the index's digest.
fn push_index(reg: &Registry, tmp: &TempDir) -> String {
    let root = tmp.0.join("storage");
    let runroot = tmp.0.join("run");
    let base = [
        "--root",
        root.to_str().unwrap(),
        "--runroot",
        runroot.to_str().unwrap(),
        "--storage-driver",
        "vfs",
    ];
    let buildah = |args: &[&str]| {
        let all: Vec<&str> = base.iter().chain(args).copied().collect();
        String::from_utf8(tool_output("buildah", &all))
            .unwrap()
            .trim()
            .to_string()
    };
    buildah(&["manifest", "create", "list"]);
    for arch in ["arm64", "amd64"] {
        let file = tmp.write(arch, arch);
        let c = buildah(&["from", "scratch"]);
        buildah(&["copy", &c, file.to_str().unwrap(), "/arch"]);
        buildah(&["config", "--os", "linux", "--arch", arch, &c]);
        buildah(&["commit", "-q", &c, &format!("img-{arch}")]);
        buildah(&[
            "manifest",
            "add",
            "list",
            &format!("containers-storage:localhost/img-{arch}"),
        ]);
    }
    buildah(&[
        "manifest",
        "push",
        "--all",
        "--tls-verify=false",
        "list",
        &format!("docker://{}/multi:1", reg.addr),
    ]);
    sha256(&raw_manifest(reg, "multi:1"))
}

#[test]
fn platforms_from_an_index() {
    let native = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("this test needs an amd64 or arm64 machine, not {other}"),
    };
    let reg = Registry::start("pull-index", RegistryAuth::Anonymous);
    let tmp = TempDir::new("pull-index");
    let index_digest = push_index(&reg, &tmp);
    let index = json(&raw_manifest(&reg, "multi:1"));
    let config_of = |arch: &str| {
        let entry = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["platform"]["architecture"] == arch)
            .unwrap_or_else(|| panic!("no {arch} in {index}"));
        let m = json(&raw_manifest(
            &reg,
            &format!("multi@{}", entry["digest"].as_str().unwrap()),
        ));
        m["config"]["digest"].as_str().unwrap().to_string()
    };
    let addr = &reg.addr;
    let reference = format!("{addr}/multi:1");
    let s = TestStore::new("pull-index");
    let inspect = |f: &str| {
        s.run(&["inspect", "-f", f, &reference])
            .success()
            .stdout
            .trim()
            .to_string()
    };

    // By default, this machine's; the RepoDigest is the index's, as docker records it.
    let run = s.run(&["pull", &reference]).success();
    assert!(
        run.stdout.contains(&format!("Digest: {index_digest}\n")),
        "{}",
        run.stdout
    );
    assert_eq!(inspect("{{.Id}}"), config_of(native));
    assert_eq!(inspect("{{.Architecture}}"), native);
    assert!(
        inspect("{{.RepoDigests}}").contains(&format!("{addr}/multi@{index_digest}")),
        "{}",
        inspect("{{.RepoDigests}}")
    );

    // --platform picks the other one; the tag moves to it.
    let run = s
        .run(&["pull", "--platform", "linux/arm64/v8", &reference])
        .success();
    assert!(
        run.stdout
            .contains(&format!("Status: Downloaded newer image for {reference}")),
        "{}",
        run.stdout
    );
    assert_eq!(inspect("{{.Id}}"), config_of("arm64"));
    assert_eq!(inspect("{{.Architecture}}"), "arm64");

    // A platform the index does not have is named with those it has.
    let run = s
        .run(&["pull", "--platform", "linux/s390x", &reference])
        .failure();
    assert!(
        run.stderr.contains(&format!(
            "error: {reference}: no matching manifest for linux/s390x in the manifest list entries (available: linux/arm64, linux/amd64)"
        )),
        "{}",
        run.stderr
    );
    s.run(&["pull", "--platform", "bogus", &reference])
        .failure()
        .stderr_contains("--platform bogus: \"bogus\": unknown operating system or architecture");
    assert_eq!(inspect("{{.Id}}"), config_of("arm64"));
    check_store(&s);
}

#[test]
fn manifests_rbuild_refuses() {
    let s = TestStore::new("pull-refused");
    // Schema 1, as an old registry serves it.
    let schema1 = br#"{"schemaVersion":1,"name":"x","tag":"1","architecture":"amd64","fsLayers":[],"history":[]}"#;
    let url = serve(
        1,
        "200 OK",
        "Content-Type: application/vnd.docker.distribution.manifest.v1+prettyjws\r\n",
        schema1.to_vec(),
    );
    let host = url.trim_start_matches("http://");
    let run = s.run(&["pull", &format!("{host}/x:1")]).failure();
    assert!(
        run.stderr.contains(&format!(
            "error: manifest {host}/x:1: schema 1 manifests (application/vnd.docker.distribution.manifest.v1+prettyjws) are not supported; push the image again with a current docker or tool"
        )),
        "{}",
        run.stderr
    );

    // Bytes that are not what the reference pins.
    let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
    let pinned = format!("sha256:{}", "ab".repeat(32));
    let url = serve(1, "200 OK", "", body.to_vec());
    let host = url.trim_start_matches("http://");
    let run = s.run(&["pull", &format!("{host}/x@{pinned}")]).failure();
    assert!(
        run.stderr.contains(&format!(
            "error: digest mismatch for {pinned}: the bytes received hash to {}",
            sha256(body)
        )),
        "{}",
        run.stderr
    );
    // … or what the registry says they are.
    let url = serve(
        1,
        "200 OK",
        "Docker-Content-Digest: sha256:abababababababababababababababababababababababababababababababab\r\n",
        body.to_vec(),
    );
    let host = url.trim_start_matches("http://");
    s.run(&["pull", &format!("{host}/x:1")])
        .failure()
        .stderr_contains(&format!("error: digest mismatch for {pinned}"));
    assert_eq!(s.run(&["images", "-a", "-q"]).success().stdout, "");
    check_store(&s);
}

/// How the scripted registry below misbehaves on the layer blob.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// The first body stops half-way; a range request gets the rest (206).
    BreakThenResume,
    /// The first body stops half-way; range requests get the whole blob again (200).
    BreakThenNoRanges,
    /// Every body stops half-way, and ranges are ignored.
    AlwaysBreak,
    /// The bytes differ from the digest (one flipped in the middle).
    Corrupt,
}

/// A request's path and `Range` header.
type Request = (String, Option<String>);

/// A registry that serves one image (`x:1`, a single plain-tar layer: the busybox
/// rootfs) and misbehaves as `fault` says; records each request's path and `Range`.
struct Scripted {
    host: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<Request>>>,
    layer: String,
    half: usize,
}

fn scripted(fault: Fault) -> Scripted {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};
    let layer = std::fs::read(crate::util::busybox_tar()).unwrap();
    let layer_digest = sha256(&layer);
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let config = format!(
        r#"{{"architecture":"{arch}","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{layer_digest}"]}}}}"#
    )
    .into_bytes();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer_digest}","size":{}}}]}}"#,
        sha256(&config),
        config.len(),
        layer.len()
    )
    .into_bytes();
    let files = [
        ("/v2/x/manifests/1".to_string(), manifest),
        (format!("/v2/x/blobs/{}", sha256(&config)), config),
    ];
    let layer_path = format!("/v2/x/blobs/{layer_digest}");
    let half = layer.len() / 2;
    let requests = Arc::new(Mutex::new(Vec::new()));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    listener.set_nonblocking(true).unwrap();
    let log = Arc::clone(&requests);
    let lp = layer_path.clone();
    std::thread::spawn(move || {
        let mut blob_requests = 0;
        let mut idle_since = Instant::now();
        loop {
            let stream = match listener.accept() {
                Ok((s, _)) => s,
                Err(_) if idle_since.elapsed() < Duration::from_secs(30) => {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                Err(_) => return,
            };
            idle_since = Instant::now();
            stream.set_nonblocking(false).unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            reader.read_line(&mut first).unwrap_or(0);
            let path = first.split(' ').nth(1).unwrap_or("").to_string();
            let mut range = None;
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("range:") {
                    range = Some(v.trim().to_string());
                }
                line.clear();
            }
            log.lock().unwrap().push((path.clone(), range.clone()));
            let mut out = stream;
            let head = |out: &mut std::net::TcpStream, status: &str, len: usize, extra: &str| {
                let _ = write!(
                    out,
                    "HTTP/1.1 {status}\r\nContent-Length: {len}\r\n{extra}Connection: close\r\n\r\n"
                );
            };
            if path == lp {
                blob_requests += 1;
                let start = range
                    .as_deref()
                    .and_then(|r| r.strip_prefix("bytes="))
                    .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
                match (fault, blob_requests, start) {
                    (Fault::Corrupt, ..) => {
                        let mut bad = layer.clone();
                        bad[half] ^= 0xff;
                        head(&mut out, "200 OK", bad.len(), "");
                        let _ = out.write_all(&bad);
                    }
                    (Fault::BreakThenResume, n, Some(s)) if n > 1 => {
                        let rest = &layer[s..];
                        let cr = format!(
                            "Content-Range: bytes {s}-{}/{}\r\n",
                            layer.len() - 1,
                            layer.len()
                        );
                        head(&mut out, "206 Partial Content", rest.len(), &cr);
                        let _ = out.write_all(rest);
                    }
                    (Fault::BreakThenNoRanges, n, _) if n > 1 => {
                        head(&mut out, "200 OK", layer.len(), "");
                        let _ = out.write_all(&layer);
                    }
                    _ => {
                        head(&mut out, "200 OK", layer.len(), "");
                        let _ = out.write_all(&layer[..half]);
                    }
                }
            } else if let Some((_, body)) = files.iter().find(|(p, _)| *p == path) {
                head(&mut out, "200 OK", body.len(), "");
                let _ = out.write_all(body);
            } else {
                head(&mut out, "404 Not Found", 0, "");
            }
        }
    });
    Scripted {
        host,
        requests,
        layer: layer_path,
        half,
    }
}

impl Scripted {
    /// The `Range` header of each request for the layer, in order.
    fn layer_ranges(&self) -> Vec<Option<String>> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| *p == self.layer)
            .map(|(_, r)| r.clone())
            .collect()
    }
}

#[test]
fn a_broken_download_resumes_where_it_stopped() {
    let reg = scripted(Fault::BreakThenResume);
    let s = TestStore::new("pull-resume");
    let run = s.run(&["pull", &format!("{}/x:1", reg.host)]).success();
    assert!(run.stdout.contains("Pull complete"), "{}", run.stdout);
    assert_eq!(
        reg.layer_ranges(),
        [None, Some(format!("bytes={}-", reg.half))],
        "the second request asks for the rest"
    );
    s.run(&["images", "--digests"])
        .success()
        .stdout_contains(&format!("{}/x", reg.host));
    check_store(&s);

    // A registry that answers a range with the whole blob: the layer starts over.
    let reg = scripted(Fault::BreakThenNoRanges);
    let s = TestStore::new("pull-restart");
    s.run(&["pull", &format!("{}/x:1", reg.host)]).success();
    assert_eq!(
        reg.layer_ranges(),
        [None, Some(format!("bytes={}-", reg.half)), None]
    );
    check_store(&s);
}

#[test]
fn a_download_that_never_completes_or_lies_leaves_nothing() {
    for (fault, expected) in [
        (Fault::AlwaysBreak, "gave up after 5 attempts"),
        (Fault::Corrupt, "mismatch"),
    ] {
        let reg = scripted(fault);
        let s = TestStore::new("pull-fail");
        let run = s.run(&["pull", &format!("{}/x:1", reg.host)]).failure();
        let layer_digest = reg.layer.rsplit('/').next().unwrap();
        assert!(
            run.stderr.contains(expected) && run.stderr.contains(layer_digest),
            "{}",
            run.stderr
        );
        assert_eq!(s.run(&["images", "-a", "-q"]).success().stdout, "");
        let check = s.run(&["system", "check"]).success();
        assert!(
            check.stdout.contains("no problems found") && check.stdout.contains(" 0 layer(s)"),
            "{}",
            check.stdout
        );
        assert!(
            std::fs::read_dir(s.root().join("layers"))
                .unwrap()
                .next()
                .is_none(),
            "a layer was stored"
        );
    }
}

/// An image whose config names another diff ID than its layer holds (a registry
/// cannot tell; docker's pull fails at extraction): the pull stores the verified blob
/// packed, and the first use fails naming the blob and both diff IDs, extracting
/// nothing; the store stays sound and the image can be removed.
#[test]
fn a_layer_that_is_not_its_diff_id_fails_at_first_use() {
    let reg = Registry::start("pull-diffid", RegistryAuth::Anonymous);
    let layout = TempDir::new("pull-diffid-layout");
    let manifest = json(&crate::registry_seed::tiny_oci_layout(&layout.0));
    let blobs = layout.0.join("blobs/sha256");
    let put = |data: &[u8]| -> String {
        let d = sha256(data);
        std::fs::write(blobs.join(&d[7..]), data).unwrap();
        d
    };
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let mut config = json(&std::fs::read(blobs.join(&config_digest[7..])).unwrap());
    let real = config["rootfs"]["diff_ids"][0]
        .as_str()
        .unwrap()
        .to_string();
    let claimed = sha256(b"not the layer");
    config["rootfs"]["diff_ids"][0] = claimed.clone().into();
    let config_bytes = config.to_string().into_bytes();
    let mut manifest = manifest;
    manifest["config"]["digest"] = put(&config_bytes).into();
    manifest["config"]["size"] = config_bytes.len().into();
    let manifest_bytes = manifest.to_string().into_bytes();
    let m = put(&manifest_bytes);
    let mut index = json(&std::fs::read(layout.0.join("index.json")).unwrap());
    index["manifests"][0]["digest"] = m.into();
    index["manifests"][0]["size"] = manifest_bytes.len().into();
    std::fs::write(layout.0.join("index.json"), index.to_string()).unwrap();
    let out = crate::registry_seed::skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:1", layout.0.display()),
        &format!("docker://{}/lie:1", reg.addr),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let s = TestStore::new("pull-diffid");
    let reference = format!("{}/lie:1", reg.addr);
    s.run(&["pull", "-q", &reference]).success();
    check_store(&s);
    let ctx = TempDir::new("pull-diffid-ctx");
    ctx.write("f", "x");
    ctx.write("Dockerfile", &format!("FROM {reference}\nCOPY f /f\n"));
    let run = s
        .run(&["build", "--progress", "plain", ctx.0.to_str().unwrap()])
        .failure();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    for part in ["diff ID mismatch", layer, &claimed, &real] {
        assert!(run.stderr.contains(part), "{part}:\n{}", run.stderr);
    }
    let empty = |d: &str| {
        std::fs::read_dir(s.root().join(d))
            .unwrap()
            .next()
            .is_none()
    };
    assert!(empty("layers"), "nothing extracted");
    assert!(empty("tmp"), "no scratch left");
    check_store(&s);
    s.run(&["rmi", &reference]).success();
    check_store(&s);
}
