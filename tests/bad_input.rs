//! Hostile and broken archives and layer tars: each is refused with an error naming the
//! archive member or digest, nothing is written outside the store, and the store is as
//! it was (no new image, `check` clean, no scratch left behind).

use std::fs;
use std::path::{Path, PathBuf};

use rbuild_builder::store::Store;
use tar::EntryType;

use crate::imagetar::{RawTar, config_json, docker_archive, sha256_hex};
use crate::util::{TempDir, TestStore};

/// Where escapes would land; must stay empty.
fn escape_dir(tag: &str) -> PathBuf {
    let d = PathBuf::from(format!("/tmp/rbuild-escape-{}-{tag}", std::process::id()));
    fs::create_dir_all(&d).unwrap();
    d
}

/// A store holding one small image, and the checks that it stayed so.
struct Scene {
    store: TestStore,
    tmp: TempDir,
    seed: String,
    escape: PathBuf,
}

impl Drop for Scene {
    fn drop(&mut self) {
        // Only if empty: what escaped stays for a look.
        let _ = fs::remove_dir(&self.escape);
    }
}

impl Scene {
    fn new(tag: &str) -> Scene {
        let store = TestStore::new(tag);
        let tmp = TempDir::new(&format!("{tag}-in"));
        let mut t = RawTar::new();
        t.file("seed", b"seed");
        let path = tmp.0.join("seed.tar");
        fs::write(&path, docker_archive(&[t.finish()], &["seed:1"])).unwrap();
        store.run(&["load", "-i", path.to_str().unwrap()]).success();
        let seed = Store::open(store.root())
            .unwrap()
            .resolve("seed:1")
            .unwrap()
            .id
            .to_string();
        Scene {
            store,
            tmp,
            seed,
            escape: escape_dir(tag),
        }
    }

    /// Loads `archive` from a file and expects a refusal mentioning every needle.
    #[track_caller]
    fn refuse_load(&self, case: &str, archive: &[u8], needles: &[&str]) {
        let path = self.tmp.0.join(format!("{case}.tar"));
        fs::write(&path, archive).unwrap();
        let run = self
            .store
            .run(&["load", "-i", path.to_str().unwrap()])
            .failure();
        for n in needles {
            assert!(
                run.stderr.contains(n),
                "case {case}: stderr lacks {n:?}: {}",
                run.stderr
            );
        }
        self.assert_unchanged(case);
    }

    /// Imports `layer` as a root file system and expects a refusal.
    #[track_caller]
    fn refuse_import(&self, case: &str, layer: &[u8], needles: &[&str]) {
        let path = self.tmp.0.join(format!("{case}-rootfs.tar"));
        fs::write(&path, layer).unwrap();
        let run = self
            .store
            .run(&["import", path.to_str().unwrap()])
            .failure();
        assert!(
            run.stderr.contains(path.to_str().unwrap()),
            "{case}: {}",
            run.stderr
        );
        for n in needles {
            assert!(
                run.stderr.contains(n),
                "case {case} (import): stderr lacks {n:?}: {}",
                run.stderr
            );
        }
        self.assert_unchanged(case);
    }

    #[track_caller]
    fn assert_unchanged(&self, case: &str) {
        let store = Store::open(self.store.root()).unwrap();
        let ids: Vec<String> = store
            .images()
            .unwrap()
            .iter()
            .map(|i| i.id.to_string())
            .collect();
        assert_eq!(ids, vec![self.seed.clone()], "case {case}: images changed");
        let report = store.check().unwrap();
        assert!(report.is_clean(), "case {case}: {:?}", report.problems);
        for sub in ["tmp", "ingest"] {
            let left: Vec<_> = fs::read_dir(self.store.root().join(sub))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert!(left.is_empty(), "case {case}: {sub}/ holds {left:?}");
        }
        let escaped: Vec<_> = fs::read_dir(&self.escape)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(escaped.is_empty(), "case {case}: escaped to {escaped:?}");
        assert!(!Path::new("/tmp/rbuild-escape-abs").exists(), "case {case}");
    }
}

/// `../` enough times to reach `/` from anywhere a store may be.
fn up(to: &str) -> String {
    format!("{}{}", "../".repeat(12), to.trim_start_matches('/'))
}

