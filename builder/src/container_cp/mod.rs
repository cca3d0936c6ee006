//! `cp CONTAINER:SRC DEST` and `cp SRC CONTAINER:DEST`: a file or directory copied out
//! of or into a container, running or not, as `docker cp` does (`docker create` + `cp` +
//! `rm` is how a pipeline takes a build's output out of an image). Copying in is
//! `into_root`'s.
//!
//! The container's root is its init's (`/proc/<init>/root`) while it runs, else a
//! scratch overlay of the image's layers under the container's upper dir, which is only
//! read. `SRC` is resolved inside that root (openat2 `RESOLVE_IN_ROOT`: symlinks and
//! `..` never leave it), its last component not followed unless asked (`-L`), and
//! everything is read through descriptors ([`upper_copy`]), so a running container that
//! swaps a path for a symlink cannot make the copy read the host.
//!
//! Docker's naming rules: into an existing directory `DEST`, `SRC` keeps its name
//! (`SRC/.` copies a directory's contents instead); otherwise it becomes `DEST`. `-` as
//! `DEST` writes a tar of it to standard output.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::AtFlags;
use nix::sys::stat::{SFlag, fstatat};
use rbuild_store::layer::{LayerError, WriteOptions, write_tar};
use rbuild_store::{Store, StoreError};

use crate::sandbox::enter::is_running;
use crate::snapshot::{Snapshot, SnapshotError};
use crate::store::containers::{Container, State};
use crate::sys::fs::open_dir_in_root;
use crate::upper_copy::{self, CopyError};

mod into_root;

/// Symlinks followed at most this often for `-L` (Linux `MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

