//! Detached containers (`run -d`) and their life: `logs`, `stop`, `kill`, `rm -f`,
//! `container prune`, `ps --filter`, and `stop` of a foreground run.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::build_run::{check_clean, mounts_under, start_until_running};
use crate::util::{Reaper, TestStore};

fn store(tag: &str) -> TestStore {
    let store = TestStore::new(tag);
    store.busybox("bb");
    store
}

/// `run -d ARGS`: succeeds at once and prints the full ID.
fn detached(store: &TestStore, args: &[&str]) -> String {
    let mut all = vec!["run", "-d"];
    all.extend_from_slice(args);
    let out = store.run(&all).success().stdout;
    let id = out.trim().to_string();
    assert!(
        id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{out:?}"
    );
    id
}

/// `{{.Names}} {{.State}} {{.Status}}` of the container `name`, if listed.
fn row(store: &TestStore, name: &str) -> Option<String> {
    store
        .run(&["ps", "-a", "--format", "{{.Names}} {{.State}} {{.Status}}"])
        .success()
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .map(str::to_string)
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// (pid, process group, session) of the live processes whose command line `matches`.
fn processes_where(matches: impl Fn(&str) -> bool) -> Vec<(i32, i32, i32)> {
    let ps = Command::new("ps")
        .args(["-eo", "pid=,pgid=,sid=,args="])
        .output()
        .unwrap();
    String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let ids: Vec<i32> = f.by_ref().take(3).map(|x| x.parse().unwrap()).collect();
            let args: Vec<&str> = f.collect();
            matches(&args.join(" ")).then(|| (ids[0], ids[1], ids[2]))
        })
        .collect()
}

/// Processes whose command line is exactly `args`.
fn processes(args: &str) -> Vec<(i32, i32, i32)> {
    processes_where(|a| a == args)
}

/// The monitor of the container `id` (and its sandbox children, which share its
/// command line until they exec).
fn monitors_of(id: &str) -> Vec<(i32, i32, i32)> {
    processes_where(|a| a.contains(&format!(" container-monitor {id} ")))
}

fn logs(store: &TestStore, args: &[&str]) -> (String, String) {
    let mut all = vec!["logs"];
    all.extend_from_slice(args);
    let run = store.run(&all).success();
    (run.stdout, run.stderr)
}

#[test]
fn a_detached_container_runs_on_in_its_own_session_and_logs_its_streams() {
    let store = store("det-run");
    let _reap = Reaper(&store);
    let id = detached(
        &store,
        &[
            "--name",
            "web",
            "bb",
            "sh",
            "-c",
            "echo one; echo two >&2; sleep 0.3; echo three; exec sleep 3601",
        ],
    );
    let state = row(&store, "web").unwrap();
    assert!(state.starts_with("web running Up "), "{state}");
    // The monitor outlived the rbuild that started it, in a session (and process group)
    // of its own: Ctrl-C or a hang-up of the test's terminal cannot reach it.
    let monitors = monitors_of(&id);
    let (pid, pgid, sid) = *monitors
        .iter()
        .find(|(pid, _, sid)| pid == sid)
        .unwrap_or_else(|| panic!("no monitor leading a session: {monitors:?}"));
    assert_eq!(pgid, pid);
    assert_ne!(pgid, nix::unistd::getpgrp().as_raw());
    assert_ne!(sid, nix::unistd::getsid(None).unwrap().as_raw());

    wait_until("the output", Duration::from_secs(10), || {
        logs(&store, &["web"]).0 == "one\nthree\n"
    });
    let (out, err) = logs(&store, &["web"]);
    assert_eq!((out.as_str(), err.as_str()), ("one\nthree\n", "two\n"));
    assert_eq!(logs(&store, &["--tail", "1", "web"]).0, "three\n");
    assert_eq!(logs(&store, &["--tail", "1", "web"]).1, "");
    // -t: docker's RFC 3339 time with nanoseconds, then the line.
    let (out, _) = logs(&store, &["-t", &id[..12]]);
    for line in out.lines() {
        let (time, text) = line.split_once(' ').unwrap();
        assert!(["one", "three"].contains(&text), "{out}");
        assert!(
            time.len() == 30 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
            "{out}"
        );
    }
    // docker's json-file format, in the container's directory.
    let file = std::fs::read_to_string(store.root().join(format!("containers/{id}/container.log")))
        .unwrap();
    let first: serde_json::Value = serde_json::from_str(file.lines().next().unwrap()).unwrap();
    assert_eq!(first["log"], "one\n");
    assert_eq!(first["stream"], "stdout");
    assert!(first["time"].is_string());

    assert_eq!(
        store.run(&["logs", "nope"]).failure().stderr,
        "Error response from daemon: No such container: nope\n"
    );
    store.run(&["rm", "-f", "web"]).success();
    assert!(processes("sleep 3601").is_empty());
    wait_until("the monitor to end", Duration::from_secs(10), || {
        monitors_of(&id).is_empty()
    });
}

