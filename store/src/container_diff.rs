//! `rbuild diff`: a container's changes, read from its overlay upper dir, as docker
//! lists them (`A`, `C`, `D` and a path, sorted by path).
//!
//! Only the upper dir's own entries are read (through directory descriptors opened
//! with O_NOFOLLOW, each entry lstat'ed relative to its directory), and whether a path was in the image is looked up component by component in
//! the layer trees, stopping at a symlink, a whiteout or an opaque directory, so nothing
//! outside the store is ever touched.
//!
//! Differences from docker, kept on purpose: an opaque directory (one removed and made
//! again) is `C` when the image had it and `A` otherwise, with its contents `A` (docker
//! prints `D` for the directory itself); a directory copied up only because something
//! under it changed is always listed, as docker does for the parents of a change.
//!
//! What the sandbox itself left in the upper dir for its mounts ([`ContainerFs`]'s
//! `artefacts`) is neither listed here nor committed by `commit`, which reads the same
//! [`Store::container_fs`].

use std::collections::HashSet;
use std::ffi::{CString, OsStr};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::NixPath;
use nix::dir::Dir;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag, fstatat};

use crate::containers::Container;
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

/// Where the sandbox mounts things (builder `sandbox::mountpoints`): what it creates
/// there, empty, when the image lacks it is no change of the user's (`-v` and `--tmpfs`
/// targets are added from the container's config).
const MOUNT_POINTS: [&str; 6] = [
    "proc",
    "dev",
    "sys",
    "etc/hosts",
    "etc/resolv.conf",
    "etc/hostname",
];

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

/// Opens a directory of the upper dir for [`walk`]: relative to its parent's
/// descriptor and never through a symlink, so a running container that swaps a
/// directory for a symlink meanwhile makes `diff` fail rather than list the host's.
fn open_dir<P: ?Sized + NixPath>(
    parent: Option<&Dir>,
    name: &P,
    shown: &Path,
) -> Result<Dir, StoreError> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let opened = match parent {
        Some(p) => Dir::openat(p, name, flags, Mode::empty()),
        None => Dir::open(name, flags, Mode::empty()),
    };
    opened.map_err(|e| io(shown, "opening")(e.into()))
}

/// Walks the directory open as `dir` (`rel` below the upper root) and records its
/// changes, leaving out the `artefacts`.
fn walk(
    view: &ContainerFs,
    dir: &mut Dir,
    rel: &Path,
    out: &mut Vec<Change>,
) -> Result<(), StoreError> {
    let shown = view.upper.join(rel);
    let mut names: Vec<CString> = Vec::new();
    for entry in dir.iter() {
        let entry = entry.map_err(|e| io(&shown, "reading")(e.into()))?;
        let name = entry.file_name();
        if name != c"." && name != c".." {
            names.push(name.to_owned());
        }
    }
    names.sort();
    for name in names {
        let rel = rel.join(OsStr::from_bytes(name.to_bytes()));
        if view.artefacts.contains(&rel) {
            continue;
        }
        let shown = view.upper.join(&rel);
        let st = fstatat(&*dir, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| io(&shown, "reading")(e.into()))?;
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        let abs = format!("/{}", rel.display());
        if kind == SFlag::S_IFCHR && st.st_rdev == 0 {
            out.push(Change {
                kind: ChangeKind::Deleted,
                path: abs,
            });
            continue;
        }
        let kind_of_change = if in_image(&view.trees, &rel) {
            ChangeKind::Changed
        } else {
            ChangeKind::Added
        };
        out.push(Change {
            kind: kind_of_change,
            path: abs,
        });
        if kind == SFlag::S_IFDIR {
            let mut sub = open_dir(Some(dir), name.as_c_str(), &shown)?;
            walk(view, &mut sub, &rel, out)?;
        }
    }
    Ok(())
}

/// A container's upper dir as `diff` and `commit` read it.
#[derive(Debug, Clone)]
pub struct ContainerFs {
    /// The overlay upper dir: the container's changes, in overlay's format.
    pub upper: PathBuf,
    /// The image's layer trees, bottom first.
    pub trees: Vec<PathBuf>,
    /// Entries of `upper` (relative paths) that the sandbox made for its own mounts,
    /// not the container's changes: empty mount-point files and directories the image
    /// lacks, and a directory copied up (`etc/`) or made only to hold them.
    pub artefacts: HashSet<PathBuf>,
}

/// `target` ("/a/b", "a/b/") as a relative path of plain components, or None.
fn relative_target(target: &str) -> Option<PathBuf> {
    let mut rel = PathBuf::new();
    for c in Path::new(target).components() {
        match c {
            std::path::Component::Normal(n) => rel.push(n),
            std::path::Component::RootDir | std::path::Component::CurDir => {}
            _ => return None,
        }
    }
    (!rel.as_os_str().is_empty()).then_some(rel)
}

/// What `lstat` says of `rel` under `upper`, each parent checked to be a real
/// directory first, so that nothing is looked up through a symlink out of `upper`.
fn lstat_in(upper: &Path, rel: &Path) -> Option<fs::Metadata> {
    let mut at = upper.to_path_buf();
    let n = rel.components().count();
    for (i, c) in rel.components().enumerate() {
        at.push(c);
        let m = fs::symlink_metadata(&at).ok()?;
        if i + 1 == n {
            return Some(m);
        }
        if !m.is_dir() {
            return None;
        }
    }
    None
}

/// Whether every entry of the directory `rel` is an artefact already.
fn only_artefacts(upper: &Path, rel: &Path, artefacts: &HashSet<PathBuf>) -> bool {
    match fs::read_dir(upper.join(rel)) {
        Ok(rd) => rd
            .map(|e| e.map(|e| rel.join(e.file_name())))
            .all(|p| p.is_ok_and(|p| artefacts.contains(&p))),
        Err(_) => false,
    }
}

