//! ADD of git repositories, served by a real `git daemon` on 127.0.0.1: branches, tags,
//! commits, subdirectories, `--keep-git-dir`, `--checksum`, the cache following the
//! resolved commit, and errors that name the repository (without credentials).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::build::{ctx_arg, outcomes, setup};
use crate::build_copy::layers;
use crate::util::TempDir;

/// Runs git in `dir` with a private HOME and no system config, so the tests neither
/// read nor change the machine's git setup.
fn git(dir: &Path, args: &[&str]) -> String {
    let home = dir.parent().unwrap_or(dir);
    let out = Command::new("git")
        .args(["-c", "user.name=T", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_DATE", "2021-02-03T04:05:06Z")
        .env("GIT_COMMITTER_DATE", "2021-02-03T04:05:06Z")
        .output()
        .unwrap_or_else(|e| {
            panic!("running git: {e}: the git tests need git (apt-get install git)")
        });
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `git daemon` serving every repository under `base` on a free loopback port; stopped
/// on drop.
struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    fn start(base: &Path) -> Daemon {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("git")
            .args([
                "daemon",
                "--reuseaddr",
                "--listen=127.0.0.1",
                &format!("--port={port}"),
                &format!("--base-path={}", base.display()),
                "--export-all",
                "--informative-errors",
            ])
            .arg(base)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", base)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting git daemon: the git tests need git (apt-get install git)");
        let d = Daemon { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "git daemon did not listen on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    fn url(&self, repo: &str) -> String {
        format!("git://127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A repository `repo` in a fresh directory: commit one (README "one", an executable
/// `run.sh`, `sub/inner.txt`), annotated tag `v1` on it, then commit two (README "two")
/// on `main`. Returns the directory (the daemon's base), and the two commits.
fn repo() -> (TempDir, PathBuf, String, String) {
    let base = TempDir::new("git-base");
    let dir = base.0.join("repo");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    git(&dir, &["init", "-q", "--initial-branch=main"]);
    std::fs::write(dir.join("README"), "one\n").unwrap();
    std::fs::write(dir.join("run.sh"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        dir.join("run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    std::fs::write(dir.join("sub/inner.txt"), "inner\n").unwrap();
    git(&dir, &["add", "."]);
    git(&dir, &["commit", "-q", "-m", "one"]);
    git(&dir, &["tag", "-a", "-m", "version one", "v1"]);
    let one = git(&dir, &["rev-parse", "HEAD"]);
    std::fs::write(dir.join("README"), "two\n").unwrap();
    git(&dir, &["commit", "-q", "-am", "two"]);
    let two = git(&dir, &["rev-parse", "HEAD"]);
    (base, dir, one, two)
}

/// The store's scratch area holds nothing once a build is over.
fn assert_no_scratch(store: &crate::util::TestStore) {
    let left: Vec<_> = std::fs::read_dir(store.root().join("tmp"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "scratch left behind: {left:?}");
}

#[test]
fn add_git_branches_tags_commits_subdirs_and_the_cache() {
    let (store, ctx) = setup("add-git");
    let (base, dir, one, two) = repo();
    let daemon = Daemon::start(&base.0);
    let url = daemon.url("repo");
    ctx.write(
        "Dockerfile",
        &format!(
            "FROM busybox
ADD --checksum={} {url}#v1 /tag/
ADD {url}#{one} /commit/
ADD {url}#main:sub /subdir
ADD --keep-git-dir=true {url}#main /kept/
ADD {url} /default/
",
            &one[..7]
        ),
    );
    let run = store
        .run(&["build", "--progress", "plain", "-t", "g", ctx_arg(&ctx)])
        .success();
    assert_no_scratch(&store);
    let l = layers(&store, "g");
    let (tag, commit, subdir, kept, default) = (&l[4], &l[3], &l[2], &l[1], &l[0]);
    let read = |p: PathBuf| std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
    assert_eq!(read(tag.join("tag/README")), "one\n", "{}", run.stderr);
    assert_eq!(read(commit.join("commit/README")), "one\n");
    assert_eq!(read(default.join("default/README")), "two\n");
    assert_eq!(read(kept.join("kept/README")), "two\n");
    // Only the subdirectory's contents.
    assert_eq!(read(subdir.join("subdir/inner.txt")), "inner\n");
    assert!(!subdir.join("subdir/README").exists());
    // No .git unless kept; the kept one is checked out at the commit.
    assert!(!tag.join("tag/.git").exists());
    assert!(!default.join("default/.git").exists());
    assert_eq!(read(kept.join("kept/.git/HEAD")).trim(), two);
    let config = read(kept.join("kept/.git/config"));
    assert!(config.contains(&url), "{config}");
    // Modes as git has them (0644, or 0755 for executables), owned by root, with the
    // commit's time.
    let m = std::fs::metadata(default.join("default/README")).unwrap();
    assert_eq!(
        (m.mode() & 0o7777, m.uid(), m.gid(), m.mtime()),
        (0o644, 0, 0, 1_612_325_106)
    );
    let m = std::fs::metadata(default.join("default/run.sh")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o755);
    let m = std::fs::metadata(tag.join("tag/sub")).unwrap();
    assert_eq!((m.mode() & 0o7777, m.mtime()), (0o755, 1_612_325_106));

    // Unchanged repository: every step is CACHED.
    let run = store
        .run(&["build", "--progress", "plain", "-t", "g", ctx_arg(&ctx)])
        .success();
    let o = outcomes(&run.stderr);
    assert!(
        o.len() == 5 && o.iter().all(|(_, r)| r == "CACHED"),
        "{}",
        run.stderr
    );

    // A new commit on main: the tag and commit steps stay cached, the branch step runs
    // again and says why.
    std::fs::write(dir.join("README"), "three\n").unwrap();
    git(&dir, &["commit", "-q", "-am", "three"]);
    let run = store
        .run(&["build", "--progress", "plain", "-t", "g", ctx_arg(&ctx)])
        .success();
    let o = outcomes(&run.stderr);
    assert_eq!(o[0].1, "CACHED", "{}", run.stderr);
    assert_eq!(o[1].1, "CACHED", "{}", run.stderr);
    assert_eq!(
        o[2].1,
        format!("cache miss: git {url}#main:sub is at another commit"),
        "{}",
        run.stderr
    );
    let l = layers(&store, "g");
    assert_eq!(read(l[0].join("default/README")), "three\n");
    assert_no_scratch(&store);
}

#[test]
fn add_git_errors_name_the_repository_and_the_cause() {
    let (store, ctx) = setup("add-git-errors");
    let (base, _dir, one, _two) = repo();
    let daemon = Daemon::start(&base.0);
    let url = daemon.url("repo");
    let cases = [
        (
            format!("ADD --checksum=deadbeef {url}#main /x/"),
            "expected checksum to match deadbeef",
        ),
        (
            format!("ADD --checksum=sha256:00 {url}#main /x/"),
            "expected hex commit hash",
        ),
        (
            format!("ADD {url}#no-such-ref /x/"),
            "repository does not contain ref no-such-ref",
        ),
        (
            format!("ADD {url}#main:nothere /x/"),
            "not found in the repository",
        ),
        (format!("ADD {url}-missing#main /x/"), "-missing"),
        (format!("ADD {url}?bogus=1#{one} /x/"), "unexpected query"),
    ];
    for (line, needle) in cases {
        ctx.write("Dockerfile", &format!("FROM busybox\n{line}\n"));
        store
            .run(&["build", ctx_arg(&ctx)])
            .failure()
            .stderr_contains("Dockerfile:2")
            .stderr_contains(needle);
        assert_no_scratch(&store);
    }
    // The message names the repository without its credentials (the step's text is
    // the Dockerfile's, as written), and carries git's own message.
    ctx.write(
        "Dockerfile",
        "FROM busybox\nADD http://user:s3cret@127.0.0.1:1/repo.git#main /x/\n",
    );
    let run = store
        .run(&["build", ctx_arg(&ctx)])
        .failure()
        .stderr_contains("http://127.0.0.1:1/repo.git")
        .stderr_contains("ls-remote failed");
    let error = run
        .stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap();
    let (_, message) = error.split_once("git source").unwrap();
    assert!(!message.contains("s3cret"), "{}", run.stderr);
}
