//! `rbuild import`: a root file system tar becomes a one-layer image.

use crate::util::{TestStore, busybox_tar};

#[test]
fn imports_busybox_with_a_name() {
    let store = TestStore::new("import");
    let id = store.busybox("busybox:latest");
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    // Importing the same tar again stores nothing new but gives a new image: the
    // config records a new creation time, as with docker.
    let again = store
        .run(&["import", busybox_tar().to_str().unwrap()])
        .success();
    assert!(again.stdout.starts_with("sha256:"));
}

#[test]
fn import_from_stdin_and_bad_names() {
    let store = TestStore::new("import-stdin");
    let tar = std::fs::read(busybox_tar()).unwrap();
    store
        .run_stdin(&["import", "-", "bb:stdin"], Some(&tar))
        .success();
    store
        .run(&["import", "-", "Bad/Name"])
        .failure()
        .stderr_contains("must be lowercase");
    store
        .run(&["import", "/nonexistent.tar"])
        .failure()
        .stderr_contains("/nonexistent.tar");
    store
        .run_stdin(
            &["import", "-"],
            Some(b"this is not a tar archive, not at all, no"),
        )
        .failure();
}
