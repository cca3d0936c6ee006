//! Process primitives for the sandbox: fork, execve from prepared arrays, closing
//! inherited descriptors, signal state, and the parent's view (poll, wait, kill).

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};

pub(crate) use nix::unistd::ForkResult as Forked;

/// _exit(2): no atexit handlers, no stdio flushing of the parent's copied buffers.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and ends the process.
    unsafe { libc::_exit(code) }
}

/// fork(2). In the child only async-signal-safe work may follow when the parent has
/// other threads (signal-safety(7)); the sandbox's child code allocates nothing.
pub(crate) fn fork() -> Result<ForkResult, Errno> {
    // SAFETY: callers in this module's sibling `child` run only syscalls on
    // pre-allocated data in the child, then exec or _exit.
    unsafe { nix::unistd::fork() }
}

/// argv, envp and the candidate paths as C arrays, built before forking so the child
/// calls execve(2) without allocating (nix's execve builds its arrays on the heap).
pub(crate) struct ExecArgs {
    candidates: Vec<CString>,
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
}

impl ExecArgs {
    pub(crate) fn new(
        candidates: Vec<CString>,
        argv: Vec<CString>,
        envp: Vec<CString>,
    ) -> ExecArgs {
        let argv_ptrs = argv
            .iter()
            .map(|a| a.as_ptr())
            .chain([std::ptr::null()])
            .collect();
        let envp_ptrs = envp
            .iter()
            .map(|a| a.as_ptr())
            .chain([std::ptr::null()])
            .collect();
        ExecArgs {
            candidates,
            _argv: argv,
            _envp: envp,
            argv_ptrs,
            envp_ptrs,
        }
    }

    pub(crate) fn candidates(&self) -> &[CString] {
        &self.candidates
    }

    /// execve(2) of one path; returns only on failure.
    pub(crate) fn exec(&self, path: &CStr) -> Errno {
        // SAFETY: both arrays are NULL-terminated and point into CStrings owned by self,
        // which lives until exec replaces the process image or this returns.
        unsafe {
            libc::execve(
                path.as_ptr(),
                self.argv_ptrs.as_ptr(),
                self.envp_ptrs.as_ptr(),
            )
        };
        Errno::last()
    }
}

/// Closes every descriptor >= 3 except those in `keep` (negative ones are ignored), with
/// close_range(2) (a plain loop on kernels before 5.9) over the gaps between them,
/// without sorting or allocating.
pub(crate) fn close_fds_except(keep: &[RawFd]) {
    let mut lo: libc::c_uint = 3;
    loop {
        // The lowest kept descriptor at or above `lo` ends the next range to close.
        let next = keep
            .iter()
            .filter(|k| **k >= 0 && **k as libc::c_uint >= lo)
            .map(|k| *k as libc::c_uint)
            .min();
        let hi = next.map_or(libc::c_uint::MAX, |k| k.saturating_sub(1));
        if lo <= hi {
            close_range(lo, hi);
        }
        match next {
            Some(k) if k < libc::c_uint::MAX => lo = k + 1,
            _ => return,
        }
    }
}

fn close_range(lo: libc::c_uint, hi: libc::c_uint) {
    // SAFETY: closes descriptors only; nothing in this single-threaded child uses them.
    let r = unsafe { libc::syscall(libc::SYS_close_range, lo, hi, 0) };
    if r != 0 {
        for fd in lo..hi.min(65536) {
            // SAFETY: as above.
            unsafe { libc::close(fd as libc::c_int) };
        }
    }
}

/// dup2(2) onto 0, 1, 2 (the new descriptors are not close-on-exec).
pub(crate) fn set_stdio(stdin: RawFd, stdout: RawFd, stderr: RawFd) -> Result<(), Errno> {
    for (from, to) in [(stdin, 0), (stdout, 1), (stderr, 2)] {
        // SAFETY: dup2 on descriptors we own; no memory involved.
        Errno::result(unsafe { libc::dup2(from, to) })?;
    }
    Ok(())
}

/// The signals PID 1 waits for and forwards.
pub(crate) fn init_signals() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        s.add(sig);
    }
    s
}

pub(crate) fn block(set: &SigSet) -> Result<(), Errno> {
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(set), None)
}

/// Default dispositions and an empty mask, as a fresh process has: ignored signals
/// survive execve(2) (Rust's runtime ignores SIGPIPE), blocked ones too.
pub(crate) fn reset_signals() -> Result<(), Errno> {
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: installing SIG_DFL runs no code of ours in signal context.
        let _ = unsafe { nix::sys::signal::signal(sig, SigHandler::SigDfl) };
    }
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
}

pub(crate) fn set_umask(mode: u32) {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mode));
}

/// Writes a whole small record (≤ PIPE_BUF, so atomic: pipe(7)).
pub(crate) fn write_record(fd: RawFd, bytes: &[u8]) {
    // SAFETY: `fd` stays open for the life of this process.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let _ = nix::unistd::write(fd, bytes);
}

pub(crate) fn close(fd: RawFd) {
    // SAFETY: the caller owns `fd` and never uses it again.
    unsafe { libc::close(fd) };
}

/// Waits for any signal in `set` (sigwait(3)); the signals must be blocked.
pub(crate) fn wait_signal(set: &SigSet) -> Result<Signal, Errno> {
    set.wait()
}

pub(crate) fn send(pid: Pid, sig: Signal) {
    let _ = kill(pid, sig);
}

/// Reaps one child without blocking; `None` when none has exited.
pub(crate) fn reap_any() -> Option<WaitStatus> {
    match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::StillAlive) | Err(_) => None,
        Ok(s) => Some(s),
    }
}

/// Waits for `pid`, retrying on EINTR.
pub(crate) fn wait_for(pid: Pid) -> Result<WaitStatus, Errno> {
    loop {
        match waitpid(pid, None) {
            Err(Errno::EINTR) => continue,
            r => return r,
        }
    }
}

/// A pipe whose write end only the monitor holds: its read end reports a hang-up once
/// the monitor is gone. Init cannot compare getppid(2) (its parent is outside its PID
/// namespace, so it reads 0), so this is how it learns that the monitor died before
/// PR_SET_PDEATHSIG was in place.
pub(crate) fn lifeline() -> Result<(OwnedFd, OwnedFd), Errno> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
}

/// True when every write end of the pipe `fd` is closed; no allocation, for a child.
pub(crate) fn hung_up(fd: BorrowedFd<'_>) -> bool {
    let mut pfd = [PollFd::new(fd, PollFlags::POLLIN)];
    poll(&mut pfd, PollTimeout::ZERO).is_ok()
        && pfd[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLHUP))
}

/// Which of `fds` are readable or closed after at most `timeout_ms`.
pub(crate) fn poll_readable(fds: &[BorrowedFd<'_>], timeout_ms: u16) -> Result<Vec<bool>, Errno> {
    let mut pfds: Vec<PollFd> = fds
        .iter()
        .map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
        .collect();
    match poll(&mut pfds, PollTimeout::from(timeout_ms)) {
        Ok(_) | Err(Errno::EINTR) => {}
        Err(e) => return Err(e),
    }
    Ok(pfds
        .iter()
        .map(|p| p.revents().is_some_and(|r| !r.is_empty()))
        .collect())
}
