//! Snapshots end to end, as root: a real overlay mount (and the copy fallback) over a
//! busybox layer imported through the store, changes made in `merged()`, the committed
//! layer read back as a tar.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rbuild_builder::snapshot::{CommitOptions, Snapshot, SnapshotError, Snapshotter};
use rbuild_store::commit::CommittedLayer;
use rbuild_store::import::ImportOptions;
use rbuild_store::layer::{self, WriteOptions};
use rbuild_store::{Digest, Store};

/// A fixed SOURCE_DATE_EPOCH for commits whose diff IDs are compared: every change made
/// now is clamped to it.
const EPOCH: i64 = 1_600_000_000;

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (overlay mounts, owners, whiteout devices): run the suite as root"
    );
}

/// The busybox rootfs tar `fixtures/busybox-rootfs.sh` makes, once per test process.
fn busybox_tar() -> PathBuf {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        assert!(
            Path::new("/bin/busybox").exists(),
            "/bin/busybox is missing: install Debian's busybox-static"
        );
        let dir = std::env::temp_dir().join(format!("rbuild-snap-busybox-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let tar = dir.join("busybox.tar");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/busybox-rootfs.sh");
        let out = Command::new("bash").arg(script).arg(&tar).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        tar
    })
    .clone()
}

/// A store in a temp dir with busybox imported; returns its one layer.
fn store_with_busybox() -> (tempfile::TempDir, Store, Digest) {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let f = fs::File::open(busybox_tar()).unwrap();
    let id = store
        .import(f, "busybox.tar", ImportOptions::default())
        .unwrap();
    let layers = store.image(&id).unwrap().unwrap().layers;
    assert_eq!(layers.len(), 1);
    (dir, store, layers[0].clone())
}

/// Mounts under `dir` in this mount namespace.
fn mounts_under(dir: &Path) -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|p| Path::new(p).starts_with(dir))
        .collect()
}

fn tmp_entries(store: &Store) -> usize {
    fs::read_dir(store.root().join("tmp")).unwrap().count()
}

