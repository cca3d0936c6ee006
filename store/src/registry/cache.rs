//! Build cache artifacts (`--cache-to` / `--cache-from`): which image a build step with
//! a given key made, shared through a registry or an OCI layout directory so that
//! another store can take those steps as cached without running them.
//!
//! An artifact is one OCI image manifest with its own `artifactType` and config media
//! type ([`CACHE_CONFIG`]). Its config blob is a [`CacheConfig`]: records (key, image
//! ID, parent image ID) and, for every layer the recorded images use, the blob that
//! holds it. Its layers are those image configs and layer blobs, so a registry keeps
//! them (and GC of the registry knows them) as it does an image's. The keys are opaque
//! here: the builder says what they mean.
//!
//! Reading is lazy by design: [`open`] fetches the manifest and the config blob only;
//! an image config is fetched when a record is hit ([`CacheSource::image_config`]) and
//! layers only when the builder needs them on disk ([`CacheSource::fetch_layers`]).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use futures_util::stream::{self, StreamExt, TryStreamExt};
use reqwest::Method;
use reqwest::header;
use serde::{Deserialize, Serialize};

use super::RegistryError;
use super::auth::repository_scope;
use super::manifest::{self, Kind, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST};
use super::pull::{self, CONFIG_LIMIT, LayerJob};
use super::transport::{Body, Client, Request};
use super::upload::{BlobUpload, Target};
use crate::digest::Digest;
use crate::layer_blob::BlobUse;
use crate::reference::ImageRef;
use crate::store::Store;
use crate::unpack::LayerSource;

/// The media type of a cache artifact's config blob.
pub const CACHE_CONFIG: &str = "application/vnd.rbuild.cache.config.v1+json";
/// The `artifactType` of a cache manifest.
pub const CACHE_ARTIFACT: &str = "application/vnd.rbuild.cache.v1";

/// One step: the image the step with `key` made, on `parent` (`None` on scratch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRecord {
    pub key: String,
    pub image: Digest,
    #[serde(default)]
    pub parent: Option<Digest>,
}

/// A layer of a recorded image and the blob that holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheLayer {
    pub diff_id: Digest,
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
}

/// The config blob of a cache artifact.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CacheConfig {
    pub records: Vec<CacheRecord>,
    pub layers: Vec<CacheLayer>,
}

/// Where a cache artifact lives: `type=registry,ref=…` or `type=local,dest|src=DIR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheLocation {
    Registry(ImageRef),
    Local(PathBuf),
}

impl fmt::Display for CacheLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheLocation::Registry(r) => write!(f, "{r}"),
            CacheLocation::Local(p) => write!(f, "{}", p.display()),
        }
    }
}

/// An imported cache artifact: where it is and what it records.
#[derive(Debug, Clone)]
pub struct CacheSource {
    pub location: CacheLocation,
    pub config: CacheConfig,
    /// The image configs the manifest lists, with their sizes.
    configs: HashMap<Digest, u64>,
    /// Record positions by key, and layer positions by diff ID.
    by_key: HashMap<String, usize>,
    by_diff_id: HashMap<Digest, usize>,
}

/// Blobs moved at once, as push and pull do by default.
const CONCURRENT: usize = 3;

/// The manifest fields a cache artifact is read by.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CacheManifest {
    schema_version: u32,
    media_type: String,
    #[serde(default)]
    artifact_type: Option<String>,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: Digest,
    size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    artifact_type: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutIndex {
    schema_version: u32,
    #[serde(default)]
    media_type: Option<String>,
    manifests: Vec<Descriptor>,
}

fn bad(location: &CacheLocation, what: impl fmt::Display) -> RegistryError {
    RegistryError::Protocol(format!("cache {location}: {what}"))
}

/// The tag of a registry cache reference (`latest` when none is given).
fn tag_of(r: &ImageRef) -> String {
    match (r.digest(), r.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => "latest".to_string(),
    }
}

