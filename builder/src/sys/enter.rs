//! The two programs of `exec`, between fork(2) and execve(2): they join a running
//! container instead of making one (the first half of what runc's `nsenter` does).
//!
//! 1. **enter** (child of rbuild): dies with rbuild (PR_SET_PDEATHSIG), leaves the
//!    terminal's session, opens the container init's namespaces and root, joins them
//!    with setns(2) (mount namespace last) and chroots into the root, so the command
//!    sees the container's files and not the host's. setns(2) into a PID namespace
//!    applies to children only, so it forks the command, reports the command's host
//!    PID and waits for it, reporting how it ended (there is no init of ours here: the
//!    container's init reaps what the command leaves behind).
//! 2. **command**: `child::command`, as for `run`: working directory, capabilities,
//!    groups, ids, no_new_privs, execve. It dies with `enter` (and so with rbuild)
//!    unless detached, and with the container: when the container's init exits, the
//!    kernel kills every process in its PID namespace (pid_namespaces(7)).
//!
//! With a terminal (`exec -t`), `enter` opens a pty from the container's own
//! /dev/ptmx once inside its root, sends rbuild the master and gives the command the
//! slave, as init does for `run -t` (`sys::pty`).
//!
//! If the container's init is gone before its namespaces are opened, the open fails
//! (ENOENT, ESRCH); if it goes after, fork(2) into its PID namespace fails with ENOMEM
//! ("a PID namespace whose init process has terminated"); if it goes after the fork,
//! the command is killed. All three end in a report, never a wait.
//!
//! Same rules as `child`: syscalls over data prepared before the fork, no allocation.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd, RawFd};

use nix::fcntl::{OFlag, open};
use nix::sched::CloneFlags;
use nix::sys::prctl;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::unistd::{Pid, chroot, fchdir, getppid, setsid};

use super::child::{CommandPlan, Report, Step, TtyPlan, command, fail_to, status_code};
use super::process::{self, Forked};
use super::{cgroup, ns, pty};

/// Exit status of `enter` when it failed before the command ran.
const FAILED: i32 = 127;

/// Everything `enter` needs, prepared by the parent.
pub(crate) struct EnterPlan {
    pub parent: Pid,
    /// The container's `cgroup.procs`, joined first (a host path: it is out of reach
    /// once the container's root is ours).
    pub cgroup_procs: Option<CString>,
    /// `/proc/<init>/ns/<kind>` and its flag, in the order they are joined.
    pub namespaces: Vec<(CString, CloneFlags)>,
    /// `/proc/<init>/root`: the container's root as its init sees it.
    pub root: CString,
    /// Started in the background: the command does not die with `enter`, which reports
    /// the command's PID and exits without waiting.
    pub detach: bool,
    pub stdin: RawFd,
    pub stdout: RawFd,
    pub stderr: RawFd,
    /// `exec -t`: the socket the pty's master goes to rbuild over, and its first size.
    pub tty: Option<TtyPlan>,
    /// `command.report` is the report pipe, close-on-exec: it reaches EOF once the
    /// command has exec'd (or failed) and `enter` is done.
    pub command: CommandPlan,
}

/// The most namespaces joined; the plan's list is checked against it before the fork.
pub(crate) const MAX_NAMESPACES: usize = 8;

/// Program 1; runs in the child of `fork()` in the parent and never returns.
pub(crate) fn enter(p: &EnterPlan) -> ! {
    let report = p.command.report;
    if prctl::set_pdeathsig(Signal::SIGKILL).is_err() || getppid() != p.parent {
        process::exit_now(FAILED);
    }
    // Not dumpable, so that processes already in the container (root there, but without
    // CAP_SYS_PTRACE) cannot ptrace or open /proc/<pid>/fd of this process or, after
    // the fork, of the command before its execve(2) (which makes it dumpable again).
    let _ = prctl::set_dumpable(false);
    if let Err(e) = process::set_stdio(p.stdin, p.stdout, p.stderr) {
        fail_to(report, Step::Stdio, e);
    }
    process::close_fds_except(&[report, p.tty.as_ref().map_or(-1, |t| t.socket)]);
    // A session (and process group) of its own: Ctrl-C on rbuild's terminal reaches
    // rbuild only, and rbuild can kill the command and its children as one group.
    let _ = setsid();
    if let Some(procs) = &p.cgroup_procs
        && let Err(e) = cgroup::join_self(procs)
    {
        fail_to(report, Step::Cgroup, e);
    }
    // Everything is opened before anything is joined: once in the container's mount
    // namespace, /proc is the container's.
    let mut fds: [Option<OwnedFd>; MAX_NAMESPACES] = Default::default();
    for (slot, (path, _)) in fds.iter_mut().zip(&p.namespaces) {
        match open(
            path.as_c_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => *slot = Some(fd),
            Err(e) => fail_to(report, Step::Enter, e),
        }
    }
    let root = match open(
        p.root.as_c_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) => fail_to(report, Step::Enter, e),
    };
    for (fd, (_, kind)) in fds.iter().zip(&p.namespaces) {
        if let Some(fd) = fd
            && let Err(e) = ns::join(fd.as_fd(), *kind)
        {
            fail_to(report, Step::SetNs, e);
        }
    }
    drop(fds);
    // setns(2) into a mount namespace sets the root to that namespace's root mount, not
    // to the directory the container pivoted into; the init's root is the container's.
    if let Err(e) = fchdir(&root).and_then(|()| chroot(c".")) {
        fail_to(report, Step::Chroot, e);
    }
    drop(root);
    // The pty comes from the container's own /dev/ptmx, so only now, inside its root.
    let slave = p.tty.as_ref().map(|t| {
        pty::open_in_container(t.socket, t.size, p.command.uid)
            .unwrap_or_else(|e| fail_to(report, Step::Terminal, e))
    });
    let (alive_r, alive_w) = match process::lifeline() {
        Ok(pair) => pair,
        Err(e) => fail_to(report, Step::Fork, e),
    };
    match process::fork() {
        Err(e) => fail_to(report, Step::Fork, e),
        Ok(Forked::Child) => {
            drop(alive_w);
            // Dies with `enter`, unless detached; getppid(2) reads 0 here (the parent
            // is outside this PID namespace), so the lifeline tells whether `enter`
            // died before the signal was armed.
            if !p.detach
                && (prctl::set_pdeathsig(Signal::SIGKILL).is_err()
                    || process::hung_up(alive_r.as_fd()))
            {
                process::exit_now(FAILED);
            }
            command(&p.command, slave)
        }
        Ok(Forked::Parent { child }) => {
            drop(alive_r);
            // Only the command holds the slave: rbuild's master reads EOF (EIO) once
            // the command and whatever it started with the terminal are gone.
            if let Some(s) = slave {
                process::close(s);
            }
            process::write_record(report, &Report::InitPid(child.as_raw()).encode());
            if p.detach {
                process::exit_now(0);
            }
            let code = match process::wait_for(child) {
                Ok(status) => {
                    let record = match status {
                        nix::sys::wait::WaitStatus::Signaled(_, s, _) => Report::Signaled(s as i32),
                        _ => Report::Exited(status_code(status)),
                    };
                    process::write_record(report, &record.encode());
                    status_code(status)
                }
                Err(_) => FAILED,
            };
            process::exit_now(code)
        }
    }
}
