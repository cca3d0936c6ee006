//! The RUN sandbox (DESIGN.md, builder step 4): runs one command in a prepared rootfs
//! inside new mount, PID, UTS and IPC namespaces (and network, unless shared with the
//! host), after pivot_root(2), with a fresh /proc, a minimal /dev, generated /etc files,
//! Docker's default capabilities, no_new_privs and a tiny init as PID 1.
//!
//! The parent prepares everything as data (mount plan, user, argv, environment), forks,
//! and then only streams output and waits; the children (`sys::child`) run syscalls.
//! All mounts live in the sandbox's own mount namespace, so they vanish with it: after
//! `run` returns, nothing is mounted, and the mount points it had to create are removed.
//!
//! Needs root (CAP_SYS_ADMIN for namespaces and mounts) and a kernel with mount, PID,
//! UTS, IPC and network namespaces, openat2(2) (5.6) and close_range(2) (5.9, with a
//! fallback). No user namespace, cgroup limits or seccomp filter yet. If rbuild itself
//! is SIGKILLed mid-run, the sandbox dies with it (PR_SET_PDEATHSIG) but the empty
//! mount point files `run` created in the rootfs stay: the snapshotter must drop empty
//! `/etc/{hosts,resolv.conf,hostname}` the lower layers lack.

pub mod command;
pub mod enter;
pub mod extra;
pub mod mountpoints;
pub mod mounts;
mod pipes;
mod stubs;
mod tty;
pub mod user;

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::unistd::{Gid, Pid, Uid};

use crate::sys::child::{ChildPlan, CommandPlan, RECORD, Report, Step, TtyPlan};
use crate::sys::process::{self, ExecArgs, Forked};
use pipes::{From, Pipes};

/// The network the command sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// The host's network namespace (`--network host`, the build default).
    Host,
    /// A new, empty network namespace with only `lo`, up.
    None,
}

/// One command to run.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    /// A prepared root directory (e.g. an overlay's merged dir). The sandbox writes
    /// nothing outside it, and inside it only what the command does (plus `WORKDIR`).
    pub rootfs: PathBuf,
    /// The command; `args[0]` is looked up in the environment's `PATH` inside the root.
    pub args: Vec<String>,
    /// `KEY=VALUE`; `PATH` and `HOME` are added when missing.
    pub env: Vec<String>,
    /// The working directory, created if missing.
    pub cwd: String,
    /// `USER`: "", "name", "uid", "name:group", "uid:gid".
    pub user: String,
    /// Empty means `DEFAULT_HOSTNAME`.
    pub hostname: String,
    pub network: Network,
    /// Contents of `/etc/hosts`; default: localhost lines and the hostname.
    pub hosts: Option<String>,
    /// Contents of `/etc/resolv.conf`; default: the host's.
    pub resolv_conf: Option<String>,
    /// `RUN --mount`s, mounted in this order after the rootfs set-up (see [`extra`]).
    pub mounts: Vec<extra::SandboxMount>,
    /// The root mounted read-only (`run --read-only`); /proc, /dev and `mounts` keep
    /// their own flags.
    pub readonly_rootfs: bool,
    /// The command reads rbuild's own standard input (`run -i`) instead of /dev/null.
    pub stdin: bool,
    /// A cgroup directory (made by the caller) that every process of the sandbox is in,
    /// from its first one on: what `commit` freezes a running container through.
    pub cgroup: Option<PathBuf>,
    /// A pseudo-terminal from the container's own devpts is the command's controlling
    /// terminal and its stdin, stdout and stderr (`run -t`); its output reaches the
    /// `stdout` callback (merged, as docker's), and with `stdin` rbuild's input is
    /// copied to it, in raw mode when that input is a terminal (see `tty`).
    pub tty: bool,
}

pub use extra::{MountKind, SandboxMount};