/// Reads the cache artifact at `location`: `Ok(None)` when there is none (a registry
/// answers 404, a directory has no `index.json`), an error when there is one that is
/// not a readable rbuild cache.
pub fn open(
    client: Option<&Client>,
    location: &CacheLocation,
) -> Result<Option<CacheSource>, RegistryError> {
    let (manifest_bytes, config_bytes) = match location {
        CacheLocation::Registry(r) => {
            let client = need_client(client, location)?;
            let rt = super::runtime()?;
            let got = rt.block_on(async {
                let fetched = match manifest::fetch(client, r, &tag_of(r)).await {
                    Ok(f) => f,
                    Err(RegistryError::NotFound { .. }) => return Ok(None),
                    Err(e) => return Err(e),
                };
                if fetched.kind != Kind::Image {
                    return Err(bad(location, "the manifest is an index, not a cache"));
                }
                let m = parse_manifest(location, &fetched.bytes)?;
                let config = pull::fetch_config(client, r, &m.config.digest, m.config.size).await?;
                Ok(Some((fetched.bytes.to_vec(), config.to_vec())))
            })?;
            match got {
                Some(x) => x,
                None => return Ok(None),
            }
        }
        CacheLocation::Local(dir) => {
            let index = match std::fs::read(dir.join("index.json")) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(bad(location, format!("index.json: {e}"))),
            };
            let index: LayoutIndex = serde_json::from_slice(&index)
                .map_err(|e| bad(location, format!("index.json is not an OCI index: {e}")))?;
            let Some(d) = index
                .manifests
                .iter()
                .find(|d| d.artifact_type.as_deref() == Some(CACHE_ARTIFACT))
                .or(index.manifests.first())
            else {
                return Ok(None);
            };
            let manifest = read_local_blob(location, dir, &d.digest, Some(d.size))?;
            let m = parse_manifest(location, &manifest)?;
            let config = read_local_blob(location, dir, &m.config.digest, Some(m.config.size))?;
            (manifest, config)
        }
    };
    let m = parse_manifest(location, &manifest_bytes)?;
    let config: CacheConfig = serde_json::from_slice(&config_bytes).map_err(|e| {
        bad(
            location,
            format!("the cache config {} is invalid: {e}", m.config.digest),
        )
    })?;
    let configs = m
        .layers
        .iter()
        .filter(|d| d.media_type == OCI_CONFIG)
        .map(|d| (d.digest.clone(), d.size))
        .collect();
    // The first record of a key wins, as the first layer blob of a diff ID.
    let mut by_key = HashMap::new();
    for (i, r) in config.records.iter().enumerate() {
        by_key.entry(r.key.clone()).or_insert(i);
    }
    let mut by_diff_id = HashMap::new();
    for (i, l) in config.layers.iter().enumerate() {
        by_diff_id.entry(l.diff_id.clone()).or_insert(i);
    }
    Ok(Some(CacheSource {
        location: location.clone(),
        config,
        configs,
        by_key,
        by_diff_id,
    }))
}

fn need_client<'a>(
    client: Option<&'a Client>,
    location: &CacheLocation,
) -> Result<&'a Client, RegistryError> {
    client.ok_or_else(|| bad(location, "this build has no registry access"))
}

fn parse_manifest(location: &CacheLocation, bytes: &[u8]) -> Result<CacheManifest, RegistryError> {
    let m: CacheManifest = serde_json::from_slice(bytes).map_err(|e| {
        bad(
            location,
            format!(
                "the manifest {} is not a cache manifest: {e}",
                Digest::of(bytes)
            ),
        )
    })?;
    if m.media_type != OCI_MANIFEST || m.config.media_type != CACHE_CONFIG {
        return Err(bad(
            location,
            format!(
                "the manifest {} is not an rbuild cache (config media type {}, want {CACHE_CONFIG})",
                Digest::of(bytes),
                m.config.media_type
            ),
        ));
    }
    Ok(m)
}

fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs")
        .join(digest.algorithm())
        .join(digest.hex())
}

/// A blob of an OCI layout, read whole and checked against its digest.
fn read_local_blob(
    location: &CacheLocation,
    dir: &Path,
    digest: &Digest,
    size: Option<u64>,
) -> Result<Vec<u8>, RegistryError> {
    let path = blob_path(dir, digest);
    let len = std::fs::metadata(&path)
        .map_err(|e| bad(location, format!("blob {digest}: {e}")))?
        .len();
    if len > CONFIG_LIMIT.max(manifest::MANIFEST_LIMIT) {
        return Err(bad(location, format!("blob {digest} is too large")));
    }
    let bytes = std::fs::read(&path).map_err(|e| bad(location, format!("blob {digest}: {e}")))?;
    let actual = Digest::of(&bytes);
    if &actual != digest {
        return Err(RegistryError::DigestMismatch {
            expected: digest.clone(),
            actual,
        });
    }
    if size.is_some_and(|s| s != bytes.len() as u64) {
        return Err(bad(
            location,
            format!("blob {digest} has another size than listed"),
        ));
    }
    Ok(bytes)
}

impl CacheSource {
    /// The record of the step with `key`, if this cache has one.
    pub fn record(&self, key: &str) -> Option<&CacheRecord> {
        self.by_key.get(key).map(|&i| &self.config.records[i])
    }

