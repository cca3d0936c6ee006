//! `rbuild builder prune` and the `max-cache-size` limit: build cache goes least
//! recently used first, and what a tagged image needs never goes.

use crate::build::{ctx_arg, setup};
use crate::util::{TempDir, TestStore};

/// A Dockerfile whose RUN writes 1 MiB of random bytes: each version a distinct layer
/// of that size, marked `v`.
fn version(ctx: &TempDir, v: &str) {
    ctx.write(
        "Dockerfile",
        &format!("FROM busybox\nRUN head -c 1048576 /dev/urandom > /big && echo {v} > /version\n"),
    );
}

/// Builds the context tagged `app`; returns the image ID.
fn build(store: &TestStore, ctx: &TempDir, extra: &[&str]) -> String {
    let mut args = vec!["build", "-q", "-t", "app"];
    args.extend_from_slice(extra);
    args.push(ctx_arg(ctx));
    store.run(&args).success().stdout.trim().to_string()
}

fn exists(store: &TestStore, id: &str) -> bool {
    store.run(&["inspect", "-f", "{{.Id}}", id]).status == Some(0)
}

/// The bytes of `Total reclaimed space: N`, as printed (docker's units).
#[track_caller]
fn reclaimed(run: &crate::util::Run) -> String {
    run.stdout
        .lines()
        .find_map(|l| l.strip_prefix("Total reclaimed space: "))
        .unwrap_or_else(|| panic!("no total in:\n{}", run.stdout))
        .to_string()
}

/// The tagged image `app` is still `id` and works: a build on it reads `files` (and
/// busybox) from its layers, and the store checks clean.
#[track_caller]
fn assert_tagged_intact(store: &TestStore, id: &str, files: &str) {
    assert!(exists(store, "app"));
    assert_eq!(
        store
            .run(&["inspect", "-f", "{{.Id}}", "app"])
            .success()
            .stdout
            .trim(),
        id
    );
    // Tagged, so that it is no dangling cache itself.
    let on = TempDir::new("prune-on-top");
    on.write(
        "Dockerfile",
        &format!("FROM app\nRUN cat /bin/busybox {files} > /dev/null\n"),
    );
    store
        .run(&["build", "-q", "-t", "ontop", ctx_arg(&on)])
        .success();
    store
        .run(&["system", "check"])
        .success()
        .stdout_contains("no problems found");
}

