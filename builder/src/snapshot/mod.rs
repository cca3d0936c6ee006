//! Snapshots: the root file system a RUN step (or a container) writes to, and the layer
//! made from what it changed (DESIGN.md, builder steps 4–5).
//!
//! ```text
//! let snap = Snapshot::prepare(&store, &image.layers)?;   // overlay mounted at merged()
//! sandbox.run(snap.merged(), …)?;                           // the step writes there
//! let layer = snap.commit(&store, &CommitOptions::default())?; // upper dir → layer, by rename
//! ```
//!
//! With overlay (the default), the step's writes land in a fresh upper dir that *is* the
//! diff: commit unmounts, and hands the upper dir to `Store::add_layer_dir`, which hashes
//! it as a tar and renames it into `layers/`. Nothing reads the base, so the cost of a
//! commit grows with what the step changed, never with the size of the image.
//! Where overlay cannot be mounted (`RBUILD_SNAPSHOTTER=copy`, or the mount fails with
//! EINVAL/EPERM/ENODEV, as in an unprivileged container), [`copy`] does the same job by
//! copying the base and comparing.
//!
//! Every error path and every panic leaves no mount and no scratch: [`Snapshot`]'s `Drop`
//! unmounts (lazily if something still holds the mount) and removes its scratch dir. A
//! process killed outright leaves them in the store's `tmp/`, where the next GC detaches
//! and removes them. A snapshot holds the store's write lock (shared) for its lifetime, so
//! GC never sweeps one in use.

mod copy;
mod files;
mod overlay;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use rbuild_store::commit::{CommittedLayer, UpperDir};
use rbuild_store::lock::StoreLock;
use rbuild_store::{Digest, Store, StoreError};

use crate::sys::mount;

/// The environment variable that picks the snapshotter: `overlay`, `copy` or `auto`
/// (overlay, falling back to copy when it cannot be mounted). Unset means `auto`.
pub const SNAPSHOTTER_ENV: &str = "RBUILD_SNAPSHOTTER";

/// Which snapshotter to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Snapshotter {
    /// overlayfs; fails when it cannot be mounted.
    Overlay,
    /// Copy the base, compare at commit.
    Copy,
    /// overlayfs, or copy when the kernel refuses the mount.
    Auto,
}

impl Snapshotter {
    /// From [`SNAPSHOTTER_ENV`].
    pub fn from_env() -> Result<Snapshotter, SnapshotError> {
        match std::env::var(SNAPSHOTTER_ENV) {
            Err(_) => Ok(Snapshotter::Auto),
            Ok(v) => v.parse(),
        }
    }
}

impl std::str::FromStr for Snapshotter {
    type Err = SnapshotError;
    fn from_str(s: &str) -> Result<Snapshotter, SnapshotError> {
        match s {
            "" | "auto" => Ok(Snapshotter::Auto),
            "overlay" | "overlayfs" => Ok(Snapshotter::Overlay),
            "copy" | "native" => Ok(Snapshotter::Copy),
            other => Err(SnapshotError::UnknownSnapshotter(other.to_string())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("layer {0} is not in the store")]
    MissingLayer(Digest),
    #[error(
        "mounting overlay at {target}: {errno} (options: {data_len} bytes{})",
        if *.relative { ", relative lower dirs" } else { "" }
    )]
    Mount {
        target: PathBuf,
        data_len: usize,
        relative: bool,
        errno: Errno,
    },
    #[error("unmounting {target}: {errno}; is a process still using the snapshot?")]
    Unmount { target: PathBuf, errno: Errno },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("unknown snapshotter {0:?} in {SNAPSHOTTER_ENV}: use overlay, copy or auto")]
    UnknownSnapshotter(String),
}

/// How to commit.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `SOURCE_DATE_EPOCH`: mtimes newer than this are set to it in the layer's tree
    /// before it is hashed, so the same step gives the same diff ID on any machine.
    pub clamp_mtime: Option<i64>,
}

enum Kind {
    Overlay { mounted: bool },
    Copy(copy::Baseline),
}

