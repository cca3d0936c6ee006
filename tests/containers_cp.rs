//! `rbuild cp CONTAINER:SRC DEST`: files and directories out of a created, stopped or
//! running container, docker's naming rules, a tar on stdout, and paths that stay inside
//! the container's root whatever its symlinks say.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::build_run::{check_clean, mounts_under};
use crate::util::{Reaper, TempDir, TestStore};

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn cp_takes_files_out_of_created_stopped_and_running_containers() {
    let store = TestStore::new("cp-out");
    store.busybox("bb");
    let _reap = Reaper(&store);
    let out = TempDir::new("cp-out-dest");
    let dest = |name: &str| out.0.join(name);
    let d = |name: &str| dest(name).to_str().unwrap().to_string();

    // docker create + cp + rm: the image's files, nothing mounted after.
    store
        .run(&["create", "--name", "made", "bb", "true"])
        .success();
    store
        .run(&["cp", "made:/etc/passwd", &d("passwd")])
        .success();
    assert!(read(&dest("passwd")).starts_with("root:"));
    assert!(mounts_under(store.root()).is_empty());

    // A stopped container: its own changes over the image's, a directory by name into
    // an existing directory, its contents with `/.`, links kept or followed (-L).
    let script = "mkdir -p /out/sub && echo built > /out/sub/app && echo inside > /marker \
                  && ln -s / /escape && ln -s sub/app /out/link && chmod 0750 /out/sub";
    store
        .run(&["run", "--name", "done", "bb", "sh", "-c", script])
        .success();
    std::fs::create_dir(dest("into")).unwrap();
    store.run(&["cp", "done:/out", &d("into")]).success();
    assert_eq!(read(&dest("into/out/sub/app")), "built\n");
    let sub = std::fs::metadata(dest("into/out/sub")).unwrap();
    assert_eq!(sub.mode() & 0o7777, 0o750);
    assert_eq!(
        std::fs::read_link(dest("into/out/link")).unwrap(),
        Path::new("sub/app")
    );
    store.run(&["cp", "done:/out/.", &d("contents")]).success();
    assert_eq!(read(&dest("contents/sub/app")), "built\n");
    store.run(&["cp", "done:/out/link", &d("link")]).success();
    assert!(
        std::fs::symlink_metadata(dest("link"))
            .unwrap()
            .is_symlink()
    );
    store
        .run(&["cp", "-L", "done:/out/link", &d("followed")])
        .success();
    assert_eq!(read(&dest("followed")), "built\n");
    // A file over a file replaces it.
    store.run(&["cp", "done:/marker", &d("passwd")]).success();
    assert_eq!(read(&dest("passwd")), "inside\n");

    // Symlinks and `..` resolve inside the container's root, never the host's.
    assert!(!Path::new("/marker").exists(), "the host has a /marker");
    store
        .run(&["cp", "done:/escape/marker", &d("via-link")])
        .success();
    assert_eq!(read(&dest("via-link")), "inside\n");
    store
        .run(&["cp", "done:/../../../marker", &d("via-dots")])
        .success();
    assert_eq!(read(&dest("via-dots")), "inside\n");
    // Followed, a link to `/` is the container's root, copied whole.
    store
        .run(&["cp", "-L", "done:/escape", &d("its-root")])
        .success();
    assert_eq!(read(&dest("its-root/marker")), "inside\n");
    assert_eq!(read(&dest("its-root/out/sub/app")), "built\n");

    // A running one, through its init's root.
    let id = store
        .run(&[
            "run",
            "-d",
            "--name",
            "live",
            "bb",
            "sh",
            "-c",
            "echo now > /now; exec sleep 3618",
        ])
        .success()
        .stdout;
    let id = id.trim();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let got = store.run(&["cp", "live:/now", &d("now")]);
        if got.status == Some(0) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", got.stderr);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(read(&dest("now")), "now\n");

    // A tar on stdout, named for the source.
    let tar = store.run(&["cp", "done:/out/sub", "-"]).success();
    let mut names: Vec<String> = tar::Archive::new(tar.stdout.as_bytes())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["sub/", "sub/app"]);

    // docker's errors.
    store
        .run(&["cp", "done:/nope", &d("x")])
        .failure()
        .stderr_contains("Could not find the file /nope in container done");
    store
        .run(&["cp", "nope:/etc", &d("x")])
        .failure()
        .stderr_contains("No such container: nope");
    store
        .run(&["cp", "done:/out", &d("passwd")])
        .failure()
        .stderr_contains("cannot copy a directory to the file");
    store
        .run(&["cp", "done:/etc", "live:/tmp"])
        .failure()
        .stderr_contains("copying between containers is not supported");

    store.run(&["rm", "-f", id, "made", "done"]).success();
    assert!(mounts_under(store.root()).is_empty());
    check_clean(&store);
}