pub const DEFAULT_HOSTNAME: &str = "buildkitsandbox";

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The exit status, or 128 + signal when killed by one (as shells and Docker say).
    pub exit_code: i32,
    pub signal: Option<i32>,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.exit_code == 0 && self.signal.is_none()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("sandbox: empty command")]
    EmptyCommand,
    #[error("sandbox: a string contains a NUL byte: {0:?}")]
    Nul(String),
    #[error("sandbox rootfs {path}: {source}")]
    Rootfs {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("USER {spec:?}: {reason}")]
    User {
        spec: String,
        reason: user::UserError,
    },
    #[error("sandbox: {what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("sandbox set-up failed ({step}): {errno}")]
    Setup { step: String, errno: Errno },
    #[error("{program}: executable file not found in $PATH")]
    NotFound { program: String },
    #[error("{program}: cannot execute: {errno}")]
    Exec { program: String, errno: Errno },
    #[error("sandbox: the working directory {cwd:?} cannot be used: {errno}")]
    Workdir { cwd: String, errno: Errno },
    #[error("sandbox ended without reporting the command's status ({0})")]
    Lost(String),
    #[error("cancelled")]
    Cancelled,
}

/// Docker's default capability set (moby `oci/caps/defaults.go`), as a bit mask of
/// capability numbers from <linux/capability.h>.
pub const DEFAULT_CAPS: u64 = {
    const CHOWN: u32 = 0;
    const DAC_OVERRIDE: u32 = 1;
    const FOWNER: u32 = 3;
    const FSETID: u32 = 4;
    const KILL: u32 = 5;
    const SETGID: u32 = 6;
    const SETUID: u32 = 7;
    const SETPCAP: u32 = 8;
    const NET_BIND_SERVICE: u32 = 10;
    const NET_RAW: u32 = 13;
    const SYS_CHROOT: u32 = 18;
    const MKNOD: u32 = 27;
    const AUDIT_WRITE: u32 = 29;
    const SETFCAP: u32 = 31;
    let caps = [
        CHOWN,
        DAC_OVERRIDE,
        FOWNER,
        FSETID,
        KILL,
        SETGID,
        SETUID,
        SETPCAP,
        NET_BIND_SERVICE,
        NET_RAW,
        SYS_CHROOT,
        MKNOD,
        AUDIT_WRITE,
        SETFCAP,
    ];
    let mut m = 0u64;
    let mut i = 0;
    while i < caps.len() {
        m |= 1 << caps[i];
        i += 1;
    }
    m
};

/// Runs the command, streaming its output to the two callbacks as it comes.
pub fn run(
    spec: &SandboxSpec,
    stdout: impl FnMut(&[u8]),
    stderr: impl FnMut(&[u8]),
) -> Result<Outcome, SandboxError> {
    run_cancellable(spec, &|| false, stdout, stderr)
}

/// As `run`; once `cancel` returns true (e.g. a flag set by a SIGINT thread, or a
/// failed sibling stage) the sandbox and every process in it are killed, and it
/// returns `SandboxError::Cancelled` once they are gone and cleaned up. It is asked
/// every 50 ms.
pub fn run_cancellable(
    spec: &SandboxSpec,
    cancel: &(dyn Fn() -> bool + Sync),
    stdout: impl FnMut(&[u8]),
    stderr: impl FnMut(&[u8]),
) -> Result<Outcome, SandboxError> {
    run_observed(spec, cancel, &mut |_| {}, stdout, stderr)
}

