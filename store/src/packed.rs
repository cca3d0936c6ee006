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
use std::sync::atomic::{AtomicUsize, Ordering};

use rusqlite::params;

use crate::digest::{Digest, Verifying};
use crate::error::StoreError;
use crate::fsutil;
use crate::store::{Store, io_err};
use crate::unpack::{LayerSource, StoredLayer};

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
        self.record_pairing(
            "INSERT OR IGNORE INTO packed_layers (diff_id, digest, media_type, size) VALUES (?1, ?2, ?3, ?4)",
            diff_id,
            blob_size,
            &blob,
            blob_size,
            media_type,
        )?;
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
        self.blob_rows(
            "SELECT digest, media_type, size FROM packed_layers WHERE diff_id = ?1 ORDER BY digest",
            diff_id,
        )
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

    /// [`Store::layer_tree`] for each of `diff_ids`, in order; the layers not extracted
    /// yet are extracted side by side, one per core (gunzip and hashing are CPU-bound),
    /// as a pull used to extract them while downloading.
    pub fn layer_trees(&self, diff_ids: &[Digest]) -> Result<Vec<PathBuf>, StoreError> {
        let mut missing: Vec<&Digest> = diff_ids
            .iter()
            .filter(|d| !self.layer_dir(d).is_dir())
            .collect();
        missing.sort();
        missing.dedup();
        if missing.len() > 1 {
            let workers = std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(missing.len());
            let next = AtomicUsize::new(0);
            let root = self.root();
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..workers)
                    .map(|_| {
                        s.spawn(|| -> Result<(), StoreError> {
                            // A Store's SQLite connection stays on its thread.
                            let store = Store::open(root)?;
                            while let Some(d) = missing.get(next.fetch_add(1, Ordering::Relaxed)) {
                                store.layer_tree(d)?;
                            }
                            Ok(())
                        })
                    })
                    .collect();
                handles.into_iter().try_for_each(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(StoreError::Io {
                            what: "extracting layers".into(),
                            source: io::Error::other("an extracting thread panicked"),
                        })
                    })
                })
            })?;
        }
        diff_ids.iter().map(|d| self.layer_tree(d)).collect()
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

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::images::NewImage;
    use crate::layer_blob::BlobUse;
    use crate::unpack::tests::{empty_dir, gzip_layer};

    fn add_packed(store: &Store, gz: &[u8], diff_id: &Digest) -> Result<StoredLayer, StoreError> {
        let digest = Digest::of(gz);
        store.add_packed_layer(
            gz,
            &LayerSource {
                what: "layer",
                digest: Some(&digest),
                size: Some(gz.len() as u64),
                diff_id: Some(diff_id),
                media_type: Some("application/vnd.oci.image.layer.v1.tar+gzip"),
            },
        )
    }

    fn image_of(store: &Store, diff_ids: &[&Digest]) -> Digest {
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        store
            .create_image(config.to_string().as_bytes(), &NewImage::default())
            .unwrap()
    }

    /// Stored packed: counted at its blob's size, no tree, a sound store that GC keeps
    /// whole; extracted on first use: the file is there, the layer and the image count
    /// the content size, and the blob is a checked one.
    #[test]
    fn a_packed_layer_is_extracted_on_first_use() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let content = vec![7u8; 100_000];
        let (gz, diff_id) = gzip_layer("data.bin", &content);
        let stored = add_packed(&store, &gz, &diff_id).unwrap();
        assert_eq!(stored.blob, Digest::of(&gz));
        assert_eq!(store.layer_size(&diff_id).unwrap(), Some(gz.len() as u64));
        assert!(!store.layer_dir(&diff_id).exists());
        let id = image_of(&store, &[&diff_id]);
        assert_eq!(store.image(&id).unwrap().unwrap().size, gz.len() as u64);
        let report = store.check().unwrap();
        assert!(report.is_clean(), "{:?}", report.problems);
        store.collect_garbage().unwrap();
        assert!(store.blobs().contains(&stored.blob));

        let tree = store.layer_tree(&diff_id).unwrap();
        assert_eq!(tree, store.layer_dir(&diff_id));
        assert_eq!(fs::read(tree.join("data.bin")).unwrap(), content);
        assert_eq!(store.layer_size(&diff_id).unwrap(), Some(100_000));
        assert_eq!(store.image(&id).unwrap().unwrap().size, 100_000);
        assert!(store.packed_blobs(&diff_id).unwrap().is_empty());
        assert_eq!(store.layer_blobs(&diff_id).unwrap()[0].0, stored.blob);
        // The blob as received is what a push sends.
        let blob = store.layer_blob(&diff_id, BlobUse::Push).unwrap();
        assert_eq!(blob.digest, stored.blob);
        assert!(store.check().unwrap().is_clean());
        assert!(empty_dir(&dir.path().join("tmp")));
    }

    /// A blob that does not hold the diff ID its config names is an error at first use,
    /// naming the blob and both diff IDs; nothing is extracted, and the blob is never
    /// handed out for the layer.
    #[test]
    fn a_packed_blob_with_another_diff_id_is_refused_at_first_use() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (gz, actual) = gzip_layer("a", b"a\n");
        let claimed = Digest::of(b"what the config says");
        add_packed(&store, &gz, &claimed).unwrap();
        let e = store.layer_tree(&claimed).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, StoreError::DiffIdMismatch { .. }), "{msg}");
        assert!(msg.contains(&Digest::of(&gz).to_string()), "{msg}");
        assert!(msg.contains(&claimed.to_string()), "{msg}");
        assert!(msg.contains(&actual.to_string()), "{msg}");
        assert!(!store.layer_dir(&claimed).exists());
        assert!(empty_dir(&dir.path().join("layers")));
        assert!(empty_dir(&dir.path().join("tmp")));
        assert!(store.layer_blob(&claimed, BlobUse::Push).is_err());
        assert!(store.layer_blob(&claimed, BlobUse::Archive).is_err());
    }

    /// A pulled image that claims the diff ID of a layer built here, with other bytes,
    /// cannot make a save or push of the built image send those bytes.
    #[test]
    fn an_unchecked_claim_never_stands_for_a_checked_layer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (gz, diff_id) = gzip_layer("mine", b"built here\n");
        let built = store.add_layer(&gz[..], &LayerSource::default()).unwrap();
        assert_eq!(built.diff_id, diff_id);
        let (garbage, _) = gzip_layer("theirs", b"something else\n");
        add_packed(&store, &garbage, &diff_id).unwrap();
        let garbage = Digest::of(&garbage);
        for usage in [BlobUse::Push, BlobUse::Archive] {
            let b = store.layer_blob(&diff_id, usage).unwrap();
            assert_ne!(b.digest, garbage, "{usage:?}");
        }
        // The tree is the one built here.
        let tree = store.layer_tree(&diff_id).unwrap();
        assert_eq!(fs::read(tree.join("mine")).unwrap(), b"built here\n");
    }

    /// `save` of an image pulled but never used: the layer is checked (extracted) first,
    /// then the blob as received goes into the archive.
    #[test]
    fn an_archive_of_a_packed_layer_checks_it_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (gz, diff_id) = gzip_layer("f", b"x\n");
        add_packed(&store, &gz, &diff_id).unwrap();
        let b = store.layer_blob(&diff_id, BlobUse::Archive).unwrap();
        assert_eq!(b.digest, Digest::of(&gz));
        assert!(store.layer_dir(&diff_id).is_dir());
    }
}
