//! Multi-stage builds run the stages the target needs concurrently, each as soon as
//! the stages it uses are built, and a failing stage stops the others.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::build::{ctx_arg, setup};
use crate::build_run::{check_clean, mounts_under};

/// A RUN that waits (up to 30 s) for `file` in the shared cache mount `/c`.
fn wait_for(file: &str) -> String {
    format!(
        "i=0; while [ ! -e /c/{file} ]; do i=$((i+1)); [ $i -gt 300 ] && exit 7; sleep 0.1; done"
    )
}

#[test]
fn independent_stages_run_at_the_same_time() {
    let (store, ctx) = setup("stages-concurrent");
    // Each stage announces itself in a shared cache mount and waits for the other:
    // built one after the other, the first would give up after 30 s with exit code 7.
    let mount = "--mount=type=cache,id=rendezvous,target=/c,sharing=shared";
    ctx.write(
        "Dockerfile",
        &format!(
            "FROM busybox AS a
RUN {mount} touch /c/a && {wait_b} && echo a > /a
FROM busybox AS b
RUN {mount} touch /c/b && {wait_a} && echo b > /b
FROM busybox
COPY --from=a /a /
COPY --from=b /b /
",
            wait_a = wait_for("a"),
            wait_b = wait_for("b"),
        ),
    );
    let started = Instant::now();
    let run = store.run(&["build", "-t", "both", ctx_arg(&ctx)]).success();
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "took {:?}",
        started.elapsed()
    );
    let e = &run.stderr;
    assert!(e.contains("[a 2/2] RUN"), "{e}");
    assert!(e.contains("[b 2/2] RUN"), "{e}");
    // The final image's COPY layers hold what each stage wrote.
    let layers = std::fs::read_dir(store.root().join("layers")).unwrap();
    let mut found = Vec::new();
    for l in layers {
        let diff = l.unwrap().path().join("diff");
        for f in ["a", "b"] {
            if let Ok(s) = std::fs::read_to_string(diff.join(f)) {
                found.push(s);
            }
        }
    }
    found.sort();
    found.dedup();
    assert_eq!(found, ["a\n", "b\n"]);
    // Cached, the same build is all CACHED and still correct.
    let again = store.run(&["build", "-t", "both", ctx_arg(&ctx)]).success();
    assert!(!again.stderr.contains("cache miss"), "{}", again.stderr);
    check_clean(&store);
}

#[test]
fn a_failed_stage_stops_the_others_and_leaves_nothing_behind() {
    let (store, ctx) = setup("stages-abort");
    let mount = "--mount=type=cache,id=rendezvous,target=/c,sharing=shared";
    // `slow` is running when `bad` fails: it must be killed, not waited for.
    ctx.write(
        "Dockerfile",
        &format!(
            "FROM busybox AS slow
RUN {mount} touch /c/slow && sleep 3613
FROM busybox AS bad
RUN {mount} {wait} && exit 3
FROM busybox
COPY --from=slow /etc/passwd /slow
COPY --from=bad /etc/passwd /bad
",
            wait = wait_for("slow"),
        ),
    );
    let before = store.run(&["images", "-a", "-q"]).success().stdout;
    let started = Instant::now();
    let run = store
        .run(&["build", "-t", "never", ctx_arg(&ctx)])
        .failure()
        .stderr_contains("Dockerfile:4: process")
        .stderr_contains("exit code: 3");
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the failure waited for the other stage: {:?}",
        started.elapsed()
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&ps.stdout)
            .lines()
            .any(|l| l.trim() == "sleep 3613"),
        "the other stage's RUN survived"
    );
    assert!(mounts_under(store.root()).is_empty());
    let after = store.run(&["images", "-a", "-q"]).success().stdout;
    assert_eq!(after, before, "a failed or stopped step committed an image");
    store.run(&["inspect", "never"]).failure();
    check_clean(&store);
}
