//! `rbuild save` and `rbuild load`: names, IDs, files, pipes, atomic output, docker's
//! messages.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use rbuild_builder::store::Store;

use crate::imagetar;
use crate::util::{TempDir, TestStore};

fn manifest_json(archive: &[u8]) -> serde_json::Value {
    let mut a = tar::Archive::new(archive);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some("manifest.json") {
            return serde_json::from_reader(&mut e).unwrap();
        }
    }
    panic!("no manifest.json in the archive");
}

#[test]
fn save_by_name_and_load_elsewhere() {
    let a = TestStore::new("save-a");
    let id = a.busybox("busybox:latest");
    let out = a.dir.0.join("bb.tar");
    a.run(&["save", "-o", out.to_str().unwrap(), "busybox"])
        .success();
    let bytes = fs::read(&out).unwrap();
    let m = manifest_json(&bytes);
    assert_eq!(m[0]["RepoTags"], serde_json::json!(["busybox:latest"]));
    assert_eq!(m[0]["Config"], format!("blobs/sha256/{}", &id[7..]));
    // Nothing but the archive beside it: the temp file was renamed.
    let names: Vec<_> = fs::read_dir(&a.dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("rbuild-tmp"))
        .collect();
    assert!(names.is_empty(), "{names:?}");

    let b = TestStore::new("save-b");
    b.run(&["load", "-i", out.to_str().unwrap()])
        .success()
        .stdout_contains("Loaded image: busybox:latest\n");
    let store = Store::open(b.root()).unwrap();
    assert_eq!(store.resolve("busybox").unwrap().id.to_string(), id);
    assert!(store.check().unwrap().is_clean());
    // Loading again moves nothing: no rename notice.
    let again = b.run(&["image", "load", "-q", "-i", out.to_str().unwrap()]);
    assert_eq!(again.success().stdout, "Loaded image: busybox:latest\n");
}

#[test]
fn save_by_id_records_no_name_and_pipes_work() {
    let a = TestStore::new("save-id");
    let id = a.busybox("busybox:latest");
    let (run, bytes) = a.run_bytes(&["image", "save", &id[7..19]], None);
    run.success();
    let m = manifest_json(&bytes);
    assert_eq!(m[0]["RepoTags"], serde_json::json!([]));
    let b = TestStore::new("save-id-b");
    let run = b.run_stdin(&["load"], Some(&bytes)).success();
    assert_eq!(run.stdout, format!("Loaded image ID: {id}\n"));
    assert!(
        Store::open(b.root()).unwrap().images().unwrap()[0]
            .tags
            .is_empty()
    );
}

#[test]
fn save_two_names_of_one_image_and_a_second_image() {
    let a = TestStore::new("save-two");
    let id = a.busybox("busybox:latest");
    let other = a.run(&[
        "import",
        crate::util::busybox_tar().to_str().unwrap(),
        "bb:two",
    ]);
    let other = other.success().stdout.trim().to_string();
    let store = Store::open(a.root()).unwrap();
    store
        .tag(
            &id.parse().unwrap(),
            &rbuild_builder::store::ImageRef::parse("mine/bb:1").unwrap(),
        )
        .unwrap();
    drop(store);
    let (run, saved) = a.run_bytes(
        &["save", "busybox", "mine/bb:1", "bb:two", "busybox:latest"],
        None,
    );
    run.success();
    let m = manifest_json(&saved);
    assert_eq!(m.as_array().unwrap().len(), 2, "{m}");
    assert_eq!(
        m[0]["RepoTags"],
        serde_json::json!(["busybox:latest", "mine/bb:1"])
    );
    assert_eq!(m[1]["Config"], format!("blobs/sha256/{}", &other[7..]));

    // The same names loaded over other images: docker's rename notice comes first.
    let b = TestStore::new("save-two-b");
    b.run(&[
        "import",
        crate::util::busybox_tar().to_str().unwrap(),
        "busybox:latest",
    ])
    .success();
    let old = Store::open(b.root())
        .unwrap()
        .resolve("busybox")
        .unwrap()
        .id;
    let run = b.run_stdin(&["load"], Some(&saved)).success();
    assert_eq!(
        run.stdout,
        format!(
            "The image busybox:latest already exists, renaming the old one with ID {old} to empty string\n\
             Loaded image: busybox:latest\nLoaded image: mine/bb:1\nLoaded image: bb:two\n"
        )
    );
}

