//! Reading image archives: Docker archives (`manifest.json`, old `<id>/layer.tar` and
//! new `blobs/sha256/` layouts) and OCI image layouts (`index.json`).
//!
//! Every path an archive names is cleaned and must stay inside the archive; every JSON
//! member is size-capped; every blob named by digest is verified; each layer's diff ID
//! must match its image config. Images are recorded only after all their layers are
//! stored, so a failed or killed load leaves no image half there.

use std::fs::{self, File};
use std::io::{self, Read, Seek};
use std::path::Path;

use oci_spec::image::{ImageIndex, ImageManifest, MediaType};

use super::members::{Members, clean};
use super::{ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, ArchiveError, DockerManifestEntry};
use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::error::StoreError;
use crate::fsutil;
use crate::images::NewImage;
use crate::layer;
use crate::reference::ImageRef;
use crate::store::{Store, io_err};
use crate::unpack::LayerSource;

/// One image a load stored.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    pub id: Digest,
    /// Names it was given.
    pub tags: Vec<ImageRef>,
    /// Names that moved to it from another image (Docker prints a notice for these).
    pub replaced: Vec<(ImageRef, Digest)>,
}

/// Loads every image in the archive at `path`. A plain tar file is read in place; a
/// compressed one is first decompressed into the store's scratch space.
pub fn load_path(store: &Store, path: &Path) -> Result<Vec<LoadedImage>, ArchiveError> {
    let what = path.display().to_string();
    let mut file = File::open(path).map_err(io_err(format!("opening {what}")))?;
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut file, &mut magic).map_err(io_err(format!("reading {what}")))?;
    file.rewind().map_err(io_err(format!("reading {what}")))?;
    match layer::Compression::detect(&magic[..n]) {
        layer::Compression::None => load_members(store, file, &what),
        _ => load_reader(store, file, &what),
    }
}

/// Loads every image in the archive read from `input` (a pipe, say), spooling it into
/// the store's scratch space first: the archive's manifest may come last, and layers
/// must be read in the order the manifest lists them.
pub fn load_reader(
    store: &Store,
    input: impl Read,
    what: &str,
) -> Result<Vec<LoadedImage>, ArchiveError> {
    let _lock = store.write_lock()?;
    let scratch = store.scratch_dir("load")?;
    let result = (|| {
        let (_, mut plain) = layer::decompress(input).map_err(io_err(format!("reading {what}")))?;
        let path = scratch.join("archive.tar");
        let mut f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err(format!("creating {}", path.display())))?;
        io::copy(&mut plain, &mut f).map_err(io_err(format!("reading {what}")))?;
        f.rewind()
            .map_err(io_err(format!("reading {}", path.display())))?;
        load_members(store, f, what)
    })();
    let _ = fsutil::remove_tree(&scratch);
    result
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn load_members(store: &Store, file: File, what: &str) -> Result<Vec<LoadedImage>, ArchiveError> {
    let _lock = store.write_lock()?;
    let members = Members::read(file, what)?;
    if members.contains("manifest.json") {
        load_docker(store, &members)
    } else if members.contains("index.json") {
        load_oci(store, &members)
    } else {
        Err(ArchiveError::NotAnImage)
    }
}

