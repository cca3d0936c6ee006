//! An image's flattened file system written out: `--output type=local` (a directory)
//! and `type=tar` (one tar, as `docker export` gives), through the same layer stacking
//! the copy snapshotter uses ([`crate::snapshot::flatten`]).

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use rbuild_store::layer::{LayerError, WriteOptions, write_tar};
use rbuild_store::{ImageRecord, Store, StoreError};

use crate::snapshot::{self, SnapshotError};
use crate::upper_copy::{self, CopyError};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("writing the file system tar: {0}")]
    Tar(#[from] LayerError),
    #[error("reading the container's changes: {0}")]
    Changes(#[from] CopyError),
}

/// Writes `image`'s file system into the directory `dest` (made if missing; what is
/// already there stays unless the image has something at the same path).
pub fn write_rootfs_dir(
    store: &Store,
    image: &ImageRecord,
    dest: &Path,
) -> Result<(), ExportError> {
    // Shared lock: GC must not take a layer tree while it is copied.
    let _lock = store.write_lock()?;
    let trees = store.layer_trees(&image.layers)?;
    std::fs::create_dir_all(dest).map_err(|source| SnapshotError::Io {
        what: format!("creating {}", dest.display()),
        source,
    })?;
    snapshot::flatten(&trees, dest)?;
    Ok(())
}

/// Writes `image`'s file system to `out` as one deterministic tar (entries sorted, the
/// root not listed, numeric owners), flattened first in a scratch directory of the
/// store, which is removed afterwards.
pub fn write_rootfs_tar(
    store: &Store,
    image: &ImageRecord,
    out: impl Write,
) -> Result<(), ExportError> {
    write_tar_of(store, image, None, out)
}

/// Writes the file system of the container whose overlay upper dir is `upper` (over
/// `image`, its image) to `out` as one tar, as `docker export` gives. The upper dir is
/// first copied through descriptors ([`upper_copy`]), since a running container can
/// swap any of its paths for a symlink out of it, then stacked on the image's layers
/// by the same [`snapshot::flatten`].
pub fn write_container_tar(
    store: &Store,
    image: &ImageRecord,
    upper: &Path,
    out: impl Write,
) -> Result<(), ExportError> {
    write_tar_of(store, image, Some(upper), out)
}

fn write_tar_of(
    store: &Store,
    image: &ImageRecord,
    upper: Option<&Path>,
    out: impl Write,
) -> Result<(), ExportError> {
    let _lock = store.write_lock()?;
    let mut trees = store.layer_trees(&image.layers)?;
    let scratch = store.scratch_dir("export")?;
    let result = (|| -> Result<(), ExportError> {
        let mkdir = |dir: &Path| {
            std::fs::create_dir(dir).map_err(|source| SnapshotError::Io {
                what: format!("creating {}", dir.display()),
                source,
            })
        };
        if let Some(upper) = upper.filter(|u| u.is_dir()) {
            let changes = scratch.join("upper");
            mkdir(&changes)?;
            upper_copy::copy_upper(upper, &changes, &HashSet::new(), &|| false)?;
            trees.push(changes);
        }
        let rootfs = scratch.join("rootfs");
        mkdir(&rootfs)?;
        snapshot::flatten(&trees, &rootfs)?;
        write_tar(&rootfs, out, &WriteOptions::default())?;
        Ok(())
    })();
    let cleaned = rbuild_store::fsutil::remove_tree(&scratch).map_err(|source| {
        ExportError::Snapshot(SnapshotError::Io {
            what: format!("removing {}", scratch.display()),
            source,
        })
    });
    result.and(cleaned)
}
