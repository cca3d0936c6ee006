//! Confined extraction of a layer tar into overlay format.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::AT_FDCWD;
use nix::sys::stat::{Mode, SFlag, UtimensatFlags, makedev, mknod, utimensat};
use nix::sys::time::TimeSpec;
use tar::EntryType;

use super::confine::{self, Fail};
use super::{
    LayerError, OPAQUE_MARKER, OPAQUE_XATTR, OVERLAY_XATTR_PREFIX, Refusal, WHITEOUT_PREFIX,
    is_harmless_char_device,
};
use crate::digest::{Digest, Hashing};

/// How to extract.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// `lchown` each member to the numeric uid/gid of its header. Only root may give files
    /// away, so a rootless caller turns this off and owns everything itself.
    pub set_owners: bool,
}

impl ExtractOptions {
    /// Owners are set exactly when they can be: when running as root.
    pub fn for_current_user() -> ExtractOptions {
        ExtractOptions {
            set_owners: nix::unistd::geteuid().is_root(),
        }
    }
}

/// What an extraction found, for the layer's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// sha256 of the whole uncompressed stream, end-of-archive blocks and trailing padding
    /// included: that is what an image config's `rootfs.diff_ids` promise (image-spec
    /// `config.md`, "Layer DiffID"), byte for byte.
    pub diff_id: Digest,
    /// Bytes in the uncompressed stream.
    pub tar_size: u64,
    /// Sum of the sizes of regular files: Docker's layer "size", shown by `history`.
    pub content_size: u64,
    /// Members extracted, whiteouts included (PAX global headers are not members).
    pub entries: u64,
}

/// Extracts an UNCOMPRESSED layer tar stream into `dest`, an existing empty directory
/// private to the caller, in overlay format (see the module documentation).
///
/// Rules, each because a layer comes from anyone and this runs as root:
/// - member paths lose a leading `./`; `.` alone is `dest` itself; `..` components,
///   absolute paths, NUL bytes and paths through a symlink are refused, so nothing outside
///   `dest` is ever touched (CVE-2018-15664-style tricks, tar-rs `unpack_in`'s rules);
/// - hard links must point at a non-directory that an earlier member of this layer made,
///   by a path obeying the same rules;
/// - block devices are refused, and character devices other than null, zero, full, random,
///   urandom and tty; a 0/0 device is refused too, because only `.wh.` names may make
///   whiteouts; names starting with `.wh.` are reserved for whiteouts;
/// - `trusted.overlay.*` xattrs in the tar are dropped, so a tar cannot forge overlay
///   metadata (redirects, opaque dirs) behind the back of the whiteout rules;
/// - a later member replaces an earlier one at the same path, except that a directory over
///   a directory only updates its metadata (as Docker and GNU tar do);
/// - missing parents are made 0755, as Docker does;
/// - whiteouts apply to lower layers only (image-spec `layer.md`, "Whiteouts"), so a
///   whiteout for a name this layer already made keeps that name.
///
/// On error `dest` may hold a partial tree, and nothing else has been written: the caller
/// deletes `dest`.
pub fn extract(r: impl Read, dest: &Path, opts: &ExtractOptions) -> Result<Extracted, LayerError> {
    // tar-rs reads a header at a time; a buffer below the hasher keeps that from being a
    // syscall (or a decompressor call) per 512 bytes, and the hasher still sees every byte.
    let mut archive = tar::Archive::new(Hashing::new(io::BufReader::with_capacity(1 << 16, r)));
    let mut ex = Extractor {
        root: dest,
        opts,
        dirs: BTreeMap::new(),
        content_size: 0,
        entries: 0,
        buf: vec![0; COPY_BUFFER],
    };
    let mut last: Option<String> = None;
    let read_error = |after: &Option<String>, source| LayerError::Read {
        after: after.clone(),
        source,
    };
    for entry in archive.entries().map_err(|e| read_error(&last, e))? {
        let mut entry = entry.map_err(|e| read_error(&last, e))?;
        let member = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        ex.entry(&mut entry, &member)?;
        last = Some(member);
    }
    // The tar reader stops at the first zero block; the diff ID covers the rest too.
    let mut hashing = archive.into_inner();
    io::copy(&mut hashing, &mut io::sink()).map_err(|e| read_error(&last, e))?;
    let (content_size, entries) = (ex.content_size, ex.entries);
    ex.finish_dirs()?;
    let (diff_id, tar_size, _) = hashing.finish();
    Ok(Extracted {
        diff_id,
        tar_size,
        content_size,
        entries,
    })
}

