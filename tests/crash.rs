//! Crash safety: `kill -9` during a load at different phases leaves a store that
//! checks clean (leftovers only as reclaimable) and that the same load then fills; two
//! loads and a garbage collection at once all succeed and leave a clean store.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rbuild_builder::store::Store;

use crate::imagetar::{RawTar, config_json, sha256_file};
use crate::util::{TempDir, TestStore};

/// A Docker archive of `layers` layers, each one file of `size` random bytes, tagged
/// `tag`. Returns its path.
fn big_archive(dir: &Path, tag: &str, layers: usize, size: u64) -> PathBuf {
    let mut diff_ids = Vec::new();
    let mut layer_paths = Vec::new();
    for i in 0..layers {
        let data = dir.join(format!("data{i}"));
        let mut f = fs::File::create(&data).unwrap();
        io::copy(
            &mut fs::File::open("/dev/urandom").unwrap().take(size),
            &mut f,
        )
        .unwrap();
        let layer = dir.join(format!("layer{i}.tar"));
        let mut t = RawTar::to(fs::File::create(&layer).unwrap());
        t.dir("data/").file_from(&format!("data/{i}.bin"), &data);
        t.finish();
        fs::remove_file(&data).unwrap();
        diff_ids.push(sha256_file(&layer));
        layer_paths.push(layer);
    }
    let config = config_json(&diff_ids);
    let manifest = serde_json::json!([{
        "Config": "config.json",
        "RepoTags": [tag],
        "Layers": (0..layers).map(|i| format!("{i}/layer.tar")).collect::<Vec<_>>(),
    }]);
    let path = dir.join(format!("{}.tar", tag.replace([':', '/'], "-")));
    let mut t = RawTar::to(fs::File::create(&path).unwrap());
    // The manifest first, as Docker's old layout may; the layers in order after it.
    t.file("manifest.json", &serde_json::to_vec(&manifest).unwrap())
        .file("config.json", &config);
    for (i, l) in layer_paths.iter().enumerate() {
        t.file_from(&format!("{i}/layer.tar"), l);
        fs::remove_file(l).unwrap();
    }
    t.finish();
    path
}

fn spawn_load(store: &TestStore, archive: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rbuild"))
        .args(["--root", store.root().to_str().unwrap(), "load", "-i"])
        .arg(archive)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn entries(dir: &Path) -> usize {
    fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[track_caller]
fn assert_sound(root: &Path, when: &str) {
    let store = Store::open(root).unwrap();
    let report = store.check().unwrap();
    // Shown with --no-capture: which leftovers each kill made.
    eprintln!("{when}: reclaimable {:?}", report.reclaimable);
    assert!(
        report.is_clean(),
        "{when}: store damaged: {:?} (reclaimable: {:?})",
        report.problems,
        report.reclaimable
    );
}

#[test]
fn kill_9_during_load_at_every_phase() {
    let s = TestStore::new("crash-kill");
    let tmp = TempDir::new("crash-kill-in");
    let archive = big_archive(&tmp.0, "big:1", 3, 60_000_000);
    let root = s.root().to_path_buf();
    // Kill points: fixed delays, and phases watched in the store.
    type Phase = Box<dyn Fn() -> bool>;
    let after = |ms: u64| -> (String, Phase) {
        let start = Instant::now();
        (
            format!("after {ms} ms"),
            Box::new(move || start.elapsed() >= Duration::from_millis(ms)),
        )
    };
    let watch = |what: &str, dir: &str, n: usize| -> (String, Phase) {
        let dir = root.join(dir);
        (format!("once {what}"), Box::new(move || entries(&dir) >= n))
    };
    let mut kills = 0;
    for make in 0..7 {
        let mut child = spawn_load(&s, &archive);
        let (name, ready) = match make {
            0 => after(20),
            1 => after(100),
            2 => after(300),
            3 => after(600),
            4 => watch("a layer is being extracted", "tmp", 1),
            5 => watch("the first layer is stored", "layers", 1),
            _ => watch("two layers are stored", "layers", 2),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if ready() || child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let finished = child.try_wait().unwrap().is_some();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if !finished {
            kills += 1;
        }
        assert_sound(&root, &format!("kill {name}"));
        // The same load then succeeds…
        s.run(&["load", "-i", archive.to_str().unwrap()])
            .success()
            .stdout_contains("Loaded image: big:1");
        assert_sound(&root, &format!("load after kill {name}"));
        // …and is removed again, so the next kill hits a load from scratch.
        let store = Store::open(&root).unwrap();
        store.remove_image("big:1", false, true).unwrap();
        store.collect_garbage().unwrap();
        let report = store.check().unwrap();
        assert!(
            report.is_clean() && report.reclaimable.is_empty(),
            "{report:?}"
        );
        assert_eq!(entries(&root.join("layers")), 0);
    }
    assert!(
        kills >= 4,
        "only {kills} of the loads were killed before they ended"
    );
}

#[test]
fn two_loads_and_an_image_prune_at_once() {
    let s = TestStore::new("crash-concurrent");
    let tmp = TempDir::new("crash-concurrent-in");
    let a = big_archive(&tmp.0, "one:1", 2, 20_000_000);
    let b = big_archive(&tmp.0, "two:1", 2, 20_000_000);
    // Something for prune: importing twice under one name leaves the first dangling.
    let dangling = s.busybox("gone:1");
    s.run(&[
        "import",
        "-m",
        "second",
        crate::util::busybox_tar().to_str().unwrap(),
        "gone:1",
    ])
    .success();

    let la = spawn_load(&s, &a);
    let lb = spawn_load(&s, &b);
    let mut pruned = String::new();
    for _ in 0..3 {
        let run = s.run(&["image", "prune", "-f"]).success();
        pruned.push_str(&run.stdout);
        std::thread::sleep(Duration::from_millis(30));
    }
    for (child, name) in [(la, "one:1"), (lb, "two:1")] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "load of {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        pruned.contains(&format!("deleted: {dangling}")),
        "prune did not delete the dangling image {dangling}:\n{pruned}"
    );
    let store = Store::open(s.root()).unwrap();
    let names: Vec<String> = store
        .images()
        .unwrap()
        .iter()
        .flat_map(|i| i.tags.iter().map(|t| t.familiar()))
        .collect();
    for want in ["one:1", "two:1", "gone:1"] {
        assert!(
            names.contains(&want.to_string()),
            "{want} missing: {names:?}"
        );
    }
    assert!(store.resolve(&dangling).is_err());
    store.collect_garbage().unwrap();
    let report = store.check().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert!(report.reclaimable.is_empty(), "{:?}", report.reclaimable);
}
