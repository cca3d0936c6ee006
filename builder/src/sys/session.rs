//! Processes that outlive rbuild: a detached container's monitor runs in a session of
//! its own, and signals for `stop` and `kill`.

use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

/// Spawns `cmd` in a new session (setsid(2)): no controlling terminal, so neither
/// Ctrl-C nor the hang-up of the terminal that started it reach it, and a process group
/// of its own. `inherit` stays open in it (its close-on-exec flag is cleared there).
pub(crate) fn spawn_in_new_session(cmd: &mut Command, inherit: RawFd) -> io::Result<Child> {
    // SAFETY: runs between fork and exec; setsid(2) and fcntl(2) are async-signal-safe
    // and the closure allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 || libc::fcntl(inherit, libc::F_SETFD, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// Takes ownership of a descriptor our parent left open for us, after checking that it
/// is open (fcntl(2) F_GETFD), so a wrong number is an error rather than someone
/// else's file.
pub(crate) fn inherited_fd(fd: RawFd) -> io::Result<File> {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    if fd < 3 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: the descriptor is open and nothing else in this process owns it: it was
    // passed to us by number on the command line.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// kill(2): `Ok(false)` when the process does not exist.
pub(crate) fn signal(pid: i32, sig: nix::sys::signal::Signal) -> io::Result<bool> {
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig) {
        Ok(()) => Ok(true),
        Err(nix::errno::Errno::ESRCH) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Makes our standard input a pipe that nobody writes to and that never ends, for a
/// detached container run with `-i`: docker keeps such a container's input open with
/// nothing attached, so `run -di IMAGE sh` waits rather than reading end-of-file.
pub(crate) fn hold_stdin_open() -> io::Result<()> {
    let (r, w) = nix::unistd::pipe()?;
    // SAFETY: dup2(2) of a descriptor we own onto 0; no memory involved.
    if unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&r), 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // The write end lives as long as the monitor; the sandbox's children close it.
    std::mem::forget(w);
    Ok(())
}