#[test]
fn logs_follow_new_lines_until_the_container_exits() {
    let store = store("det-follow");
    let _reap = Reaper(&store);
    detached(
        &store,
        &[
            "--name",
            "talk",
            "bb",
            "sh",
            "-c",
            "echo a; sleep 1; echo b; sleep 0.5; echo c >&2",
        ],
    );
    let started = Instant::now();
    let run = store.run(&["logs", "-f", "talk"]).success();
    assert_eq!(
        (run.stdout.as_str(), run.stderr.as_str()),
        ("a\nb\n", "c\n")
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    let state = row(&store, "talk").unwrap();
    assert!(state.starts_with("talk exited Exited (0) "), "{state}");
    // --since and --until, with the lines' own times (stdout's only: stderr aside).
    let times: Vec<String> = store
        .run(&["logs", "-t", "talk"])
        .success()
        .stdout
        .lines()
        .map(|l| l.split_once(' ').unwrap().0.to_string())
        .collect();
    assert_eq!(times.len(), 2, "{times:?}");
    assert_eq!(logs(&store, &["--since", &times[1], "talk"]).0, "b\n");
    assert_eq!(
        logs(&store, &["--until", &times[0], "talk"]),
        ("a\n".into(), String::new())
    );
    assert_eq!(logs(&store, &["--since", "1h", "talk"]).0, "a\nb\n");
    assert_eq!(logs(&store, &["--until", "1h", "talk"]).0, "");
    store
        .run(&["logs", "--since", "soon", "talk"])
        .failure()
        .stderr_contains("invalid value");
    // A foreground run's output is logged too.
    store
        .run(&["run", "--name", "fg", "bb", "echo", "hi"])
        .success();
    assert_eq!(logs(&store, &["fg"]).0, "hi\n");
}

#[test]
fn stop_sends_term_then_kill_and_kill_sends_any_signal() {
    let store = store("det-stop");
    let _reap = Reaper(&store);
    detached(&store, &["--name", "polite", "bb", "sleep", "3602"]);
    let started = Instant::now();
    let run = store.run(&["stop", "polite"]).success();
    assert_eq!(run.stdout, "polite\n");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let state = row(&store, "polite").unwrap();
    assert!(state.starts_with("polite exited Exited (143) "), "{state}");
    assert!(mounts_under(store.root()).is_empty());
    // Stopping a stopped container succeeds, as docker's does.
    assert_eq!(store.run(&["stop", "polite"]).success().stdout, "polite\n");

    detached(
        &store,
        &[
            "--name",
            "stubborn",
            "bb",
            "sh",
            "-c",
            "trap '' TERM; trap 'echo got usr1' USR1; while true; do sleep 0.1; done",
        ],
    );
    // Any catchable signal reaches the command through init, by any of its names.
    for (n, sig) in ["USR1", "SIGUSR1", "10"].iter().enumerate() {
        assert_eq!(
            store.run(&["kill", "-s", sig, "stubborn"]).success().stdout,
            "stubborn\n"
        );
        wait_until("the trap", Duration::from_secs(10), || {
            logs(&store, &["stubborn"]).0 == "got usr1\n".repeat(n + 1)
        });
    }
    let started = Instant::now();
    store.run(&["stop", "-t", "1", "stubborn"]).success();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(6),
        "{took:?}"
    );
    let state = row(&store, "stubborn").unwrap();
    assert!(
        state.starts_with("stubborn exited Exited (137) "),
        "{state}"
    );

    detached(&store, &["--name", "victim", "bb", "sleep", "3603"]);
    store.run(&["kill", "victim"]).success();
    let state = row(&store, "victim").unwrap();
    assert!(state.starts_with("victim exited Exited (137) "), "{state}");
    let id = store
        .run(&["ps", "-aq", "--no-trunc", "-f", "name=victim"])
        .success()
        .stdout;
    let run = store.run(&["kill", "victim"]).failure();
    assert_eq!(run.status, Some(1));
    assert_eq!(
        run.stderr,
        format!(
            "Error response from daemon: Cannot kill container: victim: Container {} is not running\n",
            id.trim()
        )
    );
    let run = store.run(&["kill", "-s", "FOO", "victim"]).failure();
    assert_eq!(
        run.stderr,
        "Error response from daemon: Invalid signal: FOO\n"
    );
    let run = store.run(&["stop", "nope", "polite"]).failure();
    assert_eq!(run.status, Some(1));
    assert_eq!(run.stdout, "polite\n");
    assert_eq!(
        run.stderr,
        "Error response from daemon: No such container: nope\n"
    );
    assert!(processes("sleep 3602").is_empty() && processes("sleep 3603").is_empty());
    assert!(mounts_under(store.root()).is_empty());
    check_clean(&store);
}

