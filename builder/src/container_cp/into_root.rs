//! Host files written into a container's root that its processes may be changing
//! (`cp SRC CONTAINER:DEST`): every entry is made relative to a directory descriptor
//! with the *at(2) calls, never following a symlink (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW),
//! and every directory is opened before anything is put in it, so that a directory
//! swapped for a symlink makes the copy fail; nothing is ever written outside the root.
//!
//! Docker's rules: a file replaces a file or symlink of the same name, a directory is
//! merged into one already there, and nothing replaces a directory with a
//! non-directory. The copies are owned by the container's root (0:0) unless `archive`
//! keeps the host's owners (`-a`); modes and modification times are the host's.

use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};

use super::CpError;

fn failed(what: &str, path: &Path) -> impl FnOnce(Errno) -> CpError {
    let what = format!("{what} {}", path.display());
    move |e| CpError::Io {
        what,
        source: io::Error::from(e),
    }
}

/// Writes the host entry `src` as `name` in the directory open as `dir`.
pub(super) fn put(
    dir: &OwnedFd,
    name: &std::ffi::OsStr,
    src: &Path,
    shown: &Path,
    archive: bool,
    cancel: &dyn Fn() -> bool,
) -> Result<(), CpError> {
    if cancel() {
        return Err(CpError::Refused("interrupted".into()));
    }
    let meta = fs::symlink_metadata(src).map_err(|source| CpError::Io {
        what: format!("reading {}", src.display()),
        source,
    })?;
    let existing = nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).ok();
    let existing_dir = existing
        .is_some_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR);
    let ft = meta.file_type();
    if ft.is_dir() {
        if existing.is_some() && !existing_dir {
            return Err(CpError::Refused(format!(
                "cannot overwrite the non-directory {} with a directory",
                shown.display()
            )));
        }
        if existing.is_none() {
            nix::sys::stat::mkdirat(dir, name, Mode::from_bits_truncate(0o700))
                .map_err(failed("creating", shown))?;
        }
        let sub = nix::fcntl::openat(
            dir,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(failed("opening", shown))?;
        let mut names: Vec<_> = fs::read_dir(src)
            .and_then(|rd| {
                rd.map(|e| e.map(|e| e.file_name()))
                    .collect::<io::Result<Vec<_>>>()
            })
            .map_err(|source| CpError::Io {
                what: format!("listing {}", src.display()),
                source,
            })?;
        names.sort();
        for n in names {
            put(&sub, &n, &src.join(&n), &shown.join(&n), archive, cancel)?;
        }
        // Last, so that what was put in it does not change its time.
        return set_meta(&sub, None, &meta, archive, shown);
    }
    if existing_dir {
        return Err(CpError::Refused(format!(
            "cannot overwrite the directory {} with a non-directory",
            shown.display()
        )));
    }
    if existing.is_some() {
        nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir)
            .map_err(failed("replacing", shown))?;
    }
    if ft.is_symlink() {
        let target = fs::read_link(src).map_err(|source| CpError::Io {
            what: format!("reading the link {}", src.display()),
            source,
        })?;
        nix::unistd::symlinkat(target.as_path(), dir, name)
            .map_err(failed("creating the link", shown))?;
        return set_meta(dir, Some(name), &meta, archive, shown);
    }
    if !ft.is_file() {
        return Err(CpError::Refused(format!(
            "{}: only files, directories and symbolic links can be copied in",
            src.display()
        )));
    }
    let mut from = fs::File::open(src).map_err(|source| CpError::Io {
        what: format!("opening {}", src.display()),
        source,
    })?;
    let fd = nix::fcntl::openat(
        dir,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(failed("creating", shown))?;
    let mut to = fs::File::from(fd);
    io::copy(&mut from, &mut to).map_err(|source| CpError::Io {
        what: format!("writing {}", shown.display()),
        source,
    })?;
    set_meta(&OwnedFd::from(to), None, &meta, archive, shown)
}

/// Owner, mode and times of the entry (the descriptor's own file, or `name` in it for
/// a symlink, whose mode Linux ignores).
fn set_meta(
    fd: &OwnedFd,
    name: Option<&std::ffi::OsStr>,
    meta: &fs::Metadata,
    archive: bool,
    shown: &Path,
) -> Result<(), CpError> {
    let (uid, gid) = if archive {
        (meta.uid(), meta.gid())
    } else {
        (0, 0)
    };
    let owner = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
    let times = (
        TimeSpec::new(meta.atime(), meta.atime_nsec()),
        TimeSpec::new(meta.mtime(), meta.mtime_nsec()),
    );
    match name {
        Some(name) => {
            nix::unistd::fchownat(fd, name, owner.0, owner.1, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(failed("changing the owner of", shown))?;
            nix::sys::stat::utimensat(
                fd,
                name,
                &times.0,
                &times.1,
                UtimensatFlags::NoFollowSymlink,
            )
            .map_err(failed("setting the time of", shown))?;
        }
        None => {
            nix::unistd::fchown(fd.as_fd(), owner.0, owner.1)
                .map_err(failed("changing the owner of", shown))?;
            // After the owner: chown(2) clears set-id bits.
            let mode = Mode::from_bits_truncate(meta.permissions().mode() & 0o7777);
            nix::sys::stat::fchmod(fd.as_fd(), mode)
                .map_err(failed("setting the mode of", shown))?;
            nix::sys::stat::futimens(fd.as_fd(), &times.0, &times.1)
                .map_err(failed("setting the time of", shown))?;
        }
    }
    Ok(())
}
