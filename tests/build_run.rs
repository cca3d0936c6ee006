//! RUN in `rbuild build`: the command runs in the sandbox on an overlay of the parent's
//! layers, its changes become the step's layer, failures and Ctrl-C leave nothing
//! behind.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::build::{ctx_arg, outcomes, setup, upper};
use crate::util::{TestStore, root};

/// Mount points under the store, from this process's view of the mount table.
pub(crate) fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.canonicalize().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(dir.to_str().unwrap()))
        .collect()
}

pub(crate) fn check_clean(store: &TestStore) {
    let out = store.run(&["system", "check"]).success().stdout;
    assert!(out.contains("no problems found"), "{out}");
}

#[test]
fn builds_the_demo_with_run_steps_and_caches_them() {
    let store = TestStore::new("run-demo");
    store.busybox("busybox:latest");
    let demo = root().join("fixtures/demo");
    let first = store
        .run(&["-t", "runoob/centos:6.7", demo.to_str().unwrap()])
        .success();
    assert!(
        outcomes(&first.stderr)
            .iter()
            .all(|(_, o)| o == "cache miss: first build"),
        "{}",
        first.stderr
    );
    // The RUN that added the user left it in its layer, and nothing of the sandbox's.
    let mut found_user = false;
    for layer in std::fs::read_dir(store.root().join("layers")).unwrap() {
        let diff = layer.unwrap().path().join("diff");
        for leftover in ["etc/hosts", "etc/resolv.conf", "etc/hostname"] {
            assert!(
                !diff.join(leftover).exists(),
                "{leftover} in {}",
                diff.display()
            );
        }
        if let Ok(passwd) = std::fs::read_to_string(diff.join("etc/passwd")) {
            found_user |= passwd.contains("runoob:x:1000:1000::/home/runoob:/bin/sh");
        }
    }
    assert!(found_user, "no layer added the runoob user");
    let top = upper(&store, "runoob/centos:6.7");
    assert!(top.exists());

    let history = store
        .run(&[
            "history",
            "--no-trunc",
            "--format",
            "{{.CreatedBy}}|{{.Size}}",
            "runoob/centos:6.7",
        ])
        .success()
        .stdout;
    let runs: Vec<&str> = history
        .lines()
        .filter(|l| l.starts_with("RUN /bin/sh -c"))
        .collect();
    assert_eq!(runs.len(), 4, "{history}");
    assert!(runs.iter().all(|l| !l.ends_with("|0B")), "{history}");
    let images = store.run(&["images", "-a", "-q"]).success().stdout;
    assert_eq!(images.lines().count(), 10, "busybox + 9 steps:\n{images}");

    let again = store
        .run(&["-t", "runoob/centos:6.7", demo.to_str().unwrap()])
        .success();
    let o = outcomes(&again.stderr);
    assert_eq!(o.len(), 9, "{}", again.stderr);
    assert!(o.iter().all(|(_, x)| x == "CACHED"), "{}", again.stderr);
    assert!(mounts_under(store.root()).is_empty());
    check_clean(&store);
}

#[test]
fn run_sees_its_own_pid_1_user_and_streams_output() {
    let (store, ctx) = setup("run-sandbox");
    ctx.write(
        "Dockerfile",
        "FROM busybox\n\
         RUN echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1000:' >> /etc/group\n\
         RUN cat /proc/1/comm > /pid1 && hostname > /hostname && echo step output here\n\
         USER app\n\
         WORKDIR /work\n\
         RUN id > /tmp/id.txt && pwd > /tmp/pwd.txt\n",
    );
    let run = store
        .run(&["build", "-t", "probe", ctx_arg(&ctx)])
        .success();
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with('#') && l.ends_with(" step output here")),
        "{}",
        run.stderr
    );
    let layers = std::fs::read_dir(store.root().join("layers"))
        .unwrap()
        .map(|e| e.unwrap().path().join("diff"))
        .collect::<Vec<_>>();
    let read = |rel: &str| {
        layers
            .iter()
            .find_map(|d| std::fs::read_to_string(d.join(rel)).ok())
            .unwrap_or_else(|| panic!("no layer has {rel}"))
    };
    assert_eq!(read("pid1").trim(), "rbuild-init");
    assert!(!read("hostname").trim().is_empty());
    assert_eq!(
        read("tmp/id.txt").trim(),
        "uid=1000(app) gid=1000(app) groups=1000(app)"
    );
    assert_eq!(read("tmp/pwd.txt").trim(), "/work");
}

