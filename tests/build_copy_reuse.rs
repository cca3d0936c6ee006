//! A COPY that re-runs hard-links the files its previous layer already has (same source
//! digest, same metadata) instead of copying them: the new layer must be exactly what a
//! fresh copy makes, and the old layer must not change.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use rbuild_builder::store::layer::{WriteOptions, write_tar};

use crate::build::{ctx_arg, outcomes, setup, upper};
use crate::util::TestStore;

/// Sources changed in the last 2 s (whole seconds, so up to 3 s) are never trusted to
/// match their digest later (the same-clock-tick rule of the context digest cache), so
/// nothing of them would be reused: wait that long after writing a context.
fn let_settle() {
    std::thread::sleep(Duration::from_millis(3100));
}

/// Hashes a layer tree as its tar and checks the digest is the tree's name.
fn assert_tree_hashes_to_its_name(tree: &Path) {
    let name = tree
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    let written = write_tar(tree, std::io::sink(), &WriteOptions::default()).unwrap();
    assert_eq!(written.diff_id.hex(), name, "{}", tree.display());
}

/// (ino, content, mode, uid, gid, mtime) of a file.
fn snapshot(p: &Path) -> (u64, Vec<u8>, u32, u32, u32, (i64, i64)) {
    let m = fs::symlink_metadata(p).unwrap();
    (
        m.ino(),
        fs::read(p).unwrap(),
        m.mode(),
        m.uid(),
        m.gid(),
        (m.mtime(), m.mtime_nsec()),
    )
}

