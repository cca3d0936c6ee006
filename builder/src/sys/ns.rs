//! Namespace membership and the per-namespace settings (hostname, loopback).

use nix::errno::Errno;
use nix::sched::CloneFlags;

pub(crate) fn unshare(flags: CloneFlags) -> Result<(), Errno> {
    nix::sched::unshare(flags)
}

pub(crate) fn set_hostname(name: &str) -> Result<(), Errno> {
    nix::unistd::sethostname(name)
}

/// Sets `lo` up in a fresh network namespace (netdevice(7), SIOCGIFFLAGS/SIOCSIFFLAGS),
/// so 127.0.0.1 works with `--network none`.
pub(crate) fn loopback_up() -> Result<(), Errno> {
    // SAFETY: socket(2) with constant arguments; the fd is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    let fd = Errno::result(fd)?;
    // SAFETY: ifreq is plain data, all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: `req` is a valid ifreq naming "lo"; the kernel reads and writes only it.
    let r = unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) };
    let r = Errno::result(r).and_then(|_| {
        // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
        unsafe {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        }
        // SAFETY: as above.
        Errno::result(unsafe { libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) })
    });
    // SAFETY: `fd` is ours and not used after this.
    unsafe { libc::close(fd) };
    r.map(drop)
}

/// Joins the namespace `fd` refers to (setns(2)); `kind` is its CLONE_NEW* flag, so
/// the kernel refuses a descriptor of another kind.
pub(crate) fn join(fd: std::os::fd::BorrowedFd<'_>, kind: CloneFlags) -> Result<(), Errno> {
    nix::sched::setns(fd, kind)
}