#[test]
fn run_d_reports_a_command_that_cannot_start_and_rm_goes_with_exit() {
    let store = store("det-fail");
    let _reap = Reaper(&store);
    let run = store.run(&["run", "-d", "--name", "bad", "bb", "nonexistent"]);
    assert_eq!(run.status, Some(127), "{}", run.stderr);
    assert_eq!(run.stdout.trim().len(), 64);
    assert!(run.stderr.contains("nonexistent"), "{}", run.stderr);
    let state = row(&store, "bad").unwrap();
    assert!(state.starts_with("bad exited Exited (127) "), "{state}");

    detached(&store, &["--rm", "--name", "brief", "bb", "sleep", "1"]);
    assert!(row(&store, "brief").unwrap().starts_with("brief running "));
    wait_until("--rm", Duration::from_secs(10), || {
        row(&store, "brief").is_none()
    });
    assert!(
        !store
            .root()
            .join("containers")
            .read_dir()
            .unwrap()
            .any(|e| {
                let n = e.unwrap().file_name();
                !store
                    .run(&["ps", "-aq", "--no-trunc"])
                    .stdout
                    .contains(n.to_str().unwrap())
            })
    );
    assert!(mounts_under(store.root()).is_empty());
}

#[test]
fn run_di_keeps_the_input_open_and_exec_enters_it() {
    let store = store("det-di");
    let _reap = Reaper(&store);
    // docker's idiom for a container to exec into: a shell with -i that nothing feeds.
    detached(&store, &["-i", "--name", "shell", "bb", "sh"]);
    std::thread::sleep(Duration::from_millis(300));
    let state = row(&store, "shell");
    assert!(
        state
            .as_deref()
            .is_some_and(|r| r.starts_with("shell running ")),
        "{state:?}"
    );
    store
        .run(&["exec", "shell", "sh", "-c", "echo in > /f"])
        .success();
    assert_eq!(
        store.run(&["exec", "shell", "cat", "/f"]).success().stdout,
        "in\n"
    );
    // Without -i the shell reads end-of-file and exits 0.
    detached(&store, &["--name", "eof", "bb", "sh"]);
    wait_until("sh to exit", Duration::from_secs(10), || {
        row(&store, "eof").is_some_and(|r| r.starts_with("eof exited Exited (0)"))
    });
    store.run(&["rm", "-f", "shell"]).success();
    assert!(mounts_under(store.root()).is_empty());
    check_clean(&store);
}

