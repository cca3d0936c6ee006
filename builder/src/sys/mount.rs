//! mount(2) and umount2(2), for mounts described as data ([`Mount`]) by plain code
//! elsewhere — the snapshotter's overlay options are built and unit-tested in
//! `snapshot::overlay` without root; this file only executes them (containerd keeps the
//! same split: `plugins/snapshots/overlay/overlay.go::mounts()` computes, and
//! `core/mount/mount_linux.go` mounts).

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};

/// One mount, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    pub fstype: String,
    pub source: String,
    pub target: PathBuf,
    pub flags: MsFlags,
    /// The file-system-specific options (the `data` argument of mount(2)).
    pub data: String,
}

/// The kernel copies `data` into one page (mount(2): "the data argument is interpreted by
/// the different filesystems"; fs/namespace.c `copy_mount_options` copies at most
/// PAGE_SIZE). 4096 is the smallest page size Linux runs with; one byte is the NUL.
pub(crate) const MAX_DATA_LEN: usize = 4095;

/// Mounts `m`; relative paths in its data resolve against this process's cwd.
pub(crate) fn mount(m: &Mount) -> Result<(), Errno> {
    nix::mount::mount(
        Some(m.source.as_str()),
        &m.target,
        Some(m.fstype.as_str()),
        m.flags,
        Some(m.data.as_str()),
    )
}

/// Mounts `m` with relative paths in its data resolved against `dir`.
///
/// This is how overlay mounts with more lower layers than fit a page are made (containerd
/// `core/mount/mount_linux.go::mountAt`, moby overlay2's `mountFrom`): the option string
/// names the layers by short relative paths. They chdir in a forked helper, because the
/// cwd is per process; here a short-lived thread first leaves the process's shared
/// `fs_struct` (unshare(2) `CLONE_FS`: "Reverse the effect of the clone(2) CLONE_FS flag …
/// calls to chdir(2) … by one thread do not affect the others"), so its chdir cannot
/// disturb any other thread of a build running steps in parallel.
pub(crate) fn mount_from(dir: &Path, m: &Mount) -> Result<(), Errno> {
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS)?;
            nix::unistd::chdir(dir)?;
            mount(m)
        })
        .join()
        .unwrap_or(Err(Errno::EINTR))
    })
}

/// Unmounts `target`; fails (EBUSY) while anything still uses it.
pub(crate) fn unmount(target: &Path) -> Result<(), Errno> {
    nix::mount::umount2(target, MntFlags::empty())
}

/// Detaches `target` now; the kernel frees the mount once nothing uses it (umount2(2)
/// `MNT_DETACH`). The last resort of cleanup, when something still holds the mount.
pub(crate) fn detach(target: &Path) -> Result<(), Errno> {
    nix::mount::umount2(target, MntFlags::MNT_DETACH)
}