#[test]
fn hostile_layers_are_refused_by_load_and_import() {
    let s = Scene::new("bad-layers");
    let esc = s.escape.clone();
    let esc = esc.to_str().unwrap();
    type Build = Box<dyn Fn(&mut RawTar)>;
    let dotdot = up(&format!("{esc}/dotdot"));
    let rel_link = up(esc);
    let cases: Vec<(&str, Build, Vec<String>)> = vec![
        (
            "dotdot",
            Box::new({
                let d = dotdot.clone();
                move |t| {
                    t.file(&d, b"x");
                }
            }),
            vec![dotdot.clone(), "escapes".into()],
        ),
        (
            "absolute",
            Box::new(|t| {
                t.file("/tmp/rbuild-escape-abs", b"x");
            }),
            vec!["/tmp/rbuild-escape-abs".into(), "absolute".into()],
        ),
        (
            "symlink-then-write",
            Box::new({
                let esc = esc.to_string();
                move |t| {
                    t.symlink("lnk", &esc).file("lnk/pwn", b"x");
                }
            }),
            vec!["lnk/pwn".into(), "symbolic link".into()],
        ),
        (
            "relative-symlink-then-write",
            Box::new({
                let l = rel_link.clone();
                move |t| {
                    t.dir("d").symlink("d/up", &l).file("d/up/pwn", b"x");
                }
            }),
            vec!["d/up/pwn".into()],
        ),
        (
            "hardlink-outside",
            Box::new(|t| {
                t.hardlink("passwd", "/etc/passwd");
            }),
            vec!["\"passwd\"".into(), "hard link".into()],
        ),
        (
            "hardlink-dotdot",
            Box::new(|t| {
                t.hardlink("passwd", &up("etc/passwd"));
            }),
            vec!["\"passwd\"".into(), "hard link".into()],
        ),
        (
            "symlink-dot",
            Box::new(|t| {
                t.symlink(".", "/tmp");
            }),
            vec!["layer root".into()],
        ),
        (
            "block-device",
            Box::new(|t| {
                t.device("dev/sda", EntryType::Block, 8, 0);
            }),
            vec!["dev/sda".into(), "block device".into()],
        ),
        (
            "char-device",
            Box::new(|t| {
                t.device("dev/mem", EntryType::Char, 1, 1);
            }),
            vec!["dev/mem".into(), "character device 1:1".into()],
        ),
        (
            "whiteout-dotdot",
            Box::new(|t| {
                t.dir("etc").file("etc/.wh...", b"");
            }),
            vec!["etc/.wh...".into()],
        ),
        (
            "whiteout-escape",
            Box::new(|t| {
                let name = format!("{}.wh.passwd", up("etc/"));
                t.file(&name, b"");
            }),
            vec![".wh.passwd".into()],
        ),
    ];
    for (case, build, needles) in cases {
        let mut t = RawTar::new();
        build(&mut t);
        let layer = t.finish();
        let hex = sha256_hex(&layer);
        let member = format!("blobs/sha256/{hex}");
        let mut want: Vec<&str> = needles.iter().map(String::as_str).collect();
        s.refuse_import(case, &layer, &want);
        want.push(&member);
        s.refuse_load(case, &docker_archive(&[layer], &["evil:1"]), &want);
    }
}

/// An OCI layout tar: index.json naming one manifest, and the blobs given.
fn oci_archive(manifest: &[u8], blobs: &[(&str, &[u8])]) -> Vec<u8> {
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{}", sha256_hex(manifest)),
            "size": manifest.len(),
            "annotations": {"io.containerd.image.name": "docker.io/library/evil:oci"},
        }],
    });
    let mut t = RawTar::new();
    t.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    t.file(&format!("blobs/sha256/{}", sha256_hex(manifest)), manifest);
    for (hex, bytes) in blobs {
        t.file(&format!("blobs/sha256/{hex}"), bytes);
    }
    t.file("index.json", &serde_json::to_vec(&index).unwrap());
    t.finish()
}

fn oci_manifest(config: &[u8], layers: &[(&str, usize)]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": format!("sha256:{}", sha256_hex(config)),
            "size": config.len(),
        },
        "layers": layers.iter().map(|(hex, size)| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": format!("sha256:{hex}"),
            "size": size,
        })).collect::<Vec<_>>(),
    }))
    .unwrap()
}

/// A Docker archive from parts: `manifest.json` first, then `members`.
fn docker_parts(manifest: serde_json::Value, members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut t = RawTar::new();
    t.file("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    for (name, bytes) in members {
        t.file(name, bytes);
    }
    t.finish()
}