#[test]
fn prune_removes_dangling_cache_and_all_removes_every_entry() {
    let (store, ctx) = setup("bprune");
    version(&ctx, "1");
    let v1 = build(&store, &ctx, &[]);
    version(&ctx, "2");
    let v2 = build(&store, &ctx, &[]);
    assert!(exists(&store, &v1), "v1 is dangling cache before the prune");

    let run = store.run(&["builder", "prune", "-f"]).success();
    assert!(
        run.stdout.starts_with("Deleted build cache objects:\n"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(&v1[7..]), "{}", run.stdout);
    let freed = reclaimed(&run);
    assert!(freed.ends_with("MB") || freed.ends_with("kB"), "{freed}");
    assert!(!exists(&store, &v1), "v1 should be gone");
    assert_tagged_intact(&store, &v2, "/big /version");
    // The tagged image's cache is kept: its build is all cached (a RUN that ran again
    // would write other random bytes, another image).
    assert_eq!(build(&store, &ctx, &[]), v2);
    // A second prune finds nothing.
    let run = store.run(&["builder", "prune", "-f"]).success();
    assert_eq!(run.stdout, "Total reclaimed space: 0B\n");

    // -a: every entry goes, so the same build runs its RUN again; the tagged image and
    // its layers stay.
    store.run(&["builder", "prune", "-a", "-f"]).success();
    assert_tagged_intact(&store, &v2, "/big /version");
    let rebuilt = build(&store, &ctx, &[]);
    assert_ne!(rebuilt, v2, "nothing should be cached after prune -a");
    store.run(&["system", "check"]).success();
}

#[test]
fn keep_storage_evicts_least_recently_used_first_and_until_spares_recent_use() {
    let (store, ctx) = setup("bprune-keep");
    version(&ctx, "1");
    let v1 = build(&store, &ctx, &[]);
    version(&ctx, "2");
    let v2 = build(&store, &ctx, &[]);
    // v3 is cheap (no RUN), so that v2's last use is recent when the prune runs.
    ctx.write("Dockerfile", "FROM busybox\nLABEL v=3\n");
    let v3 = build(&store, &ctx, &[]);

    // Nothing was used longer than an hour ago.
    let run = store
        .run(&["builder", "prune", "-f", "--filter", "until=1h"])
        .success();
    assert_eq!(reclaimed(&run), "0B");
    assert!(exists(&store, &v1) && exists(&store, &v2));

    // 2 MiB of dangling cache, 1.5 MiB allowed: the older v1 goes, v2 stays.
    let run = store
        .run(&["builder", "prune", "-f", "--keep-storage", "1.5MB"])
        .success();
    assert!(
        !exists(&store, &v1),
        "v1 (least recently used) should be gone"
    );
    assert!(exists(&store, &v2), "v2 should be kept:\n{}", run.stdout);
    assert_tagged_intact(&store, &v3, "");

    // Using v2's cache again (a hit) makes it the most recent: build v4, then v2 again
    // (all cached), then v4 is the one a tight limit takes.
    version(&ctx, "4");
    let v4 = build(&store, &ctx, &[]);
    version(&ctx, "2");
    assert_eq!(
        build(&store, &ctx, &[]),
        v2,
        "v2 should come from the cache"
    );
    ctx.write("Dockerfile", "FROM busybox\nLABEL v=3\n");
    build(&store, &ctx, &[]);
    store
        .run(&["builder", "prune", "-f", "--keep-storage", "1200k"])
        .success();
    assert!(!exists(&store, &v4), "v4 is now the least recently used");
    assert!(exists(&store, &v2), "v2 was used last");
    assert_tagged_intact(&store, &v3, "");
}

#[test]
fn until_filter_takes_only_what_was_not_used_recently() {
    let (store, ctx) = setup("bprune-until");
    version(&ctx, "1");
    let v1 = build(&store, &ctx, &[]);
    std::thread::sleep(std::time::Duration::from_secs(6));
    version(&ctx, "2");
    let v2 = build(&store, &ctx, &[]);
    ctx.write("Dockerfile", "FROM busybox\nLABEL v=3\n");
    let v3 = build(&store, &ctx, &[]);
    store
        .run(&["builder", "prune", "-f", "--filter", "until=4s"])
        .success();
    assert!(!exists(&store, &v1), "v1 was last used over 4 s ago");
    assert!(exists(&store, &v2), "v2 was used within the last 4 s");
    assert_tagged_intact(&store, &v3, "");
}

#[test]
fn max_cache_size_evicts_after_each_build_but_never_a_tagged_image() {
    let (store, ctx) = setup("bprune-max");
    std::fs::write(
        store.root().join("config.json"),
        r#"{"max-cache-size": "1536KiB"}"#,
    )
    .unwrap();
    version(&ctx, "1");
    let v1 = build(&store, &ctx, &[]);
    version(&ctx, "2");
    let v2 = build(&store, &ctx, &[]);
    // 1 MiB of dangling cache (v1): within the limit.
    assert!(exists(&store, &v1));
    version(&ctx, "3");
    let v3 = build(&store, &ctx, &[]);
    // 2 MiB dangling (v1, v2): the least recently used goes.
    assert!(!exists(&store, &v1), "v1 should have been evicted");
    assert!(exists(&store, &v2));
    assert_tagged_intact(&store, &v3, "/big /version");

    // A limit of zero, from the command line, takes every dangling entry and nothing a
    // tagged image needs: the tagged image's own rebuild is still all cached.
    assert_eq!(build(&store, &ctx, &["--max-cache-size", "0"]), v3);
    assert!(!exists(&store, &v2), "v2 should have been evicted");
    assert_eq!(build(&store, &ctx, &["--max-cache-size", "0"]), v3);
    assert_tagged_intact(&store, &v3, "/big /version");
    // A bad limit fails before anything is built.
    ctx.write("Dockerfile", "FROM busybox\nRUN touch /never\n");
    let before = store.run(&["images", "-a", "-q"]).success().stdout;
    store
        .run(&["build", "--max-cache-size", "lots", ctx_arg(&ctx)])
        .failure()
        .stderr_contains("--max-cache-size");
    assert_eq!(store.run(&["images", "-a", "-q"]).success().stdout, before);
}
