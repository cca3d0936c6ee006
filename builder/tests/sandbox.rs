//! The sandbox's guarantees, each run for real: needs root and Debian's busybox-static.

use std::cell::RefCell;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use rbuild_builder::sandbox::{self, Network, Outcome, SandboxError, SandboxSpec};

fn require_root() {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let euid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2));
    assert_eq!(
        euid,
        Some("0"),
        "this test needs root: run the suite as root (CI does)"
    );
}

/// A busybox rootfs: the static binary, a symlink per applet, passwd and group with a
/// user in two supplementary groups. No /etc/hosts, resolv.conf or hostname.
fn rootfs() -> tempfile::TempDir {
    require_root();
    assert!(
        Path::new("/bin/busybox").exists(),
        "/bin/busybox is missing: apt-get install busybox-static"
    );
    let dir = tempfile::Builder::new()
        .prefix("rbuild-sandbox-test-")
        .tempdir()
        .unwrap();
    let r = dir.path();
    for d in [
        "bin", "usr/bin", "sbin", "usr/sbin", "etc", "proc", "dev", "sys", "tmp", "root",
        "home/app",
    ] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    fs::copy("/bin/busybox", r.join("bin/busybox")).unwrap();
    let list = Command::new("/bin/busybox")
        .arg("--list-full")
        .output()
        .unwrap();
    assert!(
        list.status.success(),
        "/bin/busybox --list-full failed: apt-get install busybox-static"
    );
    for applet in String::from_utf8(list.stdout).unwrap().lines() {
        if applet == "bin/busybox" || applet.is_empty() {
            continue;
        }
        let _ = std::os::unix::fs::symlink("/bin/busybox", r.join(applet));
    }
    fs::write(
        r.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:App:/home/app:/bin/sh\n",
    )
    .unwrap();
    fs::write(
        r.join("etc/group"),
        "root:x:0:\nwheel:x:10:root,app\naudio:x:29:app\napp:x:1000:\nstaff:x:50:\n",
    )
    .unwrap();
    dir
}

fn spec(root: &Path, script: &str) -> SandboxSpec {
    SandboxSpec {
        rootfs: root.to_path_buf(),
        args: vec!["/bin/sh".into(), "-c".into(), script.into()],
        env: vec!["PATH=/usr/sbin:/usr/bin:/sbin:/bin".into()],
        cwd: "/".into(),
        user: String::new(),
        hostname: "sandbox-test".into(),
        network: Network::Host,
        hosts: None,
        resolv_conf: None,
        mounts: Vec::new(),
        readonly_rootfs: false,
        tty: false,
        stdin: false,
        cgroup: None,
    }
}

struct Ran {
    outcome: Outcome,
    stdout: String,
    stderr: String,
}

fn run_spec(s: &SandboxSpec) -> Result<Ran, SandboxError> {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let outcome = sandbox::run(
        s,
        |b| out.extend_from_slice(b),
        |b| err.extend_from_slice(b),
    )?;
    Ok(Ran {
        outcome,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    })
}

#[track_caller]
fn sh(root: &Path, script: &str) -> Ran {
    run_spec(&spec(root, script)).unwrap_or_else(|e| panic!("{script}: {e}"))
}

#[track_caller]
fn ok(root: &Path, script: &str) -> String {
    let r = sh(root, script);
    assert!(
        r.outcome.success(),
        "{script}: {:?}\nstdout:\n{}\nstderr:\n{}",
        r.outcome,
        r.stdout,
        r.stderr
    );
    r.stdout
}

/// Host pids whose command line contains `needle`.
fn host_processes(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmd) = fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                found.push(format!("{name}: {cmd}"));
            }
        }
    }
    found
}

