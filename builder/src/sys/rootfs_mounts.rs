//! Executes the sandbox's mount plan (`sandbox::mounts`) and enters the new root.
//! Runs in the forked child before exec: no allocation, only syscalls.

use std::ffi::CStr;

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, mount, umount2};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, mkdir, pivot_root, symlinkat};

use crate::sandbox::mounts::{MountOp, Need};

pub(crate) fn apply(op: &MountOp) -> Result<(), Errno> {
    match op {
        MountOp::Mount {
            source,
            target,
            fstype,
            flags,
            data,
            need,
        } => match mount(
            source.as_deref(),
            target.as_c_str(),
            fstype.as_deref(),
            *flags,
            data.as_deref(),
        ) {
            Ok(()) => Ok(()),
            Err(Errno::ENOENT) if *need == Need::IfExists => Ok(()),
            Err(_) if *need == Need::BestEffort => Ok(()),
            Err(e) => Err(e),
        },
        MountOp::Mkdir { path, mode } => {
            match mkdir(path.as_c_str(), Mode::from_bits_truncate(*mode)) {
                Ok(()) | Err(Errno::EEXIST) => Ok(()),
                Err(e) => Err(e),
            }
        }
        MountOp::Touch { path } => open(
            path.as_c_str(),
            OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o666),
        )
        .map(drop),
        MountOp::Symlink { target, link } => {
            symlinkat(target.as_c_str(), nix::fcntl::AT_FDCWD, link.as_c_str())
        }
    }
}

/// Makes `root` the root directory with the old one gone: pivot_root(2) "NOTES":
/// `chdir(new_root); pivot_root(".", "."); umount2(".", MNT_DETACH)` stacks the old root
/// on the new one and then detaches it, with no put_old directory inside the rootfs.
pub(crate) fn pivot_into(root: &CStr) -> Result<(), Errno> {
    chdir(root)?;
    pivot_root(c".", c".")?;
    umount2(c".", MntFlags::MNT_DETACH)?;
    chdir(c"/")
}
