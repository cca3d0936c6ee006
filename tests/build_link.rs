//! `COPY --link` / `ADD --link`: an independent layer, blind to the base's files, and
//! reused when only the layers below it changed.

use std::os::unix::fs::MetadataExt;

use crate::build::{ctx_arg, outcomes, setup, upper};
use crate::build_copy::layers;

#[test]
fn link_copies_into_an_empty_layer_not_through_the_base() {
    let (store, ctx) = setup("link-symlink");
    ctx.write("f.txt", "f\n");
    ctx.write(
        "Dockerfile",
        "FROM busybox
RUN mkdir -m 700 /real && ln -s /real /app
COPY f.txt /app/
COPY --link f.txt /app/
ADD --link --chown=7:8 f.txt /owned/deep/
RUN test -d /app && test ! -L /app && test -f /app/f.txt && test -f /real/f.txt
",
    );
    let run = store
        .run(&["build", "--progress", "plain", "-t", "ln", ctx_arg(&ctx)])
        .success();
    let l = layers(&store, "ln");
    let (plain, link, owned) = (&l[3], &l[2], &l[1]);
    // A plain COPY follows the base's symlink...
    assert!(plain.join("real/f.txt").is_file(), "{}", run.stderr);
    assert!(!plain.join("app").exists());
    // ...a --link copy can't see it: /app is a new directory (0755, root) that hides
    // the link in the image, as in BuildKit.
    let m = std::fs::symlink_metadata(link.join("app")).unwrap();
    assert!(m.is_dir());
    assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o755, 0, 0));
    assert!(link.join("app/f.txt").is_file());
    assert!(!link.join("real").exists());
    // Numeric --chown works under --link, for the files and the directories made.
    let m = std::fs::metadata(owned.join("owned/deep/f.txt")).unwrap();
    assert_eq!((m.uid(), m.gid()), (7, 8));
    let m = std::fs::metadata(owned.join("owned/deep")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (7, 8, 0o755));

    // Names can't be looked up in a layer made without the image (BuildKit fails too).
    ctx.write(
        "Dockerfile",
        "FROM busybox\nCOPY --link --chown=nobody f.txt /x\n",
    );
    store
        .run(&["build", ctx_arg(&ctx)])
        .failure()
        .stderr_contains("Dockerfile:2")
        .stderr_contains("--chown=nobody with --link");
}

#[test]
fn link_layer_is_reused_when_only_earlier_steps_change() {
    let (store, ctx) = setup("link-reuse");
    ctx.write("data/a.txt", "a\n");
    ctx.write("data/sub/b.txt", "b\n");
    let dockerfile = |word: &str| {
        format!(
            "FROM busybox
WORKDIR /srv
RUN echo {word} > /word
COPY --link data/ data/
COPY data/a.txt /plain.txt
"
        )
    };
    ctx.write("Dockerfile", &dockerfile("one"));
    store
        .run(&["build", "--progress", "plain", "-t", "r1", ctx_arg(&ctx)])
        .success();
    let first = layers(&store, "r1");
    assert!(first[1].join("srv/data/sub/b.txt").is_file());

    // The RUN below it changes: the --link step makes a new image on the new parent
    // with the layer it made before, without copying; the plain COPY after it runs.
    ctx.write("Dockerfile", &dockerfile("two"));
    let run = store
        .run(&["build", "--progress", "plain", "-t", "r2", ctx_arg(&ctx)])
        .success();
    let second = layers(&store, "r2");
    assert_eq!(second[1], first[1], "same layer: {}", run.stderr);
    assert_ne!(second[2], first[2], "the RUN layer changed");
    let o = outcomes(&run.stderr);
    let link = o
        .iter()
        .find(|(step, _)| step.starts_with("COPY --link"))
        .unwrap();
    assert_eq!(link.1, "cache miss: parent changed", "{}", run.stderr);
    let reuse_line = format!(
        "reusing the --link layer sha256:{} from an earlier build",
        first[1]
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
    );
    assert!(run.stderr.contains(&reuse_line), "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(upper(&store, "r2").join("plain.txt")).unwrap(),
        "a\n"
    );

    // A changed source is copied again; --no-cache never reuses.
    ctx.write("data/a.txt", "changed\n");
    let run = store
        .run(&["build", "--progress", "plain", "-t", "r3", ctx_arg(&ctx)])
        .success();
    assert!(
        !run.stderr.contains("reusing the --link layer"),
        "{}",
        run.stderr
    );
    let run = store
        .run(&[
            "build",
            "--progress",
            "plain",
            "--no-cache",
            "-t",
            "r4",
            ctx_arg(&ctx),
        ])
        .success();
    assert!(
        !run.stderr.contains("reusing the --link layer"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(layers(&store, "r4")[1].join("srv/data/a.txt")).unwrap(),
        "changed\n"
    );
}
