//! `push`: an image from the store into a registry repository, as `docker push` does it.
//!
//! The manifest is chosen first: the one recorded for the image (by pull or load) when
//! everything it names is here, so that pulling and pushing elsewhere keeps the digest;
//! otherwise one is built (Docker v2 schema 2 with gzip layers, as docker pushes, or OCI
//! when a layer is zstd), stored and recorded, so that pushing again gives the same
//! digest. Then the config and layer blobs go up at once (each the cheapest way, see
//! [`super::upload`]), and only when every one of them is there, the manifest: a failed
//! push never leaves a tag naming a missing blob.

use std::collections::HashSet;
use std::path::Path;

use futures_util::future::try_join_all;
use reqwest::Method;
use reqwest::header::{self, HeaderName};
use tokio::sync::Semaphore;

use super::auth::repository_scope;
use super::progress::{Event, Progress, short_id};
use super::transport::{Body, Client, Request};
use super::upload::{BlobUpload, Target};
use super::{RegistryError, runtime};
use crate::digest::Digest;
use crate::error::StoreError;
use crate::images::ImageRecord;
use crate::layer::Compression;
use crate::layer_blob::{BlobUse, LayerBlob};
use crate::reference::ImageRef;
use crate::store::Store;

/// Docker's `max-concurrent-uploads` default.
pub const DEFAULT_MAX_CONCURRENT: usize = 5;
/// Blobs up to this size go up in one request; larger ones in chunks of this size.
pub const DEFAULT_CHUNK_SIZE: u64 = 16 << 20;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Blobs uploading at once.
    pub max_concurrent: usize,
    /// The largest blob sent in one PUT, and the size of each PATCH for larger ones.
    pub chunk_size: u64,
}

impl Default for PushOptions {
    fn default() -> PushOptions {
        PushOptions {
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }
}

/// What the registry now holds under the tag: docker's `TAG: digest: … size: N` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOutcome {
    pub tag: String,
    pub digest: Digest,
    /// The manifest's size in bytes.
    pub size: u64,
}

/// The tags of `name`'s repository in the store, sorted: what `push --all-tags` pushes,
/// and, when there are none, docker's "An image does not exist locally" case.
pub fn local_tags(store: &Store, name: &ImageRef) -> Result<Vec<ImageRef>, StoreError> {
    let full = name.full_name();
    let mut tags: Vec<ImageRef> = store
        .images()?
        .into_iter()
        .flat_map(|img| img.tags)
        .filter(|t| t.full_name() == full)
        .collect();
    tags.sort();
    tags.dedup();
    Ok(tags)
}