fn wait_gone(needle: &str, within: Duration) -> Vec<String> {
    let end = Instant::now() + within;
    loop {
        let left = host_processes(needle);
        if left.is_empty() || Instant::now() > end {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn pid_1_is_our_init_and_hostname_is_set() {
    let root = rootfs();
    let out = ok(
        root.path(),
        "cat /proc/1/comm; echo $$; hostname; cat /etc/hostname; ls /proc | grep -c '^[0-9]'",
    );
    // init is 1, sh is 2, and `ls` and `grep` are the only others.
    assert_eq!(out, "rbuild-init\n2\nsandbox-test\nsandbox-test\n4\n");
}

#[test]
fn workdir_is_created_inside_the_root() {
    let root = rootfs();
    let mut s = spec(root.path(), "pwd");
    s.cwd = "/a/b/../c/".into();
    assert_eq!(run_spec(&s).unwrap().stdout, "/a/c\n");
    assert!(root.path().join("a/c").is_dir());
    s.cwd = "../../../../etc".into();
    assert_eq!(run_spec(&s).unwrap().stdout, "/etc\n");
}

#[test]
fn a_rootfs_that_would_lead_mounts_outside_is_refused() {
    let root = rootfs();
    fs::remove_dir(root.path().join("dev")).unwrap();
    std::os::unix::fs::symlink("/dev", root.path().join("dev")).unwrap();
    assert!(matches!(
        run_spec(&spec(root.path(), "true")),
        Err(SandboxError::Rootfs { .. })
    ));
}

#[test]
fn exit_codes_and_signals() {
    let root = rootfs();
    assert_eq!(
        sh(root.path(), "exit 3").outcome,
        Outcome {
            exit_code: 3,
            signal: None
        }
    );
    assert_eq!(
        sh(root.path(), "true").outcome,
        Outcome {
            exit_code: 0,
            signal: None
        }
    );
    assert_eq!(
        sh(root.path(), "kill -9 $$").outcome,
        Outcome {
            exit_code: 137,
            signal: Some(9)
        }
    );
    let mut s = spec(root.path(), "");
    s.args = vec!["no-such-program".into()];
    assert!(matches!(run_spec(&s), Err(SandboxError::NotFound { .. })));
    s.args = vec!["/etc/passwd".into()];
    assert!(matches!(run_spec(&s), Err(SandboxError::Exec { .. })));
}

#[test]
fn output_is_streamed_as_it_comes() {
    let root = rootfs();
    let start = Instant::now();
    let events = RefCell::new(Vec::new());
    let s = spec(
        root.path(),
        "echo one; sleep 0.5; echo two >&2; sleep 0.1; echo three",
    );
    let outcome = sandbox::run(
        &s,
        |b| {
            events.borrow_mut().push((
                start.elapsed(),
                "out",
                String::from_utf8_lossy(b).into_owned(),
            ))
        },
        |b| {
            events.borrow_mut().push((
                start.elapsed(),
                "err",
                String::from_utf8_lossy(b).into_owned(),
            ))
        },
    )
    .unwrap();
    let end = start.elapsed();
    assert!(outcome.success());
    let events = events.into_inner();
    let texts: Vec<(&str, &str)> = events.iter().map(|(_, k, t)| (*k, t.as_str())).collect();
    assert_eq!(
        texts,
        [("out", "one\n"), ("err", "two\n"), ("out", "three\n")]
    );
    assert!(
        end - events[0].0 >= Duration::from_millis(400),
        "first line came at {:?}, end {end:?}",
        events[0].0
    );
}

#[test]
fn user_gets_exactly_the_images_groups() {
    let root = rootfs();
    let mut s = spec(root.path(), "id");
    let id = |s: &SandboxSpec| run_spec(s).unwrap().stdout;
    assert_eq!(id(&s), "uid=0(root) gid=0(root) groups=0(root),10(wheel)\n");
    s.user = "app".into();
    // The primary gid and the two groups listing "app"; the kernel keeps them sorted.
    assert_eq!(
        id(&s),
        "uid=1000(app) gid=1000(app) groups=10(wheel),29(audio),1000(app)\n"
    );
    s.user = "1000:staff".into();
    assert_eq!(id(&s), "uid=1000(app) gid=50(staff) groups=50(staff)\n");
    s.user = "4242:4343".into();
    assert_eq!(id(&s), "uid=4242 gid=4343 groups=4343\n");
    s.user = "4294967296".into();
    assert!(matches!(run_spec(&s), Err(SandboxError::User { .. })));
    s.user = "nosuchuser".into();
    assert!(matches!(run_spec(&s), Err(SandboxError::User { .. })));
    // HOME comes from passwd, and non-root has no capabilities left.
    s.user = "app".into();
    s.args = vec![
        "/bin/sh".into(),
        "-c".into(),
        "echo $HOME; grep -E '^Cap(Eff|Prm)' /proc/self/status".into(),
    ];
    assert_eq!(
        id(&s),
        "/home/app\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n"
    );
}

#[test]
fn capabilities_are_dockers_default_set_and_no_new_privs() {
    let root = rootfs();
    let out = ok(root.path(), "grep -E '^(Cap|NoNewPrivs)' /proc/self/status");
    // Docker's 14 default capabilities; the inheritable set is empty (CVE-2022-24769).
    assert_eq!(
        out,
        "CapInh:\t0000000000000000\nCapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\n\
         CapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\n"
    );
}

#[test]
fn no_host_descriptor_leaks_in() {
    let root = rootfs();
    // A descriptor without O_CLOEXEC on a host directory, as a careless thread might leave.
    let host_dir = tempfile::tempdir().unwrap();
    fs::write(host_dir.path().join("host-secret"), "x").unwrap();
    let fd = nix::fcntl::open(
        host_dir.path(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap();
    use std::os::fd::AsRawFd;
    let n = fd.as_raw_fd();
    // ls opens /proc/self/fd itself as 3.
    assert_eq!(ok(root.path(), "ls /proc/self/fd"), "0\n1\n2\n3\n");
    let mut s = spec(root.path(), "ls");
    s.cwd = format!("/proc/self/fd/{n}");
    match run_spec(&s) {
        Err(SandboxError::Workdir { .. }) => {}
        other => panic!(
            "cwd /proc/self/fd/{n} should fail, got {:?}",
            other.map(|r| r.stdout)
        ),
    }
    drop(fd);
}

#[test]
fn host_files_are_invisible_and_writes_stay_in_the_rootfs() {
    let root = rootfs();
    let canary = format!("/tmp/rbuild-sandbox-canary-{}", std::process::id());
    fs::write(&canary, "host").unwrap();
    let out = ok(
        root.path(),
        &format!(
            "test -e {canary} && echo visible; echo inside > /written-by-sandbox; echo tmp > /tmp/t; awk '$5 == \"/\"' /proc/self/mountinfo | wc -l"
        ),
    );
    fs::remove_file(&canary).unwrap();
    // Exactly one mount on `/`: the old root is detached, not stacked below.
    assert_eq!(out, "1\n");
    assert!(!Path::new("/written-by-sandbox").exists());
    assert_eq!(
        fs::read_to_string(root.path().join("written-by-sandbox")).unwrap(),
        "inside\n"
    );
    assert_eq!(
        fs::read_to_string(root.path().join("tmp/t")).unwrap(),
        "tmp\n"
    );
    // Docker's read-only /proc paths.
    assert_ne!(
        sh(root.path(), "echo 1 > /proc/sys/kernel/domainname")
            .outcome
            .exit_code,
        0
    );
}

#[test]
fn background_processes_die_with_the_command() {
    let root = rootfs();
    let marker = format!("{}", 1_000_000 + std::process::id());
    let start = Instant::now();
    let out = ok(root.path(), &format!("sleep {marker} & echo started"));
    assert_eq!(out, "started\n");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(
        wait_gone(&format!("sleep {marker}"), Duration::from_secs(2)),
        Vec::<String>::new()
    );
}

#[test]
fn init_forwards_sigterm_to_the_command() {
    let root = rootfs();
    let r = sh(
        root.path(),
        "trap 'echo got TERM; exit 7' TERM; kill -TERM 1; sleep 5 & wait",
    );
    assert_eq!((r.stdout.as_str(), r.outcome.exit_code), ("got TERM\n", 7));
}

#[test]
fn etc_files_are_generated_read_only_and_never_left_in_the_rootfs() {
    let root = rootfs();
    let etc = root.path().join("etc");
    let before = fs::metadata(&etc).unwrap().modified().unwrap();
    let mut s = spec(
        root.path(),
        "cat /etc/hosts /etc/resolv.conf /etc/hostname; echo x >> /etc/hosts || echo read-only",
    );
    s.resolv_conf = Some("nameserver 192.0.2.53\n".into());
    let out = run_spec(&s).unwrap().stdout;
    assert_eq!(
        out,
        "127.0.0.1\tlocalhost sandbox-test\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         nameserver 192.0.2.53\nsandbox-test\nread-only\n"
    );
    for f in ["hosts", "resolv.conf", "hostname"] {
        assert!(!etc.join(f).exists(), "/etc/{f} was left in the rootfs");
    }
    assert_eq!(fs::metadata(&etc).unwrap().modified().unwrap(), before);
    // An image's own file is hidden during the run and untouched after it.
    fs::write(etc.join("hosts"), "image's own\n").unwrap();
    assert!(ok(root.path(), "cat /etc/hosts").contains("sandbox-test"));
    assert_eq!(
        fs::read_to_string(etc.join("hosts")).unwrap(),
        "image's own\n"
    );
}

#[test]
fn dev_is_minimal() {
    let root = rootfs();
    let out = ok(
        root.path(),
        "ls /dev | tr '\\n' ' '; echo; echo hi > /dev/null; head -c 4 /dev/zero | wc -c; readlink /dev/fd",
    );
    assert_eq!(
        out,
        "core fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero \n4\n/proc/self/fd\n"
    );
    // A device node made in the sandbox cannot be opened (nodev).
    let r = sh(root.path(), "mknod /dev/mem2 c 1 1 && head -c 1 /dev/mem2");
    assert_ne!(r.outcome.exit_code, 0, "{}", r.stdout);
    let r = sh(root.path(), "mknod /tmp/null2 c 1 3 && echo x > /tmp/null2");
    assert_ne!(r.outcome.exit_code, 0);
}

#[test]
fn network_none_has_only_loopback_up() {
    let root = rootfs();
    let mut s = spec(
        root.path(),
        "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; cat /sys/class/net/lo/operstate /sys/class/net/lo/flags",
    );
    s.network = Network::None;
    let out = run_spec(&s).unwrap().stdout;
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("lo"));
    assert_eq!(lines.next(), Some("unknown"));
    let flags = u32::from_str_radix(lines.next().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is not up");
    // Host networking shares the host's interfaces.
    s.network = Network::Host;
    s.args[2] = "tail -n +3 /proc/net/dev | wc -l".into();
    let host = fs::read_to_string("/proc/net/dev").unwrap().lines().count() - 2;
    assert_eq!(run_spec(&s).unwrap().stdout.trim(), host.to_string());
}

#[test]
fn cancel_kills_everything_and_cleans_up() {
    let root = rootfs();
    let marker = format!("{}", 2_000_000 + std::process::id());
    let cancel = AtomicBool::new(false);
    let s = spec(root.path(), &format!("sleep {marker} & sleep {marker}"));
    let start = Instant::now();
    let r = std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        sandbox::run_cancellable(
            &s,
            &|| cancel.load(std::sync::atomic::Ordering::Relaxed),
            |_| {},
            |_| {},
        )
    });
    assert!(matches!(r, Err(SandboxError::Cancelled)), "{r:?}");
    assert!(start.elapsed() < Duration::from_secs(3));
    assert_eq!(
        wait_gone(&format!("sleep {marker}"), Duration::from_secs(2)),
        Vec::<String>::new()
    );
    assert!(!root.path().join("etc/hosts").exists());
}

/// What `parent_death_kills_the_sandbox` runs in its child process (the test binary
/// re-run on that test with the helper variables set): the parent that gets killed.
fn parent_death_helper(dir: String) {
    let marker = std::env::var("RBUILD_SANDBOX_HELPER_MARKER").unwrap();
    let s = spec(&PathBuf::from(dir), &format!("echo ready; sleep {marker}"));
    let _ = sandbox::run(
        &s,
        |b| {
            use std::io::Write;
            let mut o = std::io::stdout();
            let _ = o.write_all(b);
            let _ = o.flush();
        },
        |_| {},
    );
}

#[test]
fn parent_death_kills_the_sandbox() {
    if let Ok(dir) = std::env::var("RBUILD_SANDBOX_HELPER_ROOT") {
        return parent_death_helper(dir);
    }
    let root = rootfs();
    let marker = format!("{}", 3_000_000 + std::process::id());
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "parent_death_kills_the_sandbox",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RBUILD_SANDBOX_HELPER_ROOT", root.path())
        .env("RBUILD_SANDBOX_HELPER_MARKER", &marker)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = helper.stdout.take().unwrap();
    let mut seen = String::new();
    let start = Instant::now();
    while !seen.contains("ready") {
        use std::io::Read;
        let mut b = [0u8; 256];
        let n = out.read(&mut b).unwrap();
        assert!(
            n > 0 && start.elapsed() < Duration::from_secs(5),
            "helper ended early: {seen}"
        );
        seen.push_str(&String::from_utf8_lossy(&b[..n]));
    }
    // `ready` is printed just before the shell starts `sleep`: wait for it to appear.
    let deadline = Instant::now() + Duration::from_secs(5);
    while host_processes(&format!("sleep {marker}")).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(host_processes(&format!("sleep {marker}")).len(), 1);
    helper.kill().unwrap();
    helper.wait().unwrap();
    assert_eq!(
        wait_gone(&format!("sleep {marker}"), Duration::from_secs(2)),
        Vec::<String>::new()
    );
}

#[test]
fn extra_mounts_bind_tmpfs_and_overlay_leave_no_stubs() {
    use rbuild_builder::sandbox::{MountKind, SandboxMount};
    let root = rootfs();
    let r = root.path();
    let host = tempfile::tempdir().unwrap();
    fs::write(host.path().join("f"), "hello").unwrap();
    let rw = tempfile::tempdir().unwrap();
    fs::write(rw.path().join("g"), "rw").unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let (upper, work) = (scratch.path().join("u"), scratch.path().join("w"));
    fs::create_dir(&upper).unwrap();
    fs::create_dir(&work).unwrap();
    // A symlink that would lead out of the rootfs: the target is resolved inside it.
    std::os::unix::fs::symlink("/", r.join("tmp/out")).unwrap();
    let before: Vec<_> = fs::read_dir(r)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let mut s = spec(
        r,
        "set -e; test \"$(cat /ro/f)\" = hello; ! touch /ro/x 2>/dev/null; \
         echo t > /tmp/out/mnt/t/file; grep -q ' /mnt/t tmpfs ' /proc/mounts; \
         echo changed > /over/g; test \"$(cat /over/g)\" = changed",
    );
    s.mounts = vec![
        SandboxMount {
            source: Some(host.path().to_path_buf()),
            target: "/ro".into(),
            kind: MountKind::Bind { readonly: true },
        },
        SandboxMount {
            source: None,
            target: "/tmp/out/mnt/t".into(),
            kind: MountKind::Tmpfs {
                size: Some(1 << 20),
            },
        },
        SandboxMount {
            source: Some(rw.path().to_path_buf()),
            target: "/over".into(),
            kind: MountKind::Overlay { upper, work },
        },
    ];
    let ran = run_spec(&s).unwrap();
    assert!(ran.outcome.success(), "{}{}", ran.stdout, ran.stderr);
    // Host sides as they were, the rootfs without the mount points.
    assert_eq!(fs::read_to_string(rw.path().join("g")).unwrap(), "rw");
    assert!(!host.path().join("x").exists());
    let after: Vec<_> = fs::read_dir(r)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after);
    assert!(!Path::new("/mnt/t").exists());
}