#[test]
fn inspect_shows_a_container_as_docker_does() {
    let store = store("det-inspect");
    let _reap = Reaper(&store);
    let id = detached(
        &store,
        &[
            "--name",
            "web",
            "-e",
            "K=v",
            "-v",
            "/tmp:/h:ro",
            "-w",
            "/tmp",
            "bb",
            "sleep",
            "3613",
        ],
    );
    let sleep = processes("sleep 3613");
    assert_eq!(sleep.len(), 1, "{sleep:?}");
    // A container is found before an image, by name, ID or prefix, with docker's fields
    // in docker's order.
    let out = store.run(&["inspect", "web"]).success().stdout;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let c = &v[0];
    assert_eq!(c["Id"], id.as_str());
    assert_eq!(c["Name"], "/web");
    assert_eq!(
        (c["Path"].as_str(), c["Args"][0].as_str()),
        (Some("sleep"), Some("3613"))
    );
    assert_eq!(c["State"]["Status"], "running");
    assert_eq!(c["State"]["Running"], true);
    assert_eq!(c["State"]["FinishedAt"], "0001-01-01T00:00:00Z");
    assert_eq!(c["Config"]["Image"], "bb:latest");
    assert_eq!(c["Config"]["WorkingDir"], "/tmp");
    assert!(
        c["Config"]["Env"]
            .as_array()
            .unwrap()
            .contains(&"K=v".into())
    );
    assert_eq!(c["Mounts"][0]["Source"], "/tmp");
    assert_eq!(c["Mounts"][0]["RW"], false);
    assert!(c["Image"].as_str().unwrap().starts_with("sha256:"));
    let keys: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("        \"") && !l.starts_with("         "))
        .map(|l| l.trim().split('"').nth(1).unwrap())
        .collect();
    assert_eq!(
        &keys[..5],
        ["Id", "Created", "Path", "Args", "State"],
        "{out}"
    );
    // State.Pid is the host PID of the container's PID 1, whose child is the command.
    let pid = store
        .run(&["inspect", "-f", "{{.State.Pid}}", &id[..7]])
        .success()
        .stdout;
    let pid: i32 = pid.trim().parse().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", sleep[0].0)).unwrap();
    let ppid = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .unwrap();
    assert_eq!(
        ppid.trim(),
        pid.to_string(),
        "the command's parent is not State.Pid"
    );
    assert_eq!(
        store
            .run(&[
                "container",
                "inspect",
                "-f",
                "{{.Config.Cmd}} {{.HostConfig.Binds}}",
                "web"
            ])
            .success()
            .stdout,
        "[sleep 3613] [/tmp:/h:ro]\n"
    );
    // Stopped: not running, no PID, its exit code and end time.
    store.run(&["kill", "web"]).success();
    let out = store
        .run(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.Pid}} {{.State.ExitCode}}",
            "web",
        ])
        .success()
        .stdout;
    assert_eq!(out, "exited 0 137\n");
    store.run(&["rm", "web"]).success();
    check_clean(&store);
}