/// Metadata of a member, from its header and PAX records.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: TimeSpec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A directory's mode and mtime, applied after all members: creating children changes a
/// directory's mtime, and a read-only directory would stop a rootless extraction.
struct DirMeta {
    mode: u32,
    mtime: TimeSpec,
}

struct Extractor<'a> {
    root: &'a Path,
    opts: &'a ExtractOptions,
    /// Directories made or updated, by path relative to the root ("" is the root).
    dirs: BTreeMap<PathBuf, DirMeta>,
    content_size: u64,
    entries: u64,
    /// File contents go through this: `io::copy`'s 8 KiB would cost a write syscall
    /// per 8 KiB, a third of a large layer's extraction time.
    buf: Vec<u8>,
}

const COPY_BUFFER: usize = 256 << 10;

/// Copies `r` to `w` through `buf`, returning the bytes copied.
fn copy_through(r: &mut impl Read, w: &mut impl Write, buf: &mut [u8]) -> io::Result<u64> {
    let mut n = 0u64;
    loop {
        // Fill the buffer as far as the reader goes before writing, so each write is big.
        let mut filled = 0;
        while filled < buf.len() {
            match r.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(k) => filled += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            return Ok(n);
        }
        w.write_all(&buf[..filled])?;
        n += filled as u64;
    }
}

fn io_fail(action: &'static str) -> impl FnOnce(io::Error) -> Fail {
    move |e| Fail::Io(action, e)
}

fn nix_fail(action: &'static str) -> impl FnOnce(nix::Error) -> Fail {
    move |e| Fail::Io(action, e.into())
}

fn kind_name(kind: EntryType) -> &'static str {
    match kind {
        EntryType::Regular | EntryType::Continuous => "regular file",
        EntryType::Link => "hard link",
        EntryType::Symlink => "symbolic link",
        EntryType::Char => "character device",
        EntryType::Block => "block device",
        EntryType::Fifo => "fifo",
        EntryType::Directory => "directory",
        _ => "special entry",
    }
}

impl Meta {
    fn read<R: Read>(entry: &mut tar::Entry<R>) -> Result<Meta, Fail> {
        let h = entry.header();
        let old = h.as_old();
        // An empty field reads as 0, as Go's archive/tar (hence Docker) reads it; tar-rs
        // would call it an error.
        let number = |what: &str, field: &[u8], parsed: io::Result<u64>| {
            if field.iter().all(|&b| b == 0 || b == b' ') {
                return Ok(0);
            }
            parsed.map_err(|e| Refusal::BadHeader(format!("{what}: {e}")))
        };
        let id = |what: &str, v: u64| {
            u32::try_from(v).map_err(|_| Refusal::BadHeader(format!("{what} {v} out of range")))
        };
        // PAX uid/gid records are already folded into the header by the tar crate.
        let mode = number("mode", &old.mode, h.mode().map(u64::from))? as u32 & 0o7777;
        let uid = id("uid", number("uid", &old.uid, h.uid())?)?;
        let gid = id("gid", number("gid", &old.gid, h.gid())?)?;
        let mtime = number("mtime", &old.mtime, h.mtime())?;
        let mut mtime = TimeSpec::new(i64::try_from(mtime).unwrap_or(i64::MAX), 0);
        let mut xattrs = Vec::new();
        if let Some(pax) = entry
            .pax_extensions()
            .map_err(io_fail("reading its PAX records"))?
        {
            for record in pax {
                let record = record.map_err(io_fail("reading its PAX records"))?;
                let key = record.key_bytes();
                if key == b"mtime" {
                    mtime = pax_time(record.value_bytes()).ok_or_else(|| {
                        Refusal::BadHeader(format!(
                            "PAX mtime {:?}",
                            String::from_utf8_lossy(record.value_bytes())
                        ))
                    })?;
                } else if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                    // A tar must not forge overlay metadata (see `extract`).
                    if !name.starts_with(OVERLAY_XATTR_PREFIX.as_bytes()) {
                        xattrs.push((name.to_vec(), record.value_bytes().to_vec()));
                    }
                }
            }
        }
        Ok(Meta {
            mode,
            uid,
            gid,
            mtime,
            xattrs,
        })
    }
}

