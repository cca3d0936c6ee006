//! `rbuild image prune`: the prompt, only dangling images, the reclaimed space.

use crate::util::TestStore;

#[test]
fn prompt_and_dangling_only() {
    let store = TestStore::new("prune");
    let old = store.busybox("busybox");
    let new = store.busybox("busybox");
    let run = store.run_stdin(&["image", "prune"], Some(b"n\n")).success();
    assert_eq!(
        run.stdout,
        "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] "
    );
    assert!(
        store
            .run(&["images", "-q", "--no-trunc"])
            .success()
            .stdout
            .contains(&old)
    );

    let run = store.run_stdin(&["image", "prune"], Some(b"y\n")).success();
    assert!(
        run.stdout.contains(&format!(
            "Deleted Images:\ndeleted: {old}\n\nTotal reclaimed space: "
        )),
        "{}",
        run.stdout
    );
    // Both images share the one layer, so only the config blob was freed: bytes.
    assert!(run.stdout.trim_end().ends_with('B'), "{}", run.stdout);
    assert_eq!(
        store
            .run(&["images", "-q", "-a", "--no-trunc"])
            .success()
            .stdout,
        format!("{new}\n")
    );
    let run = store.run(&["image", "prune", "-f"]).success();
    assert_eq!(run.stdout, "Total reclaimed space: 0B\n");
}

#[test]
fn all_and_filters() {
    let store = TestStore::new("prune-all");
    let id = store.busybox("busybox");
    store
        .run(&["image", "prune", "-f", "--filter", "x=1"])
        .failure()
        .stderr_contains("invalid filter 'x'");
    // Created now, so `until=1h` spares it.
    let run = store
        .run(&["image", "prune", "-a", "-f", "--filter", "until=1h"])
        .success();
    assert_eq!(run.stdout, "Total reclaimed space: 0B\n");
    let run = store
        .run_stdin(&["image", "prune", "-a"], Some(b"y\n"))
        .success();
    assert!(run.stdout.starts_with("WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue? [y/N] Deleted Images:\nuntagged: busybox:latest\n"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains(&format!("deleted: {id}\n\nTotal reclaimed space: "))
    );
    assert!(run.stdout.trim_end().ends_with("MB"), "{}", run.stdout);
    store.run(&["system", "check"]).success();
}
