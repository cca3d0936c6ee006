//! ADD of git repositories, served by a real `git daemon` on 127.0.0.1: branches, tags,
//! commits, subdirectories, `--keep-git-dir`, `--checksum`, the cache following the
//! resolved commit, and errors that name the repository (without credentials).

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
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
            // `git daemon` runs `git-daemon` as a child, which forks one per connection:
            // a group of their own lets drop stop them all, not only `git`.
            .process_group(0)
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
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Git's smart HTTP protocol on 127.0.0.1: each request is handed to `git
/// http-backend` as a CGI program. Stopped on drop.
struct HttpGit {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpGit {
    fn start(base: &Path) -> HttpGit {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let base = base.to_path_buf();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        stream
                            .set_read_timeout(Some(Duration::from_secs(30)))
                            .unwrap();
                        let _ = cgi(&base, stream);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        HttpGit {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for HttpGit {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One HTTP request through `git http-backend`, answered with `Connection: close`.
fn cgi(base: &Path, stream: std::net::TcpStream) -> std::io::Result<()> {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut parts = request.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = std::collections::HashMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let mut body = Vec::new();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = headers.get("content-length").and_then(|v| v.parse().ok()) {
        body.resize(n, 0);
        reader.read_exact(&mut body)?;
    }
    let header = |k: &str| headers.get(k).cloned().unwrap_or_default();
    let mut child = Command::new("git")
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", base)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_PROJECT_ROOT", base)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&body));
    let out = child.wait_with_output()?;
    let _ = writer.join();
    let text = &out.stdout;
    let split = text
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| text.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let (head, body) = match split {
        Some((i, n)) => (
            String::from_utf8_lossy(&text[..i]).into_owned(),
            &text[i + n..],
        ),
        None => (String::new(), &text[..]),
    };
    let mut status = "200 OK".to_string();
    let mut response = Vec::new();
    for line in head.lines() {
        match line.split_once(':') {
            Some((k, v)) if k.eq_ignore_ascii_case("status") => status = v.trim().to_string(),
            _ => response.extend_from_slice(format!("{line}\r\n").as_bytes()),
        }
    }
    let mut stream = stream;
    stream.write_all(format!("HTTP/1.1 {status}\r\n").as_bytes())?;
    stream.write_all(&response)?;
    stream.write_all(
        format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )?;
    stream.write_all(body)?;
    stream.flush()
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
        format!("cache miss: git source {url}#main:sub moved to another commit"),
        "{}",
        run.stderr
    );
    let l = layers(&store, "g");
    assert_eq!(read(l[0].join("default/README")), "three\n");
    assert_no_scratch(&store);

    // A remote whose HEAD is detached names no default branch: HEAD itself is used.
    git(&dir, &["checkout", "-q", "--detach", &one]);
    let run = store
        .run(&["build", "--progress", "plain", "-t", "g", ctx_arg(&ctx)])
        .success();
    let l = layers(&store, "g");
    assert_eq!(read(l[0].join("default/README")), "one\n", "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("(default branch HEAD) to {one}")),
        "{}",
        run.stderr
    );
}

#[test]
fn add_git_over_smart_http_with_credentials_kept_out() {
    let (store, ctx) = setup("add-git-http");
    let (base, _dir, one, two) = repo();
    // A bare copy, as hosting services serve them, with the `.git` suffix that makes
    // an http(s) URL a git source.
    git(
        &base.0,
        &["clone", "-q", "--bare", "--", "repo", "served.git"],
    );
    let server = HttpGit::start(&base.0);
    let url = format!("http://127.0.0.1:{}/served.git", server.port);
    let with_user = format!(
        "http://someone:pa55word@127.0.0.1:{}/served.git",
        server.port
    );
    ctx.write(
        "Dockerfile",
        &format!(
            "FROM busybox
ADD {url}#{one} /one/
ADD --keep-git-dir=true --exclude=sub {with_user}#main /two/
"
        ),
    );
    let run = store
        .run(&["build", "--progress", "plain", "-t", "h", ctx_arg(&ctx)])
        .success();
    let l = layers(&store, "h");
    assert_eq!(
        std::fs::read_to_string(l[1].join("one/README")).unwrap(),
        "one\n",
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(l[0].join("two/README")).unwrap(),
        "two\n"
    );
    assert!(!l[0].join("two/sub").exists(), "--exclude applies");
    assert_eq!(
        std::fs::read_to_string(l[0].join("two/.git/HEAD"))
            .unwrap()
            .trim(),
        two
    );
    // The kept .git names the repository without the password.
    let config = std::fs::read_to_string(l[0].join("two/.git/config")).unwrap();
    assert!(config.contains(&url), "{config}");
    assert!(!config.contains("pa55word"), "{config}");
    assert_no_scratch(&store);
    drop(server);
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
    // COPY reads no repositories, as in BuildKit.
    ctx.write(
        "Dockerfile",
        &format!("FROM busybox\nCOPY {url}#main /x/\n"),
    );
    store
        .run(&["build", ctx_arg(&ctx)])
        .failure()
        .stderr_contains("Dockerfile:2")
        .stderr_contains("source can't be a git ref for COPY");
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

#[test]
fn add_git_checks_out_submodules_but_never_local_ones() {
    let (store, ctx) = setup("add-git-sub");
    let base = TempDir::new("git-sub-base");
    let lib = base.0.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    git(&lib, &["init", "-q", "--initial-branch=main"]);
    std::fs::write(lib.join("lib.txt"), "lib\n").unwrap();
    git(&lib, &["add", "."]);
    git(&lib, &["commit", "-q", "-m", "lib"]);
    // `app` names lib relatively (fetched from the same server), `local` by its path
    // on this machine (file protocol, which a build must not use).
    for (name, url) in [
        ("app", "../lib".to_string()),
        ("local", lib.display().to_string()),
    ] {
        let dir = base.0.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        git(&dir, &["init", "-q", "--initial-branch=main"]);
        std::fs::write(dir.join("app.txt"), "app\n").unwrap();
        git(
            &dir,
            &[
                "-c",
                "protocol.file.allow=always",
                "submodule",
                "add",
                "-q",
                "--",
                &lib.display().to_string(),
                "vendor/lib",
            ],
        );
        git(
            &dir,
            &[
                "config",
                "-f",
                ".gitmodules",
                "submodule.vendor/lib.url",
                &url,
            ],
        );
        git(&dir, &["add", "."]);
        git(&dir, &["commit", "-q", "-m", "app"]);
    }
    let daemon = Daemon::start(&base.0);
    ctx.write(
        "Dockerfile",
        &format!("FROM busybox\nADD {}#main /app/\n", daemon.url("app")),
    );
    let run = store
        .run(&["build", "--progress", "plain", "-t", "sub", ctx_arg(&ctx)])
        .success();
    let l = layers(&store, "sub");
    assert_eq!(
        std::fs::read_to_string(l[0].join("app/vendor/lib/lib.txt")).unwrap_or_default(),
        "lib\n",
        "{}",
        run.stderr
    );
    assert!(!l[0].join("app/.git").exists());

    ctx.write(
        "Dockerfile",
        &format!("FROM busybox\nADD {}#main /local/\n", daemon.url("local")),
    );
    store
        .run(&["build", ctx_arg(&ctx)])
        .failure()
        .stderr_contains("Dockerfile:2")
        .stderr_contains("transport 'file' not allowed");
    assert_no_scratch(&store);
}
