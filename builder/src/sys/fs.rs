//! Path operations the parent does inside a rootfs it does not trust: symlinks and
//! `..` resolve as if the rootfs were `/` (openat2(2), RESOLVE_IN_ROOT).

use std::fs::File;
use std::io;
use std::path::Path;

use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::Mode;

/// Opens `rel` (e.g. "etc/passwd") for reading inside `root`.
pub(crate) fn open_in_root(root: &Path, rel: &str) -> io::Result<File> {
    let dir = File::open(root)?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC)
        .mode(Mode::empty())
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(&dir, rel, how).map_err(io::Error::from)?;
    Ok(File::from(fd))
}