fn diff_id(tree: &Path) -> String {
    tree.parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn rebuilt_copy_links_unchanged_files_and_makes_the_fresh_layer() {
    let (store, ctx) = setup("copy-reuse");
    // Into `/`, so that every entry of the layer (dirs included) has the sources'
    // metadata: two builds of the same context then give the same diff ID.
    ctx.write("Dockerfile", "FROM busybox\nCOPY --chown=7:8 files/ /\n");
    ctx.write("files/a.txt", "a\n");
    ctx.write("files/sub/b.txt", "b\n");
    ctx.write("files/c.txt", "c\n");
    let tool = ctx.write("files/tool.sh", "#!/bin/sh\n");
    fs::set_permissions(&tool, fs::Permissions::from_mode(0o4755)).unwrap();
    let_settle();
    store
        .run(&["build", "--progress", "plain", "-t", "one", ctx_arg(&ctx)])
        .success();
    let one = upper(&store, "one");
    let before: Vec<_> = ["a.txt", "sub/b.txt", "c.txt", "tool.sh"]
        .iter()
        .map(|f| snapshot(&one.join(f)))
        .collect();

    // One file's content changes, another's mtime only (same digest, so the cache
    // misses on the first, and the second must be copied for its new mtime).
    ctx.write("files/a.txt", "changed\n");
    let old_time = UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    fs::File::options()
        .write(true)
        .open(ctx.0.join("files/c.txt"))
        .unwrap()
        .set_modified(old_time)
        .unwrap();
    let run = store
        .run(&["build", "--progress", "plain", "-t", "two", ctx_arg(&ctx)])
        .success();
    let o = outcomes(&run.stderr);
    assert!(
        o.iter()
            .any(|(s, r)| s.starts_with("COPY") && r.contains("files/a.txt changed")),
        "{}",
        run.stderr
    );
    let two = upper(&store, "two");
    assert_ne!(one, two);
    let ino = |p: &Path| fs::symlink_metadata(p).unwrap().ino();
    // Unchanged files are the old layer's inodes; setuid survived (nothing chowned them).
    assert_eq!(ino(&two.join("sub/b.txt")), ino(&one.join("sub/b.txt")));
    assert_eq!(ino(&two.join("tool.sh")), ino(&one.join("tool.sh")));
    assert_eq!(
        fs::metadata(two.join("tool.sh")).unwrap().mode() & 0o7777,
        0o4755
    );
    // Changed ones are new copies with the new content or mtime.
    assert_ne!(ino(&two.join("a.txt")), ino(&one.join("a.txt")));
    assert_eq!(fs::read_to_string(two.join("a.txt")).unwrap(), "changed\n");
    assert_ne!(ino(&two.join("c.txt")), ino(&one.join("c.txt")));
    assert_eq!(
        fs::metadata(two.join("c.txt")).unwrap().mtime(),
        1_600_000_000
    );
    let c = fs::metadata(two.join("c.txt")).unwrap();
    assert_eq!((c.uid(), c.gid()), (7, 8));

    // The old layer is as it was, file by file (but link counts) and as a tar.
    for (f, was) in ["a.txt", "sub/b.txt", "c.txt", "tool.sh"]
        .iter()
        .zip(&before)
    {
        assert_eq!(&snapshot(&one.join(f)), was, "{f}");
    }
    assert_tree_hashes_to_its_name(&one);
    assert_tree_hashes_to_its_name(&two);

    // A fresh store copying the same context from scratch makes the same layer.
    let fresh = TestStore::new("copy-reuse-fresh");
    fresh.busybox("busybox");
    fresh
        .run(&["build", "--no-cache", "-t", "two", ctx_arg(&ctx)])
        .success();
    let again = upper(&fresh, "two");
    assert_eq!(diff_id(&again), diff_id(&two));
    assert_eq!(fs::metadata(again.join("sub/b.txt")).unwrap().nlink(), 1);

    // `--no-cache` copies everything afresh, and still makes the same layer.
    store
        .run(&["build", "--no-cache", "-t", "three", ctx_arg(&ctx)])
        .success();
    assert_eq!(diff_id(&upper(&store, "three")), diff_id(&two));

    for s in [&store, &fresh] {
        s.run(&["system", "check"])
            .success()
            .stdout_contains("no problems found");
    }
}

#[test]
fn a_path_two_sources_wrote_is_linked_only_from_the_one_that_won() {
    let (store, ctx) = setup("copy-reuse-overlap");
    // Both sources have `x`; b's wins. Without b/x the next build must get a's, though
    // a/x did not change and the old layer has a file at that path.
    ctx.write("Dockerfile", "FROM busybox\nCOPY a/ b/ /dst/\n");
    ctx.write("a/x", "from a\n");
    ctx.write("a/y", "y\n");
    ctx.write("b/x", "from b\n");
    // A directory of a's replaced by a file of b's: the file keeps its own mtime (the
    // directory's is not set on whatever is at its path at the end).
    ctx.write("a/z/f", "f\n");
    let z = ctx.write("b/z", "file z\n");
    fs::File::options()
        .write(true)
        .open(&z)
        .unwrap()
        .set_modified(UNIX_EPOCH + Duration::from_secs(1_500_000_000))
        .unwrap();
    let_settle();
    store.run(&["build", "-t", "one", ctx_arg(&ctx)]).success();
    let one = upper(&store, "one");
    assert_eq!(fs::read_to_string(one.join("dst/x")).unwrap(), "from b\n");
    fs::remove_file(ctx.0.join("b/x")).unwrap();
    store.run(&["build", "-t", "two", ctx_arg(&ctx)]).success();
    let two = upper(&store, "two");
    assert_eq!(fs::read_to_string(two.join("dst/x")).unwrap(), "from a\n");
    // The unchanged file was reused, so the path above was really taken.
    assert_eq!(
        fs::metadata(two.join("dst/y")).unwrap().ino(),
        fs::metadata(one.join("dst/y")).unwrap().ino()
    );
    assert_eq!(fs::read_to_string(one.join("dst/x")).unwrap(), "from b\n");
    for tree in [&one, &two] {
        let m = fs::symlink_metadata(tree.join("dst/z")).unwrap();
        assert!(m.is_file());
        assert_eq!(m.mtime(), 1_500_000_000, "{}", tree.display());
    }
    assert_eq!(
        fs::metadata(two.join("dst/z")).unwrap().ino(),
        fs::metadata(one.join("dst/z")).unwrap().ino()
    );
    assert_tree_hashes_to_its_name(&one);
    assert_tree_hashes_to_its_name(&two);
}