#[test]
fn broken_archives_are_refused() {
    let s = Scene::new("bad-archives");
    let layer = {
        let mut t = RawTar::new();
        t.file("hello", &vec![b'h'; 300_000]);
        t.finish()
    };
    let lhex = sha256_hex(&layer);
    let config = config_json(std::slice::from_ref(&lhex));
    let chex = sha256_hex(&config);
    let cpath = format!("blobs/sha256/{chex}");
    let lpath = format!("blobs/sha256/{lhex}");
    let entry = |config: &str, layer: &str| serde_json::json!([{"Config": config, "RepoTags": ["evil:1"], "Layers": [layer]}]);

    // manifest.json pointing outside the archive, or at nothing.
    for (case, c, l, needle) in [
        ("config-dotdot", "../x", lpath.as_str(), "\"../x\""),
        (
            "layer-absolute",
            cpath.as_str(),
            "/etc/passwd",
            "\"/etc/passwd\"",
        ),
        (
            "layer-dotdot",
            cpath.as_str(),
            "blobs/../../etc/passwd",
            "blobs/../../etc/passwd",
        ),
        (
            "config-missing",
            "blobs/sha256/00",
            lpath.as_str(),
            "blobs/sha256/00",
        ),
        (
            "layer-missing",
            cpath.as_str(),
            "nope/layer.tar",
            "nope/layer.tar",
        ),
    ] {
        let a = docker_parts(
            entry(c, l),
            &[(cpath.as_str(), &config[..]), (lpath.as_str(), &layer[..])],
        );
        s.refuse_load(case, &a, &[needle]);
    }

    // Members that point outside the archive themselves.
    let mut t = RawTar::new();
    t.symlink("manifest.json", "/etc/passwd");
    s.refuse_load(
        "manifest-symlink",
        &t.finish(),
        &["manifest.json", "outside the archive"],
    );
    let mut t = RawTar::new();
    t.file("../evil", b"x").file("manifest.json", b"[]");
    s.refuse_load(
        "member-dotdot",
        &t.finish(),
        &["../evil", "outside the archive"],
    );
    let mut t = RawTar::new();
    t.file(
        "manifest.json",
        &serde_json::to_vec(&entry(&cpath, "layer")).unwrap(),
    )
    .file(&cpath, &config)
    .symlink("layer", "x/../../../etc/passwd");
    s.refuse_load(
        "layer-symlink-out",
        &t.finish(),
        &["\"layer\"", "outside the archive"],
    );

    // Wrong digests: a config filed under another digest, a layer whose diff ID is
    // not what the config says, an OCI blob whose content is not its name.
    let wrong_config = format!("blobs/sha256/{}", "ab".repeat(32));
    let a = docker_parts(
        entry(&wrong_config, &lpath),
        &[
            (wrong_config.as_str(), &config[..]),
            (lpath.as_str(), &layer[..]),
        ],
    );
    s.refuse_load(
        "config-digest",
        &a,
        &[&wrong_config, &chex, "digest mismatch"],
    );
    let other_config = config_json(&["cd".repeat(32)]);
    let ohex = sha256_hex(&other_config);
    let opath = format!("blobs/sha256/{ohex}");
    let a = docker_parts(
        entry(&opath, &lpath),
        &[
            (opath.as_str(), &other_config[..]),
            (lpath.as_str(), &layer[..]),
        ],
    );
    s.refuse_load("diff-id", &a, &[&lpath, &"cd".repeat(32), &lhex]);
    let mut altered = layer.clone();
    altered[1024] = b'X';
    let althex = sha256_hex(&altered);
    let alt_config = config_json(std::slice::from_ref(&althex));
    let manifest = oci_manifest(&alt_config, &[(&lhex, layer.len())]);
    let a = oci_archive(
        &manifest,
        &[
            (sha256_hex(&alt_config).as_str(), &alt_config[..]),
            (lhex.as_str(), &altered[..]),
        ],
    );
    s.refuse_load("oci-blob-digest", &a, &[&lpath, &lhex, &althex]);
    let manifest = oci_manifest(&config, &[(&lhex, layer.len())]);
    let a = oci_archive(
        &manifest,
        &[
            (chex.as_str(), &alt_config[..]),
            (lhex.as_str(), &layer[..]),
        ],
    );
    s.refuse_load("oci-config-digest", &a, &[&cpath, "digest mismatch"]);

    // Truncated: in the middle of the layer (manifest first so it is still there), and
    // an rbuild-style archive cut in half.
    let whole = docker_parts(
        entry(&cpath, &lpath),
        &[(cpath.as_str(), &config[..]), (lpath.as_str(), &layer[..])],
    );
    s.refuse_load(
        "truncated-layer",
        &whole[..whole.len() / 2],
        &[&lpath, "truncated"],
    );
    let saved = docker_archive(std::slice::from_ref(&layer), &["evil:1"]);
    s.refuse_load(
        "truncated-half",
        &saved[..saved.len() / 2],
        &[&lpath, "truncated"],
    );
    s.refuse_load("truncated-early", &saved[..2000], &[&lpath, "truncated"]);
    s.refuse_load("truncated-header", &saved[..700], &["not an image archive"]);

    // A manifest.json claiming 1 GiB: refused by its size, without reading it.
    let mut t = RawTar::new();
    let h = RawTar::<Vec<u8>>::header("manifest.json", EntryType::Regular, 0o644, 1 << 30);
    let mut bytes = {
        let mut h = h;
        h.set_cksum();
        h.as_bytes().to_vec()
    };
    bytes.extend_from_slice(&[b'['; 4096]);
    t.file("x", b"x");
    let mut a = t.finish();
    a.truncate(1024); // the "x" member only
    a.extend_from_slice(&bytes);
    s.refuse_load(
        "manifest-1gib-cut",
        &a,
        &["manifest.json", "truncated", "1073741824 bytes"],
    );
    // The same whole, as a sparse file: refused by its size, without reading it.
    let path = s.tmp.0.join("sparse.tar");
    fs::write(&path, &a).unwrap();
    let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(1024 + 512 + (1 << 30) + 1024).unwrap();
    drop(f);
    s.store
        .run(&["load", "-i", path.to_str().unwrap()])
        .failure()
        .stderr_contains("archive member manifest.json is 1073741824 bytes; metadata files are limited to 64 MiB");
    s.assert_unchanged("manifest-1gib-sparse");
}