/// The changes a RUN step might make, straight into the merged tree.
fn make_changes(m: &Path) {
    // Create, modify, delete from the lower layer.
    fs::write(m.join("etc/new.txt"), b"new\n").unwrap();
    fs::write(m.join("etc/passwd"), b"root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::remove_file(m.join("bin/ls")).unwrap();
    // A directory replaced by a file, a file (symlink) replaced by a directory.
    fs::remove_dir(m.join("home")).unwrap();
    fs::write(m.join("home"), b"not a dir\n").unwrap();
    fs::remove_file(m.join("sbin/halt")).unwrap();
    fs::create_dir(m.join("sbin/halt")).unwrap();
    fs::write(m.join("sbin/halt/inside"), b"x").unwrap();
    // Opaque: a lower dir removed and made again.
    fs::remove_dir_all(m.join("usr/bin")).unwrap();
    fs::create_dir(m.join("usr/bin")).unwrap();
    fs::write(m.join("usr/bin/only"), b"only\n").unwrap();
    // Hard link, symlink, chmod/chown, a new directory.
    fs::hard_link(m.join("etc/new.txt"), m.join("etc/new-link")).unwrap();
    std::os::unix::fs::symlink("new.txt", m.join("etc/sym")).unwrap();
    std::os::unix::fs::chown(m.join("etc/group"), Some(1000), Some(1001)).unwrap();
    fs::set_permissions(m.join("etc/group"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::create_dir_all(m.join("opt/app")).unwrap();
    fs::write(m.join("opt/app/run.sh"), b"#!/bin/sh\n").unwrap();
}

fn clamped() -> CommitOptions {
    CommitOptions {
        clamp_mtime: Some(EPOCH),
    }
}

/// A layer's tar as (name → (type byte, mode, uid, gid, content or link target)).
type Members = BTreeMap<String, (u8, u32, u64, u64, Vec<u8>)>;

fn members(store: &Store, diff_id: &Digest) -> Members {
    let mut tar = Vec::new();
    let written = layer::write_tar(
        &store.layer_dir(diff_id),
        &mut tar,
        &WriteOptions::default(),
    )
    .unwrap();
    assert_eq!(
        &written.diff_id, diff_id,
        "the stored tree hashes to its diff ID"
    );
    let mut out = Members::new();
    let mut a = tar::Archive::new(tar.as_slice());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = String::from_utf8(e.path_bytes().to_vec()).unwrap();
        let h = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        if let Some(l) = e.link_name_bytes() {
            data = l.to_vec();
        }
        out.insert(
            name.trim_end_matches('/').to_string(),
            (
                h.entry_type().as_byte(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                data,
            ),
        );
    }
    out
}

fn check_change_layer(got: &Members) {
    let names: Vec<&str> = got.keys().map(String::as_str).collect();
    let kind = |n: &str| {
        got.get(n)
            .unwrap_or_else(|| panic!("{n} missing: {names:?}"))
            .0
    };
    let data = |n: &str| got[n].4.clone();
    // Hard links: the first name in byte order ('-' < '.') holds the data, the other
    // links to it.
    assert_eq!(
        (kind("etc/new-link"), data("etc/new-link")),
        (b'0', b"new\n".to_vec())
    );
    assert_eq!(
        (kind("etc/new.txt"), data("etc/new.txt")),
        (b'1', b"etc/new-link".to_vec())
    );
    assert_eq!(data("etc/passwd"), b"root:x:0:0:root:/root:/bin/sh\n");
    assert_eq!(kind("bin/.wh.ls"), b'0', "deleted lower file is a whiteout");
    assert_eq!(kind("home"), b'0', "dir replaced by a file");
    assert_eq!(kind("sbin/halt"), b'5');
    assert_eq!(kind("sbin/halt/inside"), b'0');
    assert_eq!(kind("usr/bin"), b'5');
    assert_eq!(
        kind("usr/bin/.wh..wh..opq"),
        b'0',
        "recreated dir is opaque"
    );
    assert_eq!(data("usr/bin/only"), b"only\n");
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("usr/bin/") && !n.ends_with("only") && !n.ends_with("opq")),
        "nothing of the old usr/bin: {names:?}"
    );
    assert_eq!(
        (kind("etc/sym"), data("etc/sym")),
        (b'2', b"new.txt".to_vec())
    );
    let group = &got["etc/group"];
    assert_eq!(
        (group.1, group.2, group.3),
        (0o600, 1000, 1001),
        "chmod/chown"
    );
    assert_eq!(data("opt/app/run.sh"), b"#!/bin/sh\n");
    // Nothing unchanged from the 1 MB+ base.
    assert!(!got.contains_key("bin/busybox"), "{names:?}");
    assert!(!got.contains_key("etc/shadow"), "{names:?}");
    assert!(!got.keys().any(|n| n.contains("work")), "{names:?}");
}

#[test]
fn overlay_changes_become_a_layer_by_rename() {
    let (dir, store, base) = store_with_busybox();
    let snap =
        Snapshot::prepare_with(&store, std::slice::from_ref(&base), Snapshotter::Overlay).unwrap();
    assert_eq!(snap.snapshotter(), Snapshotter::Overlay);
    let m = snap.merged().to_path_buf();
    assert!(m.join("bin/busybox").is_file(), "the base shows through");
    let root_mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(
        root_mode(&m),
        root_mode(&store.layer_dir(&base)),
        "/ keeps the base's mode"
    );
    assert_eq!(mounts_under(dir.path()).len(), 1);
    make_changes(&m);
    let upper_ino = fs::metadata(m.join("opt/app/run.sh")).unwrap().ino();
    let layer = snap.commit(&store, &clamped()).unwrap();
    assert!(!layer.empty && !layer.existed);
    assert!(mounts_under(dir.path()).is_empty(), "unmounted");
    assert_eq!(tmp_entries(&store), 0, "scratch removed");
    // The upper dir *is* the layer's tree: same inode, whiteouts as overlay made them.
    let tree = store.layer_dir(&layer.diff_id);
    assert_eq!(
        fs::metadata(tree.join("opt/app/run.sh")).unwrap().ino(),
        upper_ino
    );
    let wh = fs::symlink_metadata(tree.join("bin/ls")).unwrap();
    assert_eq!(
        (wh.mode() & 0o170000, wh.rdev()),
        (0o020000, 0),
        "0/0 char device"
    );
    check_change_layer(&members(&store, &layer.diff_id));
    // The plain blob is made when needed, and agrees.
    let (_, _, size) = store.make_layer_blob(&layer.diff_id).unwrap();
    assert_eq!(size, layer.tar_size);
    assert!(store.check().unwrap().is_clean());
}

#[test]
fn copy_snapshotter_gives_the_same_diff_id_as_overlay() {
    let (_dir, store, base) = store_with_busybox();
    let mut ids = Vec::new();
    for with in [Snapshotter::Overlay, Snapshotter::Copy] {
        let snap = Snapshot::prepare_with(&store, std::slice::from_ref(&base), with).unwrap();
        assert_eq!(snap.snapshotter(), with);
        make_changes(snap.merged());
        let layer = snap.commit(&store, &clamped()).unwrap();
        check_change_layer(&members(&store, &layer.diff_id));
        ids.push(layer);
    }
    assert_eq!(ids[0].diff_id, ids[1].diff_id, "overlay and copy agree");
    assert!(ids[1].existed);
    assert_eq!(tmp_entries(&store), 0);
}

#[test]
fn auto_uses_overlay_where_it_can() {
    let (_dir, store, base) = store_with_busybox();
    let snap = Snapshot::prepare_with(&store, &[base], Snapshotter::Auto).unwrap();
    assert_eq!(snap.snapshotter(), Snapshotter::Overlay);
    assert_eq!(snap.fallback_reason(), None);
    snap.discard().unwrap();
}

#[test]
fn copy_is_chosen_by_the_environment_name() {
    assert_eq!("copy".parse::<Snapshotter>().unwrap(), Snapshotter::Copy);
    assert_eq!(
        "overlay".parse::<Snapshotter>().unwrap(),
        Snapshotter::Overlay
    );
    assert_eq!("".parse::<Snapshotter>().unwrap(), Snapshotter::Auto);
    let err = "zfs".parse::<Snapshotter>().unwrap_err().to_string();
    assert!(err.contains("RBUILD_SNAPSHOTTER"), "{err}");
}

#[test]
fn snapshots_stack_on_two_layers() {
    let (_dir, store, base) = store_with_busybox();
    for with in [Snapshotter::Overlay, Snapshotter::Copy] {
        let snap = Snapshot::prepare_with(&store, std::slice::from_ref(&base), with).unwrap();
        make_changes(snap.merged());
        let first = snap.commit(&store, &clamped()).unwrap();

        let lowers = [base.clone(), first.diff_id.clone()];
        let snap = Snapshot::prepare_with(&store, &lowers, with).unwrap();
        let m = snap.merged();
        // The merged view applies the upper layer's whiteouts and opaque dirs.
        assert!(!m.join("bin/ls").exists(), "{with:?}");
        assert!(m.join("bin/cat").exists(), "{with:?}");
        assert!(m.join("home").is_file(), "{with:?}");
        let usr_bin: Vec<_> = fs::read_dir(m.join("usr/bin"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(usr_bin, ["only"], "{with:?}");
        assert_eq!(fs::read(m.join("etc/sym")).unwrap(), b"new\n");
        let link = fs::metadata(m.join("etc/new-link")).unwrap();
        assert_eq!(
            link.nlink(),
            2,
            "hard link kept through the stack ({with:?})"
        );
        fs::write(m.join("etc/second"), b"2").unwrap();
        fs::remove_file(m.join("etc/new.txt")).unwrap();
        let second = snap.commit(&store, &clamped()).unwrap();
        let got = members(&store, &second.diff_id);
        let names: Vec<&str> = got.keys().map(String::as_str).collect();
        // new-link lost a link: overlay leaves the lower inode alone; the copy snapshotter
        // sees its ctime change and keeps it (same content, a harmless extra entry).
        let expected: &[&str] = match with {
            Snapshotter::Copy => &["etc", "etc/.wh.new.txt", "etc/new-link", "etc/second"],
            _ => &["etc", "etc/.wh.new.txt", "etc/second"],
        };
        assert_eq!(names, expected, "{with:?}: only the second step's changes");
    }
}

#[test]
fn from_scratch_and_empty_commits() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for with in [Snapshotter::Overlay, Snapshotter::Copy] {
        let snap = Snapshot::prepare_with(&store, &[], with).unwrap();
        assert_eq!(fs::read_dir(snap.merged()).unwrap().count(), 0);
        let empty = snap.commit(&store, &CommitOptions::default()).unwrap();
        assert!(empty.empty, "{with:?}");
        assert_eq!(
            empty.diff_id.to_string(),
            "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
        );

        let snap = Snapshot::prepare_with(&store, &[], with).unwrap();
        fs::write(snap.merged().join("hello"), b"hi").unwrap();
        let layer = snap.commit(&store, &clamped()).unwrap();
        assert!(!layer.empty);
        assert_eq!(layer.size, 2);
        let got = members(&store, &layer.diff_id);
        assert_eq!(got.keys().collect::<Vec<_>>(), ["hello"]);
    }
    assert!(mounts_under(dir.path()).is_empty());
}

/// A layer of `n` files of `size` bytes, made through the store's own commit path.
fn make_layer(store: &Store, tag: &str, n: usize, size: usize) -> Digest {
    let u = store.new_upper_dir().unwrap();
    let d = u.upper.join(tag);
    fs::create_dir(&d).unwrap();
    let mut block = vec![0u8; size];
    for i in 0..n {
        // Distinct content per file, cheap to make.
        block[..8].copy_from_slice(&(i as u64).to_le_bytes());
        fs::write(d.join(format!("f{i:04}")), &block).unwrap();
    }
    let layer = store.add_layer_dir(&u.upper).unwrap();
    u.remove().unwrap();
    layer.diff_id
}

fn time_commit(store: &Store, base: &Digest) -> (Duration, CommittedLayer) {
    let snap =
        Snapshot::prepare_with(store, std::slice::from_ref(base), Snapshotter::Overlay).unwrap();
    fs::write(snap.merged().join("small.txt"), b"one small file\n").unwrap();
    let t = Instant::now();
    let layer = snap.commit(store, &CommitOptions::default()).unwrap();
    (t.elapsed(), layer)
}

#[test]
fn commit_cost_does_not_grow_with_the_base() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let small = make_layer(&store, "small", 2, 1 << 20);
    let big = make_layer(&store, "big", 200, 1 << 20);
    assert_eq!(store.layer_size(&big).unwrap(), Some(200 << 20));
    let mut t_small = Vec::new();
    let mut t_big = Vec::new();
    for _ in 0..3 {
        let (t, l) = time_commit(&store, &small);
        assert!(l.tar_size <= 4096, "one small file: {} bytes", l.tar_size);
        t_small.push(t);
        let (t, l) = time_commit(&store, &big);
        assert!(l.tar_size <= 4096, "one small file: {} bytes", l.tar_size);
        t_big.push(t);
    }
    t_small.sort();
    t_big.sort();
    let (s, b) = (t_small[1], t_big[1]);
    println!("commit of one small file: 2 MB base {s:?}, 200 MB base {b:?} (medians of 3)");
    // Generous: the point is that 100× the base is not 100× the time.
    assert!(
        b <= s.max(Duration::from_millis(20)) * 5,
        "commit on a 200 MB base took {b:?}, on a 2 MB base {s:?}"
    );
}

#[test]
fn many_lowers_mount_with_short_relative_paths() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // 60 layers × ~93 bytes of path do not fit the 4 KiB option page.
    let lowers: Vec<Digest> = (0..60)
        .map(|i| make_layer(&store, &format!("l{i:02}"), 1, 8))
        .collect();
    let snap = Snapshot::prepare_with(&store, &lowers, Snapshotter::Overlay).unwrap();
    for i in 0..60 {
        assert!(
            snap.merged().join(format!("l{i:02}/f0000")).is_file(),
            "layer {i}"
        );
    }
    fs::write(snap.merged().join("top"), b"t").unwrap();
    let layer = snap.commit(&store, &clamped()).unwrap();
    assert_eq!(
        members(&store, &layer.diff_id).keys().collect::<Vec<_>>(),
        ["top"]
    );
    assert!(mounts_under(dir.path()).is_empty());
}