/// A prepared root file system over some layers. See the module docs.
pub struct Snapshot {
    dirs: UpperDir,
    merged: PathBuf,
    kind: Kind,
    /// False once committed or discarded: nothing left for `Drop`.
    live: bool,
    /// The directories are the snapshot's own scratch (removed with it), not a
    /// container's (only `merged/` and overlay's scratch are removed).
    owned: bool,
    /// Why `Auto` fell back to copying, for the builder to show once.
    fallback: Option<String>,
    _lock: StoreLock,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("merged", &self.merged)
            .field("snapshotter", &self.snapshotter())
            .finish()
    }
}

impl Snapshot {
    /// Prepares a snapshot over `lowers` — diff IDs in image order, bottom layer first
    /// (as an image config's `rootfs.diff_ids`) — with the snapshotter
    /// [`SNAPSHOTTER_ENV`] names. No lowers is `FROM scratch`.
    pub fn prepare(store: &Store, lowers: &[Digest]) -> Result<Snapshot, SnapshotError> {
        Snapshot::prepare_with(store, lowers, Snapshotter::from_env()?)
    }

    pub fn prepare_with(
        store: &Store,
        lowers: &[Digest],
        with: Snapshotter,
    ) -> Result<Snapshot, SnapshotError> {
        Snapshot::prepare_in(store, lowers, with, None)
    }

    /// As [`Snapshot::prepare`], over a container's own (empty) `upper/` and `work/`
    /// (`Store::container_upper_dir`) instead of a scratch pair in `tmp/`: end it with
    /// [`Snapshot::keep`], which leaves the changes there for `diff` and `commit`.
    pub fn prepare_for_container(
        store: &Store,
        lowers: &[Digest],
        dirs: UpperDir,
    ) -> Result<Snapshot, SnapshotError> {
        Snapshot::prepare_in(store, lowers, Snapshotter::from_env()?, Some(dirs))
    }

    /// A scratch snapshot whose lowers are the image's layers and, over them, a
    /// container's upper dir, which is only read: what the stopped container's root
    /// holds, for `cp` to read. [`Snapshot::discard`] (or drop) removes it.
    pub fn prepare_view(
        store: &Store,
        lowers: &[Digest],
        container_upper: &Path,
    ) -> Result<Snapshot, SnapshotError> {
        Snapshot::prepare_over(
            store,
            lowers,
            Some(container_upper),
            Snapshotter::from_env()?,
            None,
        )
    }

    fn prepare_in(
        store: &Store,
        lowers: &[Digest],
        with: Snapshotter,
        dirs: Option<UpperDir>,
    ) -> Result<Snapshot, SnapshotError> {
        Snapshot::prepare_over(store, lowers, None, with, dirs)
    }

    fn prepare_over(
        store: &Store,
        lowers: &[Digest],
        top_lower: Option<&Path>,
        with: Snapshotter,
        dirs: Option<UpperDir>,
    ) -> Result<Snapshot, SnapshotError> {
        let lock = store.write_lock()?;
        // The same layer twice (two steps that made identical changes) would make
        // overlay refuse the mount (ELOOP); every path of a lower copy is also in the
        // upper one, which wins, so only the topmost copy matters.
        let lowers: Vec<&Digest> = lowers
            .iter()
            .enumerate()
            .filter(|(i, d)| !lowers[i + 1..].contains(d))
            .map(|(_, d)| d)
            .collect();
        for d in &lowers {
            if store.layer_size(d)?.is_none() {
                return Err(SnapshotError::MissingLayer((*d).clone()));
            }
        }
        // A pulled layer is extracted the first time it is mounted.
        let lowers: Vec<Digest> = lowers.into_iter().cloned().collect();
        let mut layer_dirs = store.layer_trees(&lowers)?;
        layer_dirs.extend(top_lower.map(Path::to_path_buf));
        let (dirs, owned) = match dirs {
            Some(d) => (d, false),
            None => (store.new_upper_dir()?, true),
        };
        let merged = dirs.root.join("merged");
        // From here on, Drop cleans up whatever fails.
        let mut snap = Snapshot {
            merged,
            dirs,
            kind: Kind::Overlay { mounted: false },
            live: true,
            owned,
            fallback: None,
            _lock: lock,
        };
        fs::create_dir(&snap.merged).map_err(files::io_at(&snap.merged, "creating"))?;
        // The root of the merged tree is the upper dir's (overlay) or merged's own (copy):
        // give it the top layer's owner and mode, as Docker's overlay2 driver does for a
        // new diff dir, so a base with a non-default `/` keeps it.
        if let Some(top) = layer_dirs.last() {
            for dir in [&snap.dirs.upper, &snap.merged] {
                files::copy_owner_mode(top, dir)?;
            }
        }
        match with {
            Snapshotter::Copy => snap.prepare_copy(&layer_dirs)?,
            Snapshotter::Overlay => snap.mount_overlay(&layer_dirs)?,
            Snapshotter::Auto => match snap.mount_overlay(&layer_dirs) {
                // The kernel refuses overlay here (no module, an unprivileged container, an
                // upper file system overlay does not support): copy instead.
                Err(
                    e @ SnapshotError::Mount {
                        errno: Errno::EINVAL | Errno::EPERM | Errno::ENODEV,
                        ..
                    },
                ) => {
                    snap.fallback = Some(e.to_string());
                    snap.prepare_copy(&layer_dirs)?
                }
                other => other?,
            },
        }
        Ok(snap)
    }

