//! Storing a layer: its blob kept as received, its tree extracted once.
//!
//! One pass over the bytes does everything: they are teed into a blob writer while the
//! (decompressed) stream is hashed for the diff ID and extracted into a private scratch
//! directory. Only when the blob's digest and the diff ID check out is the tree renamed
//! into `layers/` and recorded, so a failure or crash leaves only scratch for GC.

use std::fs;
use std::io::{self, Read, Write};

use rusqlite::{OptionalExtension, params};

use crate::blobs::BlobWriter;
use crate::digest::{Digest, Hashing};
use crate::error::StoreError;
use crate::fsutil;
use crate::layer::{self, Compression, ExtractOptions};
use crate::store::{Store, io_err};

/// What the caller knows about a layer blob before reading it.
#[derive(Debug, Default, Clone)]
pub struct LayerSource<'a> {
    /// Names the blob in errors (an archive member, a file, a digest).
    pub what: &'a str,
    /// The blob digest promised by a manifest, if any.
    pub digest: Option<&'a Digest>,
    pub size: Option<u64>,
    /// The diff ID promised by the image config, if any.
    pub diff_id: Option<&'a Digest>,
    /// The media type to record; derived from the compression when absent.
    pub media_type: Option<&'a str>,
}

/// A layer as stored.
#[derive(Debug, Clone)]
pub struct StoredLayer {
    pub diff_id: Digest,
    /// The blob holding it as received.
    pub blob: Digest,
    pub blob_size: u64,
    pub media_type: String,
    /// Bytes of regular files in it: Docker's layer size.
    pub size: u64,
}

/// Copies what it reads into a writer.
struct Tee<'a, R> {
    r: R,
    w: &'a mut BlobWriter,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.r.read(buf)?;
        self.w.write_all(&buf[..n])?;
        Ok(n)
    }
}

impl Store {
    /// Stores one layer blob (plain, gzip or zstd tar) and its extracted tree.
    ///
    /// When the layer is already here (its promised diff ID is recorded), the bytes
    /// are still read and verified, but nothing is extracted again.
    pub fn add_layer(&self, r: impl Read, src: &LayerSource) -> Result<StoredLayer, StoreError> {
        let known = match src.diff_id {
            Some(d) => self.layer_size(d)?,
            None => None,
        };
        let mut writer = self.blobs().writer()?;
        let mut tee = Tee { r, w: &mut writer };
        let (compression, diff_id, size, scratch) = {
            let (compression, mut plain) =
                layer::decompress(&mut tee).map_err(io_err(format!("reading {}", src.what)))?;
            match known {
                Some(size) => {
                    let mut h = Hashing::new(io::sink());
                    io::copy(&mut plain, &mut h)
                        .map_err(io_err(format!("reading {}", src.what)))?;
                    (compression, h.finish().0, size, None)
                }
                None => {
                    let scratch = self.scratch_dir("layer")?;
                    let diff = scratch.join("diff");
                    let extracted = fs::create_dir(&diff)
                        .map_err(io_err(format!("creating {}", diff.display())))
                        .and_then(|()| {
                            layer::extract(&mut plain, &diff, &ExtractOptions::for_current_user())
                                .map_err(|source| StoreError::LayerIn {
                                    what: src.what.to_string(),
                                    source,
                                })
                        });
                    match extracted {
                        Ok(x) => (compression, x.diff_id, x.content_size, Some(scratch)),
                        Err(e) => {
                            let _ = fsutil::remove_tree(&scratch);
                            return Err(e);
                        }
                    }
                }
            }
        };
        let cleanup = |e: StoreError| {
            if let Some(s) = &scratch {
                let _ = fsutil::remove_tree(s);
            }
            e
        };
        // Whatever follows the compressed stream is part of the blob too.
        io::copy(&mut tee, &mut io::sink())
            .map_err(io_err(format!("reading {}", src.what)))
            .map_err(cleanup)?;
        if let Some(expected) = src.diff_id
            && expected != &diff_id
        {
            return Err(cleanup(StoreError::DiffIdMismatch {
                what: src.what.to_string(),
                expected: expected.clone(),
                actual: diff_id,
            }));
        }
        let blob_size = writer.len();
        let blob = writer
            .commit(src.digest, src.size)
            .map_err(|e| cleanup(e.into()))?;
        if let Some(scratch) = scratch {
            let dest = self.layers_dir().join(diff_id.hex());
            if let Err(e) = fs::rename(&scratch, &dest) {
                // Another writer stored the same layer first: keep theirs.
                let _ = fsutil::remove_tree(&scratch);
                if !dest.join("diff").is_dir() {
                    return Err(io_err(format!("storing layer {diff_id}"))(e));
                }
            }
            fsutil::sync_dir(&self.layers_dir()).map_err(io_err("syncing layers/"))?;
        }
        let media_type = src
            .media_type
            .map(str::to_string)
            .unwrap_or_else(|| default_media_type(compression));
        self.record_layer(&diff_id, size, &blob, blob_size, &media_type)?;
        Ok(StoredLayer {
            diff_id,
            blob,
            blob_size,
            media_type,
            size,
        })
    }

