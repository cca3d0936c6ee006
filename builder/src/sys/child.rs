//! The three programs of a sandbox run, between fork(2) and execve(2):
//!
//! 1. **monitor** (child of rbuild): dies with rbuild (PR_SET_PDEATHSIG), leaves the
//!    terminal's session, unshares the namespaces and forks init; reports init's pid
//!    so rbuild can kill the whole PID namespace, then waits for it.
//! 2. **init** (PID 1 of the new PID namespace): mounts, sets the hostname, pivots into
//!    the rootfs, forks the command, then reaps zombies and forwards signals until the
//!    command exits and exits itself, which makes the kernel kill every process left in
//!    the namespace (pid_namespaces(7)).
//! 3. **command**: working directory, capabilities, groups, ids, no_new_privs, execve.
//!    `exec` runs the same program in a running container (`sys::enter`).
//!
//! With a terminal (`tty`), init allocates a pty from the container's devpts after
//! pivot_root and sends rbuild the master; the command takes the slave as its
//! controlling terminal and standard streams (`sys::pty`).
//!
//! rbuild may be multi-threaded, so everything here is syscalls over data prepared
//! before the fork: no allocation, no locks (signal-safety(7)). Failures are reported
//! as fixed-size records on the `report` pipe and end the process.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, RawFd};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::prctl;
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::{Gid, Pid, Uid, chdir, getppid, mkdir, setgroups, setresgid, setresuid, setsid};

use super::process::{self, ExecArgs, Forked};
use super::pty::{self, WinSize};
use super::{caps, cgroup, ns, rootfs_mounts};
use crate::sandbox::mounts::MountOp;

/// Everything the children need, prepared by the parent.
pub(crate) struct ChildPlan {
    pub parent: Pid,
    pub namespaces: CloneFlags,
    pub mounts: Vec<MountOp>,
    pub rootfs: CString,
    pub hostname: String,
    pub loopback: bool,
    pub command: CommandPlan,
    pub stdin: RawFd,
    pub stdout: RawFd,
    pub stderr: RawFd,
    pub report: RawFd,
    /// The container's cgroup (its `cgroup.procs`), joined by the monitor before init
    /// exists, so every process of the container is in it from the start.
    pub cgroup_procs: Option<CString>,
    /// Write end of a close-on-exec pipe that only the command keeps: its read end
    /// reports end-of-file once the command has exec'd (or died), so the parent knows
    /// the container started and is not left waiting for the command to end.
    pub exec_sync: RawFd,
    pub tty: Option<TtyPlan>,
}

/// What the command program needs, whether it starts a container (`run`) or joins a
/// running one (`exec`), so both set up their process the same way.
pub(crate) struct CommandPlan {
    /// Made with mkdir before the chdir (run's WORKDIR); empty for exec, which, as
    /// runc, fails on a missing directory instead.
    pub cwd_prefixes: Vec<CString>,
    pub cwd: CString,
    pub uid: Uid,
    pub gid: Gid,
    pub groups: Vec<Gid>,
    pub caps: u64,
    pub exec: ExecArgs,
    pub report: RawFd,
}

/// `SandboxSpec::tty`: the socket init sends the pty's master over, and its first size.
pub(crate) struct TtyPlan {
    pub socket: RawFd,
    pub size: WinSize,
}

/// Where a child failed; mount plan steps are `Mount(index)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Stdio,
    Unshare,
    Fork,
    Mount(u32),
    Hostname,
    Loopback,
    PivotRoot,
    Signals,
    Workdir,
    Capabilities,
    Groups,
    SetGid,
    SetUid,
    NoNewPrivs,
    Exec,
    Cgroup,
    /// exec: opening the running container's namespaces and root.
    Enter,
    /// exec: setns(2) into one of them.
    SetNs,
    /// exec: fchdir(2) and chroot(2) into the container's root.
    Chroot,
    /// run -t: the container's pseudo-terminal.
    Terminal,
}

