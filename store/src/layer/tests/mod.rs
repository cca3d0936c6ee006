//! Tests of the layer module, and the helpers they share: hostile tar construction,
//! a scene with a canary beside the destination, and a full listing of a tree.

mod compression;
mod happy;
mod hostile;
mod roundtrip;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use super::write::pax_record;
use super::{ExtractOptions, Extracted, LayerError, extract};
use crate::digest::Digest;

/// Tests that make device nodes, `trusted.*` xattrs or files owned by others need root;
/// without it they fail loudly rather than pass having checked nothing.
pub(super) fn need_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root: it makes device nodes, trusted.* xattrs and files owned by \
         other users for real; run `cargo test` as root"
    );
}

/// The mtime given to members unless a test says otherwise.
pub(super) const T0: u64 = 1_500_000_000;

/// A temporary directory holding the extraction's `dest`, an empty `canary` directory that
/// must stay empty, and an `outside` file that must stay as it is.
pub(super) struct Scene {
    pub tmp: tempfile::TempDir,
    pub dest: PathBuf,
    pub canary: PathBuf,
}

impl Scene {
    pub fn new() -> Scene {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("dest");
        let canary = tmp.path().join("canary");
        fs::create_dir(&dest).unwrap();
        fs::create_dir(&canary).unwrap();
        fs::write(tmp.path().join("outside"), b"outside").unwrap();
        Scene { tmp, dest, canary }
    }

    pub fn extract(&self, tar: &[u8]) -> Result<Extracted, LayerError> {
        extract(tar, &self.dest, &ExtractOptions::for_current_user())
    }

    /// Nothing was written beside `dest`.
    pub fn assert_confined(&self) {
        let canary: Vec<_> = fs::read_dir(&self.canary).unwrap().collect();
        assert!(
            canary.is_empty(),
            "the canary dir was written to: {canary:?}"
        );
        let mut names: Vec<_> = fs::read_dir(self.tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["canary", "dest", "outside"],
            "something appeared beside dest"
        );
        let outside = self.tmp.path().join("outside");
        assert_eq!(fs::read(&outside).unwrap(), b"outside");
        assert_eq!(
            fs::metadata(&outside).unwrap().nlink(),
            1,
            "outside got linked"
        );
    }
}

/// A tar built member by member with raw headers, so that names `set_path` would refuse
/// (`..`, absolute paths) can be written.
pub(super) struct RawTar {
    b: tar::Builder<Vec<u8>>,
}

impl RawTar {
    pub fn new() -> RawTar {
        RawTar {
            b: tar::Builder::new(Vec::new()),
        }
    }

