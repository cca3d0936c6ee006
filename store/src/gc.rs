//! Garbage collection by reachability: what no image needs goes.
//!
//! Roots are the images (an image a container uses cannot be deleted while it exists,
//! so containers' images and their layers are kept through it). An image needs its config blob, its manifest blob and its
//! layers; a layer needs its tree and the blobs recorded for it. Everything else under
//! `blobs/`, `layers/`, `ingest/` and `tmp/` is garbage. GC runs under the exclusive
//! store lock, so no writer has stored something it has not yet recorded.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use crate::digest::Digest;
use crate::error::StoreError;
use crate::fsutil;
use crate::store::{Store, io_err};

/// What a collection removed.
#[derive(Debug, Default, Clone)]
pub struct GcReport {
    pub blobs: usize,
    pub layers: usize,
    /// Bytes freed: blob sizes plus the file bytes of removed layer trees.
    pub reclaimed: u64,
}

/// Everything the images in the store need.
pub(crate) struct Reachable {
    pub blobs: HashSet<Digest>,
    pub layers: HashSet<Digest>,
}

impl Store {
    pub(crate) fn reachable(&self) -> Result<Reachable, StoreError> {
        let mut blobs = HashSet::new();
        let mut layers = HashSet::new();
        let mut stmt = self.conn.prepare("SELECT id, manifest FROM images")?;
        for row in stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })? {
            let (id, manifest) = row?;
            blobs.extend(id.parse().ok());
            blobs.extend(manifest.and_then(|m| m.parse().ok()));
        }
        let mut stmt = self.conn.prepare(
            "SELECT DISTINCT il.diff_id, lb.digest FROM image_layers il
             LEFT JOIN (SELECT diff_id, digest FROM layer_blobs
                        UNION SELECT diff_id, digest FROM packed_layers) lb
             ON lb.diff_id = il.diff_id",
        )?;
        for row in stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })? {
            let (diff, blob) = row?;
            layers.extend(diff.parse().ok());
            blobs.extend(blob.and_then(|b| b.parse().ok()));
        }
        Ok(Reachable { blobs, layers })
    }

    /// Removes everything no image needs. Waits for running writers to finish.
    pub fn collect_garbage(&self) -> Result<GcReport, StoreError> {
        let _lock = self.gc_lock()?;
        self.collect_locked()
    }

    /// Collects only if no writer is running right now; `None` if one is.
    pub fn try_collect_garbage(&self) -> Result<Option<GcReport>, StoreError> {
        match crate::lock::StoreLock::try_exclusive(self.root())
            .map_err(io_err("locking the store"))?
        {
            Some(_lock) => self.collect_locked().map(Some),
            None => Ok(None),
        }
    }

    pub(crate) fn collect_locked(&self) -> Result<GcReport, StoreError> {
        let keep = self.reachable()?;
        let mut report = GcReport::default();

        // Rows first, then files: a crash in between leaves only unrecorded files,
        // which the next collection removes.
        let mut stmt = self.conn.prepare("SELECT diff_id, size FROM layers")?;
        let layer_rows: Vec<(String, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        drop(stmt);
        let tx = self.conn.unchecked_transaction()?;
        for (diff, size) in &layer_rows {
            let keep_it = diff
                .parse::<Digest>()
                .is_ok_and(|d| keep.layers.contains(&d));
            if !keep_it {
                tx.execute("DELETE FROM layers WHERE diff_id = ?1", [diff])?;
                report.layers += 1;
                report.reclaimed += *size as u64;
            }
        }
        tx.commit()?;

        let layers_dir = self.layers_dir();
        for entry in fs::read_dir(&layers_dir).map_err(io_err("reading layers/"))? {
            let entry = entry.map_err(io_err("reading layers/"))?;
            let name = entry.file_name();
            let keep_it = name
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
                .is_some_and(|d| keep.layers.contains(&d));
            if !keep_it {
                fsutil::remove_tree(&entry.path())
                    .map_err(io_err(format!("removing {}", entry.path().display())))?;
            }
        }

        for d in self.blobs().list().map_err(io_err("reading blobs/"))? {
            if !keep.blobs.contains(&d) {
                report.reclaimed += self.blobs().size(&d).unwrap_or(0);
                self.blobs()
                    .remove(&d)
                    .map_err(io_err(format!("removing blob {d}")))?;
                report.blobs += 1;
            }
        }
        // No writer holds the lock, so whatever is in ingest/ and tmp/ is abandoned,
        // including a snapshot's overlay mount left by a build that was killed.
        crate::mounts::detach_under(&self.tmp_dir())
            .map_err(io_err(format!("cleaning {}", self.tmp_dir().display())))?;
        empty_dir(self.blobs().ingest_dir())?;
        empty_dir(&self.tmp_dir())?;
        Ok(report)
    }
}

fn empty_dir(dir: &Path) -> Result<(), StoreError> {
    for entry in fs::read_dir(dir).map_err(io_err(format!("reading {}", dir.display())))? {
        let path = entry
            .map_err(io_err(format!("reading {}", dir.display())))?
            .path();
        let res = if path.is_dir() && !path.is_symlink() {
            fsutil::remove_tree(&path)
        } else {
            fs::remove_file(&path)
        };
        res.map_err(io_err(format!("removing {}", path.display())))?;
    }
    Ok(())
}
