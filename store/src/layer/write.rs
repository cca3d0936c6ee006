//! Deterministic layer tars from layer directories in overlay format.
//!
//! Header format: POSIX ustar, plus a PAX extended header (`x`) when something does not fit
//! — a name or link target over 100 bytes, ids or times out of octal range, and xattrs.
//! PAX rather than the GNU long-name entries tar-rs's `Builder` makes because xattrs need
//! PAX records anyway (`SCHILY.xattr.*`), so one mechanism covers everything, and because
//! it is what Docker (Go's `archive/tar`) and BuildKit write, so layers made here look like
//! theirs to every other tool. Names over 100 bytes always go to PAX (no ustar prefix
//! split): one rule, and PAX readers are universal.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use nix::sys::stat::{major, minor};
use tar::{EntryType, Header};

use super::{
    LayerError, OPAQUE_MARKER, OPAQUE_XATTR, OVERLAY_XATTR_PREFIX, Refusal, WHITEOUT_PREFIX,
    is_harmless_char_device,
};
use crate::digest::{Digest, Hashing};

/// How to write.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `SOURCE_DATE_EPOCH`: mtimes newer than this are written as this, so that a rebuild
    /// from the same inputs gives the same layer digest (reproducible-builds.org,
    /// "SOURCE_DATE_EPOCH"; BuildKit does the same with `rewrite-timestamp`).
    pub clamp_mtime: Option<i64>,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// sha256 of the bytes written: the layer's diff ID, known without reading them back.
    pub diff_id: Digest,
    /// Bytes written.
    pub size: u64,
}

/// Streams `dir` (a layer directory in overlay format) as a deterministic OCI layer tar:
/// the same tree always gives the same bytes, hence the same diff ID.
///
/// Entries come in file-name byte order, parents before children, the root itself not
/// emitted; only numeric ids, mode with setuid/setgid/sticky, and mtime (no atime, ctime or
/// user names, which differ between machines). Overlay whiteouts (0/0 character devices)
/// become `.wh.NAME` files and `trusted.overlay.opaque=y` a `.wh..wh..opq` file (image-spec
/// `layer.md`, "Whiteouts"). Files with several links are written once, then as hard links
/// to the first path in walk order. Sockets are skipped, as Docker does (a tar cannot
/// carry one). Anything [`super::extract`] would refuse — block devices, other character
/// devices, names starting with `.wh.` — is an error here, so that every layer written can
/// be read back.
pub fn write_tar(dir: &Path, w: impl Write, opts: &WriteOptions) -> Result<Written, LayerError> {
    let mut tw = TarWriter {
        out: tar::Builder::new(Hashing::new(w)),
        clamp: opts.clamp_mtime,
        links: HashMap::new(),
    };
    tw.dir(dir, b"")?;
    // into_inner writes the end-of-archive marker: two zero blocks (POSIX ustar).
    let hashing = tw.out.into_inner().map_err(LayerError::Write)?;
    let (diff_id, size, mut w) = hashing.finish();
    w.flush().map_err(LayerError::Write)?;
    Ok(Written { diff_id, size })
}

struct TarWriter<W: Write> {
    out: tar::Builder<Hashing<W>>,
    clamp: Option<i64>,
    /// First member name of each multiply-linked inode, by (dev, ino).
    links: HashMap<(u64, u64), Vec<u8>>,
}

/// xattr names and values, sorted by name.
type Xattrs = Vec<(OsString, Vec<u8>)>;

/// One tar member to write.
struct Spec<'a> {
    name: &'a [u8],
    kind: EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: i64,
    size: u64,
    link: Option<&'a [u8]>,
    dev: Option<(u64, u64)>,
    xattrs: &'a [(OsString, Vec<u8>)],
}

impl<'a> Spec<'a> {
    /// An empty, root-owned, mode-0 regular file: how whiteouts and opaque markers are
    /// written (as Docker and BuildKit write them).
    fn marker(name: &'a [u8], mtime: i64) -> Spec<'a> {
        Spec {
            name,
            kind: EntryType::Regular,
            mode: 0,
            uid: 0,
            gid: 0,
            mtime,
            size: 0,
            link: None,
            dev: None,
            xattrs: &[],
        }
    }
}

/// A read error of the source file, told apart from a write error once `Builder::append`
/// has mixed them into one `io::Error`.
#[derive(Debug)]
struct SourceError(io::Error);

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SourceError {}

/// Reads exactly the size the header promised; a file that shrank while being read would
/// otherwise make a corrupt tar.
struct Exact {
    file: io::Take<File>,
}

impl Read for Exact {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.file.limit() == 0 {
            return Ok(0);
        }
        match self.file.read(buf) {
            Ok(0) => Err(io::Error::other(SourceError(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while being read",
            )))),
            Ok(n) => Ok(n),
            Err(e) => Err(io::Error::other(SourceError(e))),
        }
    }
}

