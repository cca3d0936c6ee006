//! The README's examples, run as written, so that the README stays true.

use std::process::Command;

use crate::build_run::check_clean;
use crate::util::{TestStore, root};

/// The first fenced block after the line holding `marker`, without its fences.
fn block_after(readme: &str, marker: &str) -> String {
    let rest = &readme[readme
        .find(marker)
        .unwrap_or_else(|| panic!("README.md has no {marker:?}"))..];
    let body = rest
        .split_once("```")
        .and_then(|(_, b)| b.split_once('\n'))
        .map(|(_, b)| b)
        .unwrap();
    body[..body.find("```").expect("the block ends")].to_string()
}

#[test]
fn the_container_tutorial_works_as_written() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let commands = block_after(&readme, "<!-- tutorial:commands");
    let diff = block_after(&readme, "<!-- tutorial:diff -->");
    assert!(commands.lines().count() >= 6, "{commands}");

    // What `bash fixtures/demo.sh` leaves: busybox:latest and runoob/centos:6.7 built
    // from fixtures/demo (the script itself also builds a release rbuild, not done here).
    let store = TestStore::new("readme-tutorial");
    store.busybox("busybox:latest");
    let demo = root().join("fixtures/demo");
    store
        .run(&["-q", "-t", "runoob/centos:6.7", demo.to_str().unwrap()])
        .success();

    // The block as it is, `rbuild` being this build's binary on that store.
    let script = format!("set -euo pipefail\nrbuild() {{ \"$RBUILD_BIN\" \"$@\"; }}\n{commands}");
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(root())
        .env("RBUILD_BIN", env!("CARGO_BIN_EXE_rbuild"))
        .env("RBUILD_ROOT", store.root())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script}\n{stdout}\n{stderr}");
    assert!(
        stdout.contains(&diff),
        "diff is not as the README says:\n{stdout}"
    );
    assert!(stdout.contains("\nsha256:"), "{stdout}");
    let has_line = |words: &[&str]| {
        stdout.lines().any(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            words.iter().all(|w| cols.contains(w))
        })
    };
    assert!(has_line(&["runoob/centos", "v2"]), "images: {stdout}");
    assert!(has_line(&["runoob/centos", "6.7"]), "images: {stdout}");
    assert!(has_line(&["has", "update"]), "history: {stdout}");
    assert!(
        stdout.trim_end().ends_with("Welcome to runoob"),
        "the committed image lacks the change: {stdout}"
    );
    check_clean(&store);
}
