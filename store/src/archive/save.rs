//! Writing images as one tar that Docker, skopeo and umoci all read.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use oci_spec::image::{
    DescriptorBuilder, ImageIndexBuilder, ImageManifestBuilder, MediaType, SCHEMA_VERSION,
};

use super::{ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, ArchiveError, DockerManifestEntry};
use crate::digest::Digest;
use crate::error::StoreError;
use crate::fsutil;
use crate::images::ImageRecord;
use crate::layer_blob::BlobUse;
use crate::reference::ImageRef;
use crate::store::{Store, io_err};

/// One image to save, with the names to record for it (none when saved by ID).
#[derive(Debug, Clone)]
pub struct SaveRequest {
    pub image: ImageRecord,
    pub names: Vec<ImageRef>,
}

/// Which image archive formats one tar holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// Both, as `docker save` (25+) writes: what every tool reads.
    #[default]
    Both,
    /// A Docker archive only (`manifest.json`, `repositories`): buildx `type=docker`.
    Docker,
    /// An OCI image layout only (`oci-layout`, `index.json`): buildx `type=oci`.
    Oci,
}

/// Writes `images` to the file `path` atomically: into a temp file beside it, fsynced,
/// then renamed over it, so a failed or killed save never leaves a partial archive
/// under that name (at worst a `.NAME.rbuild-tmp-…` file beside it after a `kill -9`).
pub fn save_to_path(
    store: &Store,
    images: &[SaveRequest],
    path: &Path,
) -> Result<(), ArchiveError> {
    save_to_path_as(store, images, ArchiveFormat::Both, path)
}

