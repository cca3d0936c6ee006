//! `rbuild system df` and `rbuild system check`.

use std::os::unix::fs::PermissionsExt;

use crate::util::TestStore;

#[test]
fn df_counts_images() {
    let store = TestStore::new("df");
    store.busybox("busybox");
    store.busybox("busybox"); // the first one is now dangling
    let out = store.run(&["system", "df"]).success().stdout;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "TYPE          TOTAL     ACTIVE    SIZE      RECLAIMABLE"
    );
    assert!(
        lines[1].starts_with("Images        2         1         "),
        "{out}"
    );
    // Both share the one layer, which the tagged image uses.
    assert!(lines[1].ends_with("0B (0%)"), "{out}");
    assert_eq!(
        lines[2], "Containers    0         0         0B        0B",
        "{out}"
    );
    assert!(
        lines[3].starts_with("Layers        1         1         "),
        "{out}"
    );
    assert_eq!(
        lines[4], "Build Cache   0         0         0B        0B",
        "{out}"
    );
}

#[test]
fn df_counts_containers_and_build_cache() {
    let store = TestStore::new("df-ctr");
    store.busybox("bb");
    let ctx = crate::util::TempDir::new("df-ctr-ctx");
    ctx.write("Dockerfile", "FROM bb\nRUN echo built > /b\n");
    store
        .run(&["build", "-q", "-t", "img", ctx.0.to_str().unwrap()])
        .success();
    store
        .run(&[
            "run",
            "--name",
            "writer",
            "img",
            "sh",
            "-c",
            "head -c 3000 /dev/zero > /big",
        ])
        .success();
    let out = store
        .run(&[
            "system",
            "df",
            "--format",
            "{{.Type}}|{{.TotalCount}}|{{.Active}}|{{.Size}}|{{.Reclaimable}}",
        ])
        .success()
        .stdout;
    let row = |t: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{t}|")))
            .unwrap_or_else(|| panic!("no {t} row: {out}"))
            .to_string()
    };
    // The stopped container's 3000 bytes are all reclaimable.
    assert_eq!(row("Containers"), "Containers|1|0|3kB|3kB (100%)", "{out}");
    // One cached RUN step; its layer belongs to a tagged image, so the cache alone
    // keeps nothing.
    assert_eq!(row("Build Cache"), "Build Cache|1|0|0B|0B", "{out}");
    store.run(&["rm", "writer"]).success();
    let out = store
        .run(&[
            "system",
            "df",
            "--format",
            "{{.Type}}|{{.TotalCount}}|{{.Size}}",
        ])
        .success()
        .stdout;
    assert!(out.contains("Containers|0|0B\n"), "{out}");
}

#[test]
fn check_clean_then_dirty() {
    let store = TestStore::new("check");
    let id = store.busybox("busybox");
    let out = store.run(&["system", "check"]).success().stdout;
    assert!(
        out.starts_with("checked 2 blob(s), 1 layer(s), 1 image(s)"),
        "{out}"
    );
    assert!(out.ends_with("no problems found\n"), "{out}");

    let blob = store.root().join("blobs/sha256").join(&id[7..]);
    let mut perm = std::fs::metadata(&blob).unwrap().permissions();
    perm.set_mode(perm.mode() | 0o200);
    std::fs::set_permissions(&blob, perm).unwrap();
    std::fs::write(&blob, b"{}").unwrap();
    let run = store.run(&["system", "check"]).failure();
    assert!(
        run.stdout.contains(&format!("problem: blob {id}: ")),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("problem(s) found"), "{}", run.stderr);
}
