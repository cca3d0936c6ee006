//! Storing a layer: its blob kept as received, its tree extracted once.
//!
//! One pass over the bytes does everything: they are teed into a blob writer while the
//! (decompressed) stream is hashed for the diff ID and extracted into a private scratch
//! directory. Only when the blob's digest and the diff ID check out is the tree renamed
//! into `layers/` and recorded, so a failure or crash leaves only scratch for GC. When
//! the bytes fail to unpack and a digest was promised, the digest decides what the error
//! says: wrong bytes are a digest mismatch, not the gzip or tar error they cause.

use std::fs;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use rusqlite::{OptionalExtension, params};

use crate::blobs::{BlobError, BlobWriter};
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

/// `e`, or the digest mismatch behind it. A layer whose bytes are not those its
/// manifest promised (a corrupted download) mostly fails as a broken gzip or tar stream,
/// or a wrong diff ID, long before its digest can be checked at the end; but the wrong
/// bytes are the cause, and the digest the one thing the user can check against the
/// registry. So the rest of the blob is read (no further than its promised size) and
/// its digest compared; when the bytes could not be read, or do hash to the promised
/// digest (the image itself is broken), `e` stands.
fn wrong_bytes<R: Read>(tee: &mut Tee<'_, R>, src: &LayerSource, e: StoreError) -> StoreError {
    let Some(expected) = src.digest else {
        return e;
    };
    // One byte past the promised size is enough to know the blob is not it.
    let left = src
        .size
        .map_or(u64::MAX, |size| size.saturating_sub(tee.w.len()) + 1);
    if io::copy(&mut tee.take(left), &mut io::sink()).is_err() {
        return e;
    }
    match tee.w.digest() {
        Some(actual) if &actual != expected => StoreError::Blob(BlobError::DigestMismatch {
            expected: expected.clone(),
            actual,
        }),
        _ => e,
    }
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
            Some(d) => self.tree_size(d)?,
            None => None,
        };
        let mut writer = self.blobs().writer()?;
        let mut tee = Tee { r, w: &mut writer };
        let unpacked = self.unpack(&mut tee, src, known);
        let (compression, diff_id, size, scratch) =
            unpacked.map_err(|e| wrong_bytes(&mut tee, src, e))?;
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
            let e = StoreError::DiffIdMismatch {
                what: src.what.to_string(),
                expected: expected.clone(),
                actual: diff_id,
            };
            return Err(cleanup(wrong_bytes(&mut tee, src, e)));
        }
        let blob_size = writer.len();
        let blob = writer
            .commit(src.digest, src.size)
            .map_err(|e| cleanup(e.into()))?;
        let extracted = scratch.is_some();
        if let Some(scratch) = scratch {
            self.install_tree(&diff_id, &scratch)?;
        }
        let media_type = src
            .media_type
            .map(str::to_string)
            .unwrap_or_else(|| default_media_type(compression));
        self.record_layer(&diff_id, size, &blob, blob_size, &media_type)?;
        if extracted {
            // The layer may have been stored packed, counted at its blob's size.
            self.set_layer_size(&diff_id, size)?;
        }
        Ok(StoredLayer {
            diff_id,
            blob,
            blob_size,
            media_type,
            size,
        })
    }

    /// The decompressing, hashing and extracting part of [`Store::add_layer`]: the
    /// compression, the diff ID, the content size and the scratch tree (none when the
    /// layer's tree is here already and `known` gives its size). A failure leaves no
    /// scratch behind.
    fn unpack(
        &self,
        r: &mut impl Read,
        src: &LayerSource,
        known: Option<u64>,
    ) -> Result<(Compression, Digest, u64, Option<PathBuf>), StoreError> {
        let (compression, mut plain) =
            layer::decompress(r).map_err(io_err(format!("reading {}", src.what)))?;
        match known {
            Some(size) => {
                let mut h = Hashing::new(io::sink());
                io::copy(&mut plain, &mut h).map_err(io_err(format!("reading {}", src.what)))?;
                Ok((compression, h.finish().0, size, None))
            }
            None => {
                let (diff_id, size, scratch) = self.extract_to_scratch(&mut plain, src.what)?;
                Ok((compression, diff_id, size, Some(scratch)))
            }
        }
    }

    /// Extracts an uncompressed layer tar into a fresh `tmp/layer-*/diff`: its diff ID,
    /// content size and the scratch directory. A failure leaves no scratch behind.
    fn extract_to_scratch(
        &self,
        plain: &mut impl Read,
        what: &str,
    ) -> Result<(Digest, u64, PathBuf), StoreError> {
        let scratch = self.scratch_dir("layer")?;
        let diff = scratch.join("diff");
        let extracted = fs::create_dir(&diff)
            .map_err(io_err(format!("creating {}", diff.display())))
            .and_then(|()| {
                layer::extract(plain, &diff, &ExtractOptions::for_current_user()).map_err(
                    |source| StoreError::LayerIn {
                        what: what.to_string(),
                        source,
                    },
                )
            });
        match extracted {
            Ok(x) => Ok((x.diff_id, x.content_size, scratch)),
            Err(e) => {
                let _ = fsutil::remove_tree(&scratch);
                Err(e)
            }
        }
    }

    /// Extracts a layer blob (plain, gzip or zstd) into scratch, checking its tar
    /// against `src.diff_id`: the scratch directory and the content size.
    pub(crate) fn extract_layer(
        &self,
        r: &mut impl Read,
        src: &LayerSource,
    ) -> Result<(PathBuf, u64), StoreError> {
        let (_, mut plain) =
            layer::decompress(r).map_err(io_err(format!("reading {}", src.what)))?;
        let (diff_id, size, scratch) = self.extract_to_scratch(&mut plain, src.what)?;
        if let Some(expected) = src.diff_id
            && expected != &diff_id
        {
            let _ = fsutil::remove_tree(&scratch);
            return Err(StoreError::DiffIdMismatch {
                what: src.what.to_string(),
                expected: expected.clone(),
                actual: diff_id,
            });
        }
        Ok((scratch, size))
    }

    /// Records a layer and a blob checked to hold it (idempotent).
    pub(crate) fn record_layer(
        &self,
        diff_id: &Digest,
        size: u64,
        blob: &Digest,
        blob_size: u64,
        media_type: &str,
    ) -> Result<(), StoreError> {
        self.record_pairing(
            "INSERT OR IGNORE INTO layer_blobs (diff_id, digest, media_type, size) VALUES (?1, ?2, ?3, ?4)",
            diff_id,
            size,
            blob,
            blob_size,
            media_type,
        )
    }

    /// Records a layer (at `size` unless it is recorded already) and, with
    /// `insert_blob`, a blob said to hold it, in one transaction.
    pub(crate) fn record_pairing(
        &self,
        insert_blob: &str,
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
            insert_blob,
            params![
                diff_id.to_string(),
                blob.to_string(),
                media_type,
                blob_size as i64
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The recorded size of a layer, or None if it is not stored: neither its tree nor a
    /// blob holding it (checked or [packed](crate::packed)) is here.
    pub fn layer_size(&self, diff_id: &Digest) -> Result<Option<u64>, StoreError> {
        let Some(size) = self.recorded_size(diff_id)? else {
            return Ok(None);
        };
        if self.layer_dir(diff_id).is_dir() {
            return Ok(Some(size));
        }
        let mut blobs = self.layer_blobs(diff_id)?;
        blobs.extend(self.packed_blobs(diff_id)?);
        Ok(blobs
            .iter()
            .any(|(d, _, _)| self.blobs().contains(d))
            .then_some(size))
    }

    /// The size of a layer whose tree is here, or None.
    pub(crate) fn tree_size(&self, diff_id: &Digest) -> Result<Option<u64>, StoreError> {
        Ok(self
            .recorded_size(diff_id)?
            .filter(|_| self.layer_dir(diff_id).is_dir()))
    }

    fn recorded_size(&self, diff_id: &Digest) -> Result<Option<u64>, StoreError> {
        let size: Option<i64> = self
            .conn
            .query_row(
                "SELECT size FROM layers WHERE diff_id = ?1",
                [diff_id.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(size.map(|s| s as u64))
    }

    /// Blobs known to hold a layer, as (digest, media type, size), plain tars first.
    pub fn layer_blobs(&self, diff_id: &Digest) -> Result<Vec<(Digest, String, u64)>, StoreError> {
        self.blob_rows(
            "SELECT digest, media_type, size FROM layer_blobs WHERE diff_id = ?1 ORDER BY digest = ?1 DESC, digest",
            diff_id,
        )
    }

    /// (digest, media type, size) rows that `sql` selects for `diff_id`; a digest that
    /// does not parse is skipped (`system check` reports it).
    pub(crate) fn blob_rows(
        &self,
        sql: &str,
        diff_id: &Digest,
    ) -> Result<Vec<(Digest, String, u64)>, StoreError> {
        let mut stmt = self.conn.prepare(sql)?;
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
    /// Writes the tar of a stored layer's tree to `w` (deterministic: the same tar every
    /// time), checking that it is the layer it should be.
    pub(crate) fn write_layer_tar(
        &self,
        diff_id: &Digest,
        w: &mut impl io::Write,
    ) -> Result<(), StoreError> {
        let written = layer::write_tar(
            &self.layer_tree(diff_id)?,
            w,
            &layer::WriteOptions::default(),
        )?;
        if &written.diff_id != diff_id {
            return Err(StoreError::DiffIdMismatch {
                what: format!("the tree of layer {diff_id}"),
                expected: diff_id.clone(),
                actual: written.diff_id,
            });
        }
        Ok(())
    }

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
        self.write_layer_tar(diff_id, &mut w)?;
        let blob_size = w.len();
        let blob = w.commit(Some(diff_id), None)?;
        let media_type = default_media_type(Compression::None);
        self.record_layer(diff_id, size, &blob, blob_size, &media_type)?;
        Ok((blob, media_type, blob_size))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A gzip layer holding one file: (gzip bytes, diff ID).
    pub(crate) fn gzip_layer(name: &str, content: &[u8]) -> (Vec<u8>, Digest) {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        b.append(&h, content).unwrap();
        let tar = b.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        (gz.finish().unwrap(), Digest::of(&tar))
    }

    pub(crate) fn empty_dir(p: &std::path::Path) -> bool {
        fs::read_dir(p).unwrap().next().is_none()
    }

    /// A flipped first byte breaks the gzip header; a flipped last byte only the
    /// trailer's size; either way the error is the digest the bytes did not match,
    /// and nothing is stored.
    #[test]
    fn wrong_bytes_are_reported_as_a_digest_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (gz, diff_id) = gzip_layer("hello", b"hi\n");
        let digest = Digest::of(&gz);
        for at in [0, gz.len() - 1] {
            let mut bad = gz.clone();
            bad[at] ^= 0xff;
            let src = LayerSource {
                what: "layer",
                digest: Some(&digest),
                size: Some(gz.len() as u64),
                diff_id: Some(&diff_id),
                media_type: None,
            };
            let e = store.add_layer(&bad[..], &src).unwrap_err();
            match e {
                StoreError::Blob(BlobError::DigestMismatch { expected, actual }) => {
                    assert_eq!(expected, digest);
                    assert_eq!(actual, Digest::of(&bad));
                }
                e => panic!("byte {at}: {e}"),
            }
            // Without a promised digest there is nothing to blame: the format error.
            let unpromised = LayerSource {
                digest: None,
                ..src.clone()
            };
            let e = store.add_layer(&bad[..], &unpromised).unwrap_err();
            assert!(
                !matches!(e, StoreError::Blob(BlobError::DigestMismatch { .. })),
                "{e}"
            );
        }
        assert!(store.blobs().list().unwrap().is_empty());
        assert!(empty_dir(&dir.path().join("layers")));
        assert!(empty_dir(&dir.path().join("tmp")));
        assert!(empty_dir(&dir.path().join("ingest")));

        // The right bytes for another image: the diff ID is the error.
        let other = Digest::of(b"another layer");
        let src = LayerSource {
            what: "layer",
            digest: Some(&digest),
            size: Some(gz.len() as u64),
            diff_id: Some(&other),
            media_type: None,
        };
        let e = store.add_layer(&gz[..], &src).unwrap_err();
        assert!(matches!(e, StoreError::DiffIdMismatch { .. }), "{e}");
        assert!(empty_dir(&dir.path().join("layers")));
    }
}
