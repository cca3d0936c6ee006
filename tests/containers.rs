//! `rbuild run` (foreground), `ps`, `rm`, and `rmi`/`image prune`/GC with containers.

use std::path::PathBuf;

use std::process::Command;
use std::time::{Duration, Instant};

use crate::build_run::{check_clean, interrupt, mounts_under, start_until_running};
use crate::util::{TempDir, TestStore};

/// A store with busybox as `bb` and `app` built on it: ENV, WORKDIR, USER-less, CMD.
fn setup(tag: &str) -> (TestStore, TempDir) {
    let store = TestStore::new(tag);
    store.busybox("bb");
    let ctx = TempDir::new(&format!("{tag}-ctx"));
    ctx.write(
        "Dockerfile",
        "FROM bb\nENV GREETING=hello\nWORKDIR /srv\nRUN echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd\nCMD [\"sh\", \"-c\", \"echo $GREETING from $(pwd) as $(id -u)\"]\n",
    );
    store
        .run(&["build", "-q", "-t", "app", ctx.0.to_str().unwrap()])
        .success();
    (store, ctx)
}

fn no_mounts(store: &TestStore) {
    let left = mounts_under(store.root());
    assert!(left.is_empty(), "mounts left: {left:?}");
}

fn container_dirs(store: &TestStore) -> Vec<PathBuf> {
    match std::fs::read_dir(store.root().join("containers")) {
        Ok(rd) => rd.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

fn id_of(store: &TestStore, name: &str) -> String {
    store
        .run(&["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}"])
        .success()
        .stdout
        .lines()
        .find_map(|l| l.strip_suffix(&format!(" {name}")).map(str::to_string))
        .unwrap_or_else(|| panic!("no container {name}"))
}

#[test]
fn run_applies_the_image_config_and_its_overrides() {
    let (store, _ctx) = setup("ctr-config");
    store
        .run(&["run", "--rm", "app"])
        .success()
        .stdout_contains("hello from /srv as 0");
    let out = store
        .run(&[
            "run",
            "--rm",
            "-e",
            "GREETING=bye",
            "-w",
            "/tmp",
            "-u",
            "app",
            "app",
        ])
        .success();
    assert_eq!(out.stdout.trim(), "bye from /tmp as 1000", "{}", out.stderr);
    // A given command replaces CMD; --entrypoint replaces ENTRYPOINT and drops CMD.
    let out = store
        .run(&["run", "--rm", "app", "echo", "given"])
        .success();
    assert_eq!(out.stdout.trim(), "given");
    let out = store
        .run(&[
            "run",
            "--rm",
            "--entrypoint",
            "hostname",
            "--hostname",
            "box",
            "app",
        ])
        .success();
    assert_eq!(out.stdout.trim(), "box");
    // The exit code is the command's; docker's 127 for a command not found.
    assert_eq!(
        store
            .run(&["run", "--rm", "app", "sh", "-c", "exit 3"])
            .status,
        Some(3)
    );
    store
        .run(&["run", "--rm", "app", "no-such-command"])
        .failure()
        .stderr_contains("executable file not found");
    assert_eq!(
        store.run(&["run", "--rm", "app", "no-such-command"]).status,
        Some(127)
    );
    assert_eq!(
        store.run(&["run", "--rm", "no-such-image"]).status,
        Some(125)
    );
    assert!(container_dirs(&store).is_empty(), "--rm left a container");
    assert_eq!(store.run(&["ps", "-aq"]).success().stdout, "");
    no_mounts(&store);
    check_clean(&store);
}

#[test]
fn volumes_tmpfs_and_network_none() {
    let (store, _ctx) = setup("ctr-mounts");
    let host = TempDir::new("ctr-mounts-host");
    host.write("in.txt", "from host\n");
    let rw = format!("{}:/data", host.0.display());
    let out = store
        .run(&[
            "run",
            "--rm",
            "-v",
            &rw,
            "app",
            "sh",
            "-c",
            "cat /data/in.txt; echo back > /data/out.txt",
        ])
        .success();
    assert_eq!(out.stdout, "from host\n");
    assert_eq!(
        std::fs::read_to_string(host.0.join("out.txt")).unwrap(),
        "back\n"
    );
    let ro = format!("{}:/data:ro", host.0.display());
    store
        .run(&[
            "run",
            "--rm",
            "-v",
            &ro,
            "app",
            "sh",
            "-c",
            "echo x > /data/nope",
        ])
        .failure();
    assert!(!host.0.join("nope").exists());
    let out = store
        .run(&[
            "run",
            "--rm",
            "--tmpfs",
            "/scratch",
            "app",
            "sh",
            "-c",
            "grep ' /scratch ' /proc/mounts | cut -d' ' -f3",
        ])
        .success();
    assert_eq!(out.stdout.trim(), "tmpfs");
    let out = store
        .run(&[
            "run",
            "--rm",
            "--network",
            "none",
            "app",
            "ls",
            "/sys/class/net",
        ])
        .success();
    assert_eq!(out.stdout.split_whitespace().collect::<Vec<_>>(), ["lo"]);
    no_mounts(&store);
    check_clean(&store);
}

#[test]
fn a_kept_container_is_listed_keeps_its_changes_and_is_removed_by_rm() {
    let (store, _ctx) = setup("ctr-keep");
    assert_eq!(
        store
            .run(&[
                "run",
                "--name",
                "keeper",
                "app",
                "sh",
                "-c",
                "echo data > /made; exit 4"
            ])
            .status,
        Some(4)
    );
    let ps = store.run(&["ps", "-a"]).success().stdout;
    let header = ps.lines().next().unwrap();
    for col in [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ] {
        assert!(header.contains(col), "{ps}");
    }
    let row = ps.lines().find(|l| l.ends_with("keeper")).expect(&ps);
    assert!(row.contains("Exited (4) "), "{ps}");
    assert!(row.contains("app:latest"), "{ps}");
    // The command quoted as Go's strconv.Quote does, cut at 20 characters.
    assert!(row.contains(r#""sh -c echo data > /…""#), "{ps}");
    let cmd = store.run(&["ps", "-a", "--no-trunc", "--format", "{{.Command}}"]);
    assert_eq!(
        cmd.success().stdout,
        "\"sh -c echo data > /made; exit 4\"\n"
    );
    // Not running: plain ps lists nothing.
    assert_eq!(store.run(&["ps", "-q"]).success().stdout, "");
    let id = id_of(&store, "keeper");
    assert_eq!(id.len(), 64);
    let upper = store.root().join("containers").join(&id).join("upper");
    assert_eq!(
        std::fs::read_to_string(upper.join("made")).unwrap(),
        "data\n"
    );
    assert!(
        !store
            .root()
            .join("containers")
            .join(&id)
            .join("merged")
            .exists()
    );
    no_mounts(&store);
    check_clean(&store);

    // By a unique ID prefix; docker prints what it was given.
    let out = store.run(&["rm", &id[..8]]).success();
    assert_eq!(out.stdout.trim(), &id[..8]);
    assert!(container_dirs(&store).is_empty());
    assert_eq!(store.run(&["ps", "-aq"]).success().stdout, "");
    store
        .run(&["rm", "keeper"])
        .failure()
        .stderr_contains("No such container: keeper");
    check_clean(&store);
}

#[test]
fn names_are_validated_and_unique() {
    let (store, _ctx) = setup("ctr-names");
    store
        .run(&["run", "--name=-bad", "app", "true"])
        .failure()
        .stderr_contains("Invalid container name (-bad)");
    store
        .run(&["run", "--name", "a/b", "app", "true"])
        .failure()
        .stderr_contains("Invalid container name");
    store
        .run(&["run", "--name", "web.1", "app", "true"])
        .success();
    let id = id_of(&store, "web.1");
    let dup = store.run(&["run", "--name", "web.1", "app", "true"]);
    assert_eq!(dup.status, Some(125));
    assert!(
        dup.stderr.contains(&format!(
            "Conflict. The container name \"/web.1\" is already in use by container \"{id}\""
        )),
        "{}",
        dup.stderr
    );
    // A generated name for the next one.
    store.run(&["run", "app", "true"]).success();
    let names = store
        .run(&["ps", "-a", "--format", "{{.Names}}"])
        .success()
        .stdout;
    assert_eq!(names.lines().count(), 2, "{names}");
    assert!(
        names.lines().any(|n| n != "web.1" && n.contains('_')),
        "{names}"
    );
    assert_eq!(container_dirs(&store).len(), 2);
}

#[test]
fn an_intermediate_build_image_runs_by_id() {
    let (store, ctx) = setup("ctr-intermediate");
    // The image of the RUN step: app's parent.
    let parent = store
        .run(&["inspect", "--format", "{{.Parent}}", "app"])
        .success()
        .stdout
        .trim()
        .to_string();
    assert!(parent.starts_with("sha256:"), "{parent}");
    let short = &parent["sha256:".len().."sha256:".len() + 12];
    let out = store
        .run(&["run", "--rm", short, "sh", "-c", "tail -1 /etc/passwd; pwd"])
        .success();
    assert_eq!(out.stdout, "app:x:1000:1000::/home/app:/bin/sh\n/srv\n");
    drop(ctx);
}

#[test]
fn rmi_and_prune_respect_containers() {
    let (store, _ctx) = setup("ctr-rmi");
    store
        .run(&["run", "--name", "user", "app", "true"])
        .success();
    let cid = id_of(&store, "user");
    let img = store
        .run(&["images", "-q", "--no-trunc", "app"])
        .success()
        .stdout
        .trim()
        .to_string();
    let img_short = &img["sha256:".len().."sha256:".len() + 12];
    store.run(&["rmi", "app"]).failure().stderr_contains(&format!(
        "Error response from daemon: conflict: unable to remove repository reference \"app\" (must force) - container {} is using its referenced image {img_short}",
        &cid[..12]
    ));
    store.run(&["rmi", img_short]).failure().stderr_contains(&format!(
        "Error response from daemon: conflict: unable to delete {img_short} (must be forced) - image is being used by stopped container {}",
        &cid[..12]
    ));
    // Refused whole: the name is still there.
    store.run(&["inspect", "app"]).success();
    // Prune of all unused images, and the GC it runs, keep it and its layers.
    store.run(&["image", "prune", "-a", "-f"]).success();
    store.run(&["inspect", "app"]).success();
    store.run(&["run", "--rm", "app", "true"]).success();
    check_clean(&store);

    // -f untags; the image stays (dangling) while the container uses it.
    store
        .run(&["rmi", "-f", "app"])
        .success()
        .stdout_contains("Untagged: app:latest");
    store.run(&["inspect", img_short]).success();
    store.run(&["image", "prune", "-f"]).success();
    store.run(&["inspect", img_short]).success();
    store.run(&["run", "--rm", img_short, "true"]).success();
    // Once the container goes, so can the image.
    store.run(&["rm", "user"]).success();
    store.run(&["image", "prune", "-f"]).success();
    store.run(&["inspect", img_short]).failure();
    no_mounts(&store);
    check_clean(&store);
}

#[test]
fn stdin_with_i_and_a_read_only_root() {
    let (store, _ctx) = setup("ctr-stdin-ro");
    let out = store
        .run_stdin(
            &["run", "--rm", "-i", "app", "tr", "a-z", "A-Z"],
            Some(b"piped in\n"),
        )
        .success();
    assert_eq!(out.stdout, "PIPED IN\n");
    // Without -i the command reads /dev/null, as docker's.
    let out = store
        .run_stdin(&["run", "--rm", "app", "cat"], Some(b"not read\n"))
        .success();
    assert_eq!(out.stdout, "");
    store
        .run(&["run", "--rm", "--read-only", "app", "touch", "/x"])
        .failure()
        .stderr_contains("Read-only file system");
    let out = store
        .run(&[
            "run",
            "--rm",
            "--read-only",
            "--tmpfs",
            "/scratch",
            "app",
            "sh",
            "-c",
            "echo ok > /scratch/f && cat /scratch/f",
        ])
        .success();
    assert_eq!(out.stdout, "ok\n");
    no_mounts(&store);
}

fn sleeper_alive(tag: &str) -> bool {
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    String::from_utf8_lossy(&ps.stdout)
        .lines()
        .any(|l| l.trim() == format!("sleep {tag}"))
}

#[test]
fn ctrl_c_stops_the_container_and_a_killed_run_is_cleaned_by_rm() {
    let (store, _ctx) = setup("ctr-interrupt");
    let child = start_until_running(&store, &["run", "--name", "ctrlc", "app", "sleep", "3611"]);
    let (out, took) = interrupt(child);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(out.status.code(), Some(130));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stopping the container"), "{stderr}");
    assert!(mounts_under(store.root()).is_empty());
    assert!(!sleeper_alive("3611"), "the container's process survived");
    let ps = store
        .run(&["ps", "-a", "--format", "{{.Names}} {{.State}} {{.Status}}"])
        .success();
    assert!(
        ps.stdout.starts_with("ctrlc exited Exited (130) "),
        "{}",
        ps.stdout
    );

    // rbuild killed outright: its container dies with it (PR_SET_PDEATHSIG), ps says
    // it exited, and rm takes the leftover mount and the files.
    let mut child =
        start_until_running(&store, &["run", "--name", "killed", "app", "sleep", "3612"]);
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sleeper_alive("3612") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!sleeper_alive("3612"), "the container's process survived");
    let ps = store.run(&["ps", "-a"]).success().stdout;
    let row = ps.lines().find(|l| l.ends_with("killed")).expect(&ps);
    assert!(row.contains("Exited (137)"), "{ps}");
    assert!(store.run(&["ps", "-q"]).success().stdout.is_empty());
    store.run(&["rm", "killed", "ctrlc"]).success();
    assert!(mounts_under(store.root()).is_empty());
    assert!(container_dirs(&store).is_empty());
    check_clean(&store);
}

#[test]
fn an_image_whose_dev_is_a_symlink_is_refused() {
    let store = TestStore::new("ctr-devlink");
    let dir = TempDir::new("ctr-devlink-tar");
    let tar = dir.0.join("rootfs.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&tar).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    b.append_link(&mut h, "dev", "/tmp").unwrap();
    b.finish().unwrap();
    drop(b);
    store
        .run(&["import", tar.to_str().unwrap(), "devlink"])
        .success();
    let out = store.run(&["run", "--rm", "devlink", "/bin/sh"]);
    assert_eq!(out.status, Some(125), "{}", out.stderr);
    assert!(
        out.stderr.contains("/dev is a symbolic link"),
        "{}",
        out.stderr
    );
    assert!(container_dirs(&store).is_empty());
    assert!(mounts_under(store.root()).is_empty());
    check_clean(&store);
}

#[test]
fn diff_lists_a_containers_changes_like_docker() {
    let (store, _ctx) = setup("ctr-diff");
    // The sandbox's own mount points (etc/hosts …) are not changes.
    store
        .run(&["run", "--name", "idle", "app", "true"])
        .success();
    let out = store.run(&["diff", "idle"]).success();
    assert_eq!(out.stdout, "", "{}", out.stderr);
    store
        .run(&[
            "run",
            "--name",
            "busy",
            "app",
            "sh",
            "-c",
            "echo new > /srv/new.txt && echo x >> /etc/passwd && rm /bin/vi && mkdir -p /data/d && touch /data/d/f && ln -s / /srv/root",
        ])
        .success();
    // A symlink is listed, never followed (`/srv/root` → `/`).
    let out = store.run(&["diff", "busy"]).success();
    assert_eq!(
        out.stdout,
        "C /bin\nD /bin/vi\nA /data\nA /data/d\nA /data/d/f\nC /etc\nC /etc/passwd\nC /srv\nA /srv/new.txt\nA /srv/root\n",
        "{}",
        out.stderr
    );
    store.run(&["diff", "nosuch"]).failure();
}

#[test]
fn export_then_import_gives_a_runnable_image_with_the_containers_changes() {
    let (store, ctx) = setup("ctr-export");
    store
        .run(&[
            "run",
            "--name",
            "writer",
            "app",
            "sh",
            "-c",
            "echo written-in-ctr > /srv/out.txt && rm /bin/vi",
        ])
        .success();
    // To stdout, piped into import.
    let (out, tar) = store.run_bytes(&["export", "writer"], None);
    let out = out.success();
    assert!(
        tar.len() > 1024,
        "export wrote {} bytes: {}",
        tar.len(),
        out.stderr
    );
    store
        .run_stdin(&["import", "-", "flat:1"], Some(&tar))
        .success();
    let out = store
        .run(&["run", "--rm", "flat:1", "cat", "/srv/out.txt"])
        .success();
    assert_eq!(out.stdout, "written-in-ctr\n", "{}", out.stderr);
    // The deletion is applied: the flattened tree has no vi.
    store
        .run(&["run", "--rm", "flat:1", "test", "!", "-e", "/bin/vi"])
        .success();
    // -o FILE gives the same tar, and leaves no temp file beside it.
    let file = ctx.0.join("out.tar");
    store
        .run(&["export", "-o", file.to_str().unwrap(), "writer"])
        .success();
    assert_eq!(std::fs::read(&file).unwrap(), tar, "-o and stdout differ");
    let names: Vec<_> = std::fs::read_dir(&ctx.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("rbuild-tmp"))
        .collect();
    assert!(names.is_empty(), "temp files left: {names:?}");
    store
        .run(&["export", "-o", file.to_str().unwrap(), "nosuch"])
        .failure();
}

#[test]
fn add_host_lines_follow_the_defaults_in_etc_hosts() {
    let store = TestStore::new("ctr-add-host");
    store.busybox("bb");
    let out = store
        .run(&[
            "run",
            "--rm",
            "--init",
            "--hostname",
            "box",
            "--add-host",
            "db:10.0.0.5",
            "--add-host",
            "v6=[::1]",
            "bb",
            "cat",
            "/etc/hosts",
        ])
        .success()
        .stdout;
    assert_eq!(
        out,
        "127.0.0.1\tlocalhost box\n::1\tlocalhost ip6-localhost ip6-loopback\n10.0.0.5\tdb\n::1\tv6\n"
    );
    let bad = store.run(&["run", "--rm", "--add-host", "db:not-an-ip", "bb", "true"]);
    assert_eq!(bad.status, Some(125));
    assert!(
        bad.stderr
            .contains("invalid argument \"db:not-an-ip\" for \"--add-host\" flag: invalid IP address in add-host: \"not-an-ip\""),
        "{}",
        bad.stderr
    );
    assert_eq!(store.run(&["ps", "-aq"]).success().stdout, "");
    // Kept in the container's config: inspect shows it.
    store
        .run(&[
            "create",
            "--name",
            "hosted",
            "--add-host",
            "db:10.0.0.5",
            "bb",
            "true",
        ])
        .success();
    let hosts = store
        .run(&["inspect", "-f", "{{.HostConfig.ExtraHosts}}", "hosted"])
        .success()
        .stdout;
    assert_eq!(hosts, "[db:10.0.0.5]\n");
    store.run(&["rm", "hosted"]).success();
    check_clean(&store);
}