    fn mount_overlay(&mut self, bottom_first: &[PathBuf]) -> Result<(), SnapshotError> {
        let mut lowers: Vec<PathBuf> = bottom_first.iter().rev().cloned().collect();
        if lowers.is_empty() {
            let empty = self.dirs.root.join("empty");
            fs::create_dir(&empty).map_err(files::io_at(&empty, "creating"))?;
            lowers.push(empty);
        }
        let plan = overlay::plan(
            &lowers,
            &overlay::Dirs {
                root: &self.dirs.root,
                upper: &self.dirs.upper,
                work: &self.dirs.work,
                merged: &self.merged,
            },
        );
        let result = match &plan.from {
            None => mount::mount(&plan.mount),
            Some(from) => {
                let l = from.dir.join("l");
                fs::create_dir(&l).map_err(files::io_at(&l, "creating"))?;
                for (link, target) in &from.symlinks {
                    std::os::unix::fs::symlink(target, link)
                        .map_err(files::io_at(link, "creating"))?;
                }
                mount::mount_from(&from.dir, &plan.mount)
            }
        };
        result.map_err(|errno| SnapshotError::Mount {
            target: self.merged.clone(),
            data_len: plan.mount.data.len(),
            relative: plan.from.is_some(),
            errno,
        })?;
        self.kind = Kind::Overlay { mounted: true };
        Ok(())
    }

    fn prepare_copy(&mut self, bottom_first: &[PathBuf]) -> Result<(), SnapshotError> {
        let base = copy::prepare(bottom_first, &self.merged, &self.dirs.root.join("tick"))?;
        self.kind = Kind::Copy(base);
        Ok(())
    }

    /// The root file system to run the step in.
    pub fn merged(&self) -> &Path {
        &self.merged
    }

    /// The snapshotter in use (`Auto` resolved).
    pub fn snapshotter(&self) -> Snapshotter {
        match self.kind {
            Kind::Overlay { .. } => Snapshotter::Overlay,
            Kind::Copy(_) => Snapshotter::Copy,
        }
    }

    /// When [`Snapshotter::Auto`] chose copying: the overlay mount error that made it.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// Stores what changed as a layer and removes the snapshot. Everything that ran in
    /// [`Snapshot::merged`] must have exited (and the sandbox removed its own mounts).
    pub fn commit(
        mut self,
        store: &Store,
        opts: &CommitOptions,
    ) -> Result<CommittedLayer, SnapshotError> {
        match &self.kind {
            Kind::Overlay { mounted } => {
                if *mounted {
                    mount::unmount(&self.merged).map_err(|errno| SnapshotError::Unmount {
                        target: self.merged.clone(),
                        errno,
                    })?;
                    self.kind = Kind::Overlay { mounted: false };
                }
                // With the options of `overlay::PLAIN_UPPER`, overlay keeps its own state
                // (work/work, work/index) in the work dir, a sibling of upper: nothing of
                // overlay's but whiteouts and opaque xattrs is ever in the layer.
            }
            Kind::Copy(base) => copy::diff(base, &self.merged, &self.dirs.upper)?,
        }
        if let Some(epoch) = opts.clamp_mtime {
            files::clamp_mtimes(&self.dirs.upper, epoch)?;
        }
        let layer = store.add_layer_dir(&self.dirs.upper)?;
        self.live = false;
        self.dirs
            .remove()
            .map_err(files::io_at(&self.dirs.root, "removing"))?;
        Ok(layer)
    }