    /// The blob this cache holds the layer `diff_id` in.
    pub fn layer(&self, diff_id: &Digest) -> Option<&CacheLayer> {
        self.by_diff_id
            .get(diff_id)
            .map(|&i| &self.config.layers[i])
    }

    /// The image config `id`, fetched and checked against its digest.
    pub fn image_config(
        &self,
        client: Option<&Client>,
        id: &Digest,
    ) -> Result<Vec<u8>, RegistryError> {
        let size = *self.configs.get(id).ok_or_else(|| {
            bad(
                &self.location,
                format!("the image config {id} is not listed"),
            )
        })?;
        match &self.location {
            CacheLocation::Registry(r) => {
                let client = need_client(client, &self.location)?;
                let rt = super::runtime()?;
                Ok(rt
                    .block_on(pull::fetch_config(client, r, id, size))?
                    .to_vec())
            }
            CacheLocation::Local(dir) => read_local_blob(&self.location, dir, id, Some(size)),
        }
    }

    /// Stores `layers` in the store at `root`, packed (extracted on first use, where
    /// the diff ID is checked), as a pull does.
    pub fn fetch_layers(
        &self,
        root: &Path,
        client: Option<&Client>,
        layers: &[CacheLayer],
    ) -> Result<(), RegistryError> {
        match &self.location {
            CacheLocation::Registry(r) => {
                let client = need_client(client, &self.location)?;
                let rt = super::runtime()?;
                rt.block_on(
                    stream::iter(layers.iter().map(|l| {
                        let job = LayerJob {
                            digest: l.digest.clone(),
                            size: l.size,
                            diff_id: l.diff_id.clone(),
                            media_type: l.media_type.clone(),
                        };
                        async move {
                            pull::fetch_layer(
                                client,
                                r,
                                &job,
                                root.to_path_buf(),
                                &super::progress::Silent,
                            )
                            .await
                        }
                    }))
                    .buffer_unordered(CONCURRENT)
                    .try_collect::<Vec<()>>(),
                )?;
                Ok(())
            }
            CacheLocation::Local(dir) => {
                let store = Store::open(root)?;
                for l in layers {
                    let path = blob_path(dir, &l.digest);
                    let file = std::fs::File::open(&path)
                        .map_err(|e| bad(&self.location, format!("blob {}: {e}", l.digest)))?;
                    let what = format!("layer {} of cache {}", l.digest, self.location);
                    store.add_packed_layer(
                        file,
                        &LayerSource {
                            what: &what,
                            digest: Some(&l.digest),
                            size: Some(l.size),
                            diff_id: Some(&l.diff_id),
                            media_type: Some(&l.media_type),
                        },
                    )?;
                }
                Ok(())
            }
        }
    }
}

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The manifest's digest.
    pub digest: Digest,
    pub records: usize,
    pub layers: usize,
}