/// The sandbox's leftovers in `upper` for the mount points `targets` (relative).
fn find_artefacts(trees: &[PathBuf], upper: &Path, targets: &[PathBuf]) -> HashSet<PathBuf> {
    let mut artefacts = HashSet::new();
    // Deepest first: a mount point under another one is settled before its parent.
    let mut targets = targets.to_vec();
    targets.sort_by_key(|t| std::cmp::Reverse(t.components().count()));
    targets.dedup();
    for target in &targets {
        if let Some(m) = lstat_in(upper, target) {
            let empty = if m.is_file() {
                m.len() == 0
            } else if m.is_dir() {
                !is_opaque(&upper.join(target)) && only_artefacts(upper, target, &artefacts)
            } else {
                false
            };
            if !empty || in_image(trees, target) {
                continue;
            }
            artefacts.insert(target.clone());
        }
        // Its parents, when they hold nothing else: made for it (`-v /h:/a/b` on an
        // image without `/a`), or copied up from the image to make it (`etc/`, which
        // stays in the upper dir after the run removed the mount points in it).
        let mut parent = target.parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            let real_dir = lstat_in(upper, p).is_some_and(|m| m.is_dir());
            if !real_dir || is_opaque(&upper.join(p)) || !only_artefacts(upper, p, &artefacts) {
                break;
            }
            artefacts.insert(p.to_path_buf());
            parent = p.parent();
        }
    }
    artefacts
}

impl Store {
    /// Container `c`'s upper dir with what it needs to be read as changes.
    pub fn container_fs(&self, c: &Container) -> Result<ContainerFs, StoreError> {
        let image = self
            .image(&c.image_id)?
            .ok_or_else(|| StoreError::NoSuchImage(c.image_id.to_string()))?;
        let trees = self.layer_trees(&image.layers)?;
        let upper = self.container_upper_dir(&c.id).upper;
        // Containers made before their config was kept have only the fixed targets.
        let config = self.run_config(&c.id).unwrap_or_default();
        let bind_targets = config.binds.iter().filter_map(|b| b.split(':').nth(1));
        let tmpfs_targets = config.tmpfs.iter().filter_map(|t| t.split(':').next());
        let targets: Vec<PathBuf> = MOUNT_POINTS
            .iter()
            .copied()
            .chain(bind_targets)
            .chain(tmpfs_targets)
            .filter_map(relative_target)
            .collect();
        let artefacts = if upper.is_dir() {
            find_artefacts(&trees, &upper, &targets)
        } else {
            HashSet::new()
        };
        Ok(ContainerFs {
            upper,
            trees,
            artefacts,
        })
    }

    /// The changes of container `id` against its image, sorted by path.
    pub fn container_changes(&self, id: &str) -> Result<Vec<Change>, StoreError> {
        let c = self.container(id)?;
        let view = self.container_fs(&c)?;
        let mut out = Vec::new();
        if view.upper.is_dir() {
            let mut root = open_dir(None, view.upper.as_path(), &view.upper)?;
            walk(&view, &mut root, Path::new(""), &mut out)?;
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(paths: &[&str]) -> HashSet<PathBuf> {
        paths.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn mount_point_leftovers_are_artefacts_and_changes_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let (image, upper) = (dir.path().join("image"), dir.path().join("upper"));
        for d in ["etc", "data"] {
            fs::create_dir_all(image.join(d)).unwrap();
        }
        fs::write(image.join("etc/passwd"), "root\n").unwrap();
        let trees = vec![image.clone()];
        let targets: Vec<PathBuf> = ["etc/hosts", "etc/hostname", "proc", "a/b/c", "data"]
            .iter()
            .map(PathBuf::from)
            .collect();

        // A running container: etc/ copied up for empty stubs, /proc made, a `-v`
        // target made with its parents, and /data (in the image) untouched.
        fs::create_dir_all(upper.join("etc")).unwrap();
        fs::write(upper.join("etc/hosts"), "").unwrap();
        fs::write(upper.join("etc/hostname"), "").unwrap();
        fs::create_dir_all(upper.join("proc")).unwrap();
        fs::create_dir_all(upper.join("a/b/c")).unwrap();
        assert_eq!(
            find_artefacts(&trees, &upper, &targets),
            set(&[
                "etc",
                "etc/hosts",
                "etc/hostname",
                "proc",
                "a",
                "a/b",
                "a/b/c"
            ])
        );

        // What the container wrote is no artefact, nor are the dirs that hold it.
        fs::write(upper.join("etc/hostname"), "mine\n").unwrap();
        fs::write(upper.join("a/b/note"), "x").unwrap();
        fs::create_dir_all(upper.join("data")).unwrap();
        assert_eq!(
            find_artefacts(&trees, &upper, &targets),
            set(&["etc/hosts", "proc", "a/b/c"]),
            "/data is in the image: an empty upper copy of it is the container's doing"
        );

        // After the run the stubs are gone: the copied-up etc/ alone is still one.
        let upper = dir.path().join("after");
        fs::create_dir_all(upper.join("etc")).unwrap();
        assert_eq!(find_artefacts(&trees, &upper, &targets), set(&["etc"]));
    }

    #[test]
    fn artefacts_are_never_looked_up_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let upper = dir.path().join("upper");
        let outside = dir.path().join("outside");
        fs::create_dir_all(outside.join("b")).unwrap();
        fs::create_dir_all(&upper).unwrap();
        std::os::unix::fs::symlink(&outside, upper.join("a")).unwrap();
        let found = find_artefacts(&[], &upper, &[PathBuf::from("a/b")]);
        assert!(found.is_empty(), "{found:?}");
    }
}