#[test]
fn start_runs_a_stopped_container_again_over_its_changes() {
    let store = store("det-start");
    let _reap = Reaper(&store);
    // Each run counts up in a file of its own root.
    let script = "n=$(cat /n 2>/dev/null || echo 0); echo run-$n; echo $((n+1)) > /n; exit $n";
    let first = store.run(&["run", "--name", "counter", "bb", "sh", "-c", script]);
    assert_eq!((first.status, first.stdout.as_str()), (Some(0), "run-0\n"));
    // -a: in the foreground, its output and exit code ours.
    let again = store.run(&["start", "-a", "counter"]);
    assert_eq!((again.status, again.stdout.as_str()), (Some(1), "run-1\n"));
    // Detached: docker prints the name; wait gives its exit code; the log has every run.
    assert_eq!(
        store.run(&["start", "counter"]).success().stdout,
        "counter\n"
    );
    assert_eq!(store.run(&["wait", "counter"]).success().stdout, "2\n");
    let (out, _) = logs(&store, &["counter"]);
    assert_eq!(out, "run-0\nrun-1\nrun-2\n");
    let row = row(&store, "counter").unwrap();
    assert!(row.starts_with("counter exited Exited (2) "), "{row}");
    assert!(mounts_under(store.root()).is_empty());

    // A running one: start leaves it be; start -a cannot attach; restart runs it anew.
    let id = detached(&store, &["--name", "srv", "bb", "sleep", "3614"]);
    let before = processes("sleep 3614");
    assert_eq!(before.len(), 1);
    assert_eq!(store.run(&["start", "srv"]).success().stdout, "srv\n");
    assert_eq!(processes("sleep 3614"), before);
    let out = store.run(&["start", "-a", "srv"]);
    assert_eq!(out.status, Some(1));
    assert!(out.stderr.contains("already running"), "{}", out.stderr);
    assert_eq!(
        store.run(&["restart", "-t", "1", "srv"]).success().stdout,
        "srv\n"
    );
    let after = processes("sleep 3614");
    assert!(after.len() == 1 && after != before, "{before:?} {after:?}");
    // top: the container's processes only, through the host's ps.
    let top = store.run(&["top", "srv"]).success().stdout;
    let mut lines = top.lines();
    assert!(lines.next().unwrap().contains("PID"), "{top}");
    let rows: Vec<&str> = lines.collect();
    assert!(rows.iter().any(|l| l.ends_with("sleep 3614")), "{top}");
    assert!(
        rows.iter()
            .any(|l| l.contains(&format!("container-monitor {id}"))),
        "{top}"
    );
    assert_eq!(rows.len(), 2, "{top}");
    let top = store
        .run(&["top", "srv", "-o", "pid,args"])
        .success()
        .stdout;
    assert!(
        top.lines()
            .any(|l| l.trim_start().starts_with(&after[0].0.to_string())),
        "{top}"
    );

    // Errors as docker's.
    let out = store.run(&["start", "nope", "counter"]);
    assert_eq!(out.status, Some(1));
    assert_eq!(out.stdout, "counter\n");
    assert!(
        out.stderr.contains("No such container: nope")
            && out
                .stderr
                .contains("Error: failed to start containers: nope"),
        "{}",
        out.stderr
    );
    store.run(&["wait", "counter"]).success();
    store.run(&["rm", "-f", "srv"]).success();
    // wait on a --rm container gives its code though it is gone when wait looks again.
    let gone = detached(&store, &["--rm", "bb", "sh", "-c", "sleep 0.3; exit 6"]);
    assert_eq!(store.run(&["wait", &gone]).success().stdout, "6\n");
    let left = store.run(&["ps", "-aq", "--no-trunc"]).success().stdout;
    assert!(!left.contains(&gone), "{left}");
    store
        .run(&["top", "counter"])
        .failure()
        .stderr_contains("is not running");
    store.run(&["rm", "counter"]).success();
    assert!(mounts_under(store.root()).is_empty());
    check_clean(&store);
}

#[test]
fn create_makes_a_container_that_start_runs() {
    let store = store("det-create");
    let _reap = Reaper(&store);
    let out = store
        .run(&[
            "create",
            "--name",
            "made",
            "-p",
            "8080:80",
            "bb",
            "sh",
            "-c",
            "echo ran; exit 5",
        ])
        .success();
    let id = out.stdout.trim();
    assert_eq!(id.len(), 64, "{}", out.stdout);
    // -p is accepted and discarded with docker's warning for host networking.
    assert_eq!(
        out.stderr,
        "WARNING: Published ports are discarded when using host network mode\n"
    );
    let row = row(&store, "made").unwrap();
    assert!(row.starts_with("made created Created"), "{row}");
    // -n and -l list the newest ones, whatever their state.
    store
        .run(&["create", "--name", "newer", "bb", "true"])
        .success();
    let names = |args: &[&str]| {
        let mut all = vec!["ps", "--format", "{{.Names}}"];
        all.extend_from_slice(args);
        store.run(&all).success().stdout
    };
    assert_eq!(names(&[]), "");
    assert_eq!(names(&["-l"]), "newer\n");
    assert_eq!(names(&["-n", "2"]), "newer\nmade\n");
    assert_eq!(names(&["-n", "0"]), "newer\nmade\n");
    store.run(&["rm", "newer"]).success();
    assert!(mounts_under(store.root()).is_empty());
    let run = store.run(&["start", "-a", "made"]);
    assert_eq!((run.status, run.stdout.as_str()), (Some(5), "ran\n"));
    store
        .run(&["create", "-d", "bb"])
        .failure()
        .stderr_contains("unknown shorthand flag: 'd'");
    store.run(&["rm", "made"]).success();
    assert_eq!(store.run(&["ps", "-aq"]).success().stdout, "");
    check_clean(&store);
}

