//! Copying a container's upper dir into a scratch dir the store gave out, as it is in
//! overlay's format (whiteouts as 0/0 character devices, `trusted.overlay.opaque=y`
//! on opaque directories), so that `Store::add_layer_dir` commits it exactly as it
//! commits a RUN step's upper dir (`commit`), and `export` stacks it on the image's
//! layers as one more. The container's own upper dir stays as it is: the container
//! may run again.
//!
//! The source is read through descriptors only: each directory is opened relative to
//! its parent with O_NOFOLLOW|O_DIRECTORY, each entry is lstat'ed and opened relative to
//! its directory with O_NOFOLLOW, and a file's inode is checked against what lstat said.
//! So a running container (`--pause=false`) that swaps a path for a symlink meanwhile
//! makes the commit or export fail; it can never make either read a file outside the
//! upper dir.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use xattr::FileExt;

/// overlayfs' own xattrs: not copied as such; opaqueness is carried over explicitly.
const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(
        "{0} changed while it was read (is the container still writing? commit pauses it by default)"
    )]
    Changed(PathBuf),
    #[error("interrupted")]
    Cancelled,
}

fn at(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> CopyError {
    let path = path.to_path_buf();
    move |source| CopyError::Io { what, path, source }
}

fn at_errno(what: &'static str, path: &Path) -> impl FnOnce(nix::errno::Errno) -> CopyError {
    let f = at(what, path);
    move |e| f(e.into())
}

struct Copier<'a> {
    skip: &'a HashSet<PathBuf>,
    cancel: &'a dyn Fn() -> bool,
    /// Copies made so far of inodes with several links, so hard links stay links.
    links: HashMap<(u64, u64), PathBuf>,
}

