//! Layer blob compression, told apart by magic bytes rather than by media type: registries
//! and `docker save` archives are known to label layers wrongly (Docker v2 manifests say
//! "tar.gzip" for plain tars in the wild), and the bytes cannot lie.

use std::io::{self, Cursor, Read};

/// gzip member header (RFC 1952, section 2.3.1: ID1 ID2).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// zstd frame magic number (RFC 8878, section 3.1.1), little-endian 0xFD2FB528.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Compression of a layer blob, detected from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// Anything that is neither gzip nor zstd is taken for a plain tar, as Docker does
    /// (`pkg/archive.DetectCompression`); if it is not a tar either, the tar reader says so.
    pub fn detect(magic: &[u8]) -> Compression {
        if magic.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else if magic.starts_with(&ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// What OCI appends to `application/vnd.oci.image.layer.v1.tar` (image-spec
    /// `media-types.md`), so that a manifest can be written from what was detected.
    pub fn media_type_suffix(&self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => "+gzip",
            Compression::Zstd => "+zstd",
        }
    }
}

/// Wraps a reader so that it yields the uncompressed tar stream, sniffing the compression.
/// The sniffed bytes are put back in front, so nothing is lost whatever the compression.
/// gzip is read as a multi-member stream (RFC 1952 section 2.2 allows concatenated members,
/// and Go's `compress/gzip`, which wrote most layers in existence, reads them so).
pub fn decompress<'a, R: Read + 'a>(mut r: R) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut magic = [0u8; 4];
    let mut got = 0;
    // A reader may hand out fewer bytes than asked; only EOF ends the sniffing early.
    while got < magic.len() {
        match r.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let whole = Cursor::new(magic).take(got as u64).chain(r);
    let compression = Compression::detect(&magic[..got]);
    let reader: Box<dyn Read + 'a> = match compression {
        Compression::None => Box::new(whole),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(whole)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(whole)?),
    };
    Ok((compression, reader))
}
