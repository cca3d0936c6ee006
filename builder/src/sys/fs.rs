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

/// Opens the directory `rel` inside `root` as an O_PATH descriptor, every symlink and
/// `..` resolved as if `root` were `/` (`rel` empty or "." is `root` itself).
pub(crate) fn open_dir_in_root(root: &File, rel: &str) -> io::Result<std::os::fd::OwnedFd> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .mode(Mode::empty())
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let rel = if rel.is_empty() { "." } else { rel };
    openat2(root, rel, how).map_err(io::Error::from)
}