/// Writes a cache artifact of `records` (whose images must all be in `store`) to
/// `location`, replacing what the tag or directory held.
pub fn export(
    store: &Store,
    client: Option<&Client>,
    location: &CacheLocation,
    records: Vec<CacheRecord>,
) -> Result<Exported, RegistryError> {
    // Blobs to send, in manifest order: image configs, then layer blobs.
    let mut descriptors: Vec<Descriptor> = Vec::new();
    let mut layers: Vec<CacheLayer> = Vec::new();
    let mut seen_images = HashSet::new();
    let mut seen_layers = HashSet::new();
    for r in &records {
        if !seen_images.insert(r.image.clone()) {
            continue;
        }
        let config = store.config(&r.image)?;
        descriptors.push(Descriptor {
            media_type: OCI_CONFIG.to_string(),
            digest: r.image.clone(),
            size: store
                .blobs()
                .size(&r.image)
                .map_err(crate::StoreError::from)?,
            artifact_type: None,
        });
        for diff_id in &config.rootfs.diff_ids {
            if !seen_layers.insert(diff_id.clone()) {
                continue;
            }
            let blob = store.layer_blob(diff_id, BlobUse::Push)?;
            layers.push(CacheLayer {
                diff_id: diff_id.clone(),
                digest: blob.digest.clone(),
                size: blob.size,
                media_type: blob.media_type.clone(),
            });
        }
    }
    for l in &layers {
        descriptors.push(Descriptor {
            media_type: l.media_type.clone(),
            digest: l.digest.clone(),
            size: l.size,
            artifact_type: None,
        });
    }
    let n_records = records.len();
    let config = CacheConfig { records, layers };
    let config_bytes = serde_json::to_vec(&config).expect("cache config serializes");
    let config_digest = store
        .blobs()
        .put(&config_bytes)
        .map_err(crate::StoreError::from)?;
    let manifest = CacheManifest {
        schema_version: 2,
        media_type: OCI_MANIFEST.to_string(),
        artifact_type: Some(CACHE_ARTIFACT.to_string()),
        config: Descriptor {
            media_type: CACHE_CONFIG.to_string(),
            digest: config_digest.clone(),
            size: config_bytes.len() as u64,
            artifact_type: None,
        },
        layers: descriptors.clone(),
    };
    let manifest_bytes = serde_json::to_vec(&manifest).expect("cache manifest serializes");
    let digest = Digest::of(&manifest_bytes);
    let mut blobs: Vec<(Digest, u64)> = vec![(config_digest, config_bytes.len() as u64)];
    blobs.extend(descriptors.iter().map(|d| (d.digest.clone(), d.size)));
    match location {
        CacheLocation::Registry(r) => {
            let client = need_client(client, location)?;
            let registry = r.registry();
            let repository = r.repository();
            let (events, _) = tokio::sync::mpsc::unbounded_channel();
            let target = Target {
                client,
                registry,
                repository,
                chunk_size: super::push::PushOptions::default().chunk_size,
                events,
            };
            let mut uploads = Vec::new();
            for (d, size) in &blobs {
                uploads.push(BlobUpload {
                    digest: d.clone(),
                    size: *size,
                    path: store.blobs().path(d),
                    id: None,
                    mount_from: store.blob_sources(d, registry, repository)?,
                });
            }
            let rt = super::runtime()?;
            rt.block_on(async {
                stream::iter(uploads.iter().map(|b| target.upload(b)))
                    .buffer_unordered(CONCURRENT)
                    .try_collect::<Vec<_>>()
                    .await?;
                put_manifest(client, r, &manifest_bytes, &digest).await
            })?;
            for b in &uploads {
                store.record_blob_source(&b.digest, registry, repository)?;
            }
        }
        CacheLocation::Local(dir) => {
            write_layout(store, dir, &blobs, &manifest_bytes, &digest)
                .map_err(|e| bad(location, e))?;
        }
    }
    Ok(Exported {
        digest,
        records: n_records,
        layers: config.layers.len(),
    })
}

async fn put_manifest(
    client: &Client,
    r: &ImageRef,
    bytes: &[u8],
    digest: &Digest,
) -> Result<(), RegistryError> {
    let registry = r.registry();
    let tag = tag_of(r);
    let url = client.url(registry, &format!("/v2/{}/manifests/{tag}", r.repository()))?;
    let req = Request::new(Method::PUT, registry, url, format!("cache manifest {r}"))
        .scope(repository_scope(r.repository(), "pull,push"))
        .header(header::CONTENT_TYPE, OCI_MANIFEST)
        .body(Body::Bytes(bytes.to_vec().into()));
    let resp = client.send_expect(&req, &[201]).await?;
    if let Some(v) = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        && v.trim() != digest.to_string()
    {
        return Err(RegistryError::Protocol(format!(
            "cache manifest {r}: the registry stored it as {}, not {digest}",
            v.trim()
        )));
    }
    Ok(())
}

/// An OCI layout holding the artifact: blobs copied in (those present are kept),
/// then `index.json` replaced atomically so a reader sees the old cache or the new.
fn write_layout(
    store: &Store,
    dir: &Path,
    blobs: &[(Digest, u64)],
    manifest: &[u8],
    digest: &Digest,
) -> std::io::Result<()> {
    let sha = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&sha)?;
    let put = |d: &Digest, write: &dyn Fn(&Path) -> std::io::Result<()>| {
        let path = blob_path(dir, d);
        if path.exists() {
            return Ok(());
        }
        let tmp = sha.join(format!(".tmp-{}", d.hex()));
        write(&tmp)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    for (d, _) in blobs {
        let src = store.blobs().path(d);
        put(d, &|tmp| std::fs::copy(&src, tmp).map(|_| ()))?;
    }
    put(digest, &|tmp| std::fs::write(tmp, manifest))?;
    let atomic = |name: &str, bytes: &[u8]| -> std::io::Result<()> {
        let tmp = dir.join(format!(".{name}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(name))
    };
    atomic("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let index = LayoutIndex {
        schema_version: 2,
        media_type: Some(OCI_INDEX.to_string()),
        manifests: vec![Descriptor {
            media_type: OCI_MANIFEST.to_string(),
            digest: digest.clone(),
            size: manifest.len() as u64,
            artifact_type: Some(CACHE_ARTIFACT.to_string()),
        }],
    };
    atomic(
        "index.json",
        &serde_json::to_vec(&index).expect("index serializes"),
    )
}
