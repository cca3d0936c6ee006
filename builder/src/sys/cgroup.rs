//! Joining a cgroup from a sandbox child, between fork(2) and execve(2): an open(2) and
//! a write(2) over a path prepared before the fork, no allocation.

use std::ffi::CStr;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

/// Moves the calling process into the cgroup whose `cgroup.procs` file is `procs`.
/// Writing "0" names the writer itself, in cgroup v1 and v2 alike (cgroups(7)).
pub(crate) fn join_self(procs: &CStr) -> Result<(), Errno> {
    // A &CStr path is passed as it is (nix's NixPath for CStr does not copy).
    let fd = nix::fcntl::open(procs, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    match nix::unistd::write(&fd, b"0") {
        Ok(1) => Ok(()),
        Ok(_) => Err(Errno::EIO),
        Err(e) => Err(e),
    }
}