    /// A ustar header with `name` copied verbatim into the name field.
    pub fn header(name: &[u8], kind: EntryType, mode: u32, size: u64) -> Header {
        let mut h = Header::new_ustar();
        let field = &mut h.as_old_mut().name;
        assert!(name.len() <= field.len(), "raw names are at most 100 bytes");
        field[..name.len()].copy_from_slice(name);
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(T0);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    pub fn push(&mut self, mut h: Header, data: &[u8]) -> &mut RawTar {
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut RawTar {
        let h = Self::header(
            name.as_bytes(),
            EntryType::Regular,
            0o644,
            data.len() as u64,
        );
        self.push(h, data)
    }

    pub fn dir(&mut self, name: &str) -> &mut RawTar {
        let h = Self::header(name.as_bytes(), EntryType::Directory, 0o755, 0);
        self.push(h, b"")
    }

    pub fn link(&mut self, kind: EntryType, name: &str, target: &str) -> &mut RawTar {
        let mut h = Self::header(name.as_bytes(), kind, 0o777, 0);
        let field = &mut h.as_old_mut().linkname;
        field[..target.len()].copy_from_slice(target.as_bytes());
        self.push(h, b"")
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut RawTar {
        self.link(EntryType::Symlink, name, target)
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut RawTar {
        self.link(EntryType::Link, name, target)
    }

    pub fn device(&mut self, name: &str, kind: EntryType, major: u32, minor: u32) -> &mut RawTar {
        let mut h = Self::header(name.as_bytes(), kind, 0o666, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.push(h, b"")
    }

    /// A PAX extended header describing the next member.
    pub fn pax(&mut self, records: &[(&[u8], &[u8])]) -> &mut RawTar {
        let data: Vec<u8> = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
        let h = Self::header(
            b"PaxHeaders/x",
            EntryType::XHeader,
            0o644,
            data.len() as u64,
        );
        self.push(h, &data)
    }

    pub fn bytes(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

/// Hands out 1 to 7 bytes per read, as a slow network or pipe may.
pub(super) struct ShortReads<R> {
    inner: R,
    state: u32,
}

impl<R> ShortReads<R> {
    pub fn new(inner: R) -> Self {
        ShortReads {
            inner,
            state: 12345,
        }
    }
}

impl<R: Read> Read for ShortReads<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.state = self.state.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let n = 1 + (self.state >> 16) as usize % 7;
        let n = n.min(buf.len());
        self.inner.read(&mut buf[..n])
    }
}

/// Everything about one path of a tree that a layer is supposed to preserve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Node {
    pub path: String,
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: (i64, i64),
    pub size: u64,
    pub content: Option<Digest>,
    pub link: Option<String>,
    pub rdev: (u64, u64),
    pub xattrs: Vec<(String, Vec<u8>)>,
    /// The first path (in listing order) sharing this inode, when it is not this one.
    pub hardlink_of: Option<String>,
}

/// The tree below `root` (the root itself as ""), sorted by path.
pub(super) fn listing(root: &Path) -> Vec<Node> {
    let mut out = Vec::new();
    let mut inodes = HashMap::new();
    walk(root, "", &mut out, &mut inodes);
    out
}

fn walk(abs: &Path, rel: &str, out: &mut Vec<Node>, inodes: &mut HashMap<(u64, u64), String>) {
    let m = fs::symlink_metadata(abs).unwrap();
    let ft = m.file_type();
    let kind = if ft.is_dir() {
        "dir"
    } else if ft.is_file() {
        "file"
    } else if ft.is_symlink() {
        "symlink"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_char_device() {
        "char"
    } else {
        "other"
    };
    let mut xattrs: Vec<_> = xattr::list(abs)
        .unwrap()
        .map(|n| {
            let v = xattr::get(abs, &n).unwrap().unwrap_or_default();
            (n.to_string_lossy().into_owned(), v)
        })
        .collect();
    xattrs.sort();
    let hardlink_of = if !ft.is_dir() && m.nlink() > 1 {
        let first = inodes
            .entry((m.dev(), m.ino()))
            .or_insert_with(|| rel.to_string());
        (first != rel).then(|| first.clone())
    } else {
        None
    };
    out.push(Node {
        path: rel.to_string(),
        kind,
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
        mtime: (m.mtime(), m.mtime_nsec()),
        size: if ft.is_file() { m.len() } else { 0 },
        content: ft.is_file().then(|| Digest::of(&fs::read(abs).unwrap())),
        link: ft
            .is_symlink()
            .then(|| fs::read_link(abs).unwrap().to_string_lossy().into_owned()),
        rdev: (
            nix::sys::stat::major(m.rdev()),
            nix::sys::stat::minor(m.rdev()),
        ),
        xattrs,
        hardlink_of,
    });
    if ft.is_dir() {
        let mut names: Vec<_> = fs::read_dir(abs)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let child = if rel.is_empty() {
                name.to_string_lossy().into_owned()
            } else {
                format!("{rel}/{}", name.to_string_lossy())
            };
            walk(&abs.join(&name), &child, out, inodes);
        }
    }
}

/// The node at `path` in a listing.
pub(super) fn node<'a>(list: &'a [Node], path: &str) -> &'a Node {
    list.iter()
        .find(|n| n.path == path)
        .unwrap_or_else(|| panic!("{path} is missing from {list:#?}"))
}

/// Member names of a tar, in order, with their types.
pub(super) fn members(tar: &[u8]) -> Vec<(String, EntryType)> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = OsStr::from_bytes(&e.path_bytes())
                .to_string_lossy()
                .into_owned();
            (name, e.header().entry_type())
        })
        .collect()
}