/// Copies the contents of the directory `src` (not the directory itself: `dst` exists)
/// into `dst`, leaving out the relative paths in `skip`. `cancel` is asked per entry.
pub fn copy_upper(
    src: &Path,
    dst: &Path,
    skip: &HashSet<PathBuf>,
    cancel: &dyn Fn() -> bool,
) -> Result<(), CopyError> {
    let root = nix::fcntl::open(
        src,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(at_errno("opening", src))?;
    Copier::new(skip, cancel).copy_dir_contents(&root, src, Path::new(""), dst)
}

/// Copies the entry `name` of the directory open as `dir` to the new path `dst`: a
/// file, a directory with everything in it, a symlink as a symlink; owners, modes,
/// times, xattrs and hard links kept. Read through descriptors as [`copy_upper`] reads
/// (`cp` out of a container).
pub fn copy_entry_at(
    dir: &OwnedFd,
    name: &std::ffi::OsStr,
    shown: &Path,
    dst: &Path,
    cancel: &dyn Fn() -> bool,
) -> Result<(), CopyError> {
    let st = nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(at_errno("inspecting", shown))?;
    Copier::new(&HashSet::new(), cancel).copy_entry(
        dir,
        &name.to_os_string(),
        &st,
        shown,
        Path::new(""),
        dst,
    )
}

/// Copies what the directory open as `dir` holds into the existing directory `dst`,
/// as [`copy_upper`] does for a path (`cp CONTAINER:DIR/. DEST`).
pub fn copy_contents_of(
    dir: &OwnedFd,
    shown: &Path,
    dst: &Path,
    cancel: &dyn Fn() -> bool,
) -> Result<(), CopyError> {
    Copier::new(&HashSet::new(), cancel).copy_dir_contents(dir, shown, Path::new(""), dst)
}

/// The names in the directory open as `dir`, read through its descriptor
/// (`/proc/self/fd/N` is that very directory, whatever its path has become).
fn names(dir: &OwnedFd, shown: &Path) -> Result<Vec<OsString>, CopyError> {
    let path = format!("/proc/self/fd/{}", dir.as_raw_fd());
    let mut names = fs::read_dir(&path)
        .and_then(|rd| {
            rd.map(|e| e.map(|e| e.file_name()))
                .collect::<io::Result<Vec<_>>>()
        })
        .map_err(at("listing", shown))?;
    names.sort();
    Ok(names)
}

fn xattrs(file: &File, shown: &Path) -> Result<Vec<(OsString, Vec<u8>)>, CopyError> {
    let list = match file.list_xattr() {
        Ok(l) => l,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(at("listing the xattrs of", shown)(e)),
    };
    let mut out = Vec::new();
    for name in list {
        if name.as_bytes().starts_with(OVERLAY_XATTR_PREFIX) {
            continue;
        }
        if let Some(v) = file
            .get_xattr(&name)
            .map_err(at("reading an xattr of", shown))?
        {
            out.push((name, v));
        }
    }
    Ok(out)
}

/// Owner, mode, xattrs and mtime of `st` on `dst` (our own scratch: plain paths).
fn apply_meta(
    dst: &Path,
    st: &FileStat,
    xattrs: &[(OsString, Vec<u8>)],
    symlink: bool,
) -> Result<(), CopyError> {
    // Owner before mode: chown(2) clears setuid/setgid.
    std::os::unix::fs::lchown(dst, Some(st.st_uid), Some(st.st_gid))
        .map_err(at("changing the owner of", dst))?;
    if !symlink {
        fs::set_permissions(dst, fs::Permissions::from_mode(st.st_mode & 0o7777))
            .map_err(at("changing the mode of", dst))?;
    }
    for (name, value) in xattrs {
        xattr::set(dst, name, value).map_err(at("setting an xattr on", dst))?;
    }
    let t = TimeSpec::new(st.st_mtime, st.st_mtime_nsec);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        dst,
        &t,
        &t,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(at_errno("setting the times of", dst))
}

fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

impl<'a> Copier<'a> {
    fn new(skip: &'a HashSet<PathBuf>, cancel: &'a dyn Fn() -> bool) -> Copier<'a> {
        Copier {
            skip,
            cancel,
            links: HashMap::new(),
        }
    }

    fn copy_dir_contents(
        &mut self,
        dir: &OwnedFd,
        shown: &Path,
        rel: &Path,
        dst: &Path,
    ) -> Result<(), CopyError> {
        for name in names(dir, shown)? {
            if (self.cancel)() {
                return Err(CopyError::Cancelled);
            }
            let rel = rel.join(&name);
            if self.skip.contains(&rel) {
                continue;
            }
            let shown = shown.join(&name);
            let st = match nix::sys::stat::fstatat(
                dir,
                name.as_os_str(),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            ) {
                Ok(st) => st,
                // Removed by a running container since it was listed.
                Err(nix::errno::Errno::ENOENT) => continue,
                Err(e) => return Err(at_errno("inspecting", &shown)(e)),
            };
            self.copy_entry(dir, &name, &st, &shown, &rel, &dst.join(&name))?;
        }
        Ok(())
    }

    fn copy_entry(
        &mut self,
        dir: &OwnedFd,
        name: &OsString,
        st: &FileStat,
        shown: &Path,
        rel: &Path,
        dst: &Path,
    ) -> Result<(), CopyError> {
        let k = kind(st);
        if k == SFlag::S_IFDIR {
            let sub = nix::fcntl::openat(
                dir,
                name.as_os_str(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| match e {
                nix::errno::Errno::ELOOP | nix::errno::Errno::ENOTDIR => {
                    CopyError::Changed(shown.to_path_buf())
                }
                e => at_errno("opening", shown)(e),
            })?;
            self.same_inode(&sub, st, shown)?;
            fs::create_dir(dst).map_err(at("creating", dst))?;
            self.copy_dir_contents(&sub, shown, rel, dst)?;
            let file = File::from(sub);
            let mut attrs = xattrs(&file, shown)?;
            // Opaque: the directory replaced the image's, whose contents stay hidden.
            if matches!(file.get_xattr(OPAQUE_XATTR), Ok(Some(v)) if v == b"y") {
                attrs.push((OPAQUE_XATTR.into(), b"y".to_vec()));
            }
            // Last, so that creating its entries did not change its mtime.
            return apply_meta(dst, st, &attrs, false);
        }
        if st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key) {
                return fs::hard_link(first, dst).map_err(at("linking", dst));
            }
            self.links.insert(key, dst.to_path_buf());
        }
        match k {
            SFlag::S_IFREG => {
                let fd = nix::fcntl::openat(
                    dir,
                    name.as_os_str(),
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
                    Mode::empty(),
                )
                .map_err(|e| match e {
                    nix::errno::Errno::ELOOP => CopyError::Changed(shown.to_path_buf()),
                    e => at_errno("opening", shown)(e),
                })?;
                self.same_inode(&fd, st, shown)?;
                let mut src = File::from(fd);
                let mut out = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(dst)
                    .map_err(at("creating", dst))?;
                // copy_file_range(2) underneath: reflinks or in-kernel copies where it can.
                io::copy(&mut src, &mut out).map_err(at("copying", shown))?;
                let attrs = xattrs(&src, shown)?;
                apply_meta(dst, st, &attrs, false)
            }
            SFlag::S_IFLNK => {
                let target = nix::fcntl::readlinkat(dir, name.as_os_str())
                    .map_err(at_errno("reading the link", shown))?;
                std::os::unix::fs::symlink(target, dst).map_err(at("creating the link", dst))?;
                apply_meta(dst, st, &[], true)
            }
            SFlag::S_IFCHR | SFlag::S_IFBLK => {
                // Whiteouts (0/0 character devices) among them.
                nix::sys::stat::mknod(dst, k, Mode::from_bits_truncate(0o600), st.st_rdev)
                    .map_err(at_errno("creating the device", dst))?;
                apply_meta(dst, st, &[], false)
            }
            SFlag::S_IFIFO => {
                nix::unistd::mkfifo(dst, Mode::from_bits_truncate(0o600))
                    .map_err(at_errno("creating the fifo", dst))?;
                apply_meta(dst, st, &[], false)
            }
            // Sockets: a layer tar cannot carry one (the tar writer skips them too).
            _ => Ok(()),
        }
    }

    /// The descriptor opened is the inode `st` described, not something put there since.
    fn same_inode(&self, fd: &OwnedFd, st: &FileStat, shown: &Path) -> Result<(), CopyError> {
        let now = nix::sys::stat::fstat(fd.as_fd()).map_err(at_errno("inspecting", shown))?;
        if (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino) {
            Ok(())
        } else {
            Err(CopyError::Changed(shown.to_path_buf()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    #[test]
    fn copies_everything_a_layer_records_and_skips_what_it_is_told() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let s = src.path();
        fs::create_dir_all(s.join("a/b")).unwrap();
        fs::write(s.join("a/b/f"), "data").unwrap();
        fs::hard_link(s.join("a/b/f"), s.join("a/g")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", s.join("a/link")).unwrap();
        fs::set_permissions(s.join("a/b/f"), fs::Permissions::from_mode(0o4711)).unwrap();
        fs::create_dir(s.join("etc")).unwrap();
        fs::write(s.join("etc/hosts"), "").unwrap();
        let skip: HashSet<PathBuf> = [PathBuf::from("etc/hosts"), PathBuf::from("etc")]
            .into_iter()
            .collect();
        copy_upper(s, dst.path(), &skip, &|| false).unwrap();
        let d = dst.path();
        assert_eq!(fs::read_to_string(d.join("a/b/f")).unwrap(), "data");
        assert_eq!(
            fs::metadata(d.join("a/b/f")).unwrap().mode() & 0o7777,
            0o4711
        );
        assert_eq!(
            fs::metadata(d.join("a/b/f")).unwrap().ino(),
            fs::metadata(d.join("a/g")).unwrap().ino(),
            "hard links stay links"
        );
        assert_eq!(
            fs::read_link(d.join("a/link")).unwrap(),
            Path::new("/etc/passwd"),
            "a symlink is copied as a link, not followed"
        );
        assert!(!d.join("etc").exists());
        assert_eq!(
            fs::metadata(d.join("a")).unwrap().mtime(),
            fs::metadata(s.join("a")).unwrap().mtime()
        );
    }

    #[test]
    fn whiteouts_and_opaque_directories_stay_what_they_are() {
        // trusted.* xattrs and device nodes need root, as layers do.
        if !nix::unistd::Uid::effective().is_root() {
            panic!("this test needs root (layers keep overlay whiteouts)");
        }
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let s = src.path();
        nix::sys::stat::mknod(
            &s.join("gone"),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o600),
            0,
        )
        .unwrap();
        fs::create_dir(s.join("redone")).unwrap();
        xattr::set(s.join("redone"), OPAQUE_XATTR, b"y").unwrap();
        copy_upper(s, dst.path(), &HashSet::new(), &|| false).unwrap();
        let m = fs::symlink_metadata(dst.path().join("gone")).unwrap();
        assert!(m.file_type().is_char_device() && m.rdev() == 0);
        assert_eq!(
            xattr::get(dst.path().join("redone"), OPAQUE_XATTR).unwrap(),
            Some(b"y".to_vec())
        );
    }

    #[test]
    fn cancel_stops_the_copy() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        fs::write(src.path().join("f"), "x").unwrap();
        let err = copy_upper(src.path(), dst.path(), &HashSet::new(), &|| true).unwrap_err();
        assert!(matches!(err, CopyError::Cancelled));
    }
}