fn load_docker(store: &Store, members: &Members) -> Result<Vec<LoadedImage>, ArchiveError> {
    let bytes = members.read_json("manifest.json")?;
    let entries: Vec<DockerManifestEntry> = serde_json::from_slice(&bytes)
        .map_err(|e| ArchiveError::Malformed(format!("manifest.json: {e}")))?;
    let mut loaded = Vec::new();
    for entry in entries {
        let config_path = inside(&entry.config, "manifest.json")?;
        let config_bytes = members.read_json(&config_path)?;
        let id = Digest::of(&config_bytes);
        // New-style archives name blobs by digest: hold them to it.
        if let Some(d) = digest_of_path(&config_path)
            && d != id
        {
            return Err(ArchiveError::Malformed(format!(
                "archive member {config_path}: digest mismatch: expected {d}, got {id}"
            )));
        }
        let config = parse_config(&config_bytes, &config_path)?;
        if config.rootfs.diff_ids.len() != entry.layers.len() {
            return Err(ArchiveError::Malformed(format!(
                "manifest.json: image {id} lists {} layers but its config has {} diff IDs",
                entry.layers.len(),
                config.rootfs.diff_ids.len()
            )));
        }
        for (path, diff_id) in entry.layers.iter().zip(&config.rootfs.diff_ids) {
            let path = inside(path, "manifest.json")?;
            let digest = digest_of_path(&path);
            let what = format!("archive member {path}");
            let reader = members.open(&path)?;
            store
                .add_layer(
                    reader,
                    &LayerSource {
                        what: &what,
                        digest: digest.as_ref(),
                        size: None,
                        diff_id: Some(diff_id),
                        media_type: None,
                    },
                )
                .map_err(|e| name_member(e, &what))?;
        }
        let id = store.create_image(&config_bytes, &NewImage::default())?;
        let mut tags = Vec::new();
        for t in &entry.repo_tags {
            let r = ImageRef::parse(t)
                .map_err(|e| {
                    ArchiveError::Malformed(format!("manifest.json: RepoTags {t:?}: {e}"))
                })?
                .with_default_tag();
            tags.push(r);
        }
        loaded.push(finish(store, id, tags)?);
    }
    Ok(loaded)
}

fn load_oci(store: &Store, members: &Members) -> Result<Vec<LoadedImage>, ArchiveError> {
    let bytes = members.read_json("index.json")?;
    let index: ImageIndex = serde_json::from_slice(&bytes)
        .map_err(|e| ArchiveError::Malformed(format!("index.json: {e}")))?;
    let mut loaded = Vec::new();
    for desc in index.manifests() {
        let annotations = desc.annotations().clone().unwrap_or_default();
        let name = annotations
            .get(ANNOTATION_IMAGE_NAME)
            .or_else(|| {
                annotations
                    .get(ANNOTATION_REF_NAME)
                    .filter(|r| r.contains(':') || r.contains('/'))
            })
            .and_then(|n| ImageRef::parse(n).ok())
            .map(ImageRef::with_default_tag);
        let digest = Digest::try_from(desc.digest())
            .map_err(|e| ArchiveError::Malformed(format!("index.json: {e}")))?;
        let manifest_digest = resolve_manifest(members, &digest, desc.media_type())?;
        let manifest_bytes = read_blob(members, &manifest_digest)?;
        let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| ArchiveError::Malformed(format!("manifest {manifest_digest}: {e}")))?;
        let config_digest = Digest::try_from(manifest.config().digest())
            .map_err(|e| ArchiveError::Malformed(format!("manifest {manifest_digest}: {e}")))?;
        let config_bytes = read_blob(members, &config_digest)?;
        let config = parse_config(&config_bytes, &blob_member(&config_digest))?;
        if config.rootfs.diff_ids.len() != manifest.layers().len() {
            return Err(ArchiveError::Malformed(format!(
                "manifest {manifest_digest} lists {} layers but its config has {} diff IDs",
                manifest.layers().len(),
                config.rootfs.diff_ids.len()
            )));
        }
        for (l, diff_id) in manifest.layers().iter().zip(&config.rootfs.diff_ids) {
            let d = Digest::try_from(l.digest())
                .map_err(|e| ArchiveError::Malformed(format!("manifest {manifest_digest}: {e}")))?;
            let path = blob_member(&d);
            let what = format!("archive member {path}");
            let media_type = l.media_type().to_string();
            store
                .add_layer(
                    members.open(&path)?,
                    &LayerSource {
                        what: &what,
                        digest: Some(&d),
                        size: Some(l.size()),
                        diff_id: Some(diff_id),
                        media_type: Some(&media_type),
                    },
                )
                .map_err(|e| name_member(e, &what))?;
        }
        store.blobs().put(&manifest_bytes)?;
        let id = store.create_image(
            &config_bytes,
            &NewImage {
                parent: None,
                manifest: Some(manifest_digest),
            },
        )?;
        loaded.push(finish(store, id, name.into_iter().collect())?);
    }
    Ok(loaded)
}

