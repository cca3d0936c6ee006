//! The store as a whole: where things live under the root, and the handle every
//! command opens.
//!
//! ```text
//! <root>/blobs/sha256/<hex>   immutable content: layer tars, configs, manifests
//! <root>/ingest/              blob writes in progress
//! <root>/layers/<hex>/diff    each layer extracted once (hex = its diff ID)
//! <root>/tmp/                 layer extractions in progress
//! <root>/metadata.db          SQLite: images, refs, layers
//! <root>/lock                 writers hold it shared, GC exclusive
//! ```

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::blobs::Blobs;
use crate::db;
use crate::digest::Digest;
use crate::error::StoreError;
use crate::lock::StoreLock;

/// An open store. Cheap to open; one per command.
pub struct Store {
    root: PathBuf,
    blobs: Blobs,
    pub(crate) conn: Connection,
}

impl Store {
    /// The root used when neither `--root` nor `RBUILD_ROOT` says otherwise: Docker's
    /// habit of one system store for root, and a per-user one under XDG otherwise.
    pub fn default_root() -> PathBuf {
        if nix::unistd::geteuid().is_root() {
            return PathBuf::from("/var/lib/rbuild");
        }
        let data = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from(".local/share"));
        data.join("rbuild")
    }

    /// Opens the store at `root`, creating it if needed.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let mk = |p: &Path| {
            fs::create_dir_all(p).map_err(|source| StoreError::Io {
                what: format!("creating {}", p.display()),
                source,
            })
        };
        mk(root)?;
        let root = root.canonicalize().map_err(|source| StoreError::Io {
            what: format!("opening store {}", root.display()),
            source,
        })?;
        let blobs = Blobs::new(&root);
        blobs.create_dirs().map_err(|source| StoreError::Io {
            what: format!("creating {}", root.join("blobs").display()),
            source,
        })?;
        mk(&root.join("layers"))?;
        mk(&root.join("tmp"))?;
        let conn = db::open(&root.join("metadata.db"))?;
        Ok(Store { root, blobs, conn })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    /// The extracted tree of a layer (an overlay lowerdir).
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex()).join("diff")
    }

    pub(crate) fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Held by anything that stores blobs or layers before recording them.
    pub fn write_lock(&self) -> Result<StoreLock, StoreError> {
        StoreLock::shared(&self.root).map_err(|source| StoreError::Io {
            what: "locking the store".into(),
            source,
        })
    }

    pub(crate) fn gc_lock(&self) -> Result<StoreLock, StoreError> {
        StoreLock::exclusive(&self.root).map_err(|source| StoreError::Io {
            what: "locking the store for garbage collection".into(),
            source,
        })
    }

    /// A fresh private scratch directory under `tmp/`.
    pub fn scratch_dir(&self, prefix: &str) -> Result<PathBuf, StoreError> {
        let dir = self.tmp_dir().join(crate::fsutil::unique_name(prefix));
        fs::create_dir(&dir).map_err(|source| StoreError::Io {
            what: format!("creating {}", dir.display()),
            source,
        })?;
        Ok(dir)
    }
}

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> StoreError {
    let what = what.into();
    move |source| StoreError::Io { what, source }
}