#[test]
fn a_failed_run_commits_nothing_and_leaves_no_mount() {
    let (store, ctx) = setup("run-fail");
    ctx.write(
        "Dockerfile",
        "FROM busybox\nRUN touch /made-it\nRUN echo about to fail; ls /nonexistent\n",
    );
    let before = store.run(&["images", "-a", "-q"]).success().stdout;
    let run = store
        .run(&["build", "-t", "broken", ctx_arg(&ctx)])
        .failure()
        .stderr_contains("about to fail")
        .stderr_contains("Dockerfile:3: process \"/bin/sh -c echo about to fail; ls /nonexistent\" did not complete successfully: exit code: 1");
    assert!(!run.stderr.contains("panicked"));
    store
        .run(&["inspect", "broken"])
        .failure()
        .stderr_contains("No such object: broken");
    // The completed step is kept as cache (one more image); the failed one left nothing.
    let after = store.run(&["images", "-a", "-q"]).success().stdout;
    assert_eq!(after.lines().count(), before.lines().count() + 1);
    // The report repeats the output's last lines and the Dockerfile lines, and names
    // the image the step ran on: the completed step's.
    let parent = after
        .lines()
        .find(|l| !before.contains(l))
        .expect("the completed step's image");
    let boxed = run
        .stderr
        .split_once(" > [3/3] RUN echo about to fail; ls /nonexistent:\n")
        .and_then(|(_, rest)| rest.split_once("------\n"))
        .map(|(tail, _)| tail)
        .unwrap_or_else(|| panic!("no output box: {}", run.stderr));
    assert!(boxed.contains(" about to fail\n"), "{boxed}");
    assert!(
        run.stderr
            .contains("Dockerfile:3\n--------------------\n   1 |     FROM busybox\n   2 |     RUN touch /made-it\n   3 | >>> RUN echo about to fail; ls /nonexistent\n--------------------\n"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("The step ran on image {parent}; open a shell in it with: rbuild run -it --rm {parent} sh")),
        "{}",
        run.stderr
    );
    assert!(mounts_under(store.root()).is_empty());
    assert_eq!(
        std::fs::read_dir(store.root().join("tmp")).unwrap().count(),
        0
    );
    check_clean(&store);
}

/// Starts `rbuild ARGS` on `store` with stderr piped and returns once a RUN step of it
/// is running (a mount under the store has appeared), to interrupt it there.
pub fn start_until_running(store: &TestStore, args: &[&str]) -> std::process::Child {
    let child = Command::new(env!("CARGO_BIN_EXE_rbuild"))
        .args(["--root", store.root().to_str().unwrap()])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && mounts_under(store.root()).is_empty() {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !mounts_under(store.root()).is_empty(),
        "the RUN never started"
    );
    child
}

/// Sends Ctrl-C (SIGINT) to a child [`start_until_running`] started, once its RUN has
/// had a moment, and waits for it: its output, and how long it took to stop.
pub fn interrupt(child: std::process::Child) -> (std::process::Output, Duration) {
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    (out, started.elapsed())
}

#[test]
fn ctrl_c_stops_a_running_step_and_cleans_up() {
    let (store, ctx) = setup("run-interrupt");
    ctx.write("Dockerfile", "FROM busybox\nRUN echo started; sleep 3607\n");
    let child = start_until_running(&store, &["build", "-t", "never", ctx_arg(&ctx)]);
    let (out, took) = interrupt(child);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(mounts_under(store.root()).is_empty());
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&ps.stdout)
            .lines()
            .any(|l| l.trim() == "sleep 3607"),
        "the RUN's process survived"
    );
    store.run(&["inspect", "never"]).failure();
    check_clean(&store);
}

#[test]
fn run_heredocs_run_as_buildkit_runs_them() {
    use crate::build_mounts::{in_some_layer, layer_files};
    let (store, ctx) = setup("run-heredoc");
    ctx.write("bound.txt", "bound\n");
    let dockerfile = |body: &str| {
        format!(
            "FROM busybox
RUN <<EOF
echo {body} > /a
echo b >> /a
EOF
RUN <<EOF
#!/bin/sh
echo \"script $0\" > /s
EOF
RUN cat > /c <<'Y'
$HOME
Y
RUN --mount=type=bind,source=bound.txt,target=/dev/pipes/bound cat /dev/pipes/bound > /d
SHELL [\"/bin/sh\", \"-c\", \"echo via-shell > /shell-used; exec \\\"$0\\\"\"]
RUN <<EOF
#!/bin/sh
echo run > /shebang-ran
EOF
"
        )
    };
    ctx.write("Dockerfile", &dockerfile("a"));
    store.run(&["build", "-t", "h", ctx_arg(&ctx)]).success();
    assert_eq!(in_some_layer(&store, "a").unwrap(), b"a\nb\n");
    // A script with a shebang is a file of its own, run by its interpreter.
    assert_eq!(
        in_some_layer(&store, "s").unwrap(),
        b"script /dev/pipes/EOF\n"
    );
    // A script file is run through the SHELL, as BuildKit runs it.
    assert_eq!(in_some_layer(&store, "shell-used").unwrap(), b"via-shell\n");
    assert_eq!(in_some_layer(&store, "shebang-ran").unwrap(), b"run\n");
    // The shell reads the heredoc itself: the quoted one is not expanded.
    assert_eq!(in_some_layer(&store, "c").unwrap(), b"$HOME\n");
    // Mounts in the sandbox's /dev work, and leave nothing in a layer.
    assert_eq!(in_some_layer(&store, "d").unwrap(), b"bound\n");
    // (The base has an empty /dev; nothing may be under it in any layer.)
    let files = layer_files(&store);
    assert!(
        !files.iter().any(|(p, _)| p.starts_with("dev/")),
        "{:?}",
        files
            .iter()
            .filter(|(p, _)| p.starts_with("dev"))
            .collect::<Vec<_>>()
    );
    // A changed body is a changed step.
    ctx.write("Dockerfile", &dockerfile("changed"));
    let run = store.run(&["build", "-t", "h", ctx_arg(&ctx)]).success();
    let outcomes = crate::build::outcomes(&run.stderr);
    assert!(
        outcomes[0].1.starts_with("cache miss"),
        "{outcomes:?}\n{}",
        run.stderr
    );
    let a: Vec<Vec<u8>> = layer_files(&store)
        .into_iter()
        .filter(|(p, _)| p == "a")
        .filter_map(|(_, c)| c)
        .collect();
    assert!(a.contains(&b"changed\nb\n".to_vec()), "{a:?}");
}