#[test]
fn failed_save_leaves_no_file() {
    let a = TestStore::new("save-fail");
    let id = a.busybox("busybox:latest");
    let out = a.dir.0.join("out.tar");
    a.run(&["save", "-o", out.to_str().unwrap(), "nosuch"])
        .failure()
        .stderr_contains("No such image: nosuch:latest");
    assert!(!out.exists());

    // An existing file stays as it was when the save fails half way: damage the layer
    // blob so the copy into the archive notices.
    fs::write(&out, b"previous").unwrap();
    let store = Store::open(a.root()).unwrap();
    let img = store.resolve(&id).unwrap();
    let blobs = store.layer_blobs(&img.layers[0]).unwrap();
    let blob = store.blobs().path(&blobs[0].0);
    fs::set_permissions(&blob, fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = fs::read(&blob).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    fs::write(&blob, &bytes).unwrap();
    a.run(&["save", "-o", out.to_str().unwrap(), "busybox"])
        .failure()
        .stderr_contains(&blobs[0].0.to_string());
    assert_eq!(fs::read(&out).unwrap(), b"previous");
    let left: Vec<_> = fs::read_dir(&a.dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("rbuild-tmp"))
        .collect();
    assert!(left.is_empty(), "temp file left: {left:?}");
}

#[test]
fn refuses_terminals_like_docker() {
    let a = TestStore::new("save-tty");
    a.busybox("busybox:latest");
    // `script` gives the command a pseudo-terminal as stdout and stdin.
    let root = a.root().to_str().unwrap().to_string();
    let bin = env!("CARGO_BIN_EXE_rbuild");
    let tty = |cmd: &str| {
        let out = std::process::Command::new("script")
            .args(["-qec", &format!("{bin} --root {root} {cmd}"), "/dev/null"])
            .output()
            .expect("running script(1) from util-linux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = tty("save busybox");
    assert!(
        out.contains("cowardly refusing to save to a terminal. Use the -o flag or redirect"),
        "{out}"
    );
    let out = tty("load");
    assert!(
        out.contains("requested load from stdin, but stdin is empty"),
        "{out}"
    );
}

#[test]
fn load_reads_gzip_and_names_bad_sources() {
    let a = TestStore::new("load-gz");
    let tmp = TempDir::new("load-gz");
    let layer = {
        let mut t = imagetar::RawTar::new();
        t.file("hello", b"hi");
        t.finish()
    };
    let archive = imagetar::docker_archive(&[layer], &["hello:gz"]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &archive).unwrap();
    let gz = gz.finish().unwrap();
    let path = tmp.0.join("a.tar.gz");
    fs::write(&path, &gz).unwrap();
    a.run(&["load", "-i", path.to_str().unwrap()])
        .success()
        .stdout_contains("Loaded image: hello:gz");
    a.run_stdin(&["load"], Some(&gz))
        .success()
        .stdout_contains("Loaded image: hello:gz");
    a.run(&["load", "-i", "/nonexistent.tar"])
        .failure()
        .stderr_contains("/nonexistent.tar");
    let junk = tmp.write("junk.tar", &"not a tar ".repeat(200));
    a.run(&["load", "-i", junk.to_str().unwrap()])
        .failure()
        .stderr_contains("junk.tar");
    a.run_stdin(
        &["import", "-"],
        Some(b"this is not a tar archive, not at all, no"),
    )
    .failure()
    .stderr_contains("-: not a tar archive");
    let store = Store::open(a.root()).unwrap();
    assert_eq!(store.images().unwrap().len(), 1);
    assert!(store.check().unwrap().is_clean());
}
