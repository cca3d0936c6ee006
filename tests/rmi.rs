//! `rbuild rmi` / `image rm`: Untagged/Deleted lines, conflicts, carrying on.

use crate::util::TestStore;

#[test]
fn untag_then_delete() {
    let store = TestStore::new("rmi");
    let id = store.busybox("busybox");
    store.run(&["tag", "busybox", "other:1"]).success();
    // By ID with two repositories: a conflict unless forced.
    store
        .run(&["rmi", &id[7..19]])
        .failure()
        .stderr_contains(&format!(
            "Error response from daemon: conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
            &id[7..19]
        ));
    let out = store.run(&["rmi", "other:1"]).success().stdout;
    assert_eq!(out, "Untagged: other:1\n");
    let out = store.run(&["image", "rm", "busybox"]).success().stdout;
    assert_eq!(out, format!("Untagged: busybox:latest\nDeleted: {id}\n"));
    assert_eq!(store.run(&["images", "-q", "-a"]).success().stdout, "");
    // Layers and blobs were collected.
    let blobs = std::fs::read_dir(store.root().join("blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0);
    store.run(&["system", "check"]).success();
}

#[test]
fn force_and_errors_carry_on() {
    let store = TestStore::new("rmi-force");
    let id = store.busybox("a");
    store.run(&["tag", "a", "b"]).success();
    let keep = store.busybox("c");
    let run = store
        .run(&["image", "remove", "nope", "-f", &id, "c"])
        .failure();
    assert!(
        run.stderr.contains("error: No such image: nope:latest"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stdout,
        format!(
            "Untagged: a:latest\nUntagged: b:latest\nDeleted: {id}\nUntagged: c:latest\nDeleted: {keep}\n"
        )
    );
}
