//! `rbuild diff`: a container's changes, read from its overlay upper dir, as docker
//! lists them (`A`, `C`, `D` and a path, sorted by path).
//!
//! Only the upper dir's own entries are read (`symlink_metadata`, never following a
//! symlink), and whether a path was in the image is looked up component by component in
//! the layer trees, stopping at a symlink, a whiteout or an opaque directory, so nothing
//! outside the store is ever touched.
//!
//! Differences from docker, kept on purpose: an opaque directory (one removed and made
//! again) is `C` when the image had it and `A` otherwise, with its contents `A` (docker
//! prints `D` for the directory itself); a directory copied up only because something
//! under it changed is always listed, as docker does for the parents of a change.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::{Store, StoreError};

/// What happened to one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Changed,
    Deleted,
}

impl ChangeKind {
    /// docker's letter.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Changed => 'C',
            ChangeKind::Deleted => 'D',
        }
    }
}

/// One line of `diff`: the path is absolute, as inside the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    pub path: String,
}

/// Files the sandbox makes (empty) as mount points for its bind mounts; they are not
/// the user's changes when the image lacks them and they are still empty.
const MOUNT_POINTS: [&str; 3] = ["etc/hosts", "etc/resolv.conf", "etc/hostname"];

const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

fn io(path: &Path, what: &str) -> impl FnOnce(std::io::Error) -> StoreError {
    let what = format!("{what} {}", path.display());
    move |source| StoreError::Io { what, source }
}

fn is_whiteout(m: &fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(path: &Path) -> bool {
    // The xattr crate does not follow symlinks (lgetxattr); `path` is a directory.
    matches!(xattr::get(path, OPAQUE_XATTR), Ok(Some(v)) if v == b"y")
}

/// Whether the image whose layer trees are `trees` (bottom first) has `rel`.
fn in_image(trees: &[PathBuf], rel: &Path) -> bool {
    let comps: Vec<_> = rel.components().collect();
    for tree in trees.iter().rev() {
        let mut p = tree.clone();
        for (i, comp) in comps.iter().enumerate() {
            p.push(comp);
            match fs::symlink_metadata(&p) {
                Err(_) => {
                    // Not in this layer; a lower one shows through unless the parent
                    // directory of this layer is opaque.
                    let parent = p.parent().unwrap_or(tree);
                    if i > 0 && is_opaque(parent) {
                        return false;
                    }
                    break;
                }
                Ok(m) if is_whiteout(&m) => return false,
                Ok(_) if i + 1 == comps.len() => return true,
                // A non-directory over a parent hides everything below it.
                Ok(m) if !m.is_dir() => return false,
                Ok(_) => {}
            }
        }
    }
    false
}

/// Walks `dir` (`rel` below the upper root) and records its changes; returns whether
/// anything was recorded.
fn walk(
    trees: &[PathBuf],
    dir: &Path,
    rel: &Path,
    out: &mut Vec<Change>,
) -> Result<bool, StoreError> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .map_err(io(dir, "reading"))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(io(dir, "reading"))?;
    names.sort();
    let mut any = false;
    for name in names {
        let path = dir.join(&name);
        let rel = rel.join(&name);
        let m = fs::symlink_metadata(&path).map_err(io(&path, "reading"))?;
        let abs = format!("/{}", rel.display());
        if is_whiteout(&m) {
            out.push(Change {
                kind: ChangeKind::Deleted,
                path: abs,
            });
            any = true;
            continue;
        }
        let existed = in_image(trees, &rel);
        let kind = if existed {
            ChangeKind::Changed
        } else {
            ChangeKind::Added
        };
        if m.is_dir() {
            let at = out.len();
            out.push(Change { kind, path: abs });
            let below = walk(trees, &path, &rel, out)?;
            // The sandbox copies `etc/` up to mount its files over; alone it is no change.
            if rel == Path::new("etc") && !below && !is_opaque(&path) {
                out.truncate(at);
            } else {
                any = true;
            }
            continue;
        }
        let artefact = m.is_file()
            && m.len() == 0
            && !existed
            && MOUNT_POINTS.iter().any(|p| rel == Path::new(p));
        if !artefact {
            out.push(Change { kind, path: abs });
            any = true;
        }
    }
    Ok(any)
}

impl Store {
    /// The changes of container `id` against its image, sorted by path.
    pub fn container_changes(&self, id: &str) -> Result<Vec<Change>, StoreError> {
        let c = self.container(id)?;
        let image = self
            .image(&c.image_id)?
            .ok_or_else(|| StoreError::NoSuchImage(c.image_id.to_string()))?;
        let trees = self.layer_trees(&image.layers)?;
        let upper = self.container_upper_dir(&c.id).upper;
        let mut out = Vec::new();
        if upper.is_dir() {
            walk(&trees, &upper, Path::new(""), &mut out)?;
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }
}