impl Step {
    fn code(self) -> u32 {
        match self {
            Step::Stdio => 1,
            Step::Unshare => 2,
            Step::Fork => 3,
            Step::Hostname => 4,
            Step::Loopback => 5,
            Step::PivotRoot => 6,
            Step::Signals => 7,
            Step::Workdir => 8,
            Step::Capabilities => 9,
            Step::Groups => 10,
            Step::SetGid => 11,
            Step::SetUid => 12,
            Step::NoNewPrivs => 13,
            Step::Exec => 14,
            Step::Cgroup => 15,
            Step::Terminal => 16,
            Step::Enter => 20,
            Step::SetNs => 21,
            Step::Chroot => 22,
            Step::Mount(i) => 1000 + i,
        }
    }

    fn from_code(c: u32) -> Option<Step> {
        Some(match c {
            1 => Step::Stdio,
            2 => Step::Unshare,
            3 => Step::Fork,
            4 => Step::Hostname,
            5 => Step::Loopback,
            6 => Step::PivotRoot,
            7 => Step::Signals,
            8 => Step::Workdir,
            9 => Step::Capabilities,
            10 => Step::Groups,
            11 => Step::SetGid,
            12 => Step::SetUid,
            13 => Step::NoNewPrivs,
            14 => Step::Exec,
            15 => Step::Cgroup,
            16 => Step::Terminal,
            20 => Step::Enter,
            21 => Step::SetNs,
            22 => Step::Chroot,
            c if c >= 1000 => Step::Mount(c - 1000),
            _ => return None,
        })
    }
}

/// What the children tell the parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Report {
    InitPid(i32),
    Failed(Step, Errno),
    Exited(i32),
    Signaled(i32),
}

pub(crate) const RECORD: usize = 12;

impl Report {
    pub(crate) fn encode(self) -> [u8; RECORD] {
        let (tag, a, b): (u32, u32, i32) = match self {
            Report::InitPid(p) => (1, 0, p),
            Report::Failed(s, e) => (2, s.code(), e as i32),
            Report::Exited(c) => (3, 0, c),
            Report::Signaled(s) => (4, 0, s),
        };
        let mut out = [0u8; RECORD];
        out[..4].copy_from_slice(&tag.to_ne_bytes());
        out[4..8].copy_from_slice(&a.to_ne_bytes());
        out[8..].copy_from_slice(&b.to_ne_bytes());
        out
    }

    pub(crate) fn decode(rec: &[u8]) -> Option<Report> {
        let tag = u32::from_ne_bytes(rec.get(..4)?.try_into().ok()?);
        let a = u32::from_ne_bytes(rec.get(4..8)?.try_into().ok()?);
        let b = i32::from_ne_bytes(rec.get(8..12)?.try_into().ok()?);
        Some(match tag {
            1 => Report::InitPid(b),
            2 => Report::Failed(Step::from_code(a)?, Errno::from_raw(b)),
            3 => Report::Exited(b),
            4 => Report::Signaled(b),
            _ => return None,
        })
    }
}

/// Exit status of a child that failed before exec (as a shell's "cannot execute").
const FAILED: i32 = 127;

fn fail(p: &ChildPlan, step: Step, e: Errno) -> ! {
    fail_to(p.report, step, e)
}

/// Reports the failed step on `report` and ends the process.
pub(crate) fn fail_to(report: RawFd, step: Step, e: Errno) -> ! {
    process::write_record(report, &Report::Failed(step, e).encode());
    process::exit_now(FAILED)
}

pub(crate) fn status_code(s: WaitStatus) -> i32 {
    match s {
        WaitStatus::Exited(_, c) => c,
        WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
        _ => FAILED,
    }
}