#[test]
fn rename_follows_dockers_rules_and_a_running_container_keeps_running() {
    let store = store("det-rename");
    let _reap = Reaper(&store);
    let id = detached(&store, &["--name", "old-name", "bb", "sleep", "3617"]);
    store
        .run(&["create", "--name", "taken", "bb", "true"])
        .success();
    let err = |args: &[&str]| {
        let mut all = vec!["rename"];
        all.extend_from_slice(args);
        store.run(&all).failure().stderr
    };
    assert!(
        err(&["old-name", "taken"]).contains("The container name \"/taken\" is already in use")
    );
    assert!(err(&["old-name", "old-name"]).contains("same name as its current name"));
    assert!(err(&["old-name", "x"]).contains("Invalid container name (x)"));
    assert!(err(&["nope", "fresh"]).contains("No such container: nope"));
    assert_eq!(
        store
            .run(&["rename", &id[..8], "/new-name"])
            .success()
            .stdout,
        ""
    );
    let renamed = row(&store, "new-name").unwrap();
    assert!(renamed.starts_with("new-name running "), "{renamed}");
    assert!(row(&store, "old-name").is_none());
    store.run(&["exec", "new-name", "true"]).success();
    store.run(&["rm", "-f", "new-name", "taken"]).success();
    check_clean(&store);
}

#[test]
fn concurrent_starts_run_a_container_once() {
    let store = store("det-start-race");
    let _reap = Reaper(&store);
    store
        .run(&[
            "run",
            "--name",
            "racer",
            "bb",
            "sh",
            "-c",
            "sleep 1.5; exit 3",
        ])
        .failure();
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let root = store.root().to_path_buf();
            std::thread::spawn(move || {
                Command::new(env!("CARGO_BIN_EXE_rbuild"))
                    .arg("--root")
                    .arg(root)
                    .args(["start", "-a", "racer"])
                    .output()
                    .unwrap()
            })
        })
        .collect();
    let outs: Vec<_> = starts.into_iter().map(|t| t.join().unwrap()).collect();
    // All four start within the 1.5 s it runs: one runs it, the others find it running
    // and leave it be.
    let ran = outs.iter().filter(|o| o.status.code() == Some(3)).count();
    assert_eq!(ran, 1, "{outs:?}");
    for o in outs.iter().filter(|o| o.status.code() != Some(3)) {
        assert_eq!(o.status.code(), Some(1), "{o:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("already running"),
            "{o:?}"
        );
    }
    assert!(mounts_under(store.root()).is_empty());
    let row = row(&store, "racer").unwrap();
    assert!(row.starts_with("racer exited Exited (3) "), "{row}");
    check_clean(&store);
}

#[test]
fn rm_f_of_a_running_detached_container_leaves_nothing() {
    let store = store("det-rmf");
    let _reap = Reaper(&store);
    detached(&store, &["--name", "doomed", "bb", "sleep", "3604"]);
    assert!(!mounts_under(store.root()).is_empty());
    let run = store.run(&["rm", "doomed"]).failure();
    assert!(
        run.stderr.contains("You cannot remove a running container"),
        "{}",
        run.stderr
    );
    assert_eq!(
        store.run(&["rm", "-f", "doomed"]).success().stdout,
        "doomed\n"
    );
    assert!(row(&store, "doomed").is_none());
    assert!(processes("sleep 3604").is_empty());
    assert!(mounts_under(store.root()).is_empty());
    assert_eq!(
        std::fs::read_dir(store.root().join("containers"))
            .unwrap()
            .count(),
        0
    );
    check_clean(&store);
}

