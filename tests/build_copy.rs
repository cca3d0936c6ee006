//! COPY/ADD beyond the build context: `COPY --from` a stage, an index or an image, ADD
//! of local archives, URLs and git repositories, and `--parents`, `--exclude`, `--link`.

use std::os::unix::fs::MetadataExt;

use crate::build::{ctx_arg, outcomes, setup, upper};

/// Layer directories of `image`'s history, newest first.
pub(crate) fn layers(store: &crate::util::TestStore, image: &str) -> Vec<std::path::PathBuf> {
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

/// A tar with `dir/`, `dir/f` (mode 0640, owner 5:6) and `dir/link -> f`.
fn small_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o750);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(0);
    h.set_mtime(1_000_000);
    b.append_data(&mut h, "dir/", std::io::empty()).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o640);
    h.set_uid(5);
    h.set_gid(6);
    h.set_size(6);
    h.set_mtime(1_000_000);
    b.append_data(&mut h, "dir/f", &b"hello\n"[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_000_000);
    h.set_size(0);
    b.append_link(&mut h, "dir/link", "f").unwrap();
    b.into_inner().unwrap()
}

fn compress(tool: &str, data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new(tool)
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    child.wait_with_output().unwrap().stdout
}

#[test]
fn add_extracts_local_archives_into_the_destination() {
    let (store, ctx) = setup("add-tar");
    let tar = small_tar();
    std::fs::write(ctx.0.join("plain.tar"), &tar).unwrap();
    std::fs::write(ctx.0.join("a.tar.gz"), compress("gzip", &tar)).unwrap();
    std::fs::write(ctx.0.join("a.tar.bz2"), compress("bzip2", &tar)).unwrap();
    std::fs::write(ctx.0.join("a.tar.xz"), compress("xz", &tar)).unwrap();
    ctx.write(
        "Dockerfile",
        "FROM busybox
ADD plain.tar /plain
ADD a.tar.gz /gz/
ADD a.tar.bz2 /bz2
ADD a.tar.xz /etc/
ADD --unpack=false a.tar.gz /kept/
ADD --chown=9:9 a.tar.gz /owned/
",
    );
    store
        .run(&["build", "-t", "addtar", ctx_arg(&ctx)])
        .success();
    let l = layers(&store, "addtar");
    // Newest first: owned, kept, etc (xz), bz2, gz, plain.
    for (i, dir) in [(5, "plain"), (4, "gz"), (3, "bz2"), (2, "etc")] {
        let f = l[i].join(dir).join("dir/f");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "hello\n", "{dir}");
        let m = std::fs::metadata(&f).unwrap();
        assert_eq!(
            (m.mode() & 0o7777, m.uid(), m.gid()),
            (0o640, 5, 6),
            "{dir}"
        );
        assert_eq!(m.mtime(), 1_000_000);
        let d = std::fs::metadata(l[i].join(dir).join("dir")).unwrap();
        assert_eq!(d.mode() & 0o7777, 0o750);
        assert_eq!(
            std::fs::read_link(l[i].join(dir).join("dir/link")).unwrap(),
            std::path::Path::new("f")
        );
    }
    // Merged into the existing /etc: the base's files stay, only the archive's are new.
    assert!(!l[2].join("etc/passwd").exists());
    assert_eq!(
        std::fs::read(l[1].join("kept/a.tar.gz")).unwrap(),
        std::fs::read(ctx.0.join("a.tar.gz")).unwrap()
    );
    let m = std::fs::metadata(l[0].join("owned/dir/f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (9, 9));
}

/// A tar whose one member has the raw name `name` (bypassing the tar crate's checks).
fn raw_member_tar(entries: &[(&[u8], tar::EntryType, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, target) in entries {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..target.len()].copy_from_slice(target);
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_size(if *kind == tar::EntryType::Regular {
            2
        } else {
            0
        });
        h.set_cksum();
        let data: &[u8] = if *kind == tar::EntryType::Regular {
            b"x\n"
        } else {
            b""
        };
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn add_refuses_hostile_archives() {
    let (store, ctx) = setup("add-hostile");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dotdot.tar",
            raw_member_tar(&[(b"../../escape", tar::EntryType::Regular, b"")]),
            "escapes",
        ),
        (
            "through-link.tar",
            raw_member_tar(&[
                (b"l", tar::EntryType::Symlink, b"/tmp"),
                (b"l/owned", tar::EntryType::Regular, b""),
            ]),
            "symbolic link",
        ),
        (
            "hardlink-out.tar",
            raw_member_tar(&[(b"h", tar::EntryType::Link, b"../../etc/passwd")]),
            "escapes",
        ),
    ];
    for (name, bytes, why) in cases {
        std::fs::write(ctx.0.join(name), bytes).unwrap();
        ctx.write("Dockerfile", &format!("FROM busybox\nADD {name} /x/\n"));
        store
            .run(&["build", ctx_arg(&ctx)])
            .failure()
            .stderr_contains("Dockerfile:2")
            .stderr_contains(why);
    }
    assert!(!std::path::Path::new("/tmp/owned").exists());
    // An absolute member lands under the destination.
    std::fs::write(
        ctx.0.join("abs.tar"),
        raw_member_tar(&[(b"/abs/file", tar::EntryType::Regular, b"")]),
    )
    .unwrap();
    ctx.write("Dockerfile", "FROM busybox\nADD abs.tar /x/\n");
    store.run(&["build", "-t", "abs", ctx_arg(&ctx)]).success();
    assert!(upper(&store, "abs").join("x/abs/file").is_file());
}

/// Answers `n` requests with `body` and a fixed `Last-Modified`; returns the base URL.
fn serve(n: usize, body: &'static [u8]) -> String {
    crate::util::serve(
        n,
        "200 OK",
        "Last-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\n",
        body.to_vec(),
    )
}

#[test]
fn add_downloads_urls_with_checksums() {
    use sha2::Digest as _;
    let (store, ctx) = setup("add-url");
    let body: &'static [u8] = b"downloaded\n";
    let digest = format!(
        "sha256:{}",
        sha2::Sha256::digest(body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let url = serve(2, body);
    ctx.write(
        "Dockerfile",
        &format!(
            "FROM busybox\nADD {url}/files/hello.txt?x=1 /dl/\nADD --checksum={digest} {url}/other /named\n"
        ),
    );
    store.run(&["build", "-t", "url", ctx_arg(&ctx)]).success();
    let l = layers(&store, "url");
    let m = std::fs::metadata(l[1].join("dl/hello.txt")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o600);
    assert_eq!((m.uid(), m.gid()), (0, 0));
    assert_eq!(m.mtime(), 1_445_412_480);
    assert_eq!(std::fs::read(l[0].join("named")).unwrap(), b"downloaded\n");

    let url = serve(1, body);
    let wrong = format!("sha256:{}", "0".repeat(64));
    ctx.write(
        "Dockerfile",
        &format!("FROM busybox\nADD --checksum={wrong} {url}/f /f\n"),
    );
    store
        .run(&["build", ctx_arg(&ctx)])
        .failure()
        .stderr_contains("Dockerfile:2")
        .stderr_contains(&wrong)
        .stderr_contains(&digest);
}

#[test]
fn copy_exclude_leaves_matching_sources_out() {
    let (store, ctx) = setup("copy-exclude");
    ctx.write("src/a.py", "a\n");
    ctx.write("src/notes.txt", "n\n");
    ctx.write("src/skip/b.py", "b\n");
    ctx.write("top.txt", "t\n");
    ctx.write("top.py", "p\n");
    ctx.write(
        "Dockerfile",
        "FROM busybox\nCOPY --exclude=*.txt --exclude=skip src /app/\nCOPY --exclude=*.txt top.* /t/\n",
    );
    store.run(&["build", "-t", "ex", ctx_arg(&ctx)]).success();
    let l = layers(&store, "ex");
    assert!(l[1].join("app/a.py").is_file());
    assert!(!l[1].join("app/notes.txt").exists());
    assert!(!l[1].join("app/skip").exists());
    assert!(l[0].join("t/top.py").is_file());
    assert!(!l[0].join("t/top.txt").exists());
}

#[test]
fn copy_parents_keeps_parent_directories_below_the_pivot() {
    use std::os::unix::fs::PermissionsExt;
    let (store, ctx) = setup("copy-parents");
    for f in [
        "x/a.txt",
        "y/a.txt",
        "x/y/b.txt",
        "src/a.txt",
        "src/x/b.txt",
        "src/x/y/c.txt",
        "src/x/skip.md",
    ] {
        ctx.write(f, &format!("{f}\n"));
    }
    std::fs::set_permissions(ctx.0.join("x"), std::fs::Permissions::from_mode(0o750)).unwrap();
    ctx.write(
        "Dockerfile",
        "FROM busybox AS base
RUN mkdir -p /test/a/b/c/d/e && echo foo > /test/a/b/c/d/foo && echo bay > /test/a/b/c/d/e/bay

FROM scratch
COPY --parents x/a.txt y/a.txt /parents/
COPY --parents ./x/./y/*.txt /pivot/
COPY --parents ./src/**/*.txt /star/
COPY --from=base --parents /test/a/b/./c/d /from/
COPY --parents x/a.txt /nodir
",
    );
    let run = store
        .run(&["build", "--progress", "plain", "-t", "par", ctx_arg(&ctx)])
        .success();
    let l = layers(&store, "par");
    assert_eq!(l.len(), 5, "{}", run.stderr);
    let read = |p: std::path::PathBuf| std::fs::read_to_string(&p).unwrap_or_default();
    // Without a pivot the whole path below the context root is kept, its directories
    // with their own metadata.
    assert_eq!(read(l[4].join("parents/x/a.txt")), "x/a.txt\n");
    assert_eq!(read(l[4].join("parents/y/a.txt")), "y/a.txt\n");
    let m = std::fs::metadata(l[4].join("parents/x")).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid()), (0o750, 0));
    assert!(!l[4].join("parents/a.txt").exists());
    // `/./` keeps only what follows it.
    assert_eq!(read(l[3].join("pivot/y/b.txt")), "x/y/b.txt\n");
    assert!(!l[3].join("pivot/x").exists());
    // `**` matches any number of directories, none included.
    assert!(l[2].join("star/src/a.txt").is_file());
    assert!(l[2].join("star/src/x/b.txt").is_file());
    assert!(l[2].join("star/src/x/y/c.txt").is_file());
    assert!(!l[2].join("star/src/x/skip.md").exists());
    // From another stage, with a pivot.
    assert_eq!(read(l[1].join("from/c/d/foo")), "foo\n");
    assert_eq!(read(l[1].join("from/c/d/e/bay")), "bay\n");
    assert!(!l[1].join("from/test").exists() && !l[1].join("from/a").exists());
    // The destination is a directory even without a trailing slash.
    assert_eq!(read(l[0].join("nodir/x/a.txt")), "x/a.txt\n");

    // A path without wildcards must exist; one with wildcards may match nothing.
    ctx.write(
        "Dockerfile",
        "FROM busybox\nCOPY --parents nothere*/f /x/\nCOPY --parents x/missing.txt /x/\n",
    );
    store
        .run(&["build", ctx_arg(&ctx)])
        .failure()
        .stderr_contains("Dockerfile:3")
        .stderr_contains("\"/x/missing.txt\": not found");
}

#[test]
fn add_copies_a_compressed_file_that_holds_no_tar_as_it_is() {
    let (store, ctx) = setup("add-gz-plain");
    let gz = compress("gzip", b"just text, not a tar archive\n");
    std::fs::write(ctx.0.join("notes.gz"), &gz).unwrap();
    ctx.write("Dockerfile", "FROM busybox\nADD notes.gz /data/\n");
    store
        .run(&["build", "-t", "gzplain", ctx_arg(&ctx)])
        .success();
    let copied = upper(&store, "gzplain").join("data/notes.gz");
    assert_eq!(std::fs::read(&copied).unwrap(), gz);
}

#[test]
fn copy_heredocs_make_files() {
    let (store, ctx) = setup("copy-heredoc");
    let dockerfile = "FROM busybox
ARG NAME=world
COPY <<EOF /hello.txt
hello ${NAME}
EOF
COPY <<'EOT' <<B /dir/
raw ${NAME}
EOT
b
B
COPY --chmod=755 <<EOF /run.sh
#!/bin/sh
EOF
COPY <<EOF <<EOF /same/
one
EOF
two
EOF
";
    ctx.write("Dockerfile", dockerfile);
    store.run(&["build", "-t", "hd", ctx_arg(&ctx)]).success();
    let top = layers(&store, "hd");
    let find = |rel: &str| {
        top.iter()
            .map(|l| l.join(rel))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{rel} in no layer"))
    };
    let read = |rel: &str| std::fs::read_to_string(find(rel)).unwrap();
    // Unquoted delimiters expand the build's variables; quoted ones do not.
    assert_eq!(read("hello.txt"), "hello world\n");
    assert_eq!(read("dir/EOT"), "raw ${NAME}\n");
    assert_eq!(read("dir/B"), "b\n");
    // Two heredocs of one name build (each has its own scratch file); BuildKit's
    // parseSourcesAndDest gives each the first body of that name, and so does ours.
    assert_eq!(read("same/EOF"), "one\n");
    let mode = |rel: &str| std::fs::metadata(find(rel)).unwrap().mode() & 0o7777;
    assert_eq!(mode("hello.txt"), 0o644);
    assert_eq!(mode("run.sh"), 0o755);

    // Unchanged, all cached; another value for the argument changes the first COPY.
    let again = store.run(&["build", "-t", "hd", ctx_arg(&ctx)]).success();
    assert!(
        outcomes(&again.stderr).iter().all(|(_, o)| o == "CACHED"),
        "{}",
        again.stderr
    );
    let other = store
        .run(&[
            "build",
            "--build-arg",
            "NAME=you",
            "-t",
            "hd",
            ctx_arg(&ctx),
        ])
        .success();
    let o = outcomes(&other.stderr);
    assert!(o[1].1.starts_with("cache miss"), "{o:?}");
    let top = layers(&store, "hd");
    let hello = top
        .iter()
        .map(|l| l.join("hello.txt"))
        .find(|p| p.exists())
        .unwrap();
    assert_eq!(std::fs::read_to_string(hello).unwrap(), "hello you\n");
    // No scratch dir is left behind.
    assert_eq!(
        std::fs::read_dir(store.root().join("tmp")).unwrap().count(),
        0
    );
}