fn failing_step(store: &Store, base: &Digest) -> Result<(), SnapshotError> {
    let snap = Snapshot::prepare_with(store, std::slice::from_ref(base), Snapshotter::Overlay)?;
    fs::write(snap.merged().join("partial"), b"half").unwrap();
    // The step fails: `?` returns, the snapshot is dropped.
    Err(Snapshot::prepare_with(
        store,
        &[Digest::from_hex(&"0".repeat(64)).unwrap()],
        Snapshotter::Overlay,
    )
    .unwrap_err())
}

#[test]
fn drop_after_an_error_or_a_panic_leaves_no_mount_and_no_scratch() {
    let (dir, store, base) = store_with_busybox();
    let err = failing_step(&store, &base).unwrap_err();
    assert!(matches!(err, SnapshotError::MissingLayer(_)), "{err}");
    assert_eq!(mounts_under(dir.path()), Vec::<String>::new());
    assert_eq!(tmp_entries(&store), 0);

    // A panic, with the mount still busy (a file open in it outlives the snapshot):
    // it is detached rather than left behind.
    let mut busy = None;
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let snap =
            Snapshot::prepare_with(&store, std::slice::from_ref(&base), Snapshotter::Overlay)
                .unwrap();
        busy = Some(fs::File::open(snap.merged().join("bin/busybox")).unwrap());
        panic!("the step panicked");
    }));
    assert!(panicked.is_err());
    assert_eq!(mounts_under(dir.path()), Vec::<String>::new());
    assert_eq!(tmp_entries(&store), 0);
    drop(busy);

    // discard says what happened.
    let snap =
        Snapshot::prepare_with(&store, std::slice::from_ref(&base), Snapshotter::Copy).unwrap();
    fs::write(snap.merged().join("x"), b"x").unwrap();
    snap.discard().unwrap();
    assert_eq!(tmp_entries(&store), 0);
    assert!(store.check().unwrap().is_clean());
}

