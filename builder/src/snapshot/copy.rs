//! The copy-and-compare snapshotter, for where overlay cannot be mounted (inside some
//! containers, on file systems overlay refuses as upper, `RBUILD_SNAPSHOTTER=copy`).
//!
//! Prepare copies the lower layers into a plain directory, bottom first, applying each
//! layer's whiteouts and opaque dirs as it goes, and remembers every entry. Commit walks
//! the directory again and writes what changed as an overlay-format diff dir — exactly
//! what overlay would have left in its upper dir for the same changes, so that
//! `Store::add_layer_dir` takes either and both give the same diff ID:
//!
//! - added or changed entries are copied (hard links kept);
//! - a deleted entry becomes a 0/0 character device;
//! - a directory that replaced something that was there (a file, or a directory that was
//!   removed and made again) is copied whole and marked opaque — overlay does the same
//!   when a directory is created over its own whiteout (`ovl_create_over_whiteout`);
//! - a directory is in the diff when it is new, its own inode changed, or anything under
//!   it is in the diff (overlay copies the parents of a copied-up entry up).
//!
//! "Changed" is decided without reading content: an entry is the same if it is the same
//! inode — same inode number *and* birth time (statx(2) `stx_btime`, so a number reused
//! after a delete is not mistaken for the old file) — with the same ctime. The kernel
//! sets ctime on every change of content or metadata and no one can set it back
//! (inode(7), "Last status change timestamp"). Timestamps come from a coarse clock,
//! though, so prepare waits until the clock has moved past the last copy it made; after
//! that every change has a ctime (and every new inode a birth time) no entry had.
//! The cost is a copy of the whole base at prepare: this is the slow path.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::SnapshotError;
use super::files::{self, Links, io_at};

/// One remembered entry of the prepared tree.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    ino: u64,
    birth: Option<SystemTime>,
    ctime: (i64, i64),
    is_dir: bool,
}

impl Entry {
    fn of(m: &fs::Metadata) -> Entry {
        Entry {
            ino: m.ino(),
            birth: m.created().ok(),
            ctime: (m.ctime(), m.ctime_nsec()),
            is_dir: m.is_dir(),
        }
    }

    fn same_inode(&self, other: &Entry) -> bool {
        self.ino == other.ino && self.birth == other.birth
    }
}

/// What the prepared tree held: entries by path relative to the root, and each
/// directory's names.
#[derive(Debug, Default)]
pub(crate) struct Baseline {
    entries: HashMap<PathBuf, Entry>,
    children: HashMap<PathBuf, Vec<OsString>>,
}

/// Copies `lowers` (bottom layer first) into the empty directory `merged` and remembers
/// the result.
pub(crate) fn prepare(
    lowers: &[PathBuf],
    merged: &Path,
    probe: &Path,
) -> Result<Baseline, SnapshotError> {
    for layer in lowers {
        apply_layer(layer, merged, &mut Links::default())?;
    }
    let mut base = Baseline::default();
    let mut newest = (0, 0);
    record(merged, Path::new(""), &mut base, &mut newest)?;
    wait_past(probe, newest)?;
    Ok(base)
}

/// Applies one layer dir (overlay format) onto `dst`, as overlay would stack it on top.
///
/// Writes only below `dst`: whatever is in the way of an entry is removed, not followed
/// (a symlink where the layer has a directory is replaced by the directory).
pub(super) fn apply_layer(src: &Path, dst: &Path, links: &mut Links) -> Result<(), SnapshotError> {
    for entry in fs::read_dir(src).map_err(io_at(src, "listing"))? {
        let entry = entry.map_err(io_at(src, "listing"))?;
        let (s, d) = (entry.path(), dst.join(entry.file_name()));
        let m = fs::symlink_metadata(&s).map_err(io_at(&s, "inspecting"))?;
        if files::is_whiteout(&m) {
            files::remove_any(&d)?;
        } else if m.is_dir() {
            let existing = fs::symlink_metadata(&d).ok();
            let keep = existing.is_some_and(|e| e.is_dir()) && !files::is_opaque(&s);
            if !keep {
                files::remove_any(&d)?;
                fs::create_dir(&d).map_err(io_at(&d, "creating"))?;
            }
            apply_layer(&s, &d, links)?;
            files::copy_meta(&s, &m, &d)?;
        } else {
            files::remove_any(&d)?;
            files::copy_leaf(&s, &m, &d, links)?;
        }
    }
    Ok(())
}

fn record(
    root: &Path,
    rel: &Path,
    base: &mut Baseline,
    newest: &mut (i64, i64),
) -> Result<(), SnapshotError> {
    let dir = root.join(rel);
    let mut names = Vec::new();
    for entry in fs::read_dir(&dir).map_err(io_at(&dir, "listing"))? {
        let entry = entry.map_err(io_at(&dir, "listing"))?;
        let name = entry.file_name();
        let rel = rel.join(&name);
        let m = fs::symlink_metadata(root.join(&rel)).map_err(io_at(&dir, "inspecting"))?;
        let e = Entry::of(&m);
        *newest = (*newest).max(e.ctime);
        if e.is_dir {
            record(root, &rel, base, newest)?;
        }
        base.entries.insert(rel, e);
        names.push(name);
    }
    base.children.insert(rel.to_path_buf(), names);
    Ok(())
}