/// [`save_to_path`] in one of the formats.
pub fn save_to_path_as(
    store: &Store,
    images: &[SaveRequest],
    format: ArchiveFormat,
    path: &Path,
) -> Result<(), ArchiveError> {
    let what = path.display().to_string();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| ArchiveError::Malformed(format!("{what}: not a file name")))?;
    let tmp = dir.join(fsutil::unique_name(&format!(
        ".{}.rbuild-tmp",
        file_name.to_string_lossy()
    )));
    let result = (|| {
        let file = File::options()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)
            .map_err(io_err(format!("creating {}", tmp.display())))?;
        let mut out = io::BufWriter::with_capacity(1 << 20, file);
        save_as(store, images, format, &mut out)?;
        let file = out
            .into_inner()
            .map_err(|e| io_err(format!("writing {what}"))(e.into_error()))?;
        file.sync_all().map_err(io_err(format!("writing {what}")))?;
        drop(file);
        fs::rename(&tmp, path).map_err(io_err(format!("writing {what}")))?;
        fsutil::sync_dir(dir).map_err(io_err(format!("syncing {}", dir.display())))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes `images` to `out` as a Docker archive + OCI layout tar. Entries are sorted
/// within each part and carry fixed metadata, so the same images give the same bytes.
///
/// Holds the store's shared lock throughout, so GC cannot delete a blob mid-copy.
pub fn save(store: &Store, images: &[SaveRequest], out: impl Write) -> Result<(), ArchiveError> {
    save_as(store, images, ArchiveFormat::Both, out)
}

/// [`save`] in one of the formats.
pub fn save_as(
    store: &Store,
    images: &[SaveRequest],
    format: ArchiveFormat,
    out: impl Write,
) -> Result<(), ArchiveError> {
    let (docker, oci) = (
        format != ArchiveFormat::Oci,
        format != ArchiveFormat::Docker,
    );
    let _lock = store.write_lock()?;
    let mut blobs: BTreeSet<Digest> = BTreeSet::new();
    let mut small: BTreeMap<Digest, Vec<u8>> = BTreeMap::new();
    let mut docker_manifest = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut index_entries = Vec::new();

    for req in images {
        let img = &req.image;
        let config = store.config_bytes(&img.id)?;
        let mut layers = Vec::new();
        for diff_id in &img.layers {
            layers.push(store.layer_blob(diff_id, BlobUse::Archive)?);
        }
        let manifest = ImageManifestBuilder::default()
            .schema_version(SCHEMA_VERSION)
            .media_type(MediaType::ImageManifest)
            .config(
                DescriptorBuilder::default()
                    .media_type(MediaType::ImageConfig)
                    .digest(oci_spec::image::Digest::from(&img.id))
                    .size(config.len() as u64)
                    .build()
                    .map_err(spec_err)?,
            )
            .layers(
                layers
                    .iter()
                    .map(|l| {
                        DescriptorBuilder::default()
                            .media_type(MediaType::from(l.media_type.as_str()))
                            .digest(oci_spec::image::Digest::from(&l.digest))
                            .size(l.size)
                            .build()
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(spec_err)?,
            )
            .build()
            .map_err(spec_err)?;
        let manifest_bytes = serde_json::to_vec(&manifest).map_err(json_err)?;
        let manifest_digest = Digest::of(&manifest_bytes);
        let descriptor = |annotations: Option<std::collections::HashMap<String, String>>| {
            let mut b = DescriptorBuilder::default()
                .media_type(MediaType::ImageManifest)
                .digest(oci_spec::image::Digest::from(&manifest_digest))
                .size(manifest_bytes.len() as u64);
            if let Some(a) = annotations {
                b = b.annotations(a);
            }
            b.build().map_err(spec_err)
        };
        if req.names.is_empty() {
            index_entries.push(descriptor(None)?);
        }
        for name in &req.names {
            let mut a = std::collections::HashMap::new();
            a.insert(ANNOTATION_IMAGE_NAME.to_string(), name.to_string());
            if let Some(tag) = name.tag() {
                a.insert(ANNOTATION_REF_NAME.to_string(), tag.to_string());
                if let Some(top) = layers.last() {
                    repositories
                        .entry(name.familiar_name())
                        .or_default()
                        .insert(tag.to_string(), top.digest.hex().to_string());
                }
            }
            index_entries.push(descriptor(Some(a))?);
        }
        docker_manifest.push(DockerManifestEntry {
            config: blob_path(&img.id),
            repo_tags: req
                .names
                .iter()
                .filter(|n| n.tag().is_some())
                .map(|n| n.familiar())
                .collect(),
            layers: layers.iter().map(|l| blob_path(&l.digest)).collect(),
        });
        small.insert(img.id.clone(), config);
        small.insert(manifest_digest, manifest_bytes);
        blobs.extend(layers.into_iter().map(|l| l.digest));
    }

    let index = ImageIndexBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageIndex)
        .manifests(index_entries)
        .build()
        .map_err(spec_err)?;

    let mut tar = tar::Builder::new(out);
    let io = |e: io::Error| ArchiveError::Malformed(format!("writing the archive: {e}"));
    append_dir(&mut tar, "blobs/").map_err(io)?;
    append_dir(&mut tar, "blobs/sha256/").map_err(io)?;
    let mut all: BTreeSet<Digest> = blobs.clone();
    all.extend(small.keys().cloned());
    for d in &all {
        let path = blob_path(d);
        if let Some(bytes) = small.get(d) {
            append_file(&mut tar, &path, bytes.len() as u64, &bytes[..]).map_err(io)?;
        } else {
            let size = store.blobs().size(d)?;
            let f = store.blobs().open(d)?;
            // Verify as we copy: a damaged blob must not leave in an archive unnoticed.
            let reader = crate::digest::Verifying::new(
                io::BufReader::with_capacity(1 << 20, f),
                d.clone(),
                Some(size),
            );
            append_file(&mut tar, &path, size, reader)
                .map_err(|e| ArchiveError::Malformed(format!("blob {d}: {e}")))?;
        }
    }
    if oci {
        let index_bytes = serde_json::to_vec(&index).map_err(json_err)?;
        append_file(
            &mut tar,
            "index.json",
            index_bytes.len() as u64,
            &index_bytes[..],
        )
        .map_err(io)?;
    }
    if docker {
        let manifest_json = serde_json::to_vec(&docker_manifest).map_err(json_err)?;
        append_file(
            &mut tar,
            "manifest.json",
            manifest_json.len() as u64,
            &manifest_json[..],
        )
        .map_err(io)?;
    }
    if oci {
        let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
        append_file(&mut tar, "oci-layout", layout.len() as u64, &layout[..]).map_err(io)?;
    }
    if docker && !repositories.is_empty() {
        let repos = serde_json::to_vec(&repositories).map_err(json_err)?;
        append_file(&mut tar, "repositories", repos.len() as u64, &repos[..]).map_err(io)?;
    }
    tar.into_inner().map_err(io)?.flush().map_err(io)?;
    Ok(())
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

fn header(path: &str, size: u64, ty: tar::EntryType, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(ty);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    // Paths here are short and ASCII: blobs/sha256/<64 hex> fits ustar's 100 bytes.
    let _ = h.set_path(path);
    h.set_cksum();
    h
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> io::Result<()> {
    let h = header(path, 0, tar::EntryType::Directory, 0o755);
    tar.append(&h, io::empty())
}

fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    r: impl io::Read,
) -> io::Result<()> {
    let h = header(path, size, tar::EntryType::Regular, 0o644);
    tar.append(&h, r)
}

fn spec_err(e: oci_spec::OciSpecError) -> ArchiveError {
    ArchiveError::Malformed(format!("building OCI metadata: {e}"))
}

fn json_err(e: serde_json::Error) -> ArchiveError {
    ArchiveError::Store(StoreError::Io {
        what: "encoding JSON".into(),
        source: e.into(),
    })
}
