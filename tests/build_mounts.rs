//! `RUN --mount` of every type and `build --secret`, end to end: what the command sees,
//! and that nothing of the mounts lands in a layer.

use std::path::{Path, PathBuf};

use crate::build::{ctx_arg, setup};
use crate::util::TestStore;

/// Every file path (relative) in every layer of the store, with its contents if a file.
pub(crate) fn layer_files(store: &TestStore) -> Vec<(String, Option<Vec<u8>>)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Option<Vec<u8>>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p: PathBuf = e.unwrap().path();
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                out.push((rel, None));
                walk(base, &p, out);
            } else if m.is_file() {
                out.push((rel, Some(std::fs::read(&p).unwrap())));
            } else {
                out.push((rel, None));
            }
        }
    }
    let mut out = Vec::new();
    for layer in std::fs::read_dir(store.root().join("layers")).unwrap() {
        let diff = layer.unwrap().path().join("diff");
        walk(&diff, &diff, &mut out);
    }
    out
}

pub(crate) fn in_some_layer(store: &TestStore, rel: &str) -> Option<Vec<u8>> {
    layer_files(store)
        .into_iter()
        .find(|(p, _)| p == rel)
        .map(|(_, c)| c.unwrap_or_default())
}

#[test]
fn cache_mounts_persist_between_builds_and_stay_out_of_layers() {
    let (store, ctx) = setup("mount-cache");
    ctx.write(
        "Dockerfile",
        "FROM busybox\n\
         RUN --mount=type=cache,target=/var/cache/thing,uid=1000,mode=0700 \
         echo first > /var/cache/thing/f && stat -c %u:%a /var/cache/thing > /owner\n",
    );
    store.run(&["build", "-t", "one", ctx_arg(&ctx)]).success();
    ctx.write(
        "Dockerfile",
        "FROM busybox\n\
         RUN --mount=type=cache,target=/var/cache/thing,sharing=locked \
         cat /var/cache/thing/f > /seen && echo second >> /var/cache/thing/f\n\
         RUN --mount=type=cache,id=/var/cache/thing,target=/c,sharing=private \
         cat /c/f > /seen2\n",
    );
    store.run(&["build", "-t", "two", ctx_arg(&ctx)]).success();
    assert_eq!(in_some_layer(&store, "owner").unwrap(), b"1000:700\n");
    assert_eq!(in_some_layer(&store, "seen").unwrap(), b"first\n");
    assert_eq!(in_some_layer(&store, "seen2").unwrap(), b"first\nsecond\n");
    let files = layer_files(&store);
    assert!(
        files
            .iter()
            .all(|(p, _)| !p.starts_with("var/cache/thing") && p != "c"),
        "a mount left a trace: {:?}",
        files
            .iter()
            .filter(|(p, _)| p.starts_with("var/cache") || p == "c")
            .collect::<Vec<_>>()
    );
    assert!(store.root().join("cache-mounts").is_dir());
    let out = store.run(&["system", "check"]).success().stdout;
    assert!(out.contains("no problems found"), "{out}");
}

