//! `rbuild exec`: a command in a running container sees the container's root, PID,
//! UTS, IPC and network namespaces, environment and user; docker's errors and exit
//! codes; Ctrl-C ends only the command; the container's end takes every exec'd
//! process with it and leaves nothing behind.

use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::build_run::{check_clean, mounts_under};
use crate::util::{TempDir, TestStore};

/// A store with busybox as `bb` and `app` built on it: ENV, WORKDIR, a user 1000.
fn setup(tag: &str) -> (TestStore, TempDir) {
    let store = TestStore::new(tag);
    store.busybox("bb");
    let ctx = TempDir::new(&format!("{tag}-ctx"));
    ctx.write(
        "Dockerfile",
        "FROM bb\nENV GREETING=hello\nWORKDIR /srv\nRUN echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd\n",
    );
    store
        .run(&["build", "-q", "-t", "app", ctx.0.to_str().unwrap()])
        .success();
    (store, ctx)
}

/// Host PIDs of the processes whose command line is exactly `args` (read from /proc,
/// so that no `ps` is needed).
fn pids_of(args: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = args
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

fn sleeping(tag: &str) -> Vec<i32> {
    pids_of(&["sleep", tag])
}

/// Waits up to 10 s for `cond`.
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rbuild(store: &TestStore, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rbuild"));
    cmd.args(["--root", store.root().to_str().unwrap()])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn ctrl_c(child: &Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
}

/// A foreground `rbuild run --name NAME app sh -c 'echo hi > /f; sleep TAG'`, started
/// in the background of the test (not `run -d`), once `/f` is written; killed (and
/// with it the container), unmounted and removed if the test fails before stopping it.
struct Running {
    child: Option<Child>,
    store: std::path::PathBuf,
    name: String,
    id: String,
    /// Host PID of the container's own command (`sleep TAG`).
    command_pid: i32,
}

impl Running {
    fn start(store: &TestStore, name: &str, tag: &str) -> Running {
        let script = format!("echo hi > /f; exec sleep {tag}");
        let child = rbuild(
            store,
            &[
                "run",
                "--name",
                name,
                "-e",
                "FROM_RUN=1",
                "app",
                "sh",
                "-c",
                &script,
            ],
        )
        .spawn()
        .unwrap();
        wait_until("the container runs", || sleeping(tag).len() == 1);
        // Its init's PID is recorded a moment after the command starts.
        wait_until("exec can enter the container", || {
            store.run(&["exec", name, "true"]).status == Some(0)
        });
        let id = store
            .run(&["ps", "--no-trunc", "--format", "{{.ID}} {{.Names}}"])
            .success()
            .stdout
            .lines()
            .find_map(|l| l.strip_suffix(&format!(" {name}")).map(str::to_string))
            .expect("the container is listed as running");
        Running {
            child: Some(child),
            store: store.root().to_path_buf(),
            name: name.to_string(),
            id,
            command_pid: sleeping(tag)[0],
        }
    }

    /// Ctrl-C on the container's `rbuild run`: the container is killed and unmounted.
    fn stop(&mut self) {
        let child = self.child.take().unwrap();
        ctrl_c(&child);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(130), "{out:?}");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            // The killed run leaves its root mounted; rm takes it.
            let _ = Command::new(env!("CARGO_BIN_EXE_rbuild"))
                .args([
                    "--root",
                    self.store.to_str().unwrap(),
                    "rm",
                    "-f",
                    &self.name,
                ])
                .output();
        }
    }
}

/// Identity of a namespace or root as the host sees it for `pid`.
fn ns(pid: i32, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap()
        .display()
        .to_string()
}

fn root_of(pid: i32) -> (u64, u64) {
    let m = std::fs::metadata(format!("/proc/{pid}/root/")).unwrap();
    (m.dev(), m.ino())
}

