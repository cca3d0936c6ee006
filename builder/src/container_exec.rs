//! `exec`: one more command in a running container, as `docker exec`. It starts with
//! the container's environment, user and working directory (its [`RunConfig`], as
//! `run` resolved them) unless the request overrides them, and joins the container's
//! namespaces and root through the sandbox ([`crate::sandbox::enter`]).
//!
//! [`RunConfig`]: crate::store::containers::RunConfig

use crate::cgroup::ContainerCgroup;
use crate::container::{Io, process_env, set_env};
use crate::sandbox::SandboxError;
use crate::sandbox::enter::{self, EnterError, EnterSpec};
use crate::store::containers::State;
use crate::store::{Store, StoreError};

/// What the caller of `exec` asked for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The command and its arguments; never empty.
    pub command: Vec<String>,
    /// `-e` values, in order, applied over the container's environment: `K=V` sets, a
    /// bare `K` takes the caller's own value of K (or drops K), as for `run`.
    pub env: Vec<String>,
    /// `-w`; none (or empty) keeps the container's working directory.
    pub workdir: Option<String>,
    /// `-u`; none (or empty) keeps the container's user.
    pub user: Option<String>,
    /// `-i`: the command reads the caller's standard input.
    pub interactive: bool,
    /// `-d`: start the command and return; its output is discarded.
    pub detach: bool,
    /// `-t`: a pseudo-terminal, as `run -t` gives.
    pub tty: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// No such container, or the store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// docker's words (moby `errNotRunning`), with the full ID.
    #[error("Container {0} is not running")]
    NotRunning(String),
    /// docker's words (moby `errExecPaused`).
    #[error("Container {0} is paused, unpause the container before exec")]
    Paused(String),
    /// The command could not be started in the container.
    #[error("{}", start_failure(.0))]
    Start(SandboxError),
    #[error("interrupted")]
    Interrupted,
}

impl ExecError {
    /// docker's exit codes for `exec`: 1 when the daemon refuses (no such container,
    /// not running), 126 when the runtime cannot start the command (docker 20.10 says
    /// 126 for a missing command too, unlike `run`'s 127; a detached exec's start
    /// failure is a daemon error, 1), 130 when interrupted.
    pub fn exit_code(&self, detached: bool) -> u8 {
        match self {
            ExecError::Start(_) if !detached => 126,
            ExecError::Interrupted => 130,
            _ => 1,
        }
    }

    /// Whether docker reports this as the daemon's answer ("Error response from
    /// daemon: …") rather than the runtime's.
    pub fn from_daemon(&self) -> bool {
        matches!(
            self,
            ExecError::Store(_) | ExecError::NotRunning(_) | ExecError::Paused(_)
        )
    }
}

/// runc's texts for a start failure (without its "OCI runtime exec failed" wrapping),
/// errno in Go's lower-case words.
fn start_failure(e: &SandboxError) -> String {
    let errno = |e: nix::errno::Errno| e.desc().to_lowercase();
    let why = match e {
        // moby returns the user lookup error as it is.
        SandboxError::User { reason, .. } => return reason.to_string(),
        SandboxError::NotFound { program } if program.contains('/') => {
            format!("exec: {program:?}: no such file or directory")
        }
        SandboxError::NotFound { program } => {
            format!("exec: {program:?}: executable file not found in $PATH")
        }
        SandboxError::Exec { program, errno: e } => format!("exec: {program:?}: {}", errno(*e)),
        SandboxError::Workdir { cwd, errno: e } => {
            format!("chdir to cwd ({cwd:?}) failed: {}", errno(*e))
        }
        other => other.to_string(),
    };
    format!("exec failed: unable to start container process: {why}")
}

/// Runs `request` in the running container `name` (name, ID or unique ID prefix) and
/// returns the command's exit code (128 + signal when killed by one, 137 when the
/// container stopped under it); a detached command returns 0 once started.
pub fn exec(store: &Store, name: &str, request: &Request, io: Io<'_>) -> Result<i32, ExecError> {
    let container = store.container(name)?;
    let init_pid = match (container.state, container.init_pid) {
        (State::Running, Some(pid)) => pid,
        _ => return Err(ExecError::NotRunning(container.id)),
    };
    if crate::container_life::is_paused(&container) {
        return Err(ExecError::Paused(container.id));
    }
    // A container stopping as we read its config may be halfway through its clean-up
    // (its record still says running): then it is not running, whatever its files say.
    let config = match store.run_config(&container.id) {
        Ok(c) => c,
        Err(_) if !enter::is_running(init_pid) => {
            return Err(ExecError::NotRunning(container.id));
        }
        Err(e) => return Err(e.into()),
    };
    // As docker's daemon: TERM with a terminal, the container's own, then exec's -e.
    let mut env = process_env(&config.env, request.tty);
    for kv in &request.env {
        set_env(&mut env, kv);
    }
    let given = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let spec = EnterSpec {
        init_pid,
        args: request.command.clone(),
        env,
        cwd: given(&request.workdir).unwrap_or(config.working_dir),
        user: given(&request.user).unwrap_or(config.user),
        stdin: request.interactive,
        tty: request.tty,
        cgroup: ContainerCgroup::existing(&container.id).map(|cg| cg.dir),
    };
    let result = if request.detach {
        enter::start_detached(&spec).map(|()| 0)
    } else {
        enter::run(&spec, io.cancel, io.stdout, io.stderr).map(|o| o.exit_code)
    };
    result.map_err(|e| match e {
        EnterError::NotRunning => ExecError::NotRunning(container.id),
        EnterError::Sandbox(SandboxError::Cancelled) => ExecError::Interrupted,
        EnterError::Sandbox(e) => ExecError::Start(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::errno::Errno;

    #[test]
    fn start_failures_read_as_runcs() {
        let text = |e| ExecError::Start(e).to_string();
        assert_eq!(
            text(SandboxError::NotFound {
                program: "nosuch".into()
            }),
            "exec failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH"
        );
        assert_eq!(
            text(SandboxError::Exec {
                program: "/etc".into(),
                errno: Errno::EACCES
            }),
            "exec failed: unable to start container process: exec: \"/etc\": permission denied"
        );
        assert_eq!(
            text(SandboxError::Workdir {
                cwd: "/nope".into(),
                errno: Errno::ENOENT
            }),
            "exec failed: unable to start container process: chdir to cwd (\"/nope\") failed: no such file or directory"
        );
        let e = ExecError::Start(SandboxError::EmptyCommand);
        assert_eq!((e.exit_code(false), e.exit_code(true)), (126, 1));
        assert!(ExecError::NotRunning("x".into()).from_daemon());
        assert_eq!(ExecError::Interrupted.exit_code(false), 130);
    }
}