#[test]
fn cache_mounts_seeded_from_a_stage() {
    let (store, ctx) = setup("mount-cache-from");
    let dockerfile = |seed: &str| {
        format!(
            "FROM busybox AS seed\n\
             RUN mkdir -p /data && echo {seed} > /data/x && chown 7:8 /data && chmod 750 /data\n\
             FROM busybox\n\
             RUN --mount=type=cache,target=/c,from=seed,source=/data \
             cat /c/x > /first && stat -c %u:%g:%a /c > /owner && echo more > /c/y\n\
             RUN --mount=type=cache,target=/c,from=seed,source=/data ls /c > /list\n"
        )
    };
    ctx.write("Dockerfile", &dockerfile("one"));
    store.run(&["build", "-t", "a", ctx_arg(&ctx)]).success();
    assert_eq!(in_some_layer(&store, "first").unwrap(), b"one\n");
    // The seed's directory, owner and mode kept; the first RUN's write persisted.
    assert_eq!(in_some_layer(&store, "owner").unwrap(), b"7:8:750\n");
    assert_eq!(in_some_layer(&store, "list").unwrap(), b"x\ny\n");
    // The seed stage's own layer is untouched by what the RUNs wrote to the cache.
    assert!(in_some_layer(&store, "data/y").is_none());

    // Different seed contents: a cache of its own, starting from the new seed.
    let (store2, ctx2) = (store, ctx);
    ctx2.write("Dockerfile", &dockerfile("two"));
    let run = store2.run(&["build", "-t", "b", ctx_arg(&ctx2)]).success();
    let lists: Vec<Vec<u8>> = layer_files(&store2)
        .into_iter()
        .filter(|(p, _)| p == "list")
        .filter_map(|(_, c)| c)
        .collect();
    assert!(
        lists.contains(&b"x\ny\n".to_vec()),
        "{lists:?}\n{}",
        run.stderr
    );
    let firsts: Vec<Vec<u8>> = layer_files(&store2)
        .into_iter()
        .filter(|(p, _)| p == "first")
        .filter_map(|(_, c)| c)
        .collect();
    assert!(firsts.contains(&b"two\n".to_vec()), "{firsts:?}");
    let dirs = std::fs::read_dir(store2.root().join("cache-mounts"))
        .unwrap()
        .filter(|e| {
            let n = e.as_ref().unwrap().file_name();
            !n.to_string_lossy().starts_with('.')
        })
        .count();
    assert_eq!(dirs, 2, "one cache per seed");

    // A seed source that is not a directory is a clear error naming the step.
    ctx2.write(
        "Dockerfile",
        "FROM busybox AS seed\nFROM busybox\n\
         RUN --mount=type=cache,target=/c,from=seed,source=/etc/passwd true\n",
    );
    store2
        .run(&["build", ctx_arg(&ctx2)])
        .failure()
        .stderr_contains("Dockerfile:3")
        .stderr_contains("not a directory");
}

