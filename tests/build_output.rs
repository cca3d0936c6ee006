//! `rbuild build --output …` and `--push`: each output holds what it says, read back by
//! other tools (Debian's `skopeo`, `umoci`, GNU `tar`) or by another store.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::build::{ctx_arg, setup};
use crate::imagetar::{assert_same_tree, listing};
use crate::registry_util::{Registry, RegistryAuth};
use crate::util::{TempDir, TestStore, json, p, tool};

/// A context whose image needs every flattening rule: files deleted by a later layer
/// (whiteouts), a directory replaced (opaque), a symlink to a directory on the host
/// replaced by a real directory, and symlinks that must stay symlinks (one absolute,
/// pointing at a host directory the test watches, one relative).
fn tricky_context(ctx: &TempDir, host_dir: &Path) {
    ctx.write("tree/keep.txt", "kept\n");
    ctx.write("tree/gone.txt", "deleted by the RUN\n");
    ctx.write("tree/olddir/old.txt", "hidden by the opaque dir\n");
    ctx.write("tree/sub/deep.txt", "deep\n");
    let exe = ctx.write("tree/exe.sh", "#!/bin/sh\n");
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o750)).unwrap();
    std::os::unix::fs::symlink("keep.txt", ctx.0.join("tree/rel")).unwrap();
    std::os::unix::fs::symlink(host_dir, ctx.0.join("tree/abs")).unwrap();
    std::os::unix::fs::symlink(host_dir, ctx.0.join("tree/evil")).unwrap();
    ctx.write(
        "Dockerfile",
        "FROM busybox\nCOPY tree/ /app/\n\
         RUN rm /app/gone.txt && rm -rf /app/olddir && mkdir /app/olddir \
         && echo new > /app/olddir/new.txt \
         && rm /app/evil && mkdir /app/evil && echo inside > /app/evil/x\n",
    );
}

/// Asserts `root` holds the tricky image's file system, flattened.
#[track_caller]
fn assert_flattened(root: &Path, host_dir: &Path) {
    let app = root.join("app");
    assert_eq!(fs::read_to_string(app.join("keep.txt")).unwrap(), "kept\n");
    assert_eq!(
        fs::read_to_string(app.join("sub/deep.txt")).unwrap(),
        "deep\n"
    );
    let mode = fs::metadata(app.join("exe.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o750);
    assert!(
        !app.join("gone.txt").exists(),
        "the whiteout was not applied"
    );
    assert!(
        !app.join("olddir/old.txt").exists(),
        "the opaque directory was not applied"
    );
    assert_eq!(
        fs::read_to_string(app.join("olddir/new.txt")).unwrap(),
        "new\n"
    );
    assert_eq!(
        fs::read_link(app.join("rel")).unwrap(),
        Path::new("keep.txt")
    );
    assert_eq!(fs::read_link(app.join("abs")).unwrap(), host_dir);
    let evil = fs::symlink_metadata(app.join("evil")).unwrap();
    assert!(evil.is_dir(), "app/evil should be a directory");
    assert_eq!(fs::read_to_string(app.join("evil/x")).unwrap(), "inside\n");
    assert!(root.join("bin/busybox").is_file());
    assert_eq!(
        fs::read_dir(host_dir).unwrap().count(),
        0,
        "something was written through a symlink, outside the destination"
    );
}

#[test]
fn local_and_tar_outputs_are_the_flattened_file_system() {
    let (store, ctx) = setup("out-local");
    let host = TempDir::new("out-local-host");
    tricky_context(&ctx, &host.0);
    let out = TempDir::new("out-local-dest");
    let dest = out.0.join("rootfs");
    let tar = out.0.join("rootfs.tar");
    let local_spec = format!("type=local,dest={}", p(&dest));
    let tar_spec = format!("type=tar,dest={}", p(&tar));
    store
        .run(&[
            "build",
            "-q",
            "-o",
            &local_spec,
            "--output",
            &tar_spec,
            ctx_arg(&ctx),
        ])
        .success();
    assert_flattened(&dest, &host.0);

    // The tar is the same tree: GNU tar extracts it (owners and modes kept) to what the
    // local output wrote.
    let unpacked = out.0.join("unpacked");
    fs::create_dir(&unpacked).unwrap();
    tool(
        "tar",
        &["-xpf", p(&tar), "--numeric-owner", "-C", p(&unpacked)],
    );
    assert_flattened(&unpacked, &host.0);
    assert_same_tree(&listing(&dest), &listing(&unpacked), "local vs tar output");
    let names = tool("tar", &["-tf", p(&tar)]);
    assert!(
        !names.lines().any(|n| n.contains(".wh.")),
        "whiteouts in the flattened tar:\n{names}"
    );

    // `-o DIR` is type=local, `-o -` a tar on standard output; both again the same.
    let short = out.0.join("short");
    store
        .run(&["build", "-q", "-o", p(&short), ctx_arg(&ctx)])
        .success();
    assert_same_tree(&listing(&dest), &listing(&short), "-o DIR");
    let (run, bytes) = store.run_bytes(
        &["build", "--progress", "quiet", "-o", "-", ctx_arg(&ctx)],
        None,
    );
    run.success();
    assert_eq!(
        bytes,
        fs::read(&tar).unwrap(),
        "-o - differs from dest=FILE"
    );

    // No scratch is left in the store, and it is sound.
    let tmp = store.root().join("tmp");
    assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0, "leftovers in tmp/");
    store.run(&["system", "check"]).success();
}

#[test]
fn oci_and_docker_outputs_are_image_archives_other_tools_read() {
    let (store, ctx) = setup("out-archive");
    let host = TempDir::new("out-archive-host");
    tricky_context(&ctx, &host.0);
    let out = TempDir::new("out-archive-dest");
    let oci = out.0.join("image-oci.tar");
    let docker = out.0.join("image-docker.tar");
    let run = store
        .run(&[
            "build",
            "-q",
            "-t",
            "outapp:1",
            "-o",
            &format!("type=oci,dest={}", p(&oci)),
            "-o",
            &format!("type=docker,dest={}", p(&docker)),
            ctx_arg(&ctx),
        ])
        .success();
    let id = run.stdout.trim().to_string();
    assert!(id.starts_with("sha256:"), "{}", run.stdout);

    // OCI: a layout only (no manifest.json), which skopeo and umoci read.
    let names = tool("tar", &["-tf", p(&oci)]);
    assert!(names.lines().any(|n| n == "oci-layout"), "{names}");
    assert!(names.lines().any(|n| n == "index.json"), "{names}");
    assert!(!names.lines().any(|n| n == "manifest.json"), "{names}");
    let raw = tool(
        "skopeo",
        &["inspect", "--raw", &format!("oci-archive:{}", p(&oci))],
    );
    assert_eq!(json(&raw)["config"]["digest"], id.as_str(), "{raw}");
    let layout = out.0.join("layout");
    fs::create_dir(&layout).unwrap();
    tool("tar", &["-xf", p(&oci), "-C", p(&layout)]);
    let bundle = out.0.join("bundle");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:1", p(&layout)),
            p(&bundle),
        ],
    );
    assert_flattened(&bundle.join("rootfs"), &host.0);

    // Docker: manifest.json only, which skopeo reads and another store loads as the
    // same image, with its name.
    let names = tool("tar", &["-tf", p(&docker)]);
    assert!(names.lines().any(|n| n == "manifest.json"), "{names}");
    assert!(!names.lines().any(|n| n == "index.json"), "{names}");
    let inspected = json(&tool(
        "skopeo",
        &["inspect", &format!("docker-archive:{}", p(&docker))],
    ));
    assert_eq!(inspected["Digest"].as_str().map(str::len), Some(71));
    let config = tool(
        "skopeo",
        &[
            "inspect",
            "--config",
            "--raw",
            &format!("docker-archive:{}", p(&docker)),
        ],
    );
    assert_eq!(
        format!("sha256:{}", crate::imagetar::sha256_hex(config.as_bytes())),
        id
    );
    let other = TestStore::new("out-archive-load");
    other
        .run(&["load", "-i", p(&docker)])
        .success()
        .stdout_contains("Loaded image: outapp:1");
    let loaded = other
        .run(&["inspect", "-f", "{{.Id}}", "outapp:1"])
        .success();
    assert_eq!(loaded.stdout.trim(), id);
    other.run(&["system", "check"]).success();
    store.run(&["system", "check"]).success();
}