/// As `run_cancellable`; `started` is told the host PID of the sandbox's init (its
/// PID 1) once the command has been exec'd (never when it could not be), so that a
/// container's record can name the process whose namespaces `exec` enters and to which
/// `stop` and `kill` send signals, and a detached `run` knows its command started.
pub fn run_observed(
    spec: &SandboxSpec,
    cancel: &(dyn Fn() -> bool + Sync),
    started: &mut dyn FnMut(i32),
    mut stdout: impl FnMut(&[u8]),
    mut stderr: impl FnMut(&[u8]),
) -> Result<Outcome, SandboxError> {
    if spec.args.is_empty() {
        return Err(SandboxError::EmptyCommand);
    }
    let rootfs = spec
        .rootfs
        .canonicalize()
        .map_err(|source| SandboxError::Rootfs {
            path: spec.rootfs.clone(),
            source,
        })?;
    let read_etc = |name: &str| -> Option<String> {
        let mut s = String::new();
        sys_open_in_root(&rootfs, name)?
            .read_to_string(&mut s)
            .ok()?;
        Some(s)
    };
    let user = user::resolve(
        &spec.user,
        read_etc("etc/passwd").as_deref(),
        read_etc("etc/group").as_deref(),
    )
    .map_err(|reason| SandboxError::User {
        spec: spec.user.clone(),
        reason,
    })?;
    let hostname = if spec.hostname.is_empty() {
        DEFAULT_HOSTNAME
    } else {
        &spec.hostname
    };

    // The generated files live in a private directory outside the rootfs.
    let tmp = tempfile::Builder::new()
        .prefix("rbuild-sandbox-")
        .tempdir()
        .map_err(|source| SandboxError::Io {
            what: "creating a temporary directory",
            source,
        })?;
    let resolv = match &spec.resolv_conf {
        Some(r) => r.clone(),
        None => std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
    };
    let contents = [
        (
            "hosts",
            spec.hosts
                .clone()
                .unwrap_or_else(|| mountpoints::hosts(hostname)),
        ),
        ("resolv.conf", resolv),
        ("hostname", mountpoints::hostname_file(hostname)),
    ];
    for (name, text) in &contents {
        std::fs::write(tmp.path().join(name), text).map_err(|source| SandboxError::Io {
            what: "writing the generated /etc files",
            source,
        })?;
    }
    let mut created = mountpoints::prepare(&rootfs).map_err(|source| SandboxError::Rootfs {
        path: rootfs.clone(),
        source,
    })?;
    let etc_sources: Vec<(PathBuf, String)> = created
        .usable
        .iter()
        .map(|n| (tmp.path().join(n), format!("etc/{n}")))
        .collect();
    let etc_refs: Vec<(&Path, &str)> = etc_sources
        .iter()
        .map(|(p, r)| (p.as_path(), r.as_str()))
        .collect();
    let mut mounts = mounts::plan(&rootfs, &etc_refs);
    let (targets, mut stubs) =
        extra::prepare(&rootfs, &spec.mounts).map_err(|source| SandboxError::Rootfs {
            path: rootfs.clone(),
            source,
        })?;
    mounts.extend(extra::ops(&rootfs, &spec.mounts, &targets));
    if spec.readonly_rootfs {
        mounts.push(mounts::readonly_root(&rootfs));
    }

    let result = spawn_and_wait(
        spec,
        &rootfs,
        &user,
        hostname,
        mounts.clone(),
        cancel,
        started,
        &mut stdout,
        &mut stderr,
    );
    let cleanup = stubs.remove().and(created.stubs.remove());
    let outcome = result.map_err(|e| describe(e, spec, &mounts))?;
    cleanup.map_err(|source| SandboxError::Io {
        what: "removing the mount points made in the rootfs",
        source,
    })?;
    Ok(outcome)
}

fn sys_open_in_root(root: &Path, rel: &str) -> Option<std::fs::File> {
    crate::sys::fs::open_in_root(root, rel).ok()
}

fn cstring(s: impl Into<Vec<u8>>) -> Result<CString, SandboxError> {
    CString::new(s)
        .map_err(|e| SandboxError::Nul(String::from_utf8_lossy(&e.into_vec()).into_owned()))
}

/// Errors from the children, before they are given names.
enum Raw {
    Failed(Step, Errno),
    Other(SandboxError),
}