    /// Throws the snapshot away, reporting what `Drop` would only try.
    pub fn discard(mut self) -> Result<(), SnapshotError> {
        self.live = false;
        self.cleanup()
    }

    /// Ends a container's snapshot: unmounts, and leaves what changed in its `upper/`
    /// (with copying, the diff is computed into it now); `merged/` is removed.
    pub fn keep(mut self) -> Result<(), SnapshotError> {
        self.live = false;
        match &self.kind {
            Kind::Overlay { mounted } => {
                if *mounted {
                    unmount_patiently(&self.merged)?;
                    self.kind = Kind::Overlay { mounted: false };
                }
            }
            Kind::Copy(base) => copy::diff(base, &self.merged, &self.dirs.upper)?,
        }
        self.remove_scratch()
    }

    /// A container's dir keeps `upper/` and `work/`, and the store's files (its
    /// `config.json`, its log); what the snapshot made under it goes: merged, an empty
    /// lower, overlay's `l/` links, copy's tick.
    fn remove_scratch(&self) -> Result<(), SnapshotError> {
        for name in ["merged", "empty", "l", "tick"] {
            let path = self.dirs.root.join(name);
            let res = match path.symlink_metadata() {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Ok(m) if m.is_dir() => rbuild_store::fsutil::remove_tree(&path),
                _ => fs::remove_file(&path),
            };
            res.map_err(files::io_at(&path, "removing"))?;
        }
        Ok(())
    }

    fn cleanup(&mut self) -> Result<(), SnapshotError> {
        if let Kind::Overlay { mounted: true } = self.kind {
            unmount_patiently(&self.merged)?;
            self.kind = Kind::Overlay { mounted: false };
        }
        if !self.owned {
            return self.remove_scratch();
        }
        self.dirs
            .remove()
            .map_err(files::io_at(&self.dirs.root, "removing"))
    }
}

/// Unmounts, retrying briefly while something lets go of it, then detaches it: the mount
/// must not outlive the snapshot in this namespace, and removing the scratch through a
/// live overlay would be wrong.
fn unmount_patiently(target: &Path) -> Result<(), SnapshotError> {
    for _ in 0..10 {
        match mount::unmount(target) {
            Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => return Ok(()),
            Err(Errno::EBUSY) => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(errno) => {
                return Err(SnapshotError::Unmount {
                    target: target.to_path_buf(),
                    errno,
                });
            }
        }
    }
    mount::detach(target).map_err(|errno| SnapshotError::Unmount {
        target: target.to_path_buf(),
        errno,
    })
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        if self.live {
            self.live = false;
            if self.cleanup().is_err() {
                // Never leave a mount behind: detach it (EINVAL if it is not one); what
                // could not be removed stays in tmp/ for GC.
                let _ = mount::detach(&self.merged);
            }
        }
    }
}

/// Writes the file system of an image whose layer trees are `layers` (bottom first) into
/// the directory `dest`: each layer applied in turn with its whiteouts and opaque
/// directories, owners, modes, xattrs, times and hard links kept — the image's rootfs
/// as a container would see it (`--output type=local|tar`). Symlinks are written as
/// symlinks and never followed, so nothing lands outside `dest`.
pub fn flatten(layers: &[PathBuf], dest: &Path) -> Result<(), SnapshotError> {
    for layer in layers {
        copy::apply_layer(layer, dest, &mut files::Links::default())?;
    }
    Ok(())
}

/// Copies the directory `src` and everything in it, owners, modes, times and hard links
/// kept, to the new path `dst` (a cache mount seeded `from=` a stage).
pub(crate) fn copy_tree(src: &Path, dst: &Path) -> Result<(), SnapshotError> {
    files::copy_tree(src, dst, &mut files::Links::default())
}
