//! Content-addressed blobs: `blobs/sha256/<hex>`, written through `ingest/`.
//!
//! A blob reaches `blobs/` only whole, fsynced and hashed to the digest it is filed
//! under; a write that promised a digest and delivered other bytes is discarded with an
//! error naming both. Readers never see partial content, so a crash at any moment
//! leaves at worst a stray file in `ingest/` that GC sweeps.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::digest::{Digest, Hashing};
use crate::fsutil;

/// Why a blob could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("blob {0} not found in the store")]
    NotFound(Digest),
    #[error("blob {digest}: {source}")]
    Io {
        digest: Digest,
        #[source]
        source: io::Error,
    },
    #[error("writing blob: {0}")]
    Write(#[source] io::Error),
}

/// The blob directory of a store.
#[derive(Debug, Clone)]
pub struct Blobs {
    dir: PathBuf,
    ingest: PathBuf,
}

impl Blobs {
    pub(crate) fn new(root: &Path) -> Blobs {
        Blobs {
            dir: root.join("blobs").join("sha256"),
            ingest: root.join("ingest"),
        }
    }

    pub(crate) fn create_dirs(&self) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        fs::create_dir_all(&self.ingest)
    }

    /// Where the blob lives; the only way a blob path is built.
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.hex())
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Size of a stored blob.
    pub fn size(&self, digest: &Digest) -> Result<u64, BlobError> {
        match fs::metadata(self.path(digest)) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(BlobError::NotFound(digest.clone()))
            }
            Err(source) => Err(BlobError::Io {
                digest: digest.clone(),
                source,
            }),
        }
    }

    pub fn open(&self, digest: &Digest) -> Result<File, BlobError> {
        File::open(self.path(digest)).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                BlobError::NotFound(digest.clone())
            } else {
                BlobError::Io {
                    digest: digest.clone(),
                    source,
                }
            }
        })
    }

    /// Reads a small blob (config, manifest) whole, re-checking its digest: these are
    /// parsed and trusted, so a bit flip on disk must not go unnoticed.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>, BlobError> {
        let mut bytes = Vec::new();
        self.open(digest)?
            .read_to_end(&mut bytes)
            .map_err(|source| BlobError::Io {
                digest: digest.clone(),
                source,
            })?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(BlobError::DigestMismatch {
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Stores `bytes`, returning their digest. Idempotent.
    pub fn put(&self, bytes: &[u8]) -> Result<Digest, BlobError> {
        let digest = Digest::of(bytes);
        if self.contains(&digest) {
            return Ok(digest);
        }
        let mut w = self.writer()?;
        w.write_all(bytes).map_err(BlobError::Write)?;
        w.commit(Some(&digest), Some(bytes.len() as u64))
    }

    /// Streams `r` into the store, checking it against `expected` (and its size) when given.
    pub fn put_reader(
        &self,
        r: impl Read,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<(Digest, u64), BlobError> {
        let mut w = self.writer()?;
        let mut r = r;
        io::copy(&mut r, &mut w).map_err(BlobError::Write)?;
        let size = w.len();
        let digest = w.commit(expected, expected_size)?;
        Ok((digest, size))
    }

    /// A writer into `ingest/`; nothing is visible until [`BlobWriter::commit`].
    pub fn writer(&self) -> Result<BlobWriter, BlobError> {
        let tmp = self.ingest.join(fsutil::unique_name("blob"));
        let file = fsutil::create_new(&tmp).map_err(BlobError::Write)?;
        Ok(BlobWriter {
            blobs: self.clone(),
            tmp,
            out: Some(Hashing::new(BufWriter::with_capacity(1 << 20, file))),
            written_back: 0,
        })
    }

    /// Every stored blob's digest (names that are not digests are skipped: GC reports them).
    pub fn list(&self) -> io::Result<Vec<Digest>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            if let Some(d) = name.to_str().and_then(|n| Digest::from_hex(n).ok()) {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Deletes a blob; a missing blob is not an error (GC may race a crash cleanup).
    pub(crate) fn remove(&self, digest: &Digest) -> io::Result<()> {
        match fs::remove_file(self.path(digest)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub(crate) fn ingest_dir(&self) -> &Path {
        &self.ingest
    }
}

/// An in-progress blob write. Dropping it without `commit` deletes the temp file.
pub struct BlobWriter {
    blobs: Blobs,
    tmp: PathBuf,
    out: Option<Hashing<BufWriter<File>>>,
    /// Bytes of the file whose writeback has been started.
    written_back: u64,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.out.as_ref().map_or(0, |o| o.count())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The digest of the bytes written so far (`None` once committed): lets a caller
    /// whose reader failed tell wrong bytes from a wrong format without committing.
    pub fn digest(&self) -> Option<Digest> {
        self.out.as_ref().map(|o| o.digest())
    }

    /// Makes the blob visible under its digest: fsync, verify, rename, fsync dir, read-only.
    pub fn commit(
        mut self,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<Digest, BlobError> {
        let out = self
            .out
            .take()
            .ok_or_else(|| BlobError::Write(io::Error::other("blob writer already committed")))?;
        let (digest, size, buf) = out.finish();
        let file = buf
            .into_inner()
            .map_err(|e| BlobError::Write(e.into_error()))?;
        if let Some(want) = expected_size
            && want != size
        {
            return Err(BlobError::SizeMismatch {
                digest: expected.unwrap_or(&digest).clone(),
                expected: want,
                actual: size,
            });
        }
        if let Some(expected) = expected
            && expected != &digest
        {
            return Err(BlobError::DigestMismatch {
                expected: expected.clone(),
                actual: digest,
            });
        }
        let io_err = |source| BlobError::Io {
            digest: digest.clone(),
            source,
        };
        file.sync_all().map_err(io_err)?;
        file.set_permissions(fs::Permissions::from_mode(0o444))
            .map_err(io_err)?;
        drop(file);
        let dest = self.blobs.path(&digest);
        fs::rename(&self.tmp, &dest).map_err(io_err)?;
        fsutil::sync_dir(&self.blobs.dir).map_err(io_err)?;
        Ok(digest)
    }
}

/// How much a blob writer lets pile up in the page cache before it starts writing it
/// to disk (see [`fsutil::start_writeback`]).
const WRITEBACK_STEP: u64 = 8 << 20;

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(o) = &mut self.out else {
            return Err(io::Error::other("blob writer already committed"));
        };
        let n = o.write(buf)?;
        let buffered = o.get_mut().buffer().len() as u64;
        let in_file = o.count() - buffered;
        if in_file - self.written_back >= WRITEBACK_STEP {
            fsutil::start_writeback(
                o.get_mut().get_ref(),
                self.written_back,
                in_file - self.written_back,
            );
            self.written_back = in_file;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.out {
            Some(o) => o.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // After a successful commit the temp name no longer exists; otherwise this is
        // the cleanup of an abandoned or failed write.
        let _ = fs::remove_file(&self.tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs() -> (tempfile::TempDir, Blobs) {
        let dir = tempfile::tempdir().unwrap();
        let b = Blobs::new(dir.path());
        b.create_dirs().unwrap();
        (dir, b)
    }

    #[test]
    fn put_and_read_back() {
        let (_d, b) = blobs();
        let d = b.put(b"hello").unwrap();
        assert_eq!(d, Digest::of(b"hello"));
        assert_eq!(b.read(&d).unwrap(), b"hello");
        assert_eq!(b.size(&d).unwrap(), 5);
        assert_eq!(b.put(b"hello").unwrap(), d, "idempotent");
        assert_eq!(b.list().unwrap(), vec![d]);
        assert_eq!(fs::read_dir(b.ingest_dir()).unwrap().count(), 0);
    }

    #[test]
    fn wrong_content_is_discarded() {
        let (_d, b) = blobs();
        let want = Digest::of(b"hello");
        let err = b
            .put_reader(&b"hellO"[..], Some(&want), Some(5))
            .unwrap_err();
        assert!(matches!(err, BlobError::DigestMismatch { .. }), "{err}");
        assert!(err.to_string().contains(&want.to_string()));
        let err = b
            .put_reader(&b"hell"[..], Some(&want), Some(5))
            .unwrap_err();
        assert!(matches!(err, BlobError::SizeMismatch { .. }), "{err}");
        assert!(!b.contains(&want));
        assert_eq!(
            fs::read_dir(b.ingest_dir()).unwrap().count(),
            0,
            "temp removed"
        );
    }

    #[test]
    fn a_promised_size_is_checked_without_a_digest() {
        let (_d, b) = blobs();
        let err = b.put_reader(&b"hello"[..], None, Some(4)).unwrap_err();
        assert!(
            matches!(
                err,
                BlobError::SizeMismatch {
                    expected: 4,
                    actual: 5,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(b.list().unwrap(), vec![]);
    }

    #[test]
    fn corrupted_blob_is_noticed_on_read() {
        let (_d, b) = blobs();
        let d = b.put(b"config").unwrap();
        let p = b.path(&d);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&p, b"CONFIG").unwrap();
        assert!(matches!(b.read(&d), Err(BlobError::DigestMismatch { .. })));
    }
}
