//! `rbuild run -t`: the container's pseudo-terminal, driven through a real outer terminal
//! (a tmux pane running a shell, as a person would type into it) and without one.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::build_run::{check_clean, interrupt, mounts_under, start_until_running};
use crate::util::{TempDir, TestStore};

/// A detached tmux server of our own (its socket in a temp dir) with one window whose
/// pane runs bash: the outer terminal rbuild's `-it` puts in raw mode.
struct Tmux {
    socket: PathBuf,
    _dir: TempDir,
}

impl Tmux {
    fn start(tag: &str) -> Tmux {
        let version = Command::new("tmux").arg("-V").output();
        assert!(
            version.is_ok_and(|o| o.status.success()),
            "tmux is missing: install Debian's tmux (apt-get install tmux)"
        );
        let dir = TempDir::new(tag);
        let t = Tmux {
            socket: dir.0.join("tmux.sock"),
            _dir: dir,
        };
        // No config file, no status line (the pane is the whole window), a plain
        // prompt, and no history file or rc file of the machine's.
        t.ok(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            "100",
            "-y",
            "30",
            "env",
            "PS1=outer$ ",
            "HISTFILE=/dev/null",
            "bash",
            "--norc",
            "--noprofile",
        ]);
        t.ok(&["set-option", "-g", "status", "off"]);
        t.wait_for("the outer prompt", |s| s.contains("outer$ "));
        t
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .env("TERM", "xterm")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.tmux(args);
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `text` and Enter.
    fn line(&self, text: &str) {
        self.ok(&["send-keys", "-l", text]);
        self.ok(&["send-keys", "Enter"]);
    }

    /// Everything the pane shows, scrollback included, wrapped lines joined.
    fn screen(&self) -> String {
        self.ok(&["capture-pane", "-p", "-J", "-S", "-"])
    }

    /// The pane's size as `stty size` prints it: "ROWS COLS".
    fn size(&self) -> String {
        self.ok(&["display-message", "-p", "#{pane_height} #{pane_width}"])
            .trim()
            .to_string()
    }

