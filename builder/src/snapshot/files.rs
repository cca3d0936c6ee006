//! File operations the snapshotters share: copying one entry with everything a layer
//! records about it (type, content, mode, owner, xattrs, mtime, hard links), removing
//! whatever is at a path, and clamping mtimes for reproducible layers.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;

use super::SnapshotError;

/// overlayfs' private xattrs: never copied as such (the opaque one is *meaning*, handled
/// by the callers), overlayfs.rst "whiteouts and opaque directories".
const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";
pub(crate) const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

pub(crate) fn io_at(path: &Path, what: &'static str) -> impl FnOnce(io::Error) -> SnapshotError {
    let path = path.to_path_buf();
    move |source| SnapshotError::Io {
        what: format!("{what} {}", path.display()),
        source,
    }
}

fn errno_at(path: &Path, what: &'static str) -> impl FnOnce(nix::errno::Errno) -> SnapshotError {
    let f = io_at(path, what);
    move |e| f(e.into())
}

/// The copies made so far, by source (dev, ino), so that hard links stay hard links.
#[derive(Default)]
pub(crate) struct Links(HashMap<(u64, u64), PathBuf>);

/// Whether `m` is an overlay whiteout (a 0/0 character device).
pub(crate) fn is_whiteout(m: &fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

pub(crate) fn is_opaque(path: &Path) -> bool {
    matches!(xattr::get(path, OPAQUE_XATTR), Ok(Some(v)) if v == b"y")
}

/// Removes whatever is at `path` (a tree, a file, nothing).
pub(crate) fn remove_any(path: &Path) -> Result<(), SnapshotError> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_at(path, "inspecting")(e)),
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(io_at(path, "removing")),
        Ok(_) => fs::remove_file(path).map_err(io_at(path, "removing")),
    }
}

/// Copies the non-directory `src` (metadata `m`) to the new path `dst`, as a hard link
/// to an earlier copy of the same inode if there is one.
pub(crate) fn copy_leaf(
    src: &Path,
    m: &fs::Metadata,
    dst: &Path,
    links: &mut Links,
) -> Result<(), SnapshotError> {
    if m.nlink() > 1 {
        if let Some(first) = links.0.get(&(m.dev(), m.ino())) {
            return fs::hard_link(first, dst).map_err(io_at(dst, "linking"));
        }
        links.0.insert((m.dev(), m.ino()), dst.to_path_buf());
    }
    let ft = m.file_type();
    if ft.is_file() {
        // copy_file_range(2) underneath: reflinks or in-kernel copies where it can.
        fs::copy(src, dst).map_err(io_at(dst, "copying to"))?;
    } else if ft.is_symlink() {
        let target = fs::read_link(src).map_err(io_at(src, "reading the link"))?;
        std::os::unix::fs::symlink(target, dst).map_err(io_at(dst, "creating the link"))?;
    } else if ft.is_fifo() {
        nix::unistd::mkfifo(dst, Mode::from_bits_truncate(0o600))
            .map_err(errno_at(dst, "creating the fifo"))?;
    } else if ft.is_char_device() || ft.is_block_device() {
        let kind = if ft.is_char_device() {
            SFlag::S_IFCHR
        } else {
            SFlag::S_IFBLK
        };
        nix::sys::stat::mknod(dst, kind, Mode::from_bits_truncate(0o600), m.rdev())
            .map_err(errno_at(dst, "creating the device"))?;
    } else {
        // Sockets: a layer tar cannot carry one (the writer skips them too).
        return Ok(());
    }
    copy_meta(src, m, dst)
}

/// Gives `dst` the owner, mode, xattrs (but overlay's) and mtime of `src`.
pub(crate) fn copy_meta(src: &Path, m: &fs::Metadata, dst: &Path) -> Result<(), SnapshotError> {
    let symlink = m.file_type().is_symlink();
    // Owner before mode: chown(2) clears setuid/setgid.
    std::os::unix::fs::lchown(dst, Some(m.uid()), Some(m.gid()))
        .map_err(io_at(dst, "changing the owner of"))?;
    if !symlink {
        fs::set_permissions(dst, fs::Permissions::from_mode(m.mode() & 0o7777))
            .map_err(io_at(dst, "changing the mode of"))?;
    }
    let names: Vec<OsString> = match xattr::list(src) {
        Ok(names) => names.collect(),
        Err(e) if e.raw_os_error() == Some(nix::libc::ENOTSUP) => Vec::new(),
        Err(e) => return Err(io_at(src, "listing the xattrs of")(e)),
    };
    for name in names {
        if name.as_bytes().starts_with(OVERLAY_XATTR_PREFIX) {
            continue;
        }
        if let Some(v) = xattr::get(src, &name).map_err(io_at(src, "reading an xattr of"))? {
            xattr::set(dst, &name, &v).map_err(io_at(dst, "setting an xattr on"))?;
        }
    }
    set_mtime(dst, m.mtime(), m.mtime_nsec())
}

/// Gives `dst` the owner and mode of the directory `src`.
pub(crate) fn copy_owner_mode(src: &Path, dst: &Path) -> Result<(), SnapshotError> {
    let m = fs::metadata(src).map_err(io_at(src, "inspecting"))?;
    std::os::unix::fs::lchown(dst, Some(m.uid()), Some(m.gid()))
        .map_err(io_at(dst, "changing the owner of"))?;
    fs::set_permissions(dst, fs::Permissions::from_mode(m.mode() & 0o7777))
        .map_err(io_at(dst, "changing the mode of"))
}

/// Sets atime and mtime of `path` (not following a symlink).
pub(crate) fn set_mtime(path: &Path, secs: i64, nsecs: i64) -> Result<(), SnapshotError> {
    let t = TimeSpec::new(secs, nsecs);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &t,
        &t,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(errno_at(path, "setting the times of"))
}

/// Copies the directory `src` and everything in it to the new path `dst`.
pub(crate) fn copy_tree(src: &Path, dst: &Path, links: &mut Links) -> Result<(), SnapshotError> {
    let m = fs::symlink_metadata(src).map_err(io_at(src, "inspecting"))?;
    if !m.is_dir() {
        return copy_leaf(src, &m, dst, links);
    }
    fs::create_dir(dst).map_err(io_at(dst, "creating"))?;
    for entry in fs::read_dir(src).map_err(io_at(src, "listing"))? {
        let entry = entry.map_err(io_at(src, "listing"))?;
        copy_tree(&entry.path(), &dst.join(entry.file_name()), links)?;
    }
    copy_meta(src, &m, dst)
}

/// Lowers every mtime in `dir` newer than `epoch` to it (`SOURCE_DATE_EPOCH`,
/// reproducible-builds.org), the root's children included, whiteouts too. Done on the
/// layer's tree itself rather than only in the tar, so that the tree stays the truth:
/// the tar made later from it (`make_layer_blob`) has the recorded diff ID.
pub(crate) fn clamp_mtimes(dir: &Path, epoch: i64) -> Result<(), SnapshotError> {
    for entry in fs::read_dir(dir).map_err(io_at(dir, "listing"))? {
        let path = entry.map_err(io_at(dir, "listing"))?.path();
        let m = fs::symlink_metadata(&path).map_err(io_at(&path, "inspecting"))?;
        if m.is_dir() {
            // Children first: their times do not change the parent's, but be clear.
            clamp_mtimes(&path, epoch)?;
        }
        if m.mtime() > epoch {
            set_mtime(&path, epoch, 0)?;
        }
    }
    Ok(())
}
