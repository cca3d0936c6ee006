//! `rbuild commit`: a container's changes as a new image, and the freezer cgroup that
//! pauses a running container while they are read.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::build_run::{check_clean, interrupt, mounts_under, start_until_running};
use crate::util::{TestStore, json};

fn id_of(store: &TestStore, name: &str) -> String {
    store
        .run(&["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}"])
        .success()
        .stdout
        .lines()
        .find_map(|l| l.strip_suffix(&format!(" {name}")).map(str::to_string))
        .unwrap_or_else(|| panic!("no container {name}"))
}

fn inspect(store: &TestStore, image: &str) -> serde_json::Value {
    let out = store.run(&["inspect", image]).success();
    json(&out.stdout)[0].clone()
}

/// The tree of an image's top layer in the store.
fn top_layer_dir(store: &TestStore, image: &str) -> PathBuf {
    let v = inspect(store, image);
    let top = v["RootFS"]["Layers"].as_array().unwrap().last().unwrap();
    let hex = top.as_str().unwrap().strip_prefix("sha256:").unwrap();
    store.root().join("layers").join(hex).join("diff")
}

/// The sandbox's mount points never land in a committed layer.
fn assert_no_artefacts(layer: &Path) {
    for p in [
        "etc/hosts",
        "etc/resolv.conf",
        "etc/hostname",
        "proc",
        "dev",
        "sys",
    ] {
        assert!(
            std::fs::symlink_metadata(layer.join(p)).is_err(),
            "{p} is in the committed layer {}",
            layer.display()
        );
    }
}

