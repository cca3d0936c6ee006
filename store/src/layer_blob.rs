//! Which blob stands for a layer when its bytes must leave the store: `save` writes plain
//! tars, as `docker save` does; `push` sends compressed ones, as `docker push` does. A
//! layer built here has only its tree until something asks, so the blob is made then,
//! with fixed settings (the same tree always gives the same bytes), and kept: a second
//! push of the same image names the same digests.

use std::io::{self, Read};

use crate::digest::{Digest, Verifying};
use crate::error::StoreError;
use crate::layer::Compression;
use crate::store::{Store, io_err};
use crate::unpack::default_media_type;

/// A stored blob holding a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    pub digest: Digest,
    /// As recorded when the blob was stored (what a pulled manifest said, or OCI's type
    /// for what was detected or made).
    pub media_type: String,
    pub size: u64,
    /// Told from the blob's first bytes, not from its media type.
    pub compression: Compression,
}

/// What the caller will do with the blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobUse {
    /// An archive: a plain tar when there is one (made from the tree if need be), else
    /// whatever blob was received.
    Archive,
    /// A registry: a gzip or zstd blob when there is one (a pulled layer keeps the
    /// digest its registry knows), else a gzip blob made from the plain tar or tree.
    Push,
}

impl Store {
    /// The blob to hand out for the layer `diff_id`, made and recorded if none fits.
    pub fn layer_blob(&self, diff_id: &Digest, usage: BlobUse) -> Result<LayerBlob, StoreError> {
        let present_blobs = |blobs: Vec<(Digest, String, u64)>| {
            blobs
                .into_iter()
                .filter(|(d, _, _)| self.blobs().contains(d))
                .collect::<Vec<_>>()
        };
        let mut checked = present_blobs(self.layer_blobs(diff_id)?);
        if checked.is_empty() && !present_blobs(self.packed_blobs(diff_id)?).is_empty() {
            // Only packed blobs, unchecked against the diff ID: extracting the layer
            // checks one and records it with the others.
            self.layer_tree(diff_id)?;
            checked = present_blobs(self.layer_blobs(diff_id)?);
        }
        let mut present = Vec::new();
        for (digest, media_type, size) in checked {
            if self.blobs().contains(&digest) {
                let compression = self.blob_compression(&digest)?;
                present.push(LayerBlob {
                    digest,
                    media_type,
                    size,
                    compression,
                });
            }
        }
        match usage {
            BlobUse::Archive => {
                // `layer_blobs` lists the plain tar first.
                if let Some(b) = present.into_iter().next() {
                    return Ok(b);
                }
                let (digest, media_type, size) = self.make_layer_blob(diff_id)?;
                Ok(LayerBlob {
                    digest,
                    media_type,
                    size,
                    compression: Compression::None,
                })
            }
            BlobUse::Push => {
                for want in [Compression::Gzip, Compression::Zstd] {
                    if let Some(b) = present.iter().find(|b| b.compression == want) {
                        return Ok(b.clone());
                    }
                }
                self.make_gzip_layer_blob(diff_id)
            }
        }
    }

    /// Compression of a stored blob, from its first bytes.
    fn blob_compression(&self, digest: &Digest) -> Result<Compression, StoreError> {
        let mut f = self.blobs().open(digest)?;
        let mut magic = [0u8; 4];
        let mut got = 0;
        while got < magic.len() {
            match f.read(&mut magic[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err(format!("reading blob {digest}"))(e)),
            }
        }
        Ok(Compression::detect(&magic[..got]))
    }

    /// Makes a gzip blob of a layer from its plain tar blob (checked against its digest
    /// while read) or, when there is none, from its tree (checked against the diff ID),
    /// keeps it and records it. gzip at the default level with no name and a zero mtime
    /// in the header, as registries have seen from docker for years; a `Store` never
    /// makes a second gzip blob of a layer, so its digest stays what was pushed.
    pub fn make_gzip_layer_blob(&self, diff_id: &Digest) -> Result<LayerBlob, StoreError> {
        let _lock = self.write_lock()?;
        let size = self
            .layer_size(diff_id)?
            .ok_or_else(|| StoreError::MissingLayer {
                diff_id: diff_id.clone(),
            })?;
        let mut w = self.blobs().writer()?;
        {
            let mut gz = flate2::GzBuilder::new().write(&mut w, flate2::Compression::default());
            if self.blobs().contains(diff_id) {
                // A plain tar's digest is its diff ID.
                let f = self.blobs().open(diff_id)?;
                let mut r = Verifying::new(
                    io::BufReader::with_capacity(1 << 20, f),
                    diff_id.clone(),
                    None,
                );
                io::copy(&mut r, &mut gz)
                    .map_err(io_err(format!("compressing layer {diff_id}")))?;
            } else {
                self.write_layer_tar(diff_id, &mut gz)?;
            }
            gz.finish()
                .map_err(io_err(format!("compressing layer {diff_id}")))?;
        }
        let blob_size = w.len();
        let digest = w.commit(None, None)?;
        let media_type = default_media_type(Compression::Gzip);
        self.record_layer(diff_id, size, &digest, blob_size, &media_type)?;
        Ok(LayerBlob {
            digest,
            media_type,
            size: blob_size,
            compression: Compression::Gzip,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_file_tar() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_path("hello").unwrap();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        b.append(&h, &b"hi\n"[..]).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn push_gets_a_gzip_blob_made_once_and_archive_keeps_the_plain_tar() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let tar = one_file_tar();
        let layer = store
            .add_layer(&tar[..], &crate::unpack::LayerSource::default())
            .unwrap();
        assert_eq!(
            layer.blob, layer.diff_id,
            "a plain tar's digest is its diff ID"
        );

        let plain = store.layer_blob(&layer.diff_id, BlobUse::Archive).unwrap();
        assert_eq!(plain.digest, layer.diff_id);
        assert_eq!(plain.compression, Compression::None);

        let gz = store.layer_blob(&layer.diff_id, BlobUse::Push).unwrap();
        assert_eq!(gz.compression, Compression::Gzip);
        assert_ne!(gz.digest, layer.diff_id);
        let bytes = std::fs::read(store.blobs().path(&gz.digest)).unwrap();
        assert_eq!(bytes.len() as u64, gz.size);
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, tar);

        // Asked again, the same blob: nothing new is made.
        let again = store.layer_blob(&layer.diff_id, BlobUse::Push).unwrap();
        assert_eq!(again, gz);
        assert_eq!(store.layer_blobs(&layer.diff_id).unwrap().len(), 2);
        // An archive still gets the plain tar.
        let plain2 = store.layer_blob(&layer.diff_id, BlobUse::Archive).unwrap();
        assert_eq!(plain2.digest, layer.diff_id);
    }

    #[test]
    fn a_received_gzip_blob_is_pushed_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        io::Write::write_all(&mut gz, &one_file_tar()).unwrap();
        let gz = gz.finish().unwrap();
        let layer = store
            .add_layer(&gz[..], &crate::unpack::LayerSource::default())
            .unwrap();
        let got = store.layer_blob(&layer.diff_id, BlobUse::Push).unwrap();
        assert_eq!(got.digest, Digest::of(&gz));
        assert_eq!(store.layer_blobs(&layer.diff_id).unwrap().len(), 1);
    }
}
