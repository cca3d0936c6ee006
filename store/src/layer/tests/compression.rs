//! `decompress` sniffs and undoes gzip and zstd, and passes plain tars through.

use std::io::{Read, Write};

use super::ShortReads;
use crate::layer::{Compression, decompress};

fn plain() -> Vec<u8> {
    (0..100_000u32)
        .flat_map(|i| (i % 251).to_le_bytes())
        .collect()
}

fn roundtrip(blob: &[u8], expected: Compression) {
    let (found, mut r) = decompress(ShortReads::new(blob)).unwrap();
    assert_eq!(found, expected);
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    assert_eq!(out, plain());
}

#[test]
fn gzip_zstd_and_plain_round_trip() {
    let data = plain();
    roundtrip(&data, Compression::None);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&data).unwrap();
    roundtrip(&gz.finish().unwrap(), Compression::Gzip);

    // Two gzip members, as `cat a.gz b.gz` makes.
    let (head, tail) = data.split_at(12_345);
    let mut two = Vec::new();
    for part in [head, tail] {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(part).unwrap();
        two.extend(gz.finish().unwrap());
    }
    roundtrip(&two, Compression::Gzip);

    roundtrip(&zstd::encode_all(&data[..], 3).unwrap(), Compression::Zstd);
}

#[test]
fn detection_and_media_types() {
    assert_eq!(Compression::detect(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
    assert_eq!(
        Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd]),
        Compression::Zstd
    );
    assert_eq!(Compression::detect(&[0x28, 0xb5]), Compression::None);
    assert_eq!(Compression::detect(b""), Compression::None);
    assert_eq!(Compression::detect(b"bin/"), Compression::None);
    assert_eq!(Compression::None.media_type_suffix(), "");
    assert_eq!(Compression::Gzip.media_type_suffix(), "+gzip");
    assert_eq!(Compression::Zstd.media_type_suffix(), "+zstd");

    let (c, mut r) = decompress(&b"ab"[..]).unwrap();
    assert_eq!(c, Compression::None);
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    assert_eq!(out, b"ab");
}

#[test]
fn corrupt_gzip_is_an_error() {
    let (c, mut r) = decompress(&[0x1f, 0x8b, 0, 0, 0, 0][..]).unwrap();
    assert_eq!(c, Compression::Gzip);
    assert!(r.read_to_end(&mut Vec::new()).is_err());
}