#[test]
fn cp_puts_host_files_into_stopped_and_running_containers() {
    let store = TestStore::new("cp-in");
    store.busybox("bb");
    let _reap = Reaper(&store);
    let host = TempDir::new("cp-in-src");
    std::fs::create_dir_all(host.0.join("conf/sub")).unwrap();
    std::fs::write(host.0.join("conf/sub/app.ini"), "k=v\n").unwrap();
    std::fs::write(host.0.join("one"), "1\n").unwrap();
    std::os::unix::fs::symlink("one", host.0.join("link")).unwrap();
    let h = |name: &str| host.0.join(name).to_str().unwrap().to_string();

    // docker create + cp + start: the copies are there when it runs, owned by root.
    store
        .run(&[
            "create",
            "--name",
            "boxed",
            "bb",
            "sh",
            "-c",
            "cat /etc/conf/sub/app.ini /root/one; readlink /tmp/link; stat -c %u /root/one",
        ])
        .success();
    store.run(&["cp", &h("conf"), "boxed:/etc"]).success();
    store.run(&["cp", &h("one"), "boxed:/root"]).success();
    store.run(&["cp", &h("link"), "boxed:/tmp/"]).success();
    let row = store
        .run(&["ps", "-a", "--format", "{{.Names}} {{.State}}"])
        .success()
        .stdout;
    assert_eq!(row, "boxed created\n", "cp changed the container's state");
    assert!(mounts_under(store.root()).is_empty());
    let run = store.run(&["start", "-a", "boxed"]);
    assert_eq!(run.stdout, "k=v\n1\none\n0\n", "{}", run.stderr);

    // A running one, through its init's root; its symlinks and `..` stay inside it.
    store
        .run(&[
            "run",
            "-d",
            "--name",
            "live",
            "bb",
            "sh",
            "-c",
            "ln -s / /escape; exec sleep 3619",
        ])
        .success();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while store.run(&["cp", "live:/escape", "-"]).status != Some(0) {
        assert!(
            std::time::Instant::now() < deadline,
            "the container never made /escape"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!Path::new("/rbuild-cp-in-marker").exists());
    store
        .run(&["cp", &h("one"), "live:/escape/rbuild-cp-in-marker"])
        .success();
    store
        .run(&["cp", &h("one"), "live:/../../rbuild-cp-in-dots"])
        .success();
    assert!(
        !Path::new("/rbuild-cp-in-marker").exists(),
        "cp wrote to the host's root"
    );
    assert!(
        !Path::new("/rbuild-cp-in-dots").exists(),
        "cp wrote to the host's root"
    );
    let seen = store
        .run(&[
            "exec",
            "live",
            "cat",
            "/rbuild-cp-in-marker",
            "/rbuild-cp-in-dots",
        ])
        .success()
        .stdout;
    assert_eq!(seen, "1\n1\n");

    // docker's errors; nothing replaces a directory.
    store
        .run(&["cp", &h("one"), "live:/nope/x"])
        .failure()
        .stderr_contains("Could not find the file /nope in container live");
    store
        .run(&["cp", &h("conf"), "live:/etc/passwd"])
        .failure()
        .stderr_contains("cannot copy a directory to the file");
    std::fs::create_dir(host.0.join("tmp")).unwrap();
    store
        .run(&["cp", &h("one"), "live:/tmp/../etc/hostname/x"])
        .failure();

    store.run(&["rm", "-f", "live", "boxed"]).success();
    assert!(mounts_under(store.root()).is_empty());
    check_clean(&store);
}