#[test]
fn exec_runs_in_the_containers_root_and_namespaces_with_its_config() {
    let (store, _ctx) = setup("exec-basics");
    let mut ctr = Running::start(&store, "web", "3631");
    let name = ctr.name.clone();
    let exec = |args: &[&str]| {
        let mut all = vec!["exec"];
        all.extend_from_slice(args);
        store.run(&all)
    };

    // The container's root, upper dir included.
    assert_eq!(exec(&[&name, "cat", "/f"]).success().stdout, "hi\n");
    // Its PID namespace: the shell is not PID 1, PID 1 is the container's init (a fork
    // of the `rbuild run` that started it), and only the container's processes show.
    let pid: i32 = exec(&[&name, "sh", "-c", "echo $$"])
        .success()
        .stdout
        .trim()
        .parse()
        .unwrap();
    assert!(pid > 1, "{pid}");
    let cmdline = exec(&[&name, "cat", "/proc/1/cmdline"]).success().stdout;
    assert!(
        cmdline.contains("\0run\0--name\0web\0"),
        "PID 1 is not the container's init: {cmdline:?}"
    );
    let procs = exec(&[&name, "sh", "-c", "ls -d /proc/[0-9]*"])
        .success()
        .stdout;
    let pids: Vec<&str> = procs.lines().collect();
    assert!(pids.contains(&"/proc/1") && pids.len() < 8, "{procs}");
    // Its cgroup, so that commit freezes what exec started with the rest.
    let cgroups = exec(&[&name, "cat", "/proc/self/cgroup"]).success().stdout;
    assert!(
        cgroups.contains(&format!("/rbuild/{}", ctr.id)),
        "exec's command is not in the container's cgroup: {cgroups}"
    );
    // Its host name (the short ID) and its own root as the root.
    assert_eq!(
        exec(&[&name, "hostname"]).success().stdout.trim(),
        &ctr.id[..12]
    );
    assert_eq!(
        exec(&[&name, "readlink", "/proc/self/root"])
            .success()
            .stdout,
        "/\n"
    );

    // The container's environment (image, then run's -e), then exec's -e.
    assert_eq!(
        exec(&[&name, "sh", "-c", "echo $GREETING $FROM_RUN $NEW"])
            .success()
            .stdout,
        "hello 1\n"
    );
    assert_eq!(
        exec(&[
            "-e",
            "GREETING=bye",
            "-e",
            "NEW=2",
            &name,
            "sh",
            "-c",
            "echo $GREETING $FROM_RUN $NEW"
        ])
        .success()
        .stdout,
        "bye 1 2\n"
    );
    // Its WORKDIR and user by default; -u and -w, with HOME from the container's passwd.
    assert_eq!(
        exec(&[&name, "sh", "-c", "pwd; id -u"]).success().stdout,
        "/srv\n0\n"
    );
    assert_eq!(
        exec(&[
            "-u",
            "1000",
            "-w",
            "/tmp",
            &name,
            "sh",
            "-c",
            "id -u; pwd; echo $HOME"
        ])
        .success()
        .stdout,
        "1000\n/tmp\n/home/app\n"
    );
    // -i forwards standard input; without it the command reads /dev/null.
    let out = store
        .run_stdin(
            &["exec", "-i", &name, "tr", "a-z", "A-Z"],
            Some(b"piped in\n"),
        )
        .success();
    assert_eq!(out.stdout, "PIPED IN\n");
    let out = store
        .run_stdin(&["exec", &name, "cat"], Some(b"not read\n"))
        .success();
    assert_eq!(out.stdout, "");
    // Exit codes and both streams pass through.
    let out = exec(&[&name, "sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(
        (out.status, out.stdout.as_str(), out.stderr.as_str()),
        (Some(7), "out\n", "err\n")
    );
    assert_eq!(exec(&[&name, "sh", "-c", "kill -9 $$"]).status, Some(137));
    // A command that leaves a child holding its output open returns anyway.
    let started = Instant::now();
    let out = exec(&[&name, "sh", "-c", "sleep 3632 & echo bg"]).success();
    assert_eq!(out.stdout, "bg\n");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );

    // What exec writes lands in the container's upper dir.
    exec(&[&name, "sh", "-c", "echo x > /from-exec"]).success();
    let diff = store.run(&["diff", &name]).success().stdout;
    assert!(diff.lines().any(|l| l == "A /from-exec"), "{diff}");

    // -d returns at once, and the command runs on in the container: from the host, its
    // root and namespaces are those of the container's own command.
    let started = Instant::now();
    let out = exec(&["-d", &name, "sleep", "3633"]).success();
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
    assert!(started.elapsed() < Duration::from_secs(5));
    wait_until("the detached command runs", || sleeping("3633").len() == 1);
    let detached = sleeping("3633")[0];
    assert_eq!(root_of(detached), root_of(ctr.command_pid));
    for kind in ["pid", "mnt", "uts", "ipc", "net"] {
        assert_eq!(ns(detached, kind), ns(ctr.command_pid, kind), "{kind}");
    }
    assert_ne!(ns(detached, "pid"), ns(std::process::id() as i32, "pid"));

    // The container's end takes every process exec started with it.
    ctr.stop();
    for tag in ["3631", "3632", "3633"] {
        wait_until("the container's processes are gone", || {
            sleeping(tag).is_empty()
        });
    }
    assert!(mounts_under(store.root()).is_empty());
    store.run(&["rm", &name]).success();
    check_clean(&store);
}

