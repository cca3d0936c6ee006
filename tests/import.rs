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

#[test]
fn imports_from_a_url_and_names_the_url_on_errors() {
    let store = TestStore::new("import-url");
    let tar = std::fs::read(busybox_tar()).unwrap();
    let url = crate::util::serve_once("200 OK", tar);
    let id = store
        .run(&["import", &format!("{url}/rootfs.tar"), "web:1"])
        .success()
        .stdout;
    let comment = store
        .run(&["history", "--format", "{{.Comment}}", "web:1"])
        .success()
        .stdout;
    assert_eq!(comment.trim(), format!("Imported from {url}/rootfs.tar"));
    assert!(id.starts_with("sha256:"));

    let url = crate::util::serve_once("404 Not Found", b"nope".to_vec());
    store
        .run(&[
            "import",
            &format!("http://user:secret@{}/gone.tar", &url[7..]),
        ])
        .failure()
        .stderr_contains("404 Not Found")
        .stderr_contains("/gone.tar");
    let err = store
        .run(&[
            "import",
            &format!("http://user:secret@{}/gone.tar", &url[7..]),
        ])
        .stderr;
    assert!(!err.contains("secret"), "credentials leaked: {err}");
}