/// Largest values of the ustar octal fields (POSIX ustar: 7 and 11 octal digits).
const MAX_OCTAL_7: u64 = 0o7777777;
const MAX_OCTAL_11: u64 = 0o77777777777;

fn source<'a>(path: &'a Path, action: &'static str) -> impl FnOnce(io::Error) -> LayerError + 'a {
    move |source| LayerError::Source {
        path: path.to_path_buf(),
        action,
        source,
    }
}

fn unwritable(path: &Path, reason: Refusal) -> LayerError {
    LayerError::Unwritable {
        path: path.to_path_buf(),
        reason,
    }
}

fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parent.len() + name.len() + 1);
    if !parent.is_empty() {
        out.extend_from_slice(parent);
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

/// One PAX record, `"%d %s=%s\n"` where the length counts its own digits (POSIX `pax`,
/// "pax Extended Header").
pub(super) fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3;
    let mut len = body + body.to_string().len();
    while body + len.to_string().len() != len {
        len = body + len.to_string().len();
    }
    let mut out = format!("{len} ").into_bytes();
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
    out
}

/// Copies `value` into a fixed-size header field; says whether it fitted.
fn put(field: &mut [u8], value: &[u8]) -> bool {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
    value.len() <= field.len()
}

/// The xattrs a layer carries, sorted by name, and whether the directory is opaque.
/// `trusted.overlay.*` is overlay's bookkeeping, turned into `.wh.` entries where it means
/// something; `security.selinux` is the host's labelling, not the image's (Docker's writer
/// copies only `security.capability`; we keep everything else but that label, so that the
/// same tree gives the same digest on any host).
fn read_xattrs(path: &Path) -> Result<(Xattrs, bool), LayerError> {
    let names = match xattr::list(path) {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(nix::libc::ENOTSUP) => return Ok((Vec::new(), false)),
        Err(e) => return Err(source(path, "listing its xattrs")(e)),
    };
    let mut names: Vec<OsString> = names.collect();
    names.sort();
    let mut out = Vec::new();
    let mut opaque = false;
    for name in names {
        let bytes = name.as_bytes();
        let value = || -> Result<Option<Vec<u8>>, LayerError> {
            xattr::get(path, &name).map_err(source(path, "reading an xattr"))
        };
        if bytes == OPAQUE_XATTR.as_bytes() {
            opaque = value()?.as_deref() == Some(b"y");
        } else if bytes.starts_with(OVERLAY_XATTR_PREFIX.as_bytes()) || bytes == b"security.selinux"
        {
        } else if bytes.contains(&b'=') {
            // A PAX key ends at the first '='; such a name cannot be written unambiguously.
            return Err(unwritable(
                path,
                Refusal::BadHeader(format!("xattr name {name:?} contains '='")),
            ));
        } else if let Some(v) = value()? {
            out.push((name, v));
        }
    }
    Ok((out, opaque))
}

impl<W: Write> TarWriter<W> {
    fn clamp(&self, mtime: i64) -> i64 {
        match self.clamp {
            Some(c) if mtime > c => c,
            _ => mtime,
        }
    }