/// Pushes the image `reference` (`registry/repo:tag`) names in the store at
/// `store_root`. Blocks; the transfers run on a runtime of their own.
pub fn push(
    store_root: &Path,
    client: &Client,
    reference: &ImageRef,
    opts: &PushOptions,
    progress: &dyn Progress,
) -> Result<PushOutcome, RegistryError> {
    let tag = match (reference.tag(), reference.digest()) {
        (_, Some(_)) => {
            return Err(RegistryError::Unsupported(
                "cannot push a digest reference".into(),
            ));
        }
        (Some(t), None) => t.to_string(),
        (None, None) => "latest".to_string(),
    };
    let reference = reference.clone().with_default_tag();
    let registry = reference.registry();
    let repository = reference.repository();

    let store = Store::open(store_root)?;
    // Shared with other writers; keeps GC from removing a blob while it is read.
    let _lock = store.write_lock()?;
    let image = store
        .images()?
        .into_iter()
        .find(|img| img.tags.contains(&reference))
        .ok_or_else(|| {
            RegistryError::Unsupported(format!("tag does not exist: {}", reference.familiar()))
        })?;

    // Docker lists every layer as Preparing before anything moves, top layer first.
    let mut seen = HashSet::new();
    let shown: Vec<String> = image
        .layers
        .iter()
        .rev()
        .map(short_id)
        .filter(|id| seen.insert(id.clone()))
        .collect();
    for id in &shown {
        progress.event(Event::Status {
            id: id.clone(),
            status: "Preparing".into(),
        });
    }

    let manifest = match recorded_manifest(&store, &image)? {
        Some(m) => m,
        None => build_and_record(&store, &image)?,
    };
    let mut uploads = Vec::new();
    let mut queued = HashSet::new();
    for (blob, id) in std::iter::once((&manifest.config, None)).chain(
        manifest
            .layers
            .iter()
            .zip(&image.layers)
            .rev()
            .map(|(b, diff_id)| (b, Some(short_id(diff_id)))),
    ) {
        if !queued.insert(blob.digest.clone()) {
            continue;
        }
        uploads.push(BlobUpload {
            digest: blob.digest.clone(),
            size: blob.size,
            path: store.blobs().path(&blob.digest),
            id,
            mount_from: store.blob_sources(&blob.digest, registry, repository)?,
        });
    }

    let rt = runtime()?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let target = Target {
        client,
        registry,
        repository,
        chunk_size: opts.chunk_size.max(1),
        events: tx,
    };
    let result = rt.block_on(async {
        let work = async {
            let target = target;
            let slots = Semaphore::new(opts.max_concurrent.max(1));
            try_join_all(uploads.iter().map(|blob| async {
                let permit = match slots.try_acquire() {
                    Ok(p) => p,
                    Err(_) => {
                        if let Some(id) = &blob.id {
                            let _ = target.events.send(Event::Status {
                                id: id.clone(),
                                status: "Waiting".into(),
                            });
                        }
                        slots
                            .acquire()
                            .await
                            .map_err(|_| RegistryError::Interrupted)?
                    }
                };
                let done = target.upload(blob).await;
                drop(permit);
                done
            }))
            .await?;
            put_manifest(client, &reference, &manifest).await
        };
        // Events from every transfer go through one channel, shown in the order sent.
        // The channel is not waited on to close: a request body still held by the HTTP
        // stack keeps a sender alive.
        let mut work = std::pin::pin!(work);
        loop {
            tokio::select! {
                biased;
                Some(e) = rx.recv() => progress.event(e),
                result = &mut work => {
                    while let Ok(e) = rx.try_recv() {
                        progress.event(e);
                    }
                    break result;
                }
            }
        }
    });
    result?;

    for blob in &uploads {
        store.record_blob_source(&blob.digest, registry, repository)?;
    }
    // A RepoDigest, as docker records after a push.
    if let Ok(pinned) = ImageRef::parse(&format!("{}@{}", reference.full_name(), manifest.digest)) {
        store.tag(&image.id, &pinned)?;
    }
    let outcome = PushOutcome {
        tag,
        digest: manifest.digest.clone(),
        size: manifest.bytes.len() as u64,
    };
    progress.event(Event::Message(format!(
        "{}: digest: {} size: {}",
        outcome.tag, outcome.digest, outcome.size
    )));
    Ok(outcome)
}

/// A blob a manifest names.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BlobRef {
    digest: Digest,
    size: u64,
}

/// The manifest to push and the blobs it names, in its order.
#[derive(Debug, Clone)]
struct Manifest {
    bytes: Vec<u8>,
    digest: Digest,
    media_type: String,
    config: BlobRef,
    layers: Vec<BlobRef>,
}

/// Just what is read from a stored manifest to check it still fits the image.
#[derive(serde::Deserialize)]
struct StoredManifest {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    config: StoredDescriptor,
    layers: Vec<StoredDescriptor>,
}

#[derive(serde::Deserialize)]
struct StoredDescriptor {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    digest: Digest,
    size: u64,
}

/// The image's recorded manifest, if it is here whole and still describes this image:
/// its config is the image's, and each layer blob is stored and recorded for the layer
/// at that position.
fn recorded_manifest(store: &Store, image: &ImageRecord) -> Result<Option<Manifest>, StoreError> {
    let Some(digest) = &image.manifest else {
        return Ok(None);
    };
    if !store.blobs().contains(digest) {
        return Ok(None);
    }
    let bytes = store.blobs().read(digest)?;
    let Ok(m) = serde_json::from_slice::<StoredManifest>(&bytes) else {
        return Ok(None);
    };
    if m.schema_version != 2 || m.config.digest != image.id || m.layers.len() != image.layers.len()
    {
        return Ok(None);
    }
    for (l, diff_id) in m.layers.iter().zip(&image.layers) {
        // A packed blob's pairing with the diff ID is unchecked, but it is this image's
        // own manifest's: pushed as pulled, as `skopeo copy` would.
        let mut blobs = store.layer_blobs(diff_id)?;
        blobs.extend(store.packed_blobs(diff_id)?);
        let recorded = blobs
            .into_iter()
            .any(|(d, _, size)| d == l.digest && size == l.size);
        if !recorded || !store.blobs().contains(&l.digest) {
            return Ok(None);
        }
    }
    // OCI manifests may leave out their own media type; the config's tells them apart.
    let media_type = m.media_type.clone().unwrap_or_else(|| {
        match m.config.media_type.as_deref() {
            Some(DOCKER_CONFIG) => DOCKER_MANIFEST,
            _ => OCI_MANIFEST,
        }
        .to_string()
    });
    Ok(Some(Manifest {
        digest: digest.clone(),
        media_type,
        config: BlobRef {
            digest: m.config.digest,
            size: m.config.size,
        },
        layers: m
            .layers
            .into_iter()
            .map(|l| BlobRef {
                digest: l.digest,
                size: l.size,
            })
            .collect(),
        bytes,
    }))
}