/// Set by [`gc_removes_a_crashed_snapshot`] for the child it runs.
const CRASH_ENV: &str = "RBUILD_TEST_SNAPSHOT_CRASH_STORE";

/// What [`gc_removes_a_crashed_snapshot`] runs in its child process (the test binary
/// re-run on that test with `CRASH_ENV` set): prepares a snapshot, writes to it and dies
/// without any cleanup.
fn crash_child(root: std::ffi::OsString) -> ! {
    let store = Store::open(Path::new(&root)).unwrap();
    let base = store.images().unwrap()[0].layers[0].clone();
    let snap = Snapshot::prepare_with(&store, &[base], Snapshotter::Overlay).unwrap();
    fs::write(snap.merged().join("half-done"), vec![7u8; 1 << 20]).unwrap();
    // kill -9: no Drop, no unwinding.
    nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL).unwrap();
    unreachable!("SIGKILL was raised");
}

#[test]
fn gc_removes_a_crashed_snapshot() {
    if let Some(root) = std::env::var_os(CRASH_ENV) {
        crash_child(root);
    }
    let (dir, store, _base) = store_with_busybox();
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "gc_removes_a_crashed_snapshot",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_ENV, store.root())
        .status()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(9),
        "the child died of SIGKILL: {status:?}"
    );
    assert_eq!(
        mounts_under(dir.path()).len(),
        1,
        "the dead step's mount is left"
    );
    assert_eq!(tmp_entries(&store), 1, "and its scratch");
    assert!(
        store.check().unwrap().is_clean(),
        "leftovers are not damage"
    );
    store.collect_garbage().unwrap();
    assert_eq!(mounts_under(dir.path()), Vec::<String>::new());
    assert_eq!(tmp_entries(&store), 0);
    // The base is untouched (nothing was deleted through the overlay).
    let img = &store.images().unwrap()[0];
    let tree = store.layer_dir(&img.layers[0]);
    assert!(tree.join("bin/busybox").is_file());
    assert!(!tree.join("half-done").exists());
}