    /// Waits up to 20 s for the screen to satisfy `ok`; returns it.
    #[track_caller]
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "never saw {what}; screen:\n{s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for a line that is exactly `line` (so not the typed command echoing it).
    #[track_caller]
    fn wait_line(&self, line: &str) -> String {
        self.wait_for(&format!("the line {line:?}"), |s| {
            s.lines().any(|l| l.trim_end() == line)
        })
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

fn processes() -> Vec<String> {
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    String::from_utf8_lossy(&ps.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .collect()
}

#[track_caller]
fn wait_process(args: &str, present: bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while processes().iter().any(|p| p == args) != present {
        assert!(
            Instant::now() < deadline,
            "process {args:?} never {}",
            if present { "started" } else { "ended" }
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn no_mounts(store: &TestStore) {
    let left = mounts_under(store.root());
    assert!(left.is_empty(), "mounts left: {left:?}");
}

#[test]
fn run_it_is_an_interactive_terminal() {
    let store = TestStore::new("tty-it");
    store.busybox("bb");
    let tmux = Tmux::start("tty-it-tmux");
    let rbuild = env!("CARGO_BIN_EXE_rbuild");
    let root = store.root().display();
    // The outer terminal's settings before, to compare after.
    tmux.line("before=$(stty -g)");
    tmux.line(&format!(
        "{rbuild} --root {root} run --rm -it bb sh; echo rbuild-exit=$?"
    ));
    tmux.wait_for("the container's prompt", |s| s.contains("/ # "));

    // The container's own devpts: its first pty.
    tmux.line("tty");
    tmux.wait_line("/dev/pts/0");
    // Typed commands run and their output shows.
    tmux.line("echo typed-$((6*7))");
    tmux.wait_line("typed-42");

    // The pty starts at the outer terminal's size and follows it (SIGWINCH).
    let first = tmux.size();
    tmux.line("stty size");
    tmux.wait_line(&first);
    tmux.ok(&["resize-window", "-x", "120", "-y", "40"]);
    let resized = tmux.size();
    assert_eq!(resized, "40 120");
    tmux.line("echo resized: $(stty size)");
    tmux.wait_line("resized: 40 120");

    // Ctrl-C goes to the container: it interrupts the sleep, and the shell goes on.
    tmux.line("sleep 3609");
    wait_process("sleep 3609", true);
    tmux.ok(&["send-keys", "C-c"]);
    wait_process("sleep 3609", false);
    tmux.line("echo still-$((1+1))");
    tmux.wait_line("still-2");

    // The exit code is the container's.
    tmux.line("exit 3");
    tmux.wait_line("rbuild-exit=3");
    // The outer terminal is back as it was: line editing and echo on.
    tmux.line(r#"[ "$(stty -g)" = "$before" ] && echo settings-restored"#);
    tmux.wait_line("settings-restored");
    tmux.line("stty -a | tr ' ' '\\n' | grep -xE -- '-?(icanon|echo|isig)' | tr '\\n' ' '; echo");
    tmux.wait_line("isig icanon echo");

    no_mounts(&store);
    assert_eq!(store.run(&["ps", "-aq"]).success().stdout, "");
    let ours = format!("{rbuild} --root {root} ");
    assert!(
        !processes().iter().any(|p| p.starts_with(&ours)),
        "rbuild is still running"
    );
    check_clean(&store);
}

#[test]
fn a_run_it_signalled_twice_gives_the_terminal_back() {
    let store = TestStore::new("tty-twice");
    store.busybox("bb");
    let tmux = Tmux::start("tty-twice-tmux");
    let rbuild = env!("CARGO_BIN_EXE_rbuild");
    let root = store.root().display();
    tmux.line("before=$(stty -g)");
    tmux.line(&format!(
        "{rbuild} --root {root} run --rm -it bb sh; echo rbuild-exit=$?"
    ));
    tmux.wait_for("the container's prompt", |s| s.contains("/ # "));
    // Not typed (that is the container's Ctrl-C): a SIGINT and a SIGTERM from outside,
    // the second of which ends rbuild at once, without unwinding to the raw mode's guard.
    let ours = format!("{rbuild} --root {root} run --rm -it bb sh");
    let pid = {
        let ps = Command::new("ps")
            .args(["-eo", "pid=,args="])
            .output()
            .unwrap();
        String::from_utf8_lossy(&ps.stdout)
            .lines()
            .find_map(|l| {
                let (pid, args) = l.trim().split_once(' ')?;
                (args.trim() == ours).then(|| pid.parse::<i32>().unwrap())
            })
            .expect("rbuild is not running")
    };
    // Two different signals, so that they do not merge into one pending signal.
    for sig in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGTERM,
    ] {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).unwrap();
    }
    tmux.wait_for("rbuild's exit", |s| {
        s.lines()
            .any(|l| l.trim_start().starts_with("rbuild-exit="))
    });
    tmux.line(r#"[ "$(stty -g)" = "$before" ] && echo settings-restored"#);
    tmux.wait_line("settings-restored");
    // Its container went with it (its init dies with rbuild); `rm` takes what is left.
    store.run(&["container", "prune", "-f"]).success();
    no_mounts(&store);
}

#[test]
fn exec_it_is_an_interactive_terminal_in_a_running_container() {
    let store = TestStore::new("tty-exec");
    store.busybox("bb");
    store
        .run(&["run", "-d", "--name", "box", "bb", "sleep", "3611"])
        .success();
    let tmux = Tmux::start("tty-exec-tmux");
    let rbuild = env!("CARGO_BIN_EXE_rbuild");
    let root = store.root().display();
    tmux.line("before=$(stty -g)");
    tmux.line(&format!(
        "{rbuild} --root {root} exec -it box sh; echo rbuild-exit=$?"
    ));
    tmux.wait_for("the exec'd shell's prompt", |s| s.contains("/ # "));
    // A terminal of the container's devpts at the outer terminal's size, and TERM.
    tmux.line("[ -t 0 ] && tty");
    tmux.wait_for("a pty", |s| s.lines().any(|l| l.starts_with("/dev/pts/")));
    let size = tmux.size();
    tmux.line("echo size: $(stty size) $TERM");
    tmux.wait_line(&format!("size: {size} xterm"));
    // Ctrl-C reaches the exec'd shell's foreground job, not rbuild.
    tmux.line("sleep 3612");
    wait_process("sleep 3612", true);
    tmux.ok(&["send-keys", "C-c"]);
    wait_process("sleep 3612", false);
    tmux.line("echo still-$((2+3))");
    tmux.wait_line("still-5");
    tmux.line("exit 5");
    tmux.wait_line("rbuild-exit=5");
    tmux.line(r#"[ "$(stty -g)" = "$before" ] && echo settings-restored"#);
    tmux.wait_line("settings-restored");
    // Only the exec ended: the container runs on until removed.
    wait_process("sleep 3611", true);
    store.run(&["rm", "-f", "box"]).success();
    wait_process("sleep 3611", false);
    no_mounts(&store);
    check_clean(&store);
}

#[test]
fn run_t_without_a_terminal_still_gets_a_pty() {
    let store = TestStore::new("tty-t");
    store.busybox("bb");
    // stdin is /dev/null and stdout a pipe: a pty all the same, output through it (its
    // line discipline turns \n into \r\n, as docker's -t shows).
    let out = store
        .run(&["run", "--rm", "-t", "bb", "sh", "-c", "tty; echo $?"])
        .success();
    assert_eq!(out.stdout, "/dev/pts/0\r\n0\r\n", "{}", out.stderr);
    // stdout and stderr arrive merged; the exit code is the container's.
    let out = store.run(&[
        "run",
        "--rm",
        "-t",
        "bb",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(out.status, Some(3), "{}", out.stderr);
    assert_eq!(out.stdout, "out\r\nerr\r\n");
    assert_eq!(out.stderr, "");
    // A command that cannot start is reported as without a terminal.
    let out = store.run(&["run", "--rm", "-t", "bb", "no-such-command"]);
    assert_eq!(out.status, Some(127));
    assert!(
        out.stderr.contains("executable file not found"),
        "{}",
        out.stderr
    );
    no_mounts(&store);
    assert_eq!(store.run(&["ps", "-aq"]).success().stdout, "");
    check_clean(&store);
}

#[test]
fn run_it_needs_a_terminal_for_input() {
    let store = TestStore::new("tty-notty");
    store.busybox("bb");
    let out = store.run_stdin(&["run", "--rm", "-it", "bb", "sh"], Some(b"echo hi\n"));
    assert_eq!(out.status, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("the input device is not a TTY"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, "");
    // Nothing was created.
    assert_eq!(store.run(&["ps", "-aq"]).success().stdout, "");
    no_mounts(&store);
}

#[test]
fn ctrl_c_stops_a_run_with_a_terminal() {
    let store = TestStore::new("tty-cancel");
    store.busybox("bb");
    // Without -i rbuild's terminal (here none) stays as it is, so Ctrl-C reaches rbuild,
    // which stops the container (the sandbox's cancel hook), as without -t.
    let child = start_until_running(&store, &["run", "-t", "bb", "sleep", "3610"]);
    wait_process("sleep 3610", true);
    let (out, took) = interrupt(child);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(out.status.code(), Some(130));
    wait_process("sleep 3610", false);
    no_mounts(&store);
    check_clean(&store);
}