/// Builds a manifest from the image's config and a compressed blob per layer, stores it
/// and records it on the image.
fn build_and_record(store: &Store, image: &ImageRecord) -> Result<Manifest, StoreError> {
    let config = store.config_bytes(&image.id)?;
    let mut layers = Vec::new();
    for diff_id in &image.layers {
        layers.push(store.layer_blob(diff_id, BlobUse::Push)?);
    }
    let manifest = build_manifest(&image.id, config.len() as u64, &layers);
    store.blobs().put(&manifest.bytes)?;
    store.set_manifest(&image.id, &manifest.digest)?;
    Ok(manifest)
}

/// The manifest docker would push: Docker v2 schema 2, indented as docker's
/// distribution library writes it; OCI when a layer is zstd, which Docker v2 has no type
/// for.
fn build_manifest(config_digest: &Digest, config_size: u64, layers: &[LayerBlob]) -> Manifest {
    #[derive(serde::Serialize)]
    struct Out<'a> {
        #[serde(rename = "schemaVersion")]
        schema_version: u32,
        #[serde(rename = "mediaType")]
        media_type: &'a str,
        config: Desc<'a>,
        layers: Vec<Desc<'a>>,
    }
    #[derive(serde::Serialize)]
    struct Desc<'a> {
        #[serde(rename = "mediaType")]
        media_type: &'a str,
        size: u64,
        digest: &'a Digest,
    }
    let oci = layers.iter().any(|l| l.compression == Compression::Zstd);
    let (media_type, config_type) = if oci {
        (OCI_MANIFEST, OCI_CONFIG)
    } else {
        (DOCKER_MANIFEST, DOCKER_CONFIG)
    };
    let layer_type = |c: Compression| match (oci, c) {
        (false, _) => DOCKER_LAYER_GZIP,
        (true, Compression::Zstd) => "application/vnd.oci.image.layer.v1.tar+zstd",
        (true, Compression::Gzip) => "application/vnd.oci.image.layer.v1.tar+gzip",
        (true, Compression::None) => "application/vnd.oci.image.layer.v1.tar",
    };
    let out = Out {
        schema_version: 2,
        media_type,
        config: Desc {
            media_type: config_type,
            size: config_size,
            digest: config_digest,
        },
        layers: layers
            .iter()
            .map(|l| Desc {
                media_type: layer_type(l.compression),
                size: l.size,
                digest: &l.digest,
            })
            .collect(),
    };
    let mut bytes = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut bytes,
        serde_json::ser::PrettyFormatter::with_indent(b"   "),
    );
    serde::Serialize::serialize(&out, &mut ser).expect("a manifest serialises");
    Manifest {
        digest: Digest::of(&bytes),
        media_type: media_type.to_string(),
        config: BlobRef {
            digest: config_digest.clone(),
            size: config_size,
        },
        layers: layers
            .iter()
            .map(|l| BlobRef {
                digest: l.digest.clone(),
                size: l.size,
            })
            .collect(),
        bytes,
    }
}