    fn dir(&mut self, abs: &Path, rel: &[u8]) -> Result<(), LayerError> {
        let mut names = fs::read_dir(abs)
            .and_then(|entries| entries.map(|e| e.map(|e| e.file_name())).collect())
            .map_err(source(abs, "listing the directory"))
            .map(|names: Vec<OsString>| names)?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            self.file(&abs.join(&name), &name, &join(rel, name.as_bytes()))?;
        }
        Ok(())
    }

    fn file(&mut self, path: &Path, name: &OsStr, rel: &[u8]) -> Result<(), LayerError> {
        let m = fs::symlink_metadata(path).map_err(source(path, "inspecting it"))?;
        let ft = m.file_type();
        if ft.is_socket() {
            return Ok(());
        }
        if name.as_bytes().starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return Err(unwritable(path, Refusal::ReservedName));
        }
        let mtime = self.clamp(m.mtime());
        if ft.is_char_device() && m.rdev() == 0 {
            let parent = &rel[..rel.len() - name.len()];
            let marker = [parent, WHITEOUT_PREFIX.as_bytes(), name.as_bytes()].concat();
            return self.append(path, &Spec::marker(&marker, mtime), io::empty());
        }
        let (xattrs, opaque) = read_xattrs(path)?;
        let mut spec = Spec {
            name: rel,
            kind: EntryType::Regular,
            mode: m.mode() & 0o7777,
            uid: u64::from(m.uid()),
            gid: u64::from(m.gid()),
            mtime,
            size: 0,
            link: None,
            dev: None,
            xattrs: &xattrs,
        };
        if ft.is_dir() {
            let dir_name = [rel, b"/"].concat();
            spec.name = &dir_name;
            spec.kind = EntryType::Directory;
            self.append(path, &spec, io::empty())?;
            if opaque {
                let marker = join(rel, OPAQUE_MARKER.as_bytes());
                self.append(path, &Spec::marker(&marker, mtime), io::empty())?;
            }
            return self.dir(path, rel);
        }
        if m.nlink() > 1 {
            if let Some(first) = self.links.get(&(m.dev(), m.ino())) {
                let first = first.clone();
                spec.kind = EntryType::Link;
                spec.link = Some(&first);
                return self.append(path, &spec, io::empty());
            }
            self.links.insert((m.dev(), m.ino()), rel.to_vec());
        }
        if ft.is_file() {
            spec.size = m.len();
            let file = fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(path)
                .map_err(source(path, "opening it"))?;
            let data = Exact {
                file: file.take(m.len()),
            };
            self.append(path, &spec, data)
        } else if ft.is_symlink() {
            let target = fs::read_link(path).map_err(source(path, "reading the link"))?;
            spec.kind = EntryType::Symlink;
            spec.link = Some(target.as_os_str().as_bytes());
            self.append(path, &spec, io::empty())
        } else if ft.is_fifo() {
            spec.kind = EntryType::Fifo;
            self.append(path, &spec, io::empty())
        } else if ft.is_char_device() {
            let (major, minor) = (major(m.rdev()), minor(m.rdev()));
            if !is_harmless_char_device(major, minor) {
                return Err(unwritable(path, Refusal::CharDevice { major, minor }));
            }
            spec.kind = EntryType::Char;
            spec.dev = Some((major, minor));
            self.append(path, &spec, io::empty())
        } else if ft.is_block_device() {
            let (major, minor) = (major(m.rdev()), minor(m.rdev()));
            Err(unwritable(path, Refusal::BlockDevice { major, minor }))
        } else {
            Err(unwritable(path, Refusal::Unsupported(format!("{ft:?}"))))
        }
    }

    /// Writes one member: a PAX header first when needed, then the ustar header and data.
    fn append(&mut self, path: &Path, spec: &Spec, data: impl Read) -> Result<(), LayerError> {
        let mut pax: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut h = Header::new_ustar();
        if !put(&mut h.as_old_mut().name, spec.name) {
            pax.push((b"path".to_vec(), spec.name.to_vec()));
        }
        if let Some(link) = spec.link
            && !put(&mut h.as_old_mut().linkname, link)
        {
            pax.push((b"linkpath".to_vec(), link.to_vec()));
        }
        let mut number = |key: &str, v: u64, max: u64| {
            if v <= max {
                v
            } else {
                pax.push((key.as_bytes().to_vec(), v.to_string().into_bytes()));
                0
            }
        };
        let uid = number("uid", spec.uid, MAX_OCTAL_7);
        let gid = number("gid", spec.gid, MAX_OCTAL_7);
        let size = number("size", spec.size, MAX_OCTAL_11);
        let mtime = match u64::try_from(spec.mtime) {
            Ok(t) if t <= MAX_OCTAL_11 => t,
            _ => {
                pax.push((b"mtime".to_vec(), spec.mtime.to_string().into_bytes()));
                0
            }
        };
        for (name, value) in spec.xattrs {
            pax.push(([b"SCHILY.xattr.", name.as_bytes()].concat(), value.clone()));
        }
        h.set_entry_type(spec.kind);
        h.set_mode(spec.mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_size(size);
        h.set_mtime(mtime);
        if let Some((major, minor)) = spec.dev {
            // Harmless devices only: their numbers are tiny.
            let (major, minor) = (major as u32, minor as u32);
            h.set_device_major(major).map_err(LayerError::Write)?;
            h.set_device_minor(minor).map_err(LayerError::Write)?;
        }
        h.set_cksum();

        if !pax.is_empty() {
            pax.sort();
            let records: Vec<u8> = pax.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
            let mut x = Header::new_ustar();
            // The name is informational; Go's archive/tar uses the same shape.
            put(
                &mut x.as_old_mut().name,
                &[b"PaxHeaders.0/", spec.name].concat(),
            );
            x.set_entry_type(EntryType::XHeader);
            x.set_mode(0o644);
            x.set_size(records.len() as u64);
            x.set_mtime(0);
            x.set_cksum();
            self.out
                .append(&x, records.as_slice())
                .map_err(LayerError::Write)?;
        }
        self.out.append(&h, data).map_err(|e| {
            if e.get_ref().is_some_and(|i| i.is::<SourceError>()) {
                let inner = e.into_inner().expect("checked above");
                let SourceError(e) = *inner.downcast::<SourceError>().expect("checked above");
                source(path, "reading it")(e)
            } else {
                LayerError::Write(e)
            }
        })
    }
}