#[test]
fn bind_and_tmpfs_mounts() {
    let (store, ctx) = setup("mount-bind");
    ctx.write("data.txt", "from the context\n");
    ctx.write(
        "Dockerfile",
        "FROM busybox AS gen\n\
         RUN echo generated > /gen.txt\n\
         FROM busybox\n\
         RUN --mount=type=bind,source=data.txt,target=/d.txt cp /d.txt /copied && ! touch /d.txt 2>/dev/null\n\
         RUN --mount=type=bind,target=/ctx,rw echo x > /ctx/data.txt && test \"$(cat /ctx/data.txt)\" = x\n\
         RUN --mount=type=tmpfs,target=/scratch,size=1m echo hi > /scratch/f && grep -q ' /scratch tmpfs ' /proc/mounts\n\
         RUN --mount=type=bind,from=gen,source=/gen.txt,target=/mnt/g.txt cp /mnt/g.txt /fromgen\n\
         RUN --mount=type=bind,from=busybox,target=/bb test -x /bb/bin/busybox && ! mkdir /bb/x 2>/dev/null\n",
    );
    store
        .run(&["build", "-t", "bound", ctx_arg(&ctx)])
        .success();
    assert_eq!(
        std::fs::read_to_string(ctx.0.join("data.txt")).unwrap(),
        "from the context\n"
    );
    assert_eq!(
        in_some_layer(&store, "copied").unwrap(),
        b"from the context\n"
    );
    assert_eq!(in_some_layer(&store, "fromgen").unwrap(), b"generated\n");
    for gone in ["d.txt", "ctx", "scratch", "mnt", "mnt/g.txt", "bb"] {
        assert!(
            in_some_layer(&store, gone).is_none(),
            "{gone} is in a layer"
        );
    }
    // A changed context file re-runs the step that binds it.
    ctx.write("data.txt", "changed\n");
    let run = store
        .run(&["build", "--progress", "plain", "-t", "bound", ctx_arg(&ctx)])
        .success();
    assert!(
        run.stderr
            .lines()
            .any(|l| l.contains("RUN --mount=type=bind,source=data.txt") && !l.contains("CACHED")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("CACHED"), "{}", run.stderr);
}

const SECRET: &str = "s3cr3t-value-7f1a9c";

#[test]
fn secrets_are_readable_in_run_and_nowhere_else() {
    let (store, ctx) = setup("mount-secret");
    let file = ctx.write("../mount-secret-value", SECRET);
    ctx.write(
        "Dockerfile",
        "FROM busybox\n\
         RUN --mount=type=secret,id=x cat /run/secrets/x > /dev/null; test \"$(cat /run/secrets/x)\" = \"s3cr3t-value-\"\"7f1a9c\" && touch /ok1\n\
         RUN --mount=type=secret,id=x,env=SEC,required=true test \"$SEC\" = \"s3cr3t-value-\"\"7f1a9c\" && touch /ok2\n\
         RUN --mount=type=secret,id=x,target=/etc/app/key,mode=0440 test \"$(cat /etc/app/key)\" = \"s3cr3t-value-\"\"7f1a9c\" && touch /ok3\n\
         RUN --mount=type=secret,id=absent ls /run/secrets/absent 2>/dev/null || touch /ok4\n",
    );
    let secret = format!("id=x,src={}", file.display());
    store
        .run(&["build", "--secret", &secret, "-t", "sec", ctx_arg(&ctx)])
        .success();
    let _ = std::fs::remove_file(&file);
    for ok in ["ok1", "ok2", "ok3", "ok4"] {
        assert!(in_some_layer(&store, ok).is_some(), "{ok}");
    }
    for (path, contents) in layer_files(&store) {
        assert!(
            !path.starts_with("run/secrets") && path != "etc/app/key",
            "{path}"
        );
        if let Some(c) = contents {
            assert!(
                !c.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
                "{path} holds the secret"
            );
        }
    }
    let history = store
        .run(&["history", "--no-trunc", "sec"])
        .success()
        .stdout;
    assert!(history.contains("RUN"), "{history}");
    assert!(!history.contains(SECRET), "{history}");
    assert!(!history.contains(&file.display().to_string()), "{history}");

    // required=true without the secret: a clear error naming the line.
    ctx.write(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=secret,id=nope,required=true true\n",
    );
    let run = store.run(&["build", "-t", "sec2", ctx_arg(&ctx)]);
    assert_ne!(run.status, Some(0));
    assert!(
        run.stderr.contains("Dockerfile:2") && run.stderr.contains("secret nope: not found"),
        "{}",
        run.stderr
    );
}

#[test]
fn ssh_mounts_without_an_agent_are_left_out_unless_required() {
    let (store, ctx) = setup("mount-ssh");
    ctx.write(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=ssh echo \"sock=${SSH_AUTH_SOCK:-none}\" > /ssh\n",
    );
    store.run(&["build", ctx_arg(&ctx)]).success();
    assert_eq!(in_some_layer(&store, "ssh").unwrap(), b"sock=none\n");
    ctx.write(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=ssh,id=gh,required=true true\n",
    );
    store
        .run(&["build", ctx_arg(&ctx)])
        .failure()
        .stderr_contains("Dockerfile:2: no SSH key \"gh\" forwarded from the client");
}

#[test]
fn one_locked_cache_mounted_twice_in_a_step_does_not_wait_for_itself() {
    let (store, ctx) = setup("mount-cache-twice");
    ctx.write(
        "Dockerfile",
        "FROM busybox\n\
         RUN --mount=type=cache,id=z,sharing=locked,target=/x \
         --mount=type=cache,id=z,sharing=locked,target=/y \
         touch /x/f && ls /y > /seen\n",
    );
    let started = std::time::Instant::now();
    store.run(&["build", ctx_arg(&ctx)]).success();
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert_eq!(in_some_layer(&store, "seen").unwrap(), b"f\n");
}