#[test]
fn prune_removes_only_stopped_containers_and_ps_filters_by_status() {
    let store = store("det-prune");
    let _reap = Reaper(&store);
    let up = detached(&store, &["--name", "up", "bb", "sleep", "3605"]);
    store
        .run(&["run", "--name", "done", "bb", "sh", "-c", "echo x > /f"])
        .success();
    store
        .run(&["run", "--name", "failed", "bb", "false"])
        .failure();
    let ids = |args: &[&str]| {
        let mut all = vec!["ps", "-q", "--no-trunc"];
        all.extend_from_slice(args);
        let mut v: Vec<String> = store
            .run(&all)
            .success()
            .stdout
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    let exited = ids(&["-f", "status=exited"]);
    assert_eq!(exited.len(), 2);
    assert!(!exited.contains(&up));
    assert_eq!(ids(&["-f", "status=running"]), vec![up.clone()]);
    // Same key ORs, different keys AND.
    assert_eq!(
        ids(&["-f", "status=running", "-f", "status=exited"]).len(),
        3
    );
    assert_eq!(ids(&["-f", "status=exited", "-f", "name=up"]).len(), 0);
    assert_eq!(
        ids(&["-a", "-f", &format!("id={}", &up[..8])]),
        vec![up.clone()]
    );
    let run = store.run(&["ps", "-f", "status=bogus"]).failure();
    assert_eq!(
        (run.status, run.stderr.as_str()),
        (
            Some(1),
            "Error response from daemon: invalid filter 'status=bogus'\n"
        )
    );
    let run = store.run(&["ps", "-f", "foo=bar"]).failure();
    assert_eq!(
        (run.status, run.stderr.as_str()),
        (
            Some(1),
            "Error response from daemon: invalid filter 'foo'\n"
        )
    );
    let run = store.run(&["ps", "-f", "status"]).failure();
    assert_eq!(run.status, Some(125));
    assert!(
        run.stderr
            .contains("bad format of filter (expected name=value)"),
        "{}",
        run.stderr
    );

    // Without -f it asks, and "no" keeps everything.
    let run = store
        .run_stdin(&["container", "prune"], Some(b"n\n"))
        .success();
    assert_eq!(
        run.stdout,
        "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] "
    );
    assert_eq!(ids(&["-a"]).len(), 3);
    let run = store.run(&["container", "prune", "-f"]).success();
    let mut listed: Vec<String> = run
        .stdout
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    listed.sort();
    assert!(
        run.stdout.starts_with("Deleted Containers:\n"),
        "{}",
        run.stdout
    );
    assert_eq!(listed, exited);
    assert!(
        run.stdout.ends_with("\nTotal reclaimed space: 2B\n"),
        "{}",
        run.stdout
    );
    assert_eq!(ids(&["-a"]), vec![up.clone()]);
    assert_eq!(
        store.run(&["container", "prune", "-f"]).success().stdout,
        "Total reclaimed space: 0B\n"
    );
    // The management-command spellings.
    assert_eq!(
        store
            .run(&["container", "ls", "-q", "--no-trunc"])
            .success()
            .stdout
            .trim(),
        up
    );
    store.run(&["container", "stop", "-t", "5", "up"]).success();
    assert_eq!(ids(&["-f", "status=exited"]), vec![up.clone()]);
    store.run(&["container", "rm", "up"]).success();
    assert!(ids(&["-a"]).is_empty());
    check_clean(&store);
}

#[test]
fn stop_ends_a_foreground_run_which_exits_with_the_containers_code() {
    let store = store("det-fg-stop");
    let _reap = Reaper(&store);
    let child = start_until_running(&store, &["run", "--name", "fg", "bb", "sleep", "3606"]);
    wait_until("the record", Duration::from_secs(10), || {
        row(&store, "fg").is_some_and(|r| r.starts_with("fg running "))
    });
    let started = Instant::now();
    store.run(&["stop", "fg"]).success();
    assert!(started.elapsed() < Duration::from_secs(5));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143));
    let state = row(&store, "fg").unwrap();
    assert!(state.starts_with("fg exited Exited (143) "), "{state}");
    assert!(mounts_under(store.root()).is_empty());

    // rm -f of a foreground run: killed, its rbuild records 137 and unmounts, then gone.
    let child = Command::new(env!("CARGO_BIN_EXE_rbuild"))
        .args(["--root", store.root().to_str().unwrap()])
        .args(["run", "--name", "fg2", "bb", "sleep", "3607"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the run", Duration::from_secs(10), || {
        row(&store, "fg2").is_some_and(|r| r.starts_with("fg2 running "))
    });
    store.run(&["rm", "-f", "fg2"]).success();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(137));
    assert!(row(&store, "fg2").is_none());
    assert!(processes("sleep 3606").is_empty() && processes("sleep 3607").is_empty());
    assert!(mounts_under(store.root()).is_empty());
    check_clean(&store);
}