    /// Records a layer and a blob that holds it (idempotent).
    pub(crate) fn record_layer(
        &self,
        diff_id: &Digest,
        size: u64,
        blob: &Digest,
        blob_size: u64,
        media_type: &str,
    ) -> Result<(), StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "INSERT OR IGNORE INTO layers (diff_id, size, tar_size, created_at) VALUES (?1, ?2, 0, ?3)",
            params![diff_id.to_string(), size as i64, now()],
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO layer_blobs (diff_id, digest, media_type, size) VALUES (?1, ?2, ?3, ?4)",
            params![diff_id.to_string(), blob.to_string(), media_type, blob_size as i64],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The recorded size of a layer, or None if it is not stored (or its tree is gone).
    pub fn layer_size(&self, diff_id: &Digest) -> Result<Option<u64>, StoreError> {
        let size: Option<i64> = self
            .conn
            .query_row(
                "SELECT size FROM layers WHERE diff_id = ?1",
                [diff_id.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(size
            .filter(|_| self.layer_dir(diff_id).is_dir())
            .map(|s| s as u64))
    }

    /// Blobs known to hold a layer, as (digest, media type, size), plain tars first.
    pub fn layer_blobs(&self, diff_id: &Digest) -> Result<Vec<(Digest, String, u64)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT digest, media_type, size FROM layer_blobs WHERE diff_id = ?1 ORDER BY digest = ?1 DESC, digest",
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
}

/// OCI media types by compression, as Docker 25+ writes them.
pub fn default_media_type(c: Compression) -> String {
    format!(
        "application/vnd.oci.image.layer.v1.tar{}",
        c.media_type_suffix()
    )
}

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Store {
    /// Makes a plain tar blob of a layer that has only its tree (one built here), keeps
    /// it, and records it: `save` and `push` need bytes, and the tree is immutable, so
    /// the same tar is made every time.
    pub fn make_layer_blob(&self, diff_id: &Digest) -> Result<(Digest, String, u64), StoreError> {
        let _lock = self.write_lock()?;
        let size = self
            .layer_size(diff_id)?
            .ok_or_else(|| StoreError::MissingLayer {
                diff_id: diff_id.clone(),
            })?;
        let mut w = self.blobs().writer()?;
        let written = layer::write_tar(
            &self.layer_dir(diff_id),
            &mut w,
            &layer::WriteOptions::default(),
        )?;
        if &written.diff_id != diff_id {
            return Err(StoreError::DiffIdMismatch {
                what: format!("the tree of layer {diff_id}"),
                expected: diff_id.clone(),
                actual: written.diff_id,
            });
        }
        let blob_size = w.len();
        let blob = w.commit(Some(diff_id), None)?;
        let media_type = default_media_type(Compression::None);
        self.record_layer(diff_id, size, &blob, blob_size, &media_type)?;
        Ok((blob, media_type, blob_size))
    }
}