#[test]
fn exec_errors_and_exit_codes_follow_docker() {
    let (store, _ctx) = setup("exec-errors");
    let mut ctr = Running::start(&store, "errs", "3641");
    let name = ctr.name.clone();

    let out = store.run(&["exec", "nosuch", "true"]);
    assert_eq!(out.status, Some(1));
    assert_eq!(
        out.stderr,
        "Error response from daemon: No such container: nosuch\n"
    );
    // docker 20.10 exits 126 for every command its runtime cannot start.
    let out = store.run(&["exec", &name, "nosuchcmd"]);
    assert_eq!(out.status, Some(126), "{}", out.stderr);
    assert_eq!(
        out.stderr,
        "exec failed: unable to start container process: exec: \"nosuchcmd\": executable file not found in $PATH\n"
    );
    let out = store.run(&["exec", &name, "/etc"]);
    assert_eq!(out.status, Some(126), "{}", out.stderr);
    assert!(
        out.stderr.contains("exec: \"/etc\": permission denied"),
        "{}",
        out.stderr
    );
    // exec does not create its working directory (runc does not).
    let out = store.run(&["exec", "-w", "/nope", &name, "pwd"]);
    assert_eq!(out.status, Some(126), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("chdir to cwd (\"/nope\") failed: no such file or directory"),
        "{}",
        out.stderr
    );
    let out = store.run(&["exec", "-u", "nobodyx", &name, "id"]);
    assert_eq!(out.status, Some(126), "{}", out.stderr);
    assert_eq!(
        out.stderr,
        "unable to find user nobodyx: no matching entries in passwd file\n"
    );
    // A detached start failure is the daemon's error: 1.
    let out = store.run(&["exec", "-d", &name, "nosuchcmd"]);
    assert_eq!(out.status, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("executable file not found"),
        "{}",
        out.stderr
    );
    // -t: a pty of the container's devpts and TERM, without a terminal of ours too;
    // -it needs one, as docker's.
    let out = store.run(&["exec", "-t", &name, "sh", "-c", "tty; echo $TERM; exit 4"]);
    assert_eq!(out.status, Some(4), "{}", out.stderr);
    assert!(
        out.stdout.starts_with("/dev/pts/") && out.stdout.ends_with("\r\nxterm\r\n"),
        "{:?}",
        out.stdout
    );
    let out = store.run(&["exec", "-it", &name, "true"]);
    assert_eq!(out.status, Some(1), "{}", out.stderr);
    assert_eq!(out.stderr, "the input device is not a TTY\n");
    store.run(&["exec", &name]).failure();
    // The container still runs, and by a prefix of its ID too.
    store.run(&["exec", &ctr.id[..6], "true"]).success();

    ctr.stop();
    let out = store.run(&["exec", &name, "true"]);
    assert_eq!(out.status, Some(1));
    assert_eq!(
        out.stderr,
        format!(
            "Error response from daemon: Container {} is not running\n",
            ctr.id
        )
    );
    store.run(&["rm", &name]).success();
    assert!(mounts_under(store.root()).is_empty());
    check_clean(&store);
}