#[derive(Debug, thiserror::Error)]
pub enum CpError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Copy(#[from] CopyError),
    #[error(transparent)]
    Tar(#[from] LayerError),
    /// docker's words.
    #[error("Could not find the file {path} in container {container}")]
    NotFound { path: String, container: String },
    #[error("{0}")]
    Refused(String),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
}

fn io_at(what: impl Into<String>) -> impl FnOnce(io::Error) -> CpError {
    let what = what.into();
    move |source| CpError::Io { what, source }
}

/// Where the copy goes.
pub enum Dest<'a> {
    /// A path on the host.
    Path(&'a Path),
    /// A tar stream (`-`).
    Tar(&'a mut dyn Write),
}

/// What `SRC` names once resolved: its directory, open, and its name there (none for
/// the root itself).
struct Source {
    parent: OwnedFd,
    name: Option<OsString>,
    kind: SFlag,
    /// `SRC/.`: a directory's contents, not the directory.
    contents: bool,
}

/// The root of a running container as its init sees it (`/proc/<init>/root`), checked
/// to be a sandbox's init still, not a PID reused since.
fn running_root(c: &Container) -> Option<PathBuf> {
    match (c.state, c.init_pid) {
        (State::Running, Some(pid)) if is_running(pid) => {
            Some(PathBuf::from(format!("/proc/{pid}/root")))
        }
        _ => None,
    }
}

/// Copies `src` out of container `name` to `dest`; `follow`: a symlink `src` is followed
/// (`-L`), else copied as the link.
pub fn copy_out(
    store: &Store,
    name: &str,
    src: &str,
    follow: bool,
    dest: Dest<'_>,
    cancel: &dyn Fn() -> bool,
) -> Result<(), CpError> {
    let c = store.container(name)?;
    // Its init's root while it runs; a read-only view of its files otherwise.
    let (root, view) = match running_root(&c) {
        Some(root) => (root, None),
        None => {
            let image = store
                .image(&c.image_id)?
                .ok_or_else(|| StoreError::NoSuchImage(c.image_id.to_string()))?;
            let upper = store.container_upper_dir(&c.id).upper;
            let view = Snapshot::prepare_view(store, &image.layers, &upper)?;
            (view.merged().to_path_buf(), Some(view))
        }
    };
    let result = (|| {
        let root_dir = File::open(&root).map_err(io_at(format!("opening {}", root.display())))?;
        let source = resolve(&root_dir, src, follow).map_err(|e| match e {
            CpError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                CpError::NotFound {
                    path: src.to_string(),
                    container: name.to_string(),
                }
            }
            e => e,
        })?;
        let shown = Path::new(src);
        match dest {
            Dest::Path(dest) => copy_to_path(&source, shown, dest, cancel),
            Dest::Tar(out) => copy_to_tar(store, &source, shown, out, cancel),
        }
    })();
    let discarded = match view {
        Some(v) => v.discard().map_err(CpError::from),
        None => Ok(()),
    };
    result.and(discarded)
}

/// Copies the host path `src` into container `name` at `dest`, docker's naming rules as
/// for [`copy_out`]; `archive`: the host's owners kept (`-a`), else the container's root
/// owns the copies. A stopped container's root is mounted for the copy, the container
/// claimed meanwhile (a concurrent `start` is refused) and given back as it was.
pub fn copy_in(
    store: &Store,
    name: &str,
    src: &Path,
    dest: &str,
    archive: bool,
    cancel: &dyn Fn() -> bool,
) -> Result<(), CpError> {
    let c = store.container(name)?;
    std::fs::symlink_metadata(src).map_err(io_at(format!("lstat {}", src.display())))?;
    if let Some(root) = running_root(&c) {
        return copy_in_root(&root, name, src, dest, archive, cancel);
    }
    let me = std::process::id() as i32;
    if !store.claim_container(&c.id, me)? {
        return Err(CpError::Refused(format!(
            "container {name} was started meanwhile: copy again"
        )));
    }
    let result = (|| {
        let image = store
            .image(&c.image_id)?
            .ok_or_else(|| StoreError::NoSuchImage(c.image_id.to_string()))?;
        let snapshot = Snapshot::prepare_for_container(
            store,
            &image.layers,
            store.container_upper_dir(&c.id),
        )?;
        let copied = copy_in_root(snapshot.merged(), name, src, dest, archive, cancel);
        copied.and(snapshot.keep().map_err(CpError::from))
    })();
    result.and(store.release_container(&c, me).map_err(CpError::from))
}

fn copy_in_root(
    root: &Path,
    container: &str,
    src: &Path,
    dest: &str,
    archive: bool,
    cancel: &dyn Fn() -> bool,
) -> Result<(), CpError> {
    let root_dir = File::open(root).map_err(io_at(format!("opening {}", root.display())))?;
    let src_is_dir = std::fs::metadata(src).is_ok_and(|m| m.is_dir())
        && !std::fs::symlink_metadata(src).is_ok_and(|m| m.is_symlink());
    let contents = src.as_os_str().as_bytes().ends_with(b"/.");
    let rel = relative(dest)?;
    let shown = Path::new(dest);
    let not_found = |path: &Path| CpError::NotFound {
        path: format!("/{}", path.display()),
        container: container.to_string(),
    };
    match open_dir_in_root(&root_dir, &rel.to_string_lossy()) {
        // Into an existing directory: by its own name, or its contents (`SRC/.`).
        Ok(dir) if contents => {
            let mut names: Vec<_> = std::fs::read_dir(src)
                .and_then(|rd| {
                    rd.map(|e| e.map(|e| e.file_name()))
                        .collect::<io::Result<Vec<_>>>()
                })
                .map_err(io_at(format!("listing {}", src.display())))?;
            names.sort();
            for n in names {
                into_root::put(&dir, &n, &src.join(&n), &shown.join(&n), archive, cancel)?;
            }
            Ok(())
        }
        Ok(dir) => {
            let name = src
                .file_name()
                .ok_or_else(|| CpError::Refused(format!("{}: no file name", src.display())))?;
            into_root::put(&dir, name, src, &shown.join(name), archive, cancel)
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) && src_is_dir => Err(CpError::Refused(
            format!("cannot copy a directory to the file {dest}"),
        )),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTDIR | libc::ENOENT)) => {
            if dest.ends_with('/') && !src_is_dir {
                return Err(CpError::Refused(format!("{dest}: no such directory")));
            }
            let (Some(last), parent) = (rel.file_name(), rel.parent().unwrap_or(Path::new("")))
            else {
                return Err(not_found(&rel));
            };
            let dir =
                open_dir_in_root(&root_dir, &parent.to_string_lossy()).map_err(|e| {
                    match e.raw_os_error() {
                        Some(libc::ENOENT | libc::ENOTDIR) => not_found(parent),
                        _ => io_at(format!("opening {}", parent.display()))(e),
                    }
                })?;
            into_root::put(&dir, last, src, shown, archive, cancel)
        }
        Err(e) => Err(io_at(format!("opening {dest}"))(e)),
    }
}

/// `src` inside `root`: its parent opened, its last component looked at without
/// following it (or, with `follow`, followed inside the root until it is no symlink).
fn resolve(root: &File, src: &str, follow: bool) -> Result<Source, CpError> {
    let contents = src.ends_with("/.") || src == ".";
    let mut rel = relative(src)?;
    for _ in 0..=MAX_SYMLINKS {
        let name = rel.file_name().map(OsStr::to_os_string);
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        let parent = open_dir_in_root(root, &parent_rel.to_string_lossy())
            .map_err(io_at(format!("opening {}", parent_rel.display())))?;
        let Some(name) = name else {
            // The root itself.
            return Ok(Source {
                parent,
                name: None,
                kind: SFlag::S_IFDIR,
                contents: true,
            });
        };
        let st = fstatat(&parent, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| io_at(format!("inspecting {}", rel.display()))(e.into()))?;
        let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        if kind == SFlag::S_IFLNK && (follow || contents) {
            let target = nix::fcntl::readlinkat(&parent, name.as_os_str())
                .map_err(|e| io_at(format!("reading the link {}", rel.display()))(e.into()))?;
            let target = Path::new(&target);
            rel = if target.is_absolute() {
                relative(&target.to_string_lossy())?
            } else {
                parent_rel.join(target)
            };
            continue;
        }
        if contents && kind != SFlag::S_IFDIR {
            return Err(CpError::Refused(format!("{src}: not a directory")));
        }
        return Ok(Source {
            parent,
            name: Some(name),
            kind,
            contents,
        });
    }
    Err(CpError::Refused(format!(
        "{src}: too many levels of symbolic links"
    )))
}

