//! The `docker-credential-NAME` protocol (docker/docker-credential-helpers `client`):
//! the action is the only argument, the input goes on stdin, the answer (or an error
//! message) comes back on stdout, and a non-zero exit means failure.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::CredsError;

/// What helpers print when they have nothing for a server (`credentials.ErrCredentialsNotFound`).
const NOT_FOUND: &str = "credentials not found in native keychain";

/// How a helper run ended, once its exit status is known.
pub(super) enum Answer {
    Ok(Vec<u8>),
    NotFound,
}

/// One helper, found by name in a `PATH`-like list of directories.
pub(super) struct Helper<'a> {
    pub name: &'a str,
    pub search_path: Option<&'a OsString>,
    pub timeout: Duration,
}

impl Helper<'_> {
    fn program(&self) -> String {
        format!("docker-credential-{}", self.name)
    }

    fn fail(&self, action: &str, reason: String) -> CredsError {
        CredsError::Helper {
            helper: self.program(),
            action: action.to_string(),
            reason,
        }
    }

    /// The executable: searched in `search_path` when the caller gave one (tests and
    /// callers that must not depend on the process's own `PATH`), else in `$PATH`.
    fn resolve(&self, action: &str) -> Result<PathBuf, CredsError> {
        let program = self.program();
        let path = match self.search_path {
            Some(p) => p.clone(),
            None => std::env::var_os("PATH").unwrap_or_default(),
        };
        std::env::split_paths(&path)
            .map(|dir| dir.join(&program))
            .find(|candidate| is_executable(candidate))
            .ok_or_else(|| self.fail(action, "executable not found in PATH".into()))
    }

    /// Runs `ACTION` with `input` on stdin. `secret`, when the input holds one, is
    /// blanked from any helper output that ends up in an error.
    pub fn run(&self, action: &str, input: &[u8], secret: &str) -> Result<Answer, CredsError> {
        let program = self.resolve(action)?;
        let mut child = Command::new(&program)
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.fail(action, format!("starting it: {e}")))?;
        // Inputs are a few hundred bytes, well under a pipe's buffer, so writing before
        // reading cannot deadlock; a helper that exits without reading is not our error.
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(input);
        }
        let stdout = reader(child.stdout.take());
        let stderr = reader(child.stderr.take());
        let status = self.wait(&mut child, action)?;
        let out = stdout.join().unwrap_or_default();
        let err = stderr.join().unwrap_or_default();
        if status.success() {
            return Ok(Answer::Ok(out));
        }
        let message = String::from_utf8_lossy(&out).trim().to_string();
        if message == NOT_FOUND {
            return Ok(Answer::NotFound);
        }
        let message = if message.is_empty() {
            String::from_utf8_lossy(&err).trim().to_string()
        } else {
            message
        };
        Err(self.fail(action, describe_failure(status, &message, secret)))
    }

    /// Waits for the helper, killing it after the timeout: a helper waiting on a locked
    /// keychain's prompt must not hang a build forever.
    fn wait(&self, child: &mut Child, action: &str) -> Result<ExitStatus, CredsError> {
        let start = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if start.elapsed() >= self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(self.fail(
                        action,
                        format!("no answer after {}s, stopped it", self.timeout.as_secs()),
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => return Err(self.fail(action, format!("waiting for it: {e}"))),
            }
        }
    }
}

fn reader<R: Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            // Capped: an error message is all we want from it.
            let _ = p.by_ref().take(64 * 1024).read_to_end(&mut buf);
        }
        buf
    })
}

/// The exit status and the first line of the helper's message, at most 200 characters,
/// with the secret it was given blanked out (a helper may echo its input).
fn describe_failure(status: ExitStatus, message: &str, secret: &str) -> String {
    // Blanked before cutting, so a cut cannot leave half a secret behind.
    let message = if secret.is_empty() {
        message.to_string()
    } else {
        message.replace(secret, "<redacted>")
    };
    let line: String = message
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect();
    if line.is_empty() {
        format!("failed ({status})")
    } else {
        format!("failed ({status}): {line}")
    }
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