#[test]
fn push_sends_every_tag_and_another_store_pulls_the_same_image() {
    let (store, ctx) = setup("out-push");
    let reg = Registry::start("out-push", RegistryAuth::Anonymous);
    ctx.write("hello.txt", "pushed with the build\n");
    ctx.write(
        "Dockerfile",
        "FROM busybox\nCOPY hello.txt /hello.txt\nRUN echo run > /run.txt\n",
    );
    let one = format!("{}/built/app:1", reg.addr);
    let two = format!("{}/built/app:two", reg.addr);
    let run = store
        .run(&[
            "build",
            "-q",
            "--push",
            "-t",
            &one,
            "-t",
            &two,
            ctx_arg(&ctx),
        ])
        .success();
    let id = run.stdout.trim().to_string();
    assert!(run.stderr.contains("pushed "), "{}", run.stderr);

    for name in [&one, &two] {
        let other = TestStore::new("out-push-pull");
        other.run(&["pull", name]).success();
        let pulled = other.run(&["inspect", "-f", "{{.Id}}", name]).success();
        assert_eq!(pulled.stdout.trim(), id, "{name}");
        other.run(&["system", "check"]).success();
    }
    // `type=registry` is the same as --push.
    ctx.write("hello.txt", "pushed again\n");
    let run = store
        .run(&[
            "build",
            "-q",
            "-t",
            &one,
            "-o",
            "type=registry",
            ctx_arg(&ctx),
        ])
        .success();
    let other = TestStore::new("out-push-pull2");
    other.run(&["pull", &one]).success();
    let pulled = other.run(&["inspect", "-f", "{{.Id}}", &one]).success();
    assert_eq!(pulled.stdout.trim(), run.stdout.trim());
}

#[test]
fn bad_outputs_fail_before_building_and_name_the_value() {
    let (store, ctx) = setup("out-bad");
    ctx.write("Dockerfile", "FROM busybox\nRUN touch /ran\n");
    store
        .run(&["build", "--push", ctx_arg(&ctx)])
        .failure()
        .stderr_contains("tag is needed when pushing to registry");
    for spec in ["type=nope,dest=x", "type=local", "type=tar,dest=x,level=9"] {
        store
            .run(&["build", "-o", spec, ctx_arg(&ctx)])
            .failure()
            .stderr_contains(&format!("--output {spec}"));
    }
    // Nothing was built.
    let images = store.run(&["images", "-a", "-q"]).success();
    assert_eq!(images.stdout.lines().count(), 1, "{}", images.stdout);
    // An output that fails after the build names itself too.
    let missing = format!("type=tar,dest={}", "/nonexistent-dir/fs.tar");
    store
        .run(&["build", "-o", &missing, ctx_arg(&ctx)])
        .failure()
        .stderr_contains("/nonexistent-dir/fs.tar");
}
