//! Building image archives and layer tars inside tests (hostile ones included), and
//! listing a tree so that two extractions can be compared.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use sha2::{Digest as _, Sha256};
use tar::{EntryType, Header};

pub fn sha256_hex(bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(bytes);
    format!("{:x}", h.finalize())
}

/// sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> String {
    let mut f = fs::File::open(path).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    format!("{:x}", h.finalize())
}

/// A minimal image config listing `diff_ids` (bare hex digests).
pub fn config_json(diff_ids: &[String]) -> Vec<u8> {
    let ids: Vec<String> = diff_ids.iter().map(|d| format!("sha256:{d}")).collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": ids},
    }))
    .unwrap()
}

/// A tar built member by member with raw headers, so that names `set_path` would
/// refuse (`..`, absolute paths) can be written.
pub struct RawTar<W: std::io::Write = Vec<u8>> {
    b: tar::Builder<W>,
}

impl RawTar<Vec<u8>> {
    pub fn new() -> Self {
        RawTar {
            b: tar::Builder::new(Vec::new()),
        }
    }
}

impl<W: std::io::Write> RawTar<W> {
    pub fn to(w: W) -> Self {
        RawTar {
            b: tar::Builder::new(w),
        }
    }

    /// A ustar header with `name` copied verbatim into the name field.
    pub fn header(name: &str, kind: EntryType, mode: u32, size: u64) -> Header {
        let mut h = Header::new_ustar();
        let field = &mut h.as_old_mut().name;
        assert!(name.len() <= field.len(), "raw names are at most 100 bytes");
        field[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(1_500_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    pub fn push(&mut self, mut h: Header, data: impl Read) -> &mut Self {
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        let h = Self::header(name, EntryType::Regular, 0o644, data.len() as u64);
        self.push(h, data)
    }

    pub fn file_from(&mut self, name: &str, path: &Path) -> &mut Self {
        let size = fs::metadata(path).unwrap().len();
        let h = Self::header(name, EntryType::Regular, 0o644, size);
        self.push(h, fs::File::open(path).unwrap())
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        let h = Self::header(name, EntryType::Directory, 0o755, 0);
        self.push(h, &b""[..])
    }

    pub fn link(&mut self, kind: EntryType, name: &str, target: &str) -> &mut Self {
        let mut h = Self::header(name, kind, 0o777, 0);
        let field = &mut h.as_old_mut().linkname;
        field[..target.len()].copy_from_slice(target.as_bytes());
        self.push(h, &b""[..])
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.link(EntryType::Symlink, name, target)
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.link(EntryType::Link, name, target)
    }

    pub fn device(&mut self, name: &str, kind: EntryType, major: u32, minor: u32) -> &mut Self {
        let mut h = Self::header(name, kind, 0o666, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.push(h, &b""[..])
    }

    pub fn finish(self) -> W {
        self.b.into_inner().unwrap()
    }
}

/// A new-style Docker archive (what `docker save` writes since 25, and `rbuild save`):
/// `blobs/sha256/<hex>` for the config and plain layer tars, `manifest.json` with
/// `RepoTags`. Diff IDs are the layers' own digests.
pub fn docker_archive(layers: &[Vec<u8>], tags: &[&str]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha256_hex(l)).collect();
    let config = config_json(&diff_ids);
    let config_hex = sha256_hex(&config);
    let manifest = serde_json::json!([{
        "Config": format!("blobs/sha256/{config_hex}"),
        "RepoTags": tags,
        "Layers": diff_ids.iter().map(|d| format!("blobs/sha256/{d}")).collect::<Vec<_>>(),
    }]);
    let mut t = RawTar::new();
    t.file(&format!("blobs/sha256/{config_hex}"), &config);
    for (l, d) in layers.iter().zip(&diff_ids) {
        t.file(&format!("blobs/sha256/{d}"), l);
    }
    t.file("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    t.finish()
}

/// Everything about one path of a tree that an image is supposed to preserve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub content: Option<String>,
    pub link: Option<String>,
}

/// The tree below `root` by relative path (the root itself left out: tools make it
/// with their own mode).
pub fn listing(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let m = fs::symlink_metadata(&path).unwrap();
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_file() {
            "file"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_char_device() {
            "char"
        } else {
            "other"
        };
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        out.insert(
            rel,
            Node {
                kind,
                mode: m.mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
                size: if ft.is_file() { m.len() } else { 0 },
                content: ft.is_file().then(|| sha256_file(&path)),
                link: ft
                    .is_symlink()
                    .then(|| fs::read_link(&path).unwrap().to_string_lossy().into_owned()),
            },
        );
        if ft.is_dir() {
            walk(root, &path, out);
        }
    }
}

/// Asserts two listings are equal, naming the first paths that differ.
#[track_caller]
pub fn assert_same_tree(a: &BTreeMap<String, Node>, b: &BTreeMap<String, Node>, what: &str) {
    let mut diffs = Vec::new();
    for (p, n) in a {
        match b.get(p) {
            None => diffs.push(format!("only in the first: {p}")),
            Some(m) if m != n => diffs.push(format!("{p}: {n:?} vs {m:?}")),
            _ => {}
        }
    }
    for p in b.keys().filter(|p| !a.contains_key(*p)) {
        diffs.push(format!("only in the second: {p}"));
    }
    assert!(
        diffs.is_empty(),
        "{what}: trees differ ({} paths):\n{}",
        diffs.len(),
        diffs
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