fn scratch_left(store: &TestStore) -> Vec<PathBuf> {
    match std::fs::read_dir(store.root().join("tmp")) {
        Ok(rd) => rd.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn commit_makes_an_image_of_a_containers_changes() {
    let store = TestStore::new("commit-changes");
    let base = store.busybox("bb");
    store
        .run(&[
            "run",
            "--name",
            "ch",
            "bb",
            "sh",
            "-c",
            // Added, changed, deleted (a file and a directory), and a file replaced by
            // a directory.
            "echo new > /new && echo changed >> /etc/passwd && rm /bin/vi && rm -r /home \
             && rm /etc/shadow && mkdir /etc/shadow && echo in > /etc/shadow/inside",
        ])
        .success();
    let diff = store.run(&["diff", "ch"]).success();
    assert_eq!(
        diff.stdout,
        "C /bin\nD /bin/vi\nC /etc\nC /etc/passwd\nC /etc/shadow\nA /etc/shadow/inside\nD /home\nA /new\n",
        "{}",
        diff.stderr
    );
    let out = store
        .run(&[
            "commit",
            "-a",
            "me",
            "-m",
            "msg",
            "-c",
            r#"CMD ["cat","/new"]"#,
            "ch",
            "img:v1",
        ])
        .success();
    let id = out.stdout.trim();
    assert!(
        id.len() == 71 && id.starts_with("sha256:"),
        "commit prints the image ID as docker does: {:?}",
        out.stdout
    );
    let v = inspect(&store, "img:v1");
    assert_eq!(v["Id"], id);
    assert_eq!(v["Parent"], base, "the parent is the container's image");
    assert_eq!(v["Author"], "me");
    assert_eq!(v["Comment"], "msg", "docker shows the last history comment");
    assert_eq!(v["Config"]["Cmd"], json(r#"["cat","/new"]"#));
    let base_layers = inspect(&store, "bb")["RootFS"]["Layers"].clone();
    assert_eq!(
        v["RootFS"]["Layers"].as_array().unwrap().len(),
        base_layers.as_array().unwrap().len() + 1
    );
    store
        .run(&["inspect", "-f", "{{.Author}}", "img:v1"])
        .success()
        .stdout_contains("me");

    // The change runs, and what was deleted is gone.
    let out = store.run(&["run", "--rm", "img:v1"]).success();
    assert_eq!(out.stdout, "new\n", "{}", out.stderr);
    let out = store
        .run(&[
            "run",
            "--rm",
            "img:v1",
            "sh",
            "-c",
            "test ! -e /bin/vi && test ! -e /home && cat /etc/shadow/inside && tail -n 1 /etc/passwd",
        ])
        .success();
    assert_eq!(out.stdout, "in\nchanged\n", "{}", out.stderr);

    // history: the comment, the container's command as created_by.
    let out = store
        .run(&[
            "history",
            "--no-trunc",
            "--format",
            "{{.Comment}}|{{.CreatedBy}}",
            "img:v1",
        ])
        .success();
    assert!(
        out.stdout
            .lines()
            .next()
            .is_some_and(|l| l.starts_with("msg|sh -c echo new > /new")),
        "{}",
        out.stdout
    );
    let out = store.run(&["history", "img:v1"]).success();
    assert!(out.stdout.contains("msg"), "{}", out.stdout);

    // The sandbox's artefacts are not in the layer; the changes are.
    let layer = top_layer_dir(&store, "img:v1");
    assert!(layer.join("etc/passwd").is_file() && layer.join("new").is_file());
    assert_no_artefacts(&layer);

    // The container is left as it was: it can be committed again, diffed the same.
    assert_eq!(store.run(&["diff", "ch"]).success().stdout, diff.stdout);
    // Without a name: an untagged image.
    let out = store.run(&["commit", "ch"]).success();
    let untagged = out.stdout.trim().to_string();
    let v = inspect(&store, &untagged);
    assert_eq!(v["RepoTags"], json("[]"));
    assert_eq!(v["Author"], "");
    assert_eq!(
        v["Config"]["Cmd"],
        json(
            r#"["sh","-c","echo new > /new && echo changed >> /etc/passwd && rm /bin/vi && rm -r /home && rm /etc/shadow && mkdir /etc/shadow && echo in > /etc/shadow/inside"]"#
        ),
        "without -c the image runs the container's command, as docker's"
    );

    assert!(
        scratch_left(&store).is_empty(),
        "{:?}",
        scratch_left(&store)
    );
    check_clean(&store);
}

#[test]
fn an_unchanged_container_commits_an_image_without_a_new_layer() {
    let store = TestStore::new("commit-empty");
    store.busybox("bb");
    // The sandbox made etc/hosts & co in the container's upper dir: not changes.
    store
        .run(&["run", "--name", "idle", "bb", "true"])
        .success();
    assert_eq!(store.run(&["diff", "idle"]).success().stdout, "");
    store
        .run(&["commit", "-m", "nothing", "idle", "same:1"])
        .success();
    let v = inspect(&store, "same:1");
    assert_eq!(
        v["RootFS"]["Layers"],
        inspect(&store, "bb")["RootFS"]["Layers"],
        "docker adds no layer for an empty diff"
    );
    let out = store
        .run(&["history", "--format", "{{.Size}} {{.Comment}}", "same:1"])
        .success();
    assert_eq!(
        out.stdout.lines().next(),
        Some("0B nothing"),
        "{}",
        out.stdout
    );
    store.run(&["run", "--rm", "same:1", "true"]).success();
    check_clean(&store);
}

#[test]
fn commit_refuses_bad_input_and_stores_nothing() {
    let store = TestStore::new("commit-bad");
    store.busybox("bb");
    store
        .run(&["run", "--name", "c1", "bb", "sh", "-c", "echo x > /x"])
        .success();
    let images = || store.run(&["images", "-aq"]).success().stdout;
    let before = images();
    let out = store.run(&["commit", "nosuch", "x:1"]);
    assert_eq!(out.status, Some(1));
    assert_eq!(
        out.stderr,
        "Error response from daemon: No such container: nosuch\n"
    );
    store
        .run(&["commit", "-c", "RUN echo no", "c1", "x:1"])
        .failure()
        .stderr_contains("run is not a valid change command");
    store.run(&["commit", "c1", "Bad:Name"]).failure();
    store.run(&["commit", "--pause=maybe", "c1"]).failure();
    assert_eq!(images(), before, "a failed commit stored an image");
    assert!(scratch_left(&store).is_empty());
    check_clean(&store);
}

/// Where a container's cgroup is, and whether a read of its state says frozen.
struct Freezer {
    dir: PathBuf,
    state: PathBuf,
    frozen: &'static [&'static str],
}

fn freezer_of(id: &str) -> Freezer {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").is_file() {
        let dir = Path::new("/sys/fs/cgroup/rbuild").join(id);
        Freezer {
            state: dir.join("cgroup.freeze"),
            dir,
            frozen: &["1"],
        }
    } else {
        let dir = Path::new("/sys/fs/cgroup/freezer/rbuild").join(id);
        assert!(
            Path::new("/sys/fs/cgroup/freezer/cgroup.procs").is_file(),
            "no cgroup v1 freezer hierarchy at /sys/fs/cgroup/freezer and no cgroup2 at /sys/fs/cgroup"
        );
        Freezer {
            state: dir.join("freezer.state"),
            dir,
            // FREEZING until every task stopped.
            frozen: &["FROZEN", "FREEZING"],
        }
    }
}

/// Runs `rbuild ARGS` while another thread reads the freezer state as fast as it can;
/// returns the run and whether it ever saw the cgroup frozen.
fn while_watching(store: &TestStore, f: &Freezer, args: &[&str]) -> (crate::util::Run, bool) {
    let stop = Arc::new(AtomicBool::new(false));
    let (state, frozen) = (f.state.clone(), f.frozen);
    let watcher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut seen = false;
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if let Ok(s) = std::fs::read_to_string(&state) {
                    reads += 1;
                    seen |= frozen.contains(&s.trim());
                }
            }
            (seen, reads)
        })
    };
    let out = store.run(args);
    stop.store(true, Ordering::Relaxed);
    let (seen, reads) = watcher.join().unwrap();
    assert!(reads > 10, "the freezer state was read {reads} times");
    (out, seen)
}

