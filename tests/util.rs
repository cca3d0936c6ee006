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
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_rbuild"))
        .args(args)
        .current_dir(dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting rbuild");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("waiting for rbuild");
    Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        status: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
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