/// Program 1; runs in the child of `fork()` in the parent and never returns.
pub(crate) fn monitor(p: &ChildPlan) -> ! {
    // PR_SET_PDEATHSIG, then check the parent did not die before it was set (prctl(2)).
    if prctl::set_pdeathsig(Signal::SIGKILL).is_err() || getppid() != p.parent {
        process::exit_now(FAILED);
    }
    if let Err(e) = process::set_stdio(p.stdin, p.stdout, p.stderr) {
        fail(p, Step::Stdio, e);
    }
    // Nothing of rbuild's is inherited: descriptors other threads opened without
    // O_CLOEXEC included. The report pipe and the tty socket are close-on-exec.
    process::close_fds_except(&[
        p.report,
        p.exec_sync,
        p.tty.as_ref().map_or(-1, |t| t.socket),
    ]);
    // A session of its own: Ctrl-C on rbuild's terminal reaches rbuild, which decides.
    let _ = setsid();
    if let Some(procs) = &p.cgroup_procs
        && let Err(e) = cgroup::join_self(procs)
    {
        fail(p, Step::Cgroup, e);
    }
    if let Err(e) = ns::unshare(p.namespaces) {
        fail(p, Step::Unshare, e);
    }
    let (alive_r, alive_w) = match process::lifeline() {
        Ok(pair) => pair,
        Err(e) => fail(p, Step::Fork, e),
    };
    match process::fork() {
        Err(e) => fail(p, Step::Fork, e),
        Ok(Forked::Child) => {
            drop(alive_w);
            init(p, alive_r.as_fd())
        }
        Ok(Forked::Parent { child }) => {
            // The pid first: once exec_sync reads end-of-file, it is in the pipe.
            process::write_record(p.report, &Report::InitPid(child.as_raw()).encode());
            process::close(p.exec_sync);
            process::close(p.report);
            match process::wait_for(child) {
                Ok(s) => process::exit_now(status_code(s)),
                Err(_) => process::exit_now(FAILED),
            }
        }
    }
}

/// Program 2: PID 1. `monitor_alive` hangs up once the monitor is gone.
fn init(p: &ChildPlan, monitor_alive: BorrowedFd<'_>) -> ! {
    // Dies with the monitor, which dies with rbuild; if the monitor died before the
    // signal was armed, nothing would kill this process, so check, as prctl(2) advises.
    if prctl::set_pdeathsig(Signal::SIGKILL).is_err() || process::hung_up(monitor_alive) {
        process::exit_now(FAILED);
    }
    let _ = prctl::set_name(c"rbuild-init");
    // Not dumpable: the command, though root, cannot open /proc/1/fd or ptrace us
    // (proc(5), /proc/pid/fd; ptrace(2) "access mode checking").
    let _ = prctl::set_dumpable(false);
    process::set_umask(0);
    for (i, op) in p.mounts.iter().enumerate() {
        if let Err(e) = rootfs_mounts::apply(op) {
            fail(p, Step::Mount(i as u32), e);
        }
    }
    if let Err(e) = ns::set_hostname(&p.hostname) {
        fail(p, Step::Hostname, e);
    }
    if p.loopback
        && let Err(e) = ns::loopback_up()
    {
        fail(p, Step::Loopback, e);
    }
    if let Err(e) = rootfs_mounts::pivot_into(&p.rootfs) {
        fail(p, Step::PivotRoot, e);
    }
    let signals = process::init_signals();
    if let Err(e) = process::block(&signals) {
        fail(p, Step::Signals, e);
    }
    // The pty comes from the container's /dev/ptmx, so only now, inside the new root.
    let slave = p.tty.as_ref().map(|t| {
        pty::open_in_container(t.socket, t.size, p.command.uid)
            .unwrap_or_else(|e| fail(p, Step::Terminal, e))
    });
    let child = match process::fork() {
        Err(e) => fail(p, Step::Fork, e),
        Ok(Forked::Child) => command(&p.command, slave),
        Ok(Forked::Parent { child }) => {
            process::close(p.exec_sync);
            child
        }
    };
    // Only the command's side holds the slave, so rbuild's master reads EOF (EIO) once
    // every process in the container that has it open is gone.
    if let Some(s) = slave {
        process::close(s);
    }
    loop {
        let sig = match process::wait_signal(&signals) {
            Ok(s) => s,
            Err(_) => continue,
        };
        if sig != Signal::SIGCHLD {
            process::send(child, sig);
            continue;
        }
        // Reap everything that exited: orphans are reparented to us (pid_namespaces(7)).
        while let Some(status) = process::reap_any() {
            let report = match status {
                WaitStatus::Exited(pid, c) if pid == child => Report::Exited(c),
                WaitStatus::Signaled(pid, s, _) if pid == child => Report::Signaled(s as i32),
                _ => continue,
            };
            process::write_record(p.report, &report.encode());
            process::exit_now(status_code(status));
        }
    }
}