/// A started `rbuild run`, stopped with Ctrl-C however the test ends, so that a failed
/// assertion leaves no container running.
struct Started(Option<std::process::Child>);

impl Started {
    fn stop(mut self) -> std::process::Output {
        interrupt(self.0.take().unwrap()).0
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Some(child) = self.0.take() {
            let _ = interrupt(child);
        }
    }
}

/// How far the container's heartbeat file has grown (it only grows).
fn read_beat(upper: &Path) -> u64 {
    std::fs::metadata(upper.join("beat")).map_or(0, |m| m.len())
}

#[test]
fn a_running_container_is_frozen_while_committed_and_keeps_running() {
    let store = TestStore::new("commit-running");
    store.busybox("bb");
    // Many files, so that reading them takes long enough to be seen frozen; then a
    // heartbeat that shows whether it runs.
    let script = "echo hi > /f; mkdir /many; i=0; while [ $i -lt 3000 ]; do echo $i > /many/$i; i=$((i+1)); done; \
                  echo ready > /ready; n=0; while :; do n=$((n+1)); echo $n >> /beat; sleep 0.02; done";
    let child = Started(Some(start_until_running(
        &store,
        &["run", "--name", "live", "bb", "sh", "-c", script],
    )));
    let id = id_of(&store, "live");
    let upper = store.root().join("containers").join(&id).join("upper");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !upper.join("ready").exists() {
        assert!(Instant::now() < deadline, "the container never got ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    let f = freezer_of(&id);
    let procs = std::fs::read_to_string(f.dir.join("cgroup.procs")).unwrap();
    assert!(
        procs.lines().count() >= 3,
        "the monitor, init and the command are in the container's cgroup: {procs:?}"
    );
    assert!(
        !f.frozen
            .contains(&std::fs::read_to_string(&f.state).unwrap().trim())
    );

    let (out, seen) = while_watching(&store, &f, &["commit", "-m", "live", "live", "live:1"]);
    out.success();
    assert!(
        seen,
        "the container was never seen frozen during the commit"
    );
    let state = std::fs::read_to_string(&f.state).unwrap();
    assert!(!f.frozen.contains(&state.trim()), "left frozen: {state}");
    // It still runs: the heartbeat goes on.
    let beat = read_beat(&upper);
    std::thread::sleep(Duration::from_millis(400));
    assert!(read_beat(&upper) > beat, "the container stopped beating");

    let out = store
        .run(&[
            "run",
            "--rm",
            "live:1",
            "sh",
            "-c",
            "cat /f; ls /many | wc -l",
        ])
        .success();
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["hi", "3000"]
    );
    // While it runs, the sandbox's mount points are in its upper dir; not in the layer.
    assert!(upper.join("etc/hosts").exists());
    assert_no_artefacts(&top_layer_dir(&store, "live:1"));

    // --pause=false leaves it running throughout.
    let (out, seen) = while_watching(&store, &f, &["commit", "--pause=false", "live", "live:2"]);
    out.success();
    assert!(!seen, "--pause=false froze the container");
    store
        .run(&["run", "--rm", "live:2", "cat", "/f"])
        .success()
        .stdout_contains("hi");

    let stopped = child.stop();
    assert_eq!(stopped.status.code(), Some(130));
    assert!(!f.dir.exists(), "the cgroup outlived its container");
    assert!(mounts_under(store.root()).is_empty());
    // Exited now: commit needs no freezer.
    store.run(&["commit", "live", "live:3"]).success();
    assert!(scratch_left(&store).is_empty());
    check_clean(&store);
}

#[test]
fn rm_removes_the_cgroup_a_killed_run_left() {
    let store = TestStore::new("commit-cgroup-rm");
    store.busybox("bb");
    let mut started = Started(Some(start_until_running(
        &store,
        &["run", "--name", "killed", "bb", "sleep", "3600"],
    )));
    let id = id_of(&store, "killed");
    let f = freezer_of(&id);
    assert!(f.dir.is_dir());
    let mut child = started.0.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    // The container's processes die with it (PR_SET_PDEATHSIG); the directory stays.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(f.dir.join("cgroup.procs")).is_ok_and(|p| !p.trim().is_empty()) {
        assert!(
            Instant::now() < deadline,
            "the container's processes survived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(f.dir.is_dir());
    store.run(&["rm", "killed"]).success();
    assert!(!f.dir.exists(), "rm left the cgroup");
    assert!(mounts_under(store.root()).is_empty());
}

#[test]
fn a_container_a_killed_commit_left_frozen_is_still_stopped_and_removed() {
    let store = TestStore::new("commit-frozen-left");
    store.busybox("bb");
    for (name, how) in [
        ("f1", &["stop", "-t", "1", "f1"][..]),
        ("f2", &["rm", "-f", "f2"]),
    ] {
        let out = store.run(&["run", "-d", "--name", name, "bb", "sleep", "3600"]);
        let id = out.success().stdout.trim().to_string();
        let f = freezer_of(&id);
        // What a commit SIGKILLed while it read the container leaves behind.
        std::fs::write(&f.state, if f.frozen[0] == "1" { "1" } else { "FROZEN" }).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(&f.state).is_ok_and(|s| s.trim() == f.frozen[0]) {
            assert!(Instant::now() < deadline, "the container never froze");
            std::thread::sleep(Duration::from_millis(10));
        }
        store.run(how).success();
        assert!(!f.dir.exists(), "{how:?} left the cgroup");
    }
    let ps = store.run(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(ps.success().stdout, "f1 exited\n");
    store.run(&["rm", "f1"]).success();
    assert!(mounts_under(store.root()).is_empty());
    check_clean(&store);
}

#[test]
fn pause_freezes_a_container_until_unpause() {
    let store = TestStore::new("commit-pause");
    store.busybox("bb");
    let id = store
        .run(&["run", "-d", "--name", "napper", "bb", "sleep", "3616"])
        .success()
        .stdout
        .trim()
        .to_string();
    let f = freezer_of(&id);
    let state = || {
        std::fs::read_to_string(&f.state)
            .unwrap()
            .trim()
            .to_string()
    };
    let ps = |args: &[&str]| {
        let mut all = vec!["ps", "--format", "{{.Names}} {{.State}} {{.Status}}"];
        all.extend_from_slice(args);
        store.run(&all).success().stdout
    };
    assert_eq!(store.run(&["pause", "napper"]).success().stdout, "napper\n");
    assert_eq!(state(), f.frozen[0]);
    // Listed, filtered and inspected as paused; not entered; not paused twice.
    assert!(ps(&[]).starts_with("napper paused Up ") && ps(&[]).ends_with(" (Paused)\n"));
    assert!(ps(&["-f", "status=paused"]).starts_with("napper "));
    assert_eq!(ps(&["-f", "status=running"]), "");
    let inspected = store
        .run(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.Paused}} {{.State.Running}}",
            "napper",
        ])
        .success()
        .stdout;
    assert_eq!(inspected, "paused true true\n");
    let exec = store.run(&["exec", "napper", "true"]);
    assert_eq!(exec.status, Some(1));
    assert_eq!(
        exec.stderr,
        format!(
            "Error response from daemon: Container {id} is paused, unpause the container before exec\n"
        )
    );
    store
        .run(&["pause", "napper"])
        .failure()
        .stderr_contains("is already paused");
    // commit reads it as it is and leaves it paused.
    store.run(&["commit", "napper", "napped"]).success();
    assert_eq!(state(), f.frozen[0]);
    assert_eq!(
        store.run(&["unpause", "napper"]).success().stdout,
        "napper\n"
    );
    assert_ne!(state(), f.frozen[0]);
    store
        .run(&["unpause", "napper"])
        .failure()
        .stderr_contains("is not paused");
    store.run(&["exec", "napper", "true"]).success();
    // A paused container still stops at once: the signal is delivered by a thaw.
    store.run(&["pause", "napper"]).success();
    let started = Instant::now();
    store.run(&["stop", "-t", "20", "napper"]).success();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        ps(&["-a"]).starts_with("napper exited Exited (143)"),
        "{}",
        ps(&["-a"])
    );
    store
        .run(&["pause", "napper"])
        .failure()
        .stderr_contains("is not running");
    store.run(&["rm", "napper"]).success();
    assert!(!f.dir.exists());
    assert!(mounts_under(store.root()).is_empty());
    check_clean(&store);
}