/// `PUT /v2/<repo>/manifests/<tag>`, once every blob is there; the registry must agree on
/// the digest.
async fn put_manifest(
    client: &Client,
    reference: &ImageRef,
    manifest: &Manifest,
) -> Result<(), RegistryError> {
    let registry = reference.registry();
    let tag = reference.tag().unwrap_or("latest");
    let url = client.url(
        registry,
        &format!("/v2/{}/manifests/{tag}", reference.repository()),
    )?;
    let req = Request::new(
        Method::PUT,
        registry,
        url,
        format!("manifest {}", reference.familiar()),
    )
    .scope(repository_scope(reference.repository(), "pull,push"))
    .header(header::CONTENT_TYPE, &manifest.media_type)
    .body(Body::Bytes(manifest.bytes.clone().into()));
    let resp = client.send_expect(&req, &[201]).await?;
    if let Some(v) = resp
        .headers()
        .get(HeaderName::from_static("docker-content-digest"))
        .and_then(|v| v.to_str().ok())
        && v.trim() != manifest.digest.to_string()
    {
        return Err(RegistryError::Protocol(format!(
            "manifest {}: the registry stored it as {}, not {}",
            reference.familiar(),
            v.trim(),
            manifest.digest
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(bytes: &[u8], compression: Compression) -> LayerBlob {
        LayerBlob {
            digest: Digest::of(bytes),
            media_type: String::new(),
            size: bytes.len() as u64,
            compression,
        }
    }

    #[test]
    fn gzip_layers_make_a_docker_v2_manifest() {
        let config = Digest::of(b"config");
        let layers = [
            blob(b"a", Compression::Gzip),
            blob(b"bb", Compression::Gzip),
        ];
        let m = build_manifest(&config, 6, &layers);
        assert_eq!(m.media_type, DOCKER_MANIFEST);
        assert_eq!(m.digest, Digest::of(&m.bytes));
        let v: serde_json::Value = serde_json::from_slice(&m.bytes).unwrap();
        assert_eq!(v["schemaVersion"], 2);
        assert_eq!(v["mediaType"], DOCKER_MANIFEST);
        assert_eq!(v["config"]["mediaType"], DOCKER_CONFIG);
        assert_eq!(v["config"]["digest"], config.to_string());
        assert_eq!(v["config"]["size"], 6);
        assert_eq!(v["layers"][0]["mediaType"], DOCKER_LAYER_GZIP);
        assert_eq!(v["layers"][1]["digest"], layers[1].digest.to_string());
        assert_eq!(v["layers"][1]["size"], 2);
        // docker's layout: three-space indent, keys in distribution's order.
        let text = String::from_utf8(m.bytes.clone()).unwrap();
        assert!(
            text.starts_with("{\n   \"schemaVersion\": 2,\n   \"mediaType\": "),
            "{text}"
        );
        assert!(
            text.find("\"size\"").unwrap() < text.find("\"digest\"").unwrap(),
            "{text}"
        );
        // The same inputs give the same bytes, so a re-push names the same digest.
        assert_eq!(build_manifest(&config, 6, &layers).bytes, m.bytes);
        // And oci-spec reads it as an image manifest.
        let parsed: oci_spec::image::ImageManifest = serde_json::from_slice(&m.bytes).unwrap();
        assert_eq!(parsed.layers().len(), 2);
    }

    #[test]
    fn a_zstd_layer_makes_an_oci_manifest() {
        let config = Digest::of(b"config");
        let layers = [blob(b"a", Compression::Gzip), blob(b"b", Compression::Zstd)];
        let m = build_manifest(&config, 6, &layers);
        assert_eq!(m.media_type, OCI_MANIFEST);
        let v: serde_json::Value = serde_json::from_slice(&m.bytes).unwrap();
        assert_eq!(v["mediaType"], OCI_MANIFEST);
        assert_eq!(v["config"]["mediaType"], OCI_CONFIG);
        assert_eq!(
            v["layers"][0]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert_eq!(
            v["layers"][1]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
    }

    #[test]
    fn recorded_manifest_is_used_only_while_it_fits_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_path("f").unwrap();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append(&h, &b"x"[..]).unwrap();
        let tar = tar.into_inner().unwrap();
        let layer = store
            .add_layer(&tar[..], &crate::unpack::LayerSource::default())
            .unwrap();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id.to_string()]}
        }))
        .unwrap();
        let id = store
            .create_image(&config, &crate::images::NewImage::default())
            .unwrap();
        let image = store.image(&id).unwrap().unwrap();
        assert!(recorded_manifest(&store, &image).unwrap().is_none());

        let built = build_and_record(&store, &image).unwrap();
        let image = store.image(&id).unwrap().unwrap();
        assert_eq!(image.manifest.as_ref(), Some(&built.digest));
        let again = recorded_manifest(&store, &image).unwrap().unwrap();
        assert_eq!(again.bytes, built.bytes);
        assert_eq!(again.media_type, DOCKER_MANIFEST);
        assert_eq!(again.layers, built.layers);

        // A manifest naming a layer blob the store does not hold is not pushed.
        let mut other = image.clone();
        let foreign = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "config": {"mediaType": OCI_CONFIG, "digest": id.to_string(), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": Digest::of(b"elsewhere").to_string(), "size": 9}]
        }))
        .unwrap();
        other.manifest = Some(store.blobs().put(&foreign).unwrap());
        assert!(recorded_manifest(&store, &other).unwrap().is_none());
    }
}
