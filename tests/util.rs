//! Running the real binary and checking what it printed, with readable failures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The project root (where Cargo.toml is).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A folder of `../shared/conformance`; missing data is a failure, not a skip.
pub fn conformance_dir(sub: &str) -> PathBuf {
    let dir = root().join("../shared/conformance").join(sub);
    assert!(
        dir.is_dir(),
        "conformance data not found at {} (the project expects ../shared/ beside its root)",
        dir.display()
    );
    dir
}

/// Sub-folders of `dir`, sorted, so failures are reported in a stable order.
pub fn case_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// What one run of `rbuild` did.
pub struct Run {
    pub args: Vec<String>,
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "rbuild {}\nexit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args.join(" "),
            self.status,
            self.stdout,
            self.stderr
        )
    }

    /// Asserts exit status 0 and returns self for chaining.
    #[track_caller]
    pub fn success(self) -> Self {
        assert_eq!(
            self.status,
            Some(0),
            "expected success:\n{}",
            self.describe()
        );
        self
    }

    /// Asserts a non-zero exit (not a crash by signal) and returns self.
    #[track_caller]
    pub fn failure(self) -> Self {
        assert!(
            matches!(self.status, Some(c) if c != 0),
            "expected a failure exit:\n{}",
            self.describe()
        );
        assert!(
            !self.stderr.contains("panicked"),
            "rbuild panicked:\n{}",
            self.describe()
        );
        self
    }

    #[track_caller]
    pub fn stderr_contains(self, needle: &str) -> Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.describe()
        );
        self
    }

    #[track_caller]
    pub fn stdout_contains(self, needle: &str) -> Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}:\n{}",
            self.describe()
        );
        self
    }
}

/// Runs `rbuild ARGS` in `dir` with `stdin` as standard input.
pub fn rbuild_in(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
    rbuild_bytes(dir, args, stdin).0
}

/// Like [`rbuild_in`], also returning stdout as bytes (`save` to a pipe is binary).
pub fn rbuild_bytes(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> (Run, Vec<u8>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rbuild"));
    cmd.current_dir(dir);
    run_command(cmd, args, stdin)
}

/// Runs `cmd` (rbuild, with whatever environment the caller set) with `args`, `stdin`
/// as standard input (none: /dev/null, not a terminal), returning the run and stdout as
/// bytes.
pub fn run_command(mut cmd: Command, args: &[&str], stdin: Option<&[u8]>) -> (Run, Vec<u8>) {
    use std::io::Write;
    let mut child = cmd
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting rbuild");
    // Written from a thread: a big input and a big output would otherwise deadlock, and
    // a command that fails early closes its stdin (a broken pipe here is not an error).
    let writer = stdin.map(|input| {
        let mut pipe = child.stdin.take().unwrap();
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        })
    });
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("waiting for rbuild");
    if let Some(w) = writer {
        w.join().unwrap();
    }
    let run = Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        status: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    (run, stdout)
}

/// Runs `rbuild ARGS` in the project root.
pub fn rbuild(args: &[&str]) -> Run {
    rbuild_in(&root(), args, None)
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "rbuild-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.0.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, content).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A busybox root file system tar made by `fixtures/busybox-rootfs.sh` from Debian's
/// busybox-static. Kept in cargo's test scratch dir (under `target/`) and named for the
/// busybox it was made from, so the many test processes share one and leave nothing
/// in /tmp; each makes it under a name of its own and renames it into place.
pub fn busybox_tar() -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    use std::sync::OnceLock;
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let meta = std::fs::metadata("/bin/busybox").unwrap_or_else(|_| {
            panic!("/bin/busybox is missing: install Debian's busybox-static (apt-get install busybox-static)")
        });
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let tar = dir.join(format!("busybox-{}-{}.tar", meta.len(), meta.mtime()));
        if tar.exists() {
            return tar;
        }
        std::fs::create_dir_all(dir).unwrap();
        let part = dir.join(format!(".busybox-{}.tar", std::process::id()));
        let out = Command::new("bash")
            .arg(root().join("fixtures/busybox-rootfs.sh"))
            .arg(&part)
            .output()
            .expect("running fixtures/busybox-rootfs.sh");
        assert!(
            out.status.success(),
            "busybox-rootfs.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(&part, &tar).unwrap();
        tar
    })
    .clone()
}

