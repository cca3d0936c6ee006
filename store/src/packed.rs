//! Pulled layers are kept packed until something needs their files.
//!
//! A pull stores each layer blob as it arrives, checked against its digest and size, and
//! extracts nothing: most of a pull's time used to go to gunzip, the diff-ID hash and
//! creating files, work that a pull followed by a push, a save or nothing at all never
//! needs. [`Store::layer_tree`] extracts a layer the first time its files are asked for
//! (a build's base image, a run), checking the tar against the layer's diff ID then, as
//! containerd unpacks content into a snapshot when an image is first used.
//!
//! Until that check, which diff ID a pulled blob holds is only the registry's word, so
//! the pairing lives in `packed_layers`, apart from `layer_blobs` (pairings checked
//! here): another image that shares the diff ID, built or loaded here, never has an
//! unchecked blob saved or pushed in its name.

use std::io::{self, BufReader, Read};
use std::path::PathBuf;

use rusqlite::params;

use crate::digest::{Digest, Verifying};
use crate::error::StoreError;
use crate::fsutil;
use crate::store::{Store, io_err};
use crate::unpack::{LayerSource, StoredLayer, now};

impl Store {
    /// Stores a layer blob without extracting it; `src` must promise the blob's digest
    /// and size and the layer's diff ID. The layer counts as stored from here on
    /// ([`Store::layer_size`]), with its blob's size as its size until it is extracted.
    pub fn add_packed_layer(
        &self,
        r: impl Read,
        src: &LayerSource,
    ) -> Result<StoredLayer, StoreError> {
        let (Some(digest), Some(size), Some(diff_id)) = (src.digest, src.size, src.diff_id) else {
            return Err(StoreError::Io {
                what: format!("storing {}", src.what),
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a packed layer needs its digest, size and diff ID",
                ),
            });
        };
        let media_type = src
            .media_type
            .unwrap_or("application/vnd.oci.image.layer.v1.tar+gzip");
        let (blob, blob_size) = self.blobs().put_reader(r, Some(digest), Some(size))?;
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "INSERT OR IGNORE INTO layers (diff_id, size, tar_size, created_at) VALUES (?1, ?2, 0, ?3)",
            params![diff_id.to_string(), blob_size as i64, now()],
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO packed_layers (diff_id, digest, media_type, size) VALUES (?1, ?2, ?3, ?4)",
            params![diff_id.to_string(), blob.to_string(), media_type, blob_size as i64],
        )?;
        tx.commit()?;
        let size = self.layer_size(diff_id)?.unwrap_or(blob_size);
        Ok(StoredLayer {
            diff_id: diff_id.clone(),
            blob,
            blob_size,
            media_type: media_type.to_string(),
            size,
        })
    }

    /// Blobs said to hold a layer that is not extracted yet, as (digest, media type, size).
    pub(crate) fn packed_blobs(
        &self,
        diff_id: &Digest,
    ) -> Result<Vec<(Digest, String, u64)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT digest, media_type, size FROM packed_layers WHERE diff_id = ?1 ORDER BY digest",
        )?;
        let rows = stmt.query_map([diff_id.to_string()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (d, mt, size) = row?;
            if let Ok(d) = d.parse() {
                out.push((d, mt, size as u64));
            }
        }
        Ok(out)
    }

    /// The extracted tree of a stored layer, extracting it first if it is only packed:
    /// what anything that reads or mounts a layer's files asks for.
    ///
    /// The blob is re-read against its digest and the tar against the diff ID; a blob
    /// that does not hold the layer is an error naming both, and nothing is extracted.
    /// Concurrent callers may both extract; the first rename wins, as in
    /// [`Store::add_layer`].
    pub fn layer_tree(&self, diff_id: &Digest) -> Result<PathBuf, StoreError> {
        let dir = self.layer_dir(diff_id);
        if dir.is_dir() {
            return Ok(dir);
        }
        let _lock = self.write_lock()?;
        let checked = self.layer_blobs(diff_id)?.into_iter().map(|b| (b, false));
        let packed = self.packed_blobs(diff_id)?.into_iter().map(|b| (b, true));
        let mut failure = None;
        for ((blob, media_type, size), was_packed) in checked.chain(packed) {
            if !self.blobs().contains(&blob) {
                continue;
            }
            let what = format!("layer {diff_id} (blob {blob})");
            let file = self.blobs().open(&blob)?;
            let mut r = Verifying::new(
                BufReader::with_capacity(1 << 20, file),
                blob.clone(),
                Some(size),
            );
            let src = LayerSource {
                what: &what,
                digest: Some(&blob),
                size: Some(size),
                diff_id: Some(diff_id),
                media_type: Some(&media_type),
            };
            let extracted = self.extract_layer(&mut r, &src).and_then(|x| {
                // Whatever follows the compressed stream is part of the blob, and the
                // blob's digest is checked only at its end.
                io::copy(&mut r, &mut io::sink())
                    .map(|_| x)
                    .map_err(io_err(format!("reading {what}")))
            });
            let (tree, content_size) = match extracted {
                Ok(x) => x,
                Err(e) => {
                    failure = Some(e);
                    continue;
                }
            };
            self.install_tree(diff_id, &tree)?;
            let tx = self.conn.unchecked_transaction()?;
            if was_packed {
                tx.execute(
                    "INSERT OR IGNORE INTO layer_blobs (diff_id, digest, media_type, size) VALUES (?1, ?2, ?3, ?4)",
                    params![diff_id.to_string(), blob.to_string(), media_type, size as i64],
                )?;
                tx.execute(
                    "DELETE FROM packed_layers WHERE diff_id = ?1 AND digest = ?2",
                    params![diff_id.to_string(), blob.to_string()],
                )?;
            }
            tx.commit()?;
            self.set_layer_size(diff_id, content_size)?;
            return Ok(dir);
        }
        Err(failure.unwrap_or_else(|| StoreError::MissingLayer {
            diff_id: diff_id.clone(),
        }))
    }

    /// Renames a verified scratch tree (`tmp/layer-*/` holding `diff/`) into
    /// `layers/<hex>`; when another writer stored the same layer first, theirs stays.
    pub(crate) fn install_tree(
        &self,
        diff_id: &Digest,
        scratch: &std::path::Path,
    ) -> Result<(), StoreError> {
        let dest = self.layers_dir().join(diff_id.hex());
        if let Err(e) = std::fs::rename(scratch, &dest) {
            let _ = fsutil::remove_tree(scratch);
            if !dest.join("diff").is_dir() {
                return Err(io_err(format!("storing layer {diff_id}"))(e));
            }
        }
        fsutil::sync_dir(&self.layers_dir()).map_err(io_err("syncing layers/"))
    }

    /// Records a layer's content size once its tree is here, and the sizes of the images
    /// that use it (a packed layer counted its blob's size until then).
    pub(crate) fn set_layer_size(&self, diff_id: &Digest, size: u64) -> Result<(), StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        let changed = tx.execute(
            "UPDATE layers SET size = ?2 WHERE diff_id = ?1 AND size != ?2",
            params![diff_id.to_string(), size as i64],
        )?;
        if changed > 0 {
            tx.execute(
                "UPDATE images SET size = (
                     SELECT COALESCE(SUM(l.size), 0) FROM image_layers il
                     JOIN layers l ON l.diff_id = il.diff_id WHERE il.image_id = images.id)
                 WHERE id IN (SELECT image_id FROM image_layers WHERE diff_id = ?1)",
                [diff_id.to_string()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}
