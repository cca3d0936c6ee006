//! COPY/ADD beyond the build context: `COPY --from` a stage, an index or an image, ADD
//! of local archives, URLs and git repositories, and `--parents`, `--exclude`, `--link`.

use std::os::unix::fs::MetadataExt;

use crate::build::{ctx_arg, outcomes, setup, upper};

/// Layer directories of `image`'s history, newest first.
fn layers(store: &crate::util::TestStore, image: &str) -> Vec<std::path::PathBuf> {
    store
        .run(&["history", "-q", "--no-trunc", image])
        .success()
        .stdout
        .lines()
        .map(|id| upper(store, id))
        .collect()
}

#[test]
fn copy_from_stages_indexes_and_images() {
    let (store, ctx) = setup("copy-from");
    ctx.write("app/main.txt", "main\n");
    ctx.write("app/sub/deep.txt", "deep\n");
    ctx.write("other.txt", "other\n");
    ctx.write(
        "Dockerfile",
        "FROM busybox AS build
COPY --chown=7:8 app /out/
COPY other.txt /out/
RUN echo built > /out/run.txt

FROM scratch
COPY --from=build /out/main.txt /from-name.txt
COPY --from=0 /out /all/
COPY --from=BUILD /out/sub/*.txt /globbed/
COPY --from=busybox /etc/passwd /passwd
",
    );
    let run = store
        .run(&["build", "--progress", "plain", "-t", "cf", ctx_arg(&ctx)])
        .success();
    let l = layers(&store, "cf");
    assert_eq!(l.len(), 4, "{}", run.stderr);
    // Newest first: passwd, globbed, all, from-name.
    assert_eq!(
        std::fs::read_to_string(l[3].join("from-name.txt")).unwrap(),
        "main\n"
    );
    // Owners of the stage's files are kept without --chown.
    let m = std::fs::metadata(l[3].join("from-name.txt")).unwrap();
    assert_eq!((m.uid(), m.gid()), (7, 8));
    assert_eq!(
        std::fs::read_to_string(l[2].join("all/sub/deep.txt")).unwrap(),
        "deep\n"
    );
    assert!(l[2].join("all/other.txt").is_file());
    assert_eq!(
        std::fs::read_to_string(l[2].join("all/run.txt")).unwrap(),
        "built\n"
    );
    assert!(l[1].join("globbed/deep.txt").is_file());
    assert!(
        std::fs::read_to_string(l[0].join("passwd"))
            .unwrap()
            .starts_with("root:")
    );

    // Rebuilt unchanged: all cached; a changed file in the first stage re-runs the
    // COPY --from that reads it (its content is part of the key).
    let run = store
        .run(&["build", "--progress", "plain", "-t", "cf", ctx_arg(&ctx)])
        .success();
    assert!(
        outcomes(&run.stderr).iter().all(|(_, o)| o == "CACHED"),
        "{}",
        run.stderr
    );
    ctx.write("app/main.txt", "changed\n");
    let run = store
        .run(&["build", "--progress", "plain", "-t", "cf", ctx_arg(&ctx)])
        .success();
    let o = outcomes(&run.stderr);
    let from_name = o
        .iter()
        .find(|(s, _)| s.contains("/from-name.txt"))
        .unwrap();
    assert_ne!(from_name.1, "CACHED", "{}", run.stderr);
    let l = layers(&store, "cf");
    assert_eq!(
        std::fs::read_to_string(l[3].join("from-name.txt")).unwrap(),
        "changed\n"
    );
}

#[test]
fn copy_from_unknown_image_or_missing_path_names_the_line() {
    let (store, ctx) = setup("copy-from-bad");
    ctx.write(
        "Dockerfile",
        "FROM busybox\nCOPY --from=nosuch/image:1 /x /x\n",
    );
    store
        .run(&["build", ctx_arg(&ctx)])
        .failure()
        .stderr_contains("Dockerfile:2")
        .stderr_contains("nosuch/image:1");
    ctx.write(
        "Dockerfile",
        "FROM busybox AS a\nFROM busybox\nCOPY --from=a /nope /x\n",
    );
    store
        .run(&["build", ctx_arg(&ctx)])
        .failure()
        .stderr_contains("Dockerfile:3")
        .stderr_contains("/nope");
}