fn describe(e: Raw, spec: &SandboxSpec, mounts: &[mounts::MountOp]) -> SandboxError {
    match e {
        Raw::Other(e) => e,
        Raw::Failed(Step::Exec, Errno::ENOENT) => SandboxError::NotFound {
            program: spec.args[0].clone(),
        },
        Raw::Failed(Step::Exec, errno) => SandboxError::Exec {
            program: spec.args[0].clone(),
            errno,
        },
        Raw::Failed(Step::Workdir, errno) => SandboxError::Workdir {
            cwd: spec.cwd.clone(),
            errno,
        },
        Raw::Failed(Step::Mount(i), errno) => SandboxError::Setup {
            step: match mounts.get(i as usize) {
                Some(op) => op.to_string(),
                None => format!("mount step {i}"),
            },
            errno,
        },
        Raw::Failed(step, errno) => SandboxError::Setup {
            step: format!("{step:?}"),
            errno,
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn spawn_and_wait(
    spec: &SandboxSpec,
    rootfs: &Path,
    user: &user::ExecUser,
    hostname: &str,
    mounts: Vec<mounts::MountOp>,
    cancel: &(dyn Fn() -> bool + Sync),
    started: &mut dyn FnMut(i32),
    stdout: &mut dyn FnMut(&[u8]),
    stderr: &mut dyn FnMut(&[u8]),
) -> Result<Outcome, Raw> {
    let io = |what| {
        move |e: Errno| {
            Raw::Other(SandboxError::Io {
                what,
                source: e.into(),
            })
        }
    };
    let env = command::final_env(&spec.env, user.home.as_deref());
    let candidates = command::exec_candidates(&spec.args[0], &env);
    let (cwd, prefixes) = command::cwd_prefixes(&spec.cwd);
    let c = |s: &str| cstring(s).map_err(Raw::Other);
    let exec = ExecArgs::new(
        candidates.iter().map(|s| c(s)).collect::<Result<_, _>>()?,
        spec.args.iter().map(|s| c(s)).collect::<Result<_, _>>()?,
        env.iter().map(|s| c(s)).collect::<Result<_, _>>()?,
    );
    let mut namespaces = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC;
    if spec.network == Network::None {
        namespaces |= CloneFlags::CLONE_NEWNET;
    }
    // With a terminal, rbuild's input reaches the command through the pty instead.
    let (mut relay, tty_end) = if spec.tty {
        let (relay, end) =
            tty::Relay::prepare(spec.stdin).map_err(io("setting up the terminal"))?;
        (Some(relay), Some(end))
    } else {
        (None, None)
    };
    let devnull = if spec.stdin && !spec.tty {
        // A close-on-exec copy: the child dups it onto its fd 0.
        std::io::stdin().as_fd().try_clone_to_owned().map_err(|e| {
            io("duplicating standard input")(Errno::from_raw(e.raw_os_error().unwrap_or(0)))
        })?
    } else {
        nix::fcntl::open(
            c"/dev/null",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(io("opening /dev/null"))?
    };
    let pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io("creating a pipe"));
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (rep_r, rep_w) = pipe()?;
    let (sync_r, sync_w) = pipe()?;
    let plan = ChildPlan {
        parent: nix::unistd::getpid(),
        namespaces,
        mounts,
        rootfs: cstring(rootfs.as_os_str().as_bytes()).map_err(Raw::Other)?,
        hostname: hostname.to_string(),
        loopback: spec.network == Network::None,
        command: CommandPlan {
            cwd_prefixes: prefixes.iter().map(|s| c(s)).collect::<Result<_, _>>()?,
            cwd: c(&cwd)?,
            uid: Uid::from_raw(user.uid),
            gid: Gid::from_raw(user.gid),
            groups: user.groups.iter().map(|g| Gid::from_raw(*g)).collect(),
            caps: DEFAULT_CAPS,
            exec,
            report: rep_w.as_raw_fd(),
        },
        stdin: devnull.as_raw_fd(),
        stdout: out_w.as_raw_fd(),
        stderr: err_w.as_raw_fd(),
        report: rep_w.as_raw_fd(),
        cgroup_procs: match &spec.cgroup {
            Some(dir) => {
                Some(cstring(dir.join("cgroup.procs").as_os_str().as_bytes()).map_err(Raw::Other)?)
            }
            None => None,
        },
        exec_sync: sync_w.as_raw_fd(),
        tty: tty_end.as_ref().map(|t| TtyPlan {
            socket: t.socket.as_raw_fd(),
            size: t.size,
        }),
    };
    let monitor = match process::fork().map_err(io("fork"))? {
        Forked::Child => crate::sys::child::monitor(&plan),
        Forked::Parent { child } => child,
    };
    drop((out_w, err_w, rep_w, sync_w, devnull, tty_end));

    let streamed = stream(
        monitor,
        cancel,
        [out_r, err_r, rep_r, sync_r],
        started,
        relay.as_mut(),
        stdout,
        stderr,
    );
    // Gives rbuild's terminal its settings back before anything is reported.
    drop(relay);
    let status = process::wait_for(monitor);
    let (reports, cancelled) = streamed.map_err(io("reading the sandbox's output"))?;
    if cancelled {
        return Err(Raw::Other(SandboxError::Cancelled));
    }
    let mut outcome = None;
    for r in &reports {
        match *r {
            Report::Failed(step, errno) => return Err(Raw::Failed(step, errno)),
            Report::Exited(code) => {
                outcome = Some(Outcome {
                    exit_code: code,
                    signal: None,
                })
            }
            Report::Signaled(sig) => {
                outcome = Some(Outcome {
                    exit_code: 128 + sig,
                    signal: Some(sig),
                })
            }
            Report::InitPid(_) => {}
        }
    }
    match (outcome, status) {
        (Some(o), _) => Ok(o),
        // Init itself was killed (`rbuild kill`, `stop`'s SIGKILL): the monitor exits
        // with 128 + its signal, and the namespace died with it.
        (None, Ok(nix::sys::wait::WaitStatus::Exited(_, code))) if code > 128 => Ok(Outcome {
            exit_code: code,
            signal: Some(code - 128),
        }),
        (None, status) => Err(Raw::Other(SandboxError::Lost(format!("{status:?}")))),
    }
}

/// Streams stdout and stderr until both close (they close when the PID namespace is
/// gone), and the terminal's output until it ends, collecting the children's reports
/// and honouring `cancel`.
fn stream(
    monitor: Pid,
    cancel: &(dyn Fn() -> bool + Sync),
    fds: [OwnedFd; 4],
    started: &mut dyn FnMut(i32),
    mut relay: Option<&mut tty::Relay>,
    stdout: &mut dyn FnMut(&[u8]),
    stderr: &mut dyn FnMut(&[u8]),
) -> Result<(Vec<Report>, bool), Errno> {
    let mut pipes = Pipes::new(fds);
    let mut report_bytes = Vec::new();
    let mut init: Option<Pid> = None;
    let mut cancelled = false;
    while pipes.any_open(relay.as_deref()) {
        if !cancelled && cancel() {
            cancelled = true;
            // SIGKILL to PID 1 ends the whole namespace; the monitor too, in case init
            // was not reported yet (it has PR_SET_PDEATHSIG, init dies with it).
            if let Some(pid) = init {
                process::send(pid, Signal::SIGKILL);
            }
            process::send(monitor, Signal::SIGKILL);
        }
        let closed = pipes.round(relay.as_deref_mut(), &mut |from, b| match from {
            From::Terminal | From::Pipe(0) => stdout(b),
            From::Pipe(1) => stderr(b),
            From::Pipe(2) => {
                report_bytes.extend_from_slice(b);
                if init.is_none()
                    && let Some(Report::InitPid(p)) = report_bytes
                        .chunks_exact(RECORD)
                        .filter_map(Report::decode)
                        .next()
                {
                    init = Some(Pid::from_raw(p));
                }
            }
            // The exec-sync pipe carries no data: only its end of file counts.
            From::Pipe(_) => {}
        })?;
        if closed.contains(&3) {
            // The command exec'd or died. A failure report was written before that:
            // take what the report pipe holds, then judge.
            pipes.drain(2, &mut |b| report_bytes.extend_from_slice(b))?;
            let reports = || report_bytes.chunks_exact(RECORD).filter_map(Report::decode);
            let failed = reports().any(|r| matches!(r, Report::Failed(..)));
            if let (false, Some(Report::InitPid(p))) = (failed, reports().next()) {
                init = Some(Pid::from_raw(p));
                started(p);
            }
        }
    }
    let reports = report_bytes
        .chunks_exact(RECORD)
        .filter_map(Report::decode)
        .collect();
    Ok((reports, cancelled))
}