/// Parses a PAX time, `[-]seconds[.fraction]` (POSIX `pax`, "pax Extended Header").
fn pax_time(v: &[u8]) -> Option<TimeSpec> {
    let s = std::str::from_utf8(v).ok()?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    if sec.is_empty() || !sec.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut sec: i64 = sec.parse().ok()?;
    let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    let mut nsec: i64 = digits.parse().ok()?;
    if neg {
        sec = -sec;
        if nsec > 0 {
            sec -= 1;
            nsec = 1_000_000_000 - nsec;
        }
    }
    Some(TimeSpec::new(sec, nsec))
}

fn set_mtime(path: &Path, mtime: TimeSpec) -> Result<(), Fail> {
    // atime = mtime, as Docker does when the header has none; the link itself, never its
    // target (utimensat(2), AT_SYMLINK_NOFOLLOW).
    utimensat(
        AT_FDCWD,
        path,
        &mtime,
        &mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(nix_fail("setting its mtime"))
}

impl Extractor<'_> {
    fn entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        member: &str,
    ) -> Result<(), LayerError> {
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            // Global records describe the archive, not a file; Docker ignores them too.
            return Ok(());
        }
        self.entries += 1;
        self.member(entry, kind).map_err(|f| f.member(member))
    }

    fn member<R: Read>(&mut self, entry: &mut tar::Entry<R>, kind: EntryType) -> Result<(), Fail> {
        let raw = entry.path_bytes().into_owned();
        let parts = confine::components(&raw)?;
        // Old (pre-POSIX) tars mark directories by a trailing slash on a '\0' type; Go's
        // archive/tar, which Docker uses, reads them so.
        let kind = if entry.header().as_old().linkflag[0] == 0 && raw.ends_with(b"/") {
            EntryType::Directory
        } else {
            kind
        };
        let meta = Meta::read(entry)?;
        let Some((name, parents)) = parts.split_last() else {
            return self.root_entry(kind, meta);
        };
        if parents
            .iter()
            .any(|p| p.as_bytes().starts_with(WHITEOUT_PREFIX.as_bytes()))
        {
            return Err(Refusal::ReservedName.into());
        }
        let parent = confine::walk_dirs(self.root, parents, true)?
            .expect("walk_dirs creates what is missing");
        if name.as_bytes().starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(&parent, name, &meta);
        }
        let rel: PathBuf = parts.iter().collect();
        let path = parent.join(name);
        self.place(entry, kind, &rel, &path, meta)
    }

    /// `.` (or `./`) is the layer root: only its metadata can change.
    fn root_entry(&mut self, kind: EntryType, meta: Meta) -> Result<(), Fail> {
        if !kind.is_dir() {
            return Err(Refusal::RootNotDirectory {
                kind: kind_name(kind),
            }
            .into());
        }
        let root = self.root.to_path_buf();
        self.apply_meta(&root, &meta, false, true)?;
        self.dirs.insert(
            PathBuf::new(),
            DirMeta {
                mode: meta.mode,
                mtime: meta.mtime,
            },
        );
        Ok(())
    }

    /// `.wh.NAME` becomes a 0/0 character device at NAME; `.wh..wh..opq` marks the parent
    /// opaque (image-spec `layer.md`, "Whiteouts"; overlayfs.rst, "whiteouts and opaque
    /// directories").
    fn whiteout(&mut self, parent: &Path, name: &OsStr, meta: &Meta) -> Result<(), Fail> {
        let name = name.as_bytes();
        if name == OPAQUE_MARKER.as_bytes() {
            return xattr::set(parent, OPAQUE_XATTR, b"y")
                .map_err(io_fail("marking the directory opaque"));
        }
        let hidden = &name[WHITEOUT_PREFIX.len()..];
        match hidden {
            b"" | b"." => return Err(Refusal::EmptyWhiteout.into()),
            b".." => return Err(Refusal::Escapes.into()),
            h if h.starts_with(WHITEOUT_PREFIX.as_bytes()) => {
                // `.wh..wh.plnk` and friends are aufs bookkeeping, never a file name.
                return Err(Refusal::ReservedName.into());
            }
            _ => {}
        }
        let path = parent.join(OsStr::from_bytes(hidden));
        if confine::lstat(&path)
            .map_err(io_fail("inspecting the whited-out path"))?
            .is_some()
        {
            // The spec: a whiteout hides lower layers only, never its own layer's files.
            return Ok(());
        }
        mknod(&path, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
            .map_err(nix_fail("creating the overlay whiteout device"))?;
        set_mtime(&path, meta.mtime)
    }

    /// Creates a member that is not a whiteout, replacing what was there.
    fn place<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        kind: EntryType,
        rel: &Path,
        path: &Path,
        meta: Meta,
    ) -> Result<(), Fail> {
        // Everything refusable is checked before the existing path is touched.
        let mut link_is_symlink = false;
        let link = match kind {
            EntryType::Symlink | EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .filter(|l| !l.is_empty())
                    .ok_or(Refusal::NoLinkTarget {
                        kind: kind_name(kind),
                    })?
                    .into_owned();
                if link.contains(&0) {
                    return Err(Refusal::Nul.into());
                }
                Some(link)
            }
            _ => None,
        };
        let link_target = match (&link, kind) {
            (Some(target), EntryType::Link) => {
                let (p, is_symlink) = self.hardlink_target(target)?;
                link_is_symlink = is_symlink;
                Some(p)
            }
            _ => None,
        };
        let dev = match kind {
            EntryType::Char | EntryType::Block => {
                let h = entry.header();
                let bad = |e: io::Error| Refusal::BadHeader(format!("device number: {e}"));
                let major = h.device_major().map_err(bad)?;
                let minor = h.device_minor().map_err(bad)?;
                let (Some(major), Some(minor)) = (major, minor) else {
                    return Err(Refusal::BadHeader("device without device numbers".into()).into());
                };
                let (major, minor) = (u64::from(major), u64::from(minor));
                if kind == EntryType::Block {
                    return Err(Refusal::BlockDevice { major, minor }.into());
                }
                if (major, minor) == (0, 0) {
                    return Err(Refusal::ForgedWhiteout.into());
                }
                if !is_harmless_char_device(major, minor) {
                    return Err(Refusal::CharDevice { major, minor }.into());
                }
                makedev(major, minor)
            }
            EntryType::Regular
            | EntryType::Continuous
            | EntryType::Directory
            | EntryType::Symlink
            | EntryType::Link
            | EntryType::Fifo => 0,
            other => return Err(Refusal::Unsupported(format!("{other:?}")).into()),
        };

        let existing = confine::lstat(path).map_err(io_fail("inspecting the existing path"))?;
        let keep_dir = kind.is_dir() && existing.as_ref().is_some_and(|m| m.is_dir());
        match existing {
            _ if keep_dir => {}
            Some(m) if m.is_dir() => {
                self.dirs.retain(|k, _| !k.starts_with(rel));
                fs::remove_dir_all(path).map_err(io_fail("removing the directory it replaces"))?;
            }
            Some(_) => fs::remove_file(path).map_err(io_fail("removing the file it replaces"))?,
            None => {}
        }

        match kind {
            EntryType::Directory if keep_dir => {}
            EntryType::Directory => fs::DirBuilder::new()
                .mode(0o700)
                .create(path)
                .map_err(io_fail("creating the directory"))?,
            EntryType::Regular | EntryType::Continuous => {
                // O_EXCL: never open through a symlink someone left at this path.
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(io_fail("creating the file"))?;
                let n = copy_through(entry, &mut file, &mut self.buf)
                    .map_err(io_fail("copying its content"))?;
                self.content_size += n;
            }
            EntryType::Symlink => {
                let target = OsStr::from_bytes(link.as_deref().unwrap_or_default());
                std::os::unix::fs::symlink(target, path)
                    .map_err(io_fail("creating the symbolic link"))?;
            }
            EntryType::Link => {
                // linkat(2) without AT_SYMLINK_FOLLOW: a link to a symlink links the symlink.
                let target = link_target.expect("checked above");
                fs::hard_link(target, path).map_err(io_fail("creating the hard link"))?;
            }
            EntryType::Fifo => nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600))
                .map_err(nix_fail("creating the fifo"))?,
            EntryType::Char => mknod(path, SFlag::S_IFCHR, Mode::from_bits_truncate(0o600), dev)
                .map_err(nix_fail("creating the device"))?,
            _ => unreachable!("refused above"),
        }

        let is_symlink = kind == EntryType::Symlink || link_is_symlink;
        self.apply_meta(path, &meta, is_symlink, kind.is_dir())?;
        if kind.is_dir() {
            self.dirs.insert(
                rel.to_path_buf(),
                DirMeta {
                    mode: meta.mode,
                    mtime: meta.mtime,
                },
            );
            Ok(())
        } else {
            set_mtime(path, meta.mtime)
        }
    }

    /// Resolves a hard link's target inside the layer; also says whether it is a symlink.
    fn hardlink_target(&self, target: &[u8]) -> Result<(PathBuf, bool), Fail> {
        let refuse = |why: Refusal| {
            Fail::Refused(Refusal::HardLink {
                target: String::from_utf8_lossy(target).into_owned(),
                why: Box::new(why),
            })
        };
        let parts = confine::components(target).map_err(refuse)?;
        let Some((name, parents)) = parts.split_last() else {
            return Err(refuse(Refusal::IsDirectory));
        };
        let parent = match confine::walk_dirs(self.root, parents, false) {
            Ok(Some(p)) => p,
            Ok(None) => return Err(refuse(Refusal::Missing)),
            Err(Fail::Refused(r)) => return Err(refuse(r)),
            Err(e) => return Err(e),
        };
        let path = parent.join(name);
        let m = confine::lstat(&path)
            .map_err(io_fail("inspecting the hard link target"))?
            .ok_or_else(|| refuse(Refusal::Missing))?;
        if m.is_dir() {
            return Err(refuse(Refusal::IsDirectory));
        }
        if m.file_type().is_char_device() && m.rdev() == 0 {
            return Err(refuse(Refusal::IsWhiteout));
        }
        Ok((path, m.file_type().is_symlink()))
    }

    /// Owner, mode (not for symlinks, whose mode Linux ignores, nor for directories, done
    /// last) and xattrs. Order matters: chown(2) clears setuid/setgid bits and
    /// `security.capability`, so it goes first.
    fn apply_meta(&self, path: &Path, meta: &Meta, symlink: bool, dir: bool) -> Result<(), Fail> {
        if self.opts.set_owners {
            std::os::unix::fs::lchown(path, Some(meta.uid), Some(meta.gid))
                .map_err(io_fail("setting its owner"))?;
        }
        if !symlink && !dir {
            fs::set_permissions(path, fs::Permissions::from_mode(meta.mode))
                .map_err(io_fail("setting its mode"))?;
        }
        for (name, value) in &meta.xattrs {
            // xattr::set is lsetxattr(2): never through a symlink.
            match xattr::set(path, OsStr::from_bytes(name), value) {
                Ok(()) => {}
                // As Docker (`pkg/archive` createTarFile): a filesystem without xattrs, or
                // a namespace we may not write, loses the xattr rather than the layer.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(code) if code == nix::libc::ENOTSUP || code == nix::libc::EPERM
                    ) => {}
                Err(e) => return Err(Fail::Io("setting an xattr", e)),
            }
        }
        Ok(())
    }

    /// Directory modes and mtimes, deepest first so that setting one never disturbs another.
    fn finish_dirs(self) -> Result<(), LayerError> {
        let mut dirs: Vec<_> = self.dirs.into_iter().collect();
        dirs.sort_by_key(|(rel, _)| Reverse(rel.components().count()));
        for (rel, meta) in dirs {
            let member = if rel.as_os_str().is_empty() {
                ".".to_string()
            } else {
                rel.to_string_lossy().into_owned()
            };
            let parts: Vec<&OsStr> = rel.iter().collect();
            let apply = || -> Result<(), Fail> {
                // Re-walked: a later member may have replaced a parent.
                let Some(path) = confine::walk_dirs(self.root, &parts, false)? else {
                    return Ok(());
                };
                fs::set_permissions(&path, fs::Permissions::from_mode(meta.mode))
                    .map_err(io_fail("setting its mode"))?;
                set_mtime(&path, meta.mtime)
            };
            apply().map_err(|f| f.member(&member))?;
        }
        Ok(())
    }
}
