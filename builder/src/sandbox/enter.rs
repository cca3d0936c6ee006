//! `exec`: runs one more command in a running sandbox (a container), as `docker exec`
//! does. The command joins the namespaces and the root of the sandbox's init and is set
//! up as the sandbox's own command is (`sys::child::command`: same capabilities, user
//! from the container's /etc/passwd and /etc/group, no_new_privs), but no init of ours
//! runs: it is the container's init that reaps what the command leaves behind, and the
//! container's end that kills it.
//!
//! The parent prepares everything as data and forks `sys::enter`, then streams the
//! command's output as `run` does. Nothing is mounted and no file is written on the
//! host: there is nothing to clean up but processes, and those die with rbuild
//! (PR_SET_PDEATHSIG), on cancel (killed as one process group) or with the container.

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::unistd::{Gid, Pid, Uid};

use super::pipes::{From, Pipes};
use super::{DEFAULT_CAPS, Outcome, Raw, SandboxError, command, cstring, tty, user};
use crate::sys::child::{CommandPlan, RECORD, Report, Step, TtyPlan};
use crate::sys::enter::{EnterPlan, MAX_NAMESPACES};
use crate::sys::process::{self, ExecArgs, Forked};

/// One command to run in a running sandbox.
#[derive(Debug, Clone)]
pub struct EnterSpec {
    /// The host PID of the sandbox's init (what `run_observed` reported).
    pub init_pid: i32,
    /// `args[0]` is looked up in the environment's `PATH` inside the container.
    pub args: Vec<String>,
    /// `KEY=VALUE`; `PATH` and `HOME` are added when missing.
    pub env: Vec<String>,
    /// Must exist in the container (it is not created, as runc's exec does not).
    pub cwd: String,
    /// As `USER`, resolved against the container's own /etc/passwd and /etc/group.
    pub user: String,
    /// The command reads rbuild's own standard input instead of /dev/null.
    pub stdin: bool,
    /// A pseudo-terminal from the container's devpts (`exec -t`), relayed as `run -t`'s.
    pub tty: bool,
    /// The container's cgroup directory, joined before the namespaces, so `commit`
    /// freezes what exec started along with the rest of the container.
    pub cgroup: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum EnterError {
    /// The init is gone (or the PID is no longer a sandbox's init): the container
    /// stopped before or while the command was entering it.
    #[error("the container is not running")]
    NotRunning,
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}

/// The namespaces joined, in order. The mount namespace comes last: setns(2) into it
/// changes the root. The network namespace is the host's for `--network host`, and
/// joining one's own namespace is allowed. No user or cgroup namespace: sandboxes have
/// none of their own yet.
const NAMESPACES: [(&str, CloneFlags); 5] = [
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// The name `sys::child`'s init gives itself (prctl PR_SET_NAME), as /proc shows it.
const INIT_NAME: &str = "rbuild-init";

/// How long output may stay open after the command ended: its background children may
/// hold it as long as the container runs. docker's exec waits about 2 s too.
const LINGER: Duration = Duration::from_secs(2);

/// Runs the command in the sandbox whose init is `spec.init_pid`, streaming its output
/// to the two callbacks. Once `cancel` returns true (asked every 50 ms) the command and
/// the processes it started are killed, not the container, and it returns
/// `SandboxError::Cancelled`.
pub fn run(
    spec: &EnterSpec,
    cancel: &(dyn Fn() -> bool + Sync),
    mut stdout: impl FnMut(&[u8]),
    mut stderr: impl FnMut(&[u8]),
) -> Result<Outcome, EnterError> {
    let prepared = prepare(spec)?;
    spawn_and_wait(spec, prepared, cancel, &mut stdout, &mut stderr).map_err(|e| describe(e, spec))
}

/// Starts the command in the background (`exec -d`): returns once it has been
/// executed, or with why it could not be. Its output goes to /dev/null; it lives until
/// it exits or the container stops, whatever becomes of rbuild.
pub fn start_detached(spec: &EnterSpec) -> Result<(), EnterError> {
    let prepared = prepare(spec)?;
    spawn_detached(prepared).map_err(|e| describe(e, spec))
}

/// What the children need, computed before the fork.
struct Prepared {
    cgroup_procs: Option<CString>,
    namespaces: Vec<(CString, CloneFlags)>,
    root: CString,
    cwd: CString,
    user: user::ExecUser,
    exec: ExecArgs,
}

fn prepare(spec: &EnterSpec) -> Result<Prepared, EnterError> {
    if spec.args.is_empty() {
        return Err(SandboxError::EmptyCommand.into());
    }
    let proc_dir = format!("/proc/{}", spec.init_pid);
    if !is_sandbox_init(Path::new(&proc_dir)) {
        return Err(EnterError::NotRunning);
    }
    // The container's own files, read through its init's root with every symlink
    // resolved inside it.
    let root = format!("{proc_dir}/root");
    let read_etc = |name: &str| -> Option<String> {
        let mut s = String::new();
        crate::sys::fs::open_in_root(Path::new(&root), name)
            .ok()?
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
    let env = command::final_env(&spec.env, user.home.as_deref());
    let candidates = command::exec_candidates(&spec.args[0], &env);
    let (cwd, _) = command::cwd_prefixes(&spec.cwd);
    let exec = ExecArgs::new(
        cstrings(&candidates)?,
        cstrings(&spec.args)?,
        cstrings(&env)?,
    );
    let namespaces = NAMESPACES
        .iter()
        .map(|(kind, flag)| Ok((cstring(format!("{proc_dir}/ns/{kind}"))?, *flag)))
        .collect::<Result<Vec<_>, SandboxError>>()?;
    debug_assert!(namespaces.len() <= MAX_NAMESPACES);
    let cgroup_procs = match &spec.cgroup {
        Some(dir) => Some(cstring(dir.join("cgroup.procs").as_os_str().as_bytes())?),
        None => None,
    };
    Ok(Prepared {
        cgroup_procs,
        namespaces,
        root: cstring(root)?,
        cwd: cstring(cwd)?,
        user,
        exec,
    })
}

fn cstrings(v: &[String]) -> Result<Vec<CString>, SandboxError> {
    v.iter().map(|s| cstring(s.as_str())).collect()
}

/// Whether the sandbox whose init has host PID `init_pid` still runs.
pub fn is_running(init_pid: i32) -> bool {
    is_sandbox_init(Path::new(&format!("/proc/{init_pid}")))
}

/// Whether `/proc/<pid>` is a sandbox's init: named so, and PID 1 of a PID namespace
/// other than ours (the last `NSpid` field of proc(5)'s status is the PID in the
/// process's own namespace). A recorded PID that now names some other process (the
/// container stopped and the number was reused) must never be entered.
fn is_sandbox_init(proc_dir: &Path) -> bool {
    let comm = std::fs::read_to_string(proc_dir.join("comm")).unwrap_or_default();
    let status = std::fs::read_to_string(proc_dir.join("status")).unwrap_or_default();
    let nspid: Vec<&str> = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|v| v.split_whitespace().collect())
        .unwrap_or_default();
    comm.trim_end() == INIT_NAME && nspid.len() > 1 && nspid.last() == Some(&"1")
}

/// Errors from the children, named for `exec`.
fn describe(e: Raw, spec: &EnterSpec) -> EnterError {
    let program = || spec.args[0].clone();
    EnterError::Sandbox(match e {
        Raw::Other(e) => e,
        // The init was gone before its namespaces were opened, or before the fork into
        // its PID namespace (fork(2), ENOMEM).
        Raw::Failed(Step::Enter | Step::Cgroup, Errno::ENOENT | Errno::ESRCH)
        | Raw::Failed(Step::Fork, Errno::ENOMEM) => return EnterError::NotRunning,
        Raw::Failed(Step::Exec, Errno::ENOENT) => SandboxError::NotFound { program: program() },
        Raw::Failed(Step::Exec, errno) => SandboxError::Exec {
            program: program(),
            errno,
        },
        Raw::Failed(Step::Workdir, errno) => SandboxError::Workdir {
            cwd: spec.cwd.clone(),
            errno,
        },
        Raw::Failed(step, errno) => SandboxError::Setup {
            step: format!("{step:?}"),
            errno,
        },
    })
}

fn io(what: &'static str) -> impl Fn(Errno) -> Raw {
    move |e| {
        Raw::Other(SandboxError::Io {
            what,
            source: e.into(),
        })
    }
}

fn dev_null() -> Result<OwnedFd, Raw> {
    nix::fcntl::open(
        c"/dev/null",
        OFlag::O_RDWR | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(io("opening /dev/null"))
}

fn plan(
    p: Prepared,
    detach: bool,
    stdio: [&OwnedFd; 3],
    report: &OwnedFd,
    tty: Option<&tty::ChildEnd>,
) -> EnterPlan {
    let u = &p.user;
    EnterPlan {
        parent: nix::unistd::getpid(),
        cgroup_procs: p.cgroup_procs,
        namespaces: p.namespaces,
        root: p.root,
        detach,
        stdin: stdio[0].as_raw_fd(),
        stdout: stdio[1].as_raw_fd(),
        stderr: stdio[2].as_raw_fd(),
        tty: tty.map(|t| TtyPlan {
            socket: t.socket.as_raw_fd(),
            size: t.size,
        }),
        command: CommandPlan {
            cwd_prefixes: Vec::new(),
            cwd: p.cwd,
            uid: Uid::from_raw(u.uid),
            gid: Gid::from_raw(u.gid),
            groups: u.groups.iter().map(|g| Gid::from_raw(*g)).collect(),
            caps: DEFAULT_CAPS,
            exec: p.exec,
            report: report.as_raw_fd(),
        },
    }
}

fn fork_enter(plan: &EnterPlan) -> Result<Pid, Raw> {
    match process::fork().map_err(io("fork"))? {
        Forked::Child => crate::sys::enter::enter(plan),
        Forked::Parent { child } => Ok(child),
    }
}

fn spawn_and_wait(
    spec: &EnterSpec,
    p: Prepared,
    cancel: &(dyn Fn() -> bool + Sync),
    stdout: &mut dyn FnMut(&[u8]),
    stderr: &mut dyn FnMut(&[u8]),
) -> Result<Outcome, Raw> {
    // With a terminal, rbuild's input reaches the command through the pty instead.
    let (mut terminal, tty_end) = if spec.tty {
        let (relay, end) =
            tty::Relay::prepare(spec.stdin).map_err(io("setting up the terminal"))?;
        (Some(relay), Some(end))
    } else {
        (None, None)
    };
    let stdin = if spec.stdin && !spec.tty {
        // A close-on-exec copy: the child dups it onto its fd 0.
        std::io::stdin().as_fd().try_clone_to_owned().map_err(|e| {
            io("duplicating standard input")(Errno::from_raw(e.raw_os_error().unwrap_or(0)))
        })?
    } else {
        dev_null()?
    };
    let pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io("creating a pipe"));
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (rep_r, rep_w) = pipe()?;
    let plan = plan(p, false, [&stdin, &out_w, &err_w], &rep_w, tty_end.as_ref());
    let enter = fork_enter(&plan)?;
    drop((out_w, err_w, rep_w, stdin, tty_end));
    // `enter` leads a process group that the command and its children join: killing
    // the group stops them all and leaves the container alone. `enter` itself too, in
    // case it has not made the group yet (the command dies with it).
    let group = Pid::from_raw(-enter.as_raw());
    let cancel_group = || {
        let stop = cancel();
        if stop {
            process::send(group, Signal::SIGKILL);
            process::send(enter, Signal::SIGKILL);
        }
        stop
    };
    let relayed = relay(
        &cancel_group,
        [out_r, err_r, rep_r],
        terminal.as_mut(),
        stdout,
        stderr,
    );
    // Gives rbuild's terminal its settings back before anything is reported.
    drop(terminal);
    let status = process::wait_for(enter);
    let (reports, cancelled) = relayed.map_err(io("reading the command's output"))?;
    if cancelled {
        return Err(Raw::Other(SandboxError::Cancelled));
    }
    let mut ended = None;
    for r in reports {
        match r {
            Report::Failed(step, errno) => return Err(Raw::Failed(step, errno)),
            Report::Exited(code) => ended = Some((code, None)),
            Report::Signaled(sig) => ended = Some((128 + sig, Some(sig))),
            Report::InitPid(_) => {}
        }
    }
    match ended {
        Some((exit_code, signal)) => Ok(Outcome { exit_code, signal }),
        None => Err(Raw::Other(SandboxError::Lost(format!("{status:?}")))),
    }
}

/// Relays the command's output until it closes, or until [`LINGER`] after the report
/// pipe closed (`enter` is gone, so the command has ended); collects the reports and
/// honours `cancel` (which kills). Returns the reports and whether it was cancelled.
fn relay(
    cancel: &dyn Fn() -> bool,
    fds: [OwnedFd; 3],
    mut terminal: Option<&mut tty::Relay>,
    stdout: &mut dyn FnMut(&[u8]),
    stderr: &mut dyn FnMut(&[u8]),
) -> Result<(Vec<Report>, bool), Errno> {
    let mut pipes = Pipes::new(fds);
    let mut report_bytes = Vec::new();
    let mut cancelled = false;
    let mut deadline = None;
    while pipes.any_open(terminal.as_deref()) {
        if !pipes.is_open(2)
            && Instant::now() >= *deadline.get_or_insert_with(|| Instant::now() + LINGER)
        {
            break;
        }
        if !cancelled && cancel() {
            cancelled = true;
        }
        pipes.round(terminal.as_deref_mut(), &mut |from, b| match from {
            From::Terminal | From::Pipe(0) => stdout(b),
            From::Pipe(1) => stderr(b),
            From::Pipe(_) => report_bytes.extend_from_slice(b),
        })?;
    }
    let reports = report_bytes
        .chunks_exact(RECORD)
        .filter_map(Report::decode)
        .collect();
    Ok((reports, cancelled))
}

fn spawn_detached(p: Prepared) -> Result<(), Raw> {
    let null = dev_null()?;
    let (rep_r, rep_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io("creating a pipe"))?;
    let plan = plan(p, true, [&null, &null, &null], &rep_w, None);
    let enter = fork_enter(&plan)?;
    drop((rep_w, null));
    // EOF once `enter` has exited and the command has exec'd or failed.
    let mut bytes = Vec::new();
    let read = std::fs::File::from(rep_r).read_to_end(&mut bytes);
    let status = process::wait_for(enter);
    read.map_err(|e| {
        io("reading the command's report")(Errno::from_raw(e.raw_os_error().unwrap_or(0)))
    })?;
    let mut started = false;
    for r in bytes.chunks_exact(RECORD).filter_map(Report::decode) {
        match r {
            Report::Failed(step, errno) => return Err(Raw::Failed(step, errno)),
            Report::InitPid(_) => started = true,
            Report::Exited(_) | Report::Signaled(_) => {}
        }
    }
    if started {
        Ok(())
    } else {
        Err(Raw::Other(SandboxError::Lost(format!("{status:?}"))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> EnterSpec {
        EnterSpec {
            init_pid: 0,
            args: vec!["app".into()],
            env: Vec::new(),
            cwd: "/w".into(),
            user: String::new(),
            stdin: false,
            tty: false,
            cgroup: None,
        }
    }

    #[test]
    fn only_a_sandbox_init_is_entered() {
        // Ours is no PID namespace's init; a missing PID is nothing.
        assert!(!is_sandbox_init(Path::new("/proc/self")));
        assert!(!is_sandbox_init(Path::new("/proc/0")));
        let e = prepare(&EnterSpec {
            init_pid: std::process::id() as i32,
            ..spec()
        });
        assert!(matches!(e, Err(EnterError::NotRunning)));
    }

    #[test]
    fn a_container_gone_while_entering_is_not_running() {
        for (step, errno) in [
            (Step::Enter, Errno::ENOENT),
            (Step::Enter, Errno::ESRCH),
            (Step::Fork, Errno::ENOMEM),
        ] {
            let e = describe(Raw::Failed(step, errno), &spec());
            assert!(matches!(e, EnterError::NotRunning), "{step:?}: {e}");
        }
        let e = describe(Raw::Failed(Step::Exec, Errno::ENOENT), &spec());
        assert!(matches!(
            e,
            EnterError::Sandbox(SandboxError::NotFound { .. })
        ));
        let e = describe(Raw::Failed(Step::SetNs, Errno::EPERM), &spec());
        assert!(e.to_string().contains("SetNs"), "{e}");
    }
}