/// Fails with a clear message unless the tests run as root (the store extracts layers
/// with their owners and overlay whiteouts, which needs root).
pub fn require_root() {
    assert!(
        nix_is_root(),
        "this test needs root: run the suite as root (CI does)"
    );
}

fn nix_is_root() -> bool {
    // The effective uid is the third field of the Uid: line.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// A private image store for one test, with `rbuild --root` pointed at it.
pub struct TestStore {
    pub dir: TempDir,
}

impl TestStore {
    pub fn new(tag: &str) -> Self {
        require_root();
        TestStore {
            dir: TempDir::new(tag),
        }
    }

    pub fn root(&self) -> &Path {
        &self.dir.0
    }

    /// Runs `rbuild --root STORE ARGS`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_stdin(args, None)
    }

    pub fn run_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        self.run_bytes(args, stdin).0
    }

    /// Runs `rbuild --root STORE ARGS`, returning stdout as bytes too.
    pub fn run_bytes(&self, args: &[&str], stdin: Option<&[u8]>) -> (Run, Vec<u8>) {
        let root = self.root().to_str().unwrap().to_string();
        let mut all = vec!["--root", root.as_str()];
        all.extend_from_slice(args);
        rbuild_bytes(&self.dir.0, &all, stdin)
    }

    /// Imports the busybox rootfs as `name` and returns the image ID.
    pub fn busybox(&self, name: &str) -> String {
        let tar = busybox_tar();
        let run = self.run(&["import", tar.to_str().unwrap(), name]).success();
        run.stdout.trim().to_string()
    }
}

/// A one-request HTTP server on 127.0.0.1 that answers `status` with `body`; returns its
/// base URL.
pub fn serve_once(status: &'static str, body: Vec<u8>) -> String {
    serve(1, status, "", body)
}

/// An HTTP server on 127.0.0.1 that answers `requests` requests with `status`, the extra
/// header lines `headers` (each ending in `\r\n`) and `body`; returns its base URL. The
/// thread ends after the last request, or after 30 s without one.
pub fn serve(
    requests: usize,
    status: &'static str,
    headers: &'static str,
    body: Vec<u8>,
) -> String {
    use std::io::{BufRead, BufReader, Write};
    use std::time::{Duration, Instant};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        for _ in 0..requests {
            let deadline = Instant::now() + Duration::from_secs(30);
            let stream = loop {
                match listener.accept() {
                    Ok((s, _)) => break s,
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(_) => return,
                }
            };
            stream.set_nonblocking(false).unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{headers}Connection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
    url
}

/// Runs an external tool (skopeo, umoci, buildah: each its own Debian package) and returns
/// its stdout; a missing tool or a failure fails the test, naming what to install.
#[track_caller]
pub fn tool_output(cmd: &str, args: &[&str]) -> Vec<u8> {
    let out = match std::process::Command::new(cmd).args(args).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("{cmd} is not installed; these tests need it: apt-get install {cmd}")
        }
        Err(e) => panic!("running {cmd}: {e}"),
    };
    assert!(
        out.status.success(),
        "{cmd} {} failed:\n{}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// [`tool_output`] as text.
#[track_caller]
pub fn tool(cmd: &str, args: &[&str]) -> String {
    String::from_utf8_lossy(&tool_output(cmd, args)).into_owned()
}

/// Parses JSON a tool printed; a parse failure shows the text.
#[track_caller]
pub fn json<B: AsRef<[u8]> + ?Sized>(b: &B) -> serde_json::Value {
    let b = b.as_ref();
    serde_json::from_slice(b).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(b)))
}

/// A path as the `&str` a command line wants.
pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Removes every container of a store when a test ends, passed or not, so that no
/// container (and no monitor, mount or process of one) outlives it.
pub struct Reaper<'a>(pub &'a TestStore);

impl Drop for Reaper<'_> {
    fn drop(&mut self) {
        let ids = self.0.run(&["ps", "-aq", "--no-trunc"]).stdout;
        for id in ids.lines() {
            self.0.run(&["rm", "-f", id]);
        }
    }
}