/// Follows nested indexes down to the manifest for this machine's platform.
fn resolve_manifest(
    members: &Members,
    digest: &Digest,
    media_type: &MediaType,
) -> Result<Digest, ArchiveError> {
    if *media_type != MediaType::ImageIndex
        && media_type.to_string() != "application/vnd.docker.distribution.manifest.list.v2+json"
    {
        return Ok(digest.clone());
    }
    let bytes = read_blob(members, digest)?;
    let index: ImageIndex = serde_json::from_slice(&bytes)
        .map_err(|e| ArchiveError::Malformed(format!("index {digest}: {e}")))?;
    let arch = crate::platform::native_arch();
    let chosen = index
        .manifests()
        .iter()
        .find(|m| {
            m.platform().as_ref().is_some_and(|p| {
                p.architecture().to_string() == arch && p.os().to_string() == "linux"
            })
        })
        .or_else(|| index.manifests().first())
        .ok_or_else(|| ArchiveError::Malformed(format!("index {digest} lists no manifests")))?;
    let d = Digest::try_from(chosen.digest())
        .map_err(|e| ArchiveError::Malformed(format!("index {digest}: {e}")))?;
    resolve_manifest(members, &d, chosen.media_type())
}

fn read_blob(members: &Members, d: &Digest) -> Result<Vec<u8>, ArchiveError> {
    let path = blob_member(d);
    let bytes = members.read_json(&path)?;
    let actual = Digest::of(&bytes);
    if &actual != d {
        return Err(ArchiveError::Malformed(format!(
            "archive member {path}: digest mismatch: expected {d}, got {actual}"
        )));
    }
    Ok(bytes)
}

fn finish(store: &Store, id: Digest, tags: Vec<ImageRef>) -> Result<LoadedImage, ArchiveError> {
    let mut replaced = Vec::new();
    for t in &tags {
        if let Some(old) = store.tag(&id, t)? {
            replaced.push((t.clone(), old));
        }
    }
    Ok(LoadedImage { id, tags, replaced })
}

fn parse_config(bytes: &[u8], path: &str) -> Result<ImageConfig, ArchiveError> {
    ImageConfig::from_slice(bytes).map_err(|e| {
        ArchiveError::Malformed(format!("archive member {path}: not an image config: {e}"))
    })
}

fn inside(path: &str, from: &str) -> Result<String, ArchiveError> {
    clean(path).filter(|p| !p.is_empty()).ok_or_else(|| {
        ArchiveError::Malformed(format!(
            "{from} names {path:?}, which is outside the archive"
        ))
    })
}

fn blob_member(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// `blobs/sha256/<hex>` names its own digest.
fn digest_of_path(path: &str) -> Option<Digest> {
    path.strip_prefix("blobs/sha256/")
        .and_then(|h| Digest::from_hex(h).ok())
}

/// Store errors about a layer already say which; others get the member named.
fn name_member(e: StoreError, what: &str) -> ArchiveError {
    match e {
        StoreError::Io { what: w, source } if !w.contains(what) => {
            ArchiveError::Store(StoreError::Io {
                what: format!("{what}: {w}"),
                source,
            })
        }
        StoreError::Blob(b) => ArchiveError::Malformed(format!("{what}: {b}")),
        StoreError::Layer(l) => ArchiveError::Malformed(format!("{what}: {l}")),
        other => ArchiveError::Store(other),
    }
}