#[test]
fn exec_has_the_containers_privileges_and_sees_no_host_paths() {
    let (store, _ctx) = setup("exec-security");
    let mut ctr = Running::start(&store, "sec", "3651");
    let name = ctr.name.clone();
    let status = |pid: i32| std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |status: &str, key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("no {key} in {status}"))
            .to_string()
    };
    let container = status(ctr.command_pid);
    let exec = store
        .run(&["exec", &name, "cat", "/proc/self/status"])
        .success()
        .stdout;
    for key in ["CapBnd:", "CapEff:", "CapPrm:", "CapInh:", "CapAmb:"] {
        assert_eq!(field(&exec, key), field(&container, key));
    }
    assert_eq!(field(&exec, "NoNewPrivs:"), "NoNewPrivs:\t1");
    // Docker's default set, not the host root's.
    assert_eq!(field(&exec, "CapBnd:"), "CapBnd:\t00000000a80425fb");
    // A non-root user has no effective capabilities.
    let user = store
        .run(&["exec", "-u", "1000", &name, "cat", "/proc/self/status"])
        .success()
        .stdout;
    assert_eq!(field(&user, "CapEff:"), "CapEff:\t0000000000000000");
    // Only the standard streams are inherited (`; true`: the shell forks ls, which
    // lists the shell's descriptors, not its own).
    let fds = store
        .run(&["exec", &name, "sh", "-c", "ls /proc/$$/fd; true"])
        .success()
        .stdout;
    assert_eq!(fds.split_whitespace().collect::<Vec<_>>(), ["0", "1", "2"]);
    // The host's files are out of reach: the store, and the host's root through
    // the container's init (it is not dumpable).
    let store_dir = store.root().to_str().unwrap();
    store
        .run(&["exec", &name, "test", "-e", store_dir])
        .failure();
    store
        .run(&["exec", &name, "ls", "/proc/1/root/"])
        .failure()
        .stderr_contains("Permission denied");

    ctr.stop();
    store.run(&["rm", &name]).success();
    check_clean(&store);
}

#[test]
fn ctrl_c_and_kill_end_only_the_exec_and_a_stopping_container_fails_it_cleanly() {
    let (store, _ctx) = setup("exec-interrupt");
    let mut ctr = Running::start(&store, "intr", "3661");
    let name = ctr.name.clone();

    // Ctrl-C: the command and what it started die, the container lives on.
    let child = rbuild(
        &store,
        &[
            "exec",
            &name,
            "sh",
            "-c",
            "sleep 3662 & sleep 3663; echo never",
        ],
    )
    .spawn()
    .unwrap();
    wait_until("the exec'd commands run", || {
        sleeping("3662").len() == 1 && sleeping("3663").len() == 1
    });
    ctrl_c(&child);
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("never"));
    wait_until("the exec'd commands are gone", || {
        sleeping("3662").is_empty() && sleeping("3663").is_empty()
    });
    assert_eq!(sleeping("3661"), [ctr.command_pid], "the container died");

    // rbuild killed outright: its command dies with it (PR_SET_PDEATHSIG).
    let mut child = rbuild(&store, &["exec", &name, "sleep", "3664"])
        .spawn()
        .unwrap();
    wait_until("the exec'd command runs", || sleeping("3664").len() == 1);
    child.kill().unwrap();
    child.wait().unwrap();
    wait_until("the exec'd command is gone", || sleeping("3664").is_empty());
    store.run(&["exec", &name, "true"]).success();

    // A command running when the container stops is killed with it (docker: 137).
    let child = rbuild(&store, &["exec", &name, "sleep", "3665"])
        .spawn()
        .unwrap();
    wait_until("the exec'd command runs", || sleeping("3665").len() == 1);
    ctr.stop();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(137), "{out:?}");
    assert!(sleeping("3665").is_empty());
    store.run(&["rm", &name]).success();

    // Exec racing a container that stops by itself: every exec succeeds, is killed
    // with the container or finds it not running; none hangs or leaves anything.
    let mut child = rbuild(
        &store,
        &["run", "--name", "brief", "app", "sleep", "2.3671"],
    )
    .spawn()
    .unwrap();
    wait_until("the brief container runs", || {
        !sleeping("2.3671").is_empty()
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut ran = 0;
    loop {
        let out = store.run(&["exec", "brief", "sh", "-c", "sleep 0.05"]);
        match out.status {
            Some(0) => ran += 1,
            Some(137) => {}
            // Until its init's PID is recorded, a starting container is not running
            // for exec either.
            Some(1) if out.stderr.contains("is not running") => {
                if ran > 0 || sleeping("2.3671").is_empty() {
                    break;
                }
            }
            _ => panic!(
                "exec into a stopping container: {:?} {}",
                out.status, out.stderr
            ),
        }
        assert!(Instant::now() < deadline, "the container never stopped");
    }
    assert!(ran > 0, "no exec ran while the container did");
    assert!(child.wait().unwrap().success());
    assert!(mounts_under(store.root()).is_empty());
    store.run(&["rm", "brief"]).success();
    check_clean(&store);
}