/// Waits until a new inode gets a ctime after `newest` (the coarse clock ticks every few
/// milliseconds).
fn wait_past(probe: &Path, newest: (i64, i64)) -> Result<(), SnapshotError> {
    for _ in 0..1000 {
        let _ = fs::remove_file(probe);
        fs::write(probe, b"").map_err(io_at(probe, "creating"))?;
        let m = fs::symlink_metadata(probe).map_err(io_at(probe, "inspecting"))?;
        fs::remove_file(probe).map_err(io_at(probe, "removing"))?;
        if (m.ctime(), m.ctime_nsec()) > newest {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Err(SnapshotError::Io {
        what: format!("waiting for the clock to pass {newest:?}"),
        source: std::io::Error::other("the file system's ctime does not advance"),
    })
}

/// Writes what changed in `merged` since [`prepare`] into the empty overlay-format
/// directory `diff`.
pub(crate) fn diff(base: &Baseline, merged: &Path, diff: &Path) -> Result<(), SnapshotError> {
    let mut d = Differ {
        base,
        merged,
        diff,
        links: Links::default(),
        made: HashSet::new(),
    };
    d.made.insert(PathBuf::new());
    d.dir(Path::new(""))?;
    Ok(())
}

struct Differ<'a> {
    base: &'a Baseline,
    merged: &'a Path,
    diff: &'a Path,
    /// Hard links among the entries copied into the diff, by their inode in `merged`.
    links: Links,
    /// Directories made in the diff so far, relative.
    made: HashSet<PathBuf>,
}

impl Differ<'_> {
    /// Makes `rel`'s directory in the diff, and its parents, if not yet made; their
    /// metadata is set when each is finished.
    fn ensure(&mut self, rel: &Path) -> Result<(), SnapshotError> {
        if self.made.contains(rel) {
            return Ok(());
        }
        if let Some(parent) = rel.parent() {
            self.ensure(parent)?;
        }
        let p = self.diff.join(rel);
        fs::create_dir(&p).map_err(io_at(&p, "creating"))?;
        self.made.insert(rel.to_path_buf());
        Ok(())
    }

    /// Compares the same-inode directory `rel` with what it held; says whether the
    /// diff holds anything for it.
    fn dir(&mut self, rel: &Path) -> Result<bool, SnapshotError> {
        let here = self.merged.join(rel);
        let mut now = Vec::new();
        for entry in fs::read_dir(&here).map_err(io_at(&here, "listing"))? {
            now.push(entry.map_err(io_at(&here, "listing"))?.file_name());
        }
        let mut changed = false;
        for name in &now {
            let rel = rel.join(name);
            let src = self.merged.join(&rel);
            let m = fs::symlink_metadata(&src).map_err(io_at(&src, "inspecting"))?;
            let cur = Entry::of(&m);
            let old = self.base.entries.get(&rel);
            match old {
                Some(old) if old.same_inode(&cur) => {
                    if cur.is_dir {
                        let below = self.dir(&rel)?;
                        if below || old.ctime != cur.ctime {
                            self.ensure(&rel)?;
                            files::copy_meta(&src, &m, &self.diff.join(&rel))?;
                            changed = true;
                        }
                    } else if old.ctime != cur.ctime {
                        self.copy_new(&rel, &m, false)?;
                        changed = true;
                    }
                }
                // Something else was there: a directory now replaces it wholesale.
                Some(_) => {
                    self.copy_new(&rel, &m, true)?;
                    changed = true;
                }
                None => {
                    self.copy_new(&rel, &m, false)?;
                    changed = true;
                }
            }
        }
        // Deleted: a whiteout (a 0/0 character device, overlayfs.rst).
        let now: HashSet<&OsString> = now.iter().collect();
        for name in self.base.children.get(rel).into_iter().flatten() {
            if !now.contains(name) {
                self.ensure(rel)?;
                let p = self.diff.join(rel).join(name);
                nix::sys::stat::mknod(
                    &p,
                    nix::sys::stat::SFlag::S_IFCHR,
                    nix::sys::stat::Mode::empty(),
                    0,
                )
                .map_err(|e| io_at(&p, "creating the whiteout")(e.into()))?;
                changed = true;
            }
        }
        Ok(changed)
    }

    /// Copies the entry at `rel` (all of it, if a directory) into the diff.
    fn copy_new(
        &mut self,
        rel: &Path,
        m: &fs::Metadata,
        opaque: bool,
    ) -> Result<(), SnapshotError> {
        if let Some(parent) = rel.parent() {
            self.ensure(parent)?;
        }
        let (src, dst) = (self.merged.join(rel), self.diff.join(rel));
        if m.is_dir() {
            files::copy_tree(&src, &dst, &mut self.links)?;
            if opaque && self.base.entries.contains_key(rel) {
                xattr::set(&dst, files::OPAQUE_XATTR, b"y")
                    .map_err(io_at(&dst, "marking opaque"))?;
                // Setting the xattr changed nothing a layer records but the ctime.
            }
            self.made.insert(rel.to_path_buf());
        } else {
            files::copy_leaf(&src, m, &dst, &mut self.links)?;
        }
        Ok(())
    }
}