/// `src` as a path of plain names below the root.
fn relative(src: &str) -> Result<PathBuf, CpError> {
    let mut rel = PathBuf::new();
    for c in Path::new(src).components() {
        match c {
            Component::Normal(n) => rel.push(n),
            // Lexically, and never above the root: inside the root that is where
            // resolving it would lead too (`/..` is `/`).
            Component::ParentDir => {
                rel.pop();
            }
            Component::RootDir | Component::CurDir => {}
            Component::Prefix(_) => return Err(CpError::Refused(format!("bad path {src}"))),
        }
    }
    Ok(rel)
}

/// The directory `source` names, opened (for its contents).
fn open_source_dir(source: &Source) -> Result<OwnedFd, CpError> {
    match &source.name {
        None => Ok(source.parent.try_clone().map_err(io_at("duplicating"))?),
        Some(name) => nix::fcntl::openat(
            &source.parent,
            name.as_os_str(),
            nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_NOFOLLOW
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| io_at("opening the directory")(e.into())),
    }
}

fn copy_to_path(
    source: &Source,
    shown: &Path,
    dest: &Path,
    cancel: &dyn Fn() -> bool,
) -> Result<(), CpError> {
    let existing = std::fs::metadata(dest).ok();
    let is_dir = source.kind == SFlag::S_IFDIR;
    if source.contents {
        match existing {
            Some(m) if m.is_dir() => {}
            Some(_) => {
                return Err(CpError::Refused(format!(
                    "cannot copy a directory to the file {}",
                    dest.display()
                )));
            }
            None => {
                std::fs::create_dir(dest).map_err(io_at(format!("creating {}", dest.display())))?
            }
        }
        let dir = open_source_dir(source)?;
        return Ok(upper_copy::copy_contents_of(&dir, shown, dest, cancel)?);
    }
    let name = source.name.as_deref().unwrap_or(OsStr::new("."));
    let target = match existing {
        Some(m) if m.is_dir() => dest.join(name),
        Some(_) if is_dir => {
            return Err(CpError::Refused(format!(
                "cannot copy a directory to the file {}",
                dest.display()
            )));
        }
        Some(_) => dest.to_path_buf(),
        None if dest.as_os_str().as_bytes().ends_with(b"/") && !is_dir => {
            return Err(CpError::Refused(format!(
                "{}: no such directory",
                dest.display()
            )));
        }
        None => dest.to_path_buf(),
    };
    // A file replaces a file; nothing replaces a directory.
    match std::fs::symlink_metadata(&target) {
        Ok(m) if m.is_dir() && is_dir => {
            let dir = open_source_dir(source)?;
            return Ok(upper_copy::copy_contents_of(&dir, shown, &target, cancel)?);
        }
        Ok(m) if m.is_dir() => {
            return Err(CpError::Refused(format!(
                "cannot overwrite the directory {} with a non-directory",
                target.display()
            )));
        }
        Ok(_) if is_dir => {
            return Err(CpError::Refused(format!(
                "cannot overwrite the non-directory {} with a directory",
                target.display()
            )));
        }
        Ok(_) => std::fs::remove_file(&target)
            .map_err(io_at(format!("replacing {}", target.display())))?,
        Err(_) => {}
    }
    Ok(upper_copy::copy_entry_at(
        &source.parent,
        name,
        shown,
        &target,
        cancel,
    )?)
}

/// A tar of `source`, its entries named for it (its contents at the top for `SRC/.`),
/// written from a copy in a scratch dir of the store.
fn copy_to_tar(
    store: &Store,
    source: &Source,
    shown: &Path,
    out: &mut dyn Write,
    cancel: &dyn Fn() -> bool,
) -> Result<(), CpError> {
    let scratch = store.scratch_dir("cp")?;
    let result = (|| {
        copy_to_path(source, shown, &scratch, cancel)?;
        write_tar(&scratch, &mut *out, &WriteOptions::default())?;
        Ok(())
    })();
    let cleaned = rbuild_store::fsutil::remove_tree(&scratch)
        .map_err(io_at(format!("removing {}", scratch.display())));
    result.and(cleaned)
}