/// Program 3: becomes the command.
/// `tty`: the pty's slave, made its controlling terminal and standard streams.
pub(crate) fn command(p: &CommandPlan, tty: Option<RawFd>) -> ! {
    if let Some(slave) = tty
        && let Err(e) = pty::attach(slave)
    {
        fail_to(p.report, Step::Terminal, e);
    }
    if let Err(e) = process::reset_signals() {
        fail_to(p.report, Step::Signals, e);
    }
    process::set_umask(0o022);
    // WORKDIR is created if missing, as Docker does, inside the new root; only now,
    // with no host descriptor left, so /proc/self/fd/N leads nowhere.
    for dir in &p.cwd_prefixes {
        match mkdir(
            dir.as_c_str(),
            nix::sys::stat::Mode::from_bits_truncate(0o755),
        ) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => fail_to(p.report, Step::Workdir, e),
        }
    }
    if let Err(e) = chdir(p.cwd.as_c_str()) {
        fail_to(p.report, Step::Workdir, e);
    }
    // Bounding set first (needs CAP_SETPCAP), then permitted/effective/inheritable,
    // while still uid 0; setresuid(2) to a non-zero uid then clears permitted and
    // effective (capabilities(7), "Effect of user ID changes on capabilities").
    if let Err(e) = caps::drop_bounding_except(p.caps).and_then(|()| caps::set_process_caps(p.caps))
    {
        fail_to(p.report, Step::Capabilities, e);
    }
    if let Err(e) = setgroups(&p.groups) {
        fail_to(p.report, Step::Groups, e);
    }
    if let Err(e) = setresgid(p.gid, p.gid, p.gid) {
        fail_to(p.report, Step::SetGid, e);
    }
    if let Err(e) = setresuid(p.uid, p.uid, p.uid) {
        fail_to(p.report, Step::SetUid, e);
    }
    if let Err(e) = prctl::set_no_new_privs() {
        fail_to(p.report, Step::NoNewPrivs, e);
    }
    // execvp(3)'s walk: ENOENT/ENOTDIR try the next, EACCES is remembered.
    let mut err = Errno::ENOENT;
    for path in p.exec.candidates() {
        match p.exec.exec(path) {
            Errno::ENOENT | Errno::ENOTDIR => {}
            Errno::EACCES => err = Errno::EACCES,
            e => fail_to(p.report, Step::Exec, e),
        }
    }
    fail_to(p.report, Step::Exec, err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip() {
        for r in [
            Report::InitPid(4242),
            Report::Failed(Step::Mount(17), Errno::EPERM),
            Report::Failed(Step::Exec, Errno::ENOENT),
            Report::Failed(Step::SetNs, Errno::EINVAL),
            Report::Failed(Step::Terminal, Errno::ENOTTY),
            Report::Exited(3),
            Report::Signaled(9),
        ] {
            assert_eq!(Report::decode(&r.encode()), Some(r));
        }
        assert_eq!(Report::decode(&[0; RECORD]), None);
    }
}
