//! Fetching a manifest and deciding what it is: an image manifest (OCI or Docker v2
//! schema 2) to pull, or an index / manifest list to resolve to one platform first.
//!
//! The bytes are kept exactly as received: their digest is what the registry knows the
//! image by (docker's RepoDigest), and a push of the same image must send them again.
//! Schema 1 manifests are refused rather than converted: docker has disabled them, they
//! carry no image config (so no image ID to verify) and distribution 2.8 is their last
//! home.

use bytes::Bytes;
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use reqwest::Method;
use reqwest::header;

use super::auth::repository_scope;
use super::error::RegistryError;
use super::transport::{Client, Request};
use crate::digest::Digest;
use crate::platform::Platform;
use crate::reference::ImageRef;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// The largest manifest accepted: docker's limit (`maxManifestBodySize`).
pub const MANIFEST_LIMIT: u64 = 4 << 20;

/// What we ask for, best first. Docker also lists the schema 1 types; we do not, so a
/// registry that can convert gives us something else, and one that cannot is refused
/// below with a message that says why.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// A manifest or index as received.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub bytes: Bytes,
    /// The digest of `bytes`.
    pub digest: Digest,
    pub media_type: String,
    pub kind: Kind,
}

/// What a manifest document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Image,
    Index,
}

/// An image manifest for one platform, and what led to it.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// What the reference names: the index when the image is multi-platform, else the
    /// manifest itself. Its digest is the one docker prints and records.
    pub top: Fetched,
    /// The image manifest chosen.
    pub manifest: Fetched,
    pub parsed: ImageManifest,
    /// The platform the index said the chosen manifest is for.
    pub platform: Option<Platform>,
}

/// GETs the manifest `reference` (a tag or `sha256:…`) of `image`'s repository, checks
/// its digest against the one pinned in `reference` and against `Docker-Content-Digest`,
/// and classifies it.
pub async fn fetch(
    client: &Client,
    image: &ImageRef,
    reference: &str,
) -> Result<Fetched, RegistryError> {
    let registry = image.registry();
    let repo = image.repository();
    let sep = if reference.contains(':') { '@' } else { ':' };
    let what = format!("manifest {registry}/{repo}{sep}{reference}");
    let url = client.url(registry, &format!("/v2/{repo}/manifests/{reference}"))?;
    let req = Request::new(Method::GET, registry, url, what.clone())
        .scope(repository_scope(repo, "pull"))
        .header(header::ACCEPT, ACCEPT);
    let (headers, bytes) = client.fetch(&req, &[200], MANIFEST_LIMIT).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_string());
    let announced = headers
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<Digest>().ok());
    let digest = Digest::of(&bytes);
    let pinned = reference.parse::<Digest>().ok();
    for expected in pinned.iter().chain(announced.iter()) {
        if *expected != digest {
            return Err(RegistryError::DigestMismatch {
                expected: expected.clone(),
                actual: digest,
            });
        }
    }
    let (kind, media_type) = classify(content_type.as_deref(), &bytes, &what)?;
    Ok(Fetched {
        bytes,
        digest,
        media_type,
        kind,
    })
}

/// Fetches what `image` names and, for an index, the manifest for `want`. A single
/// manifest is taken as it is: its platform is in the config, which the caller checks.
pub async fn resolve(
    client: &Client,
    image: &ImageRef,
    want: &Platform,
) -> Result<Resolved, RegistryError> {
    let reference = match (image.digest(), image.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => "latest".to_string(),
    };
    let top = fetch(client, image, &reference).await?;
    let (manifest, platform) = match top.kind {
        Kind::Image => (top.clone(), None),
        Kind::Index => {
            let index: ImageIndex = serde_json::from_slice(&top.bytes).map_err(|e| {
                RegistryError::Protocol(format!("{}: invalid index {}: {e}", image, top.digest))
            })?;
            let (desc, platform) = choose(&index, want).map_err(|available| {
                RegistryError::Unsupported(format!(
                    "{}: no matching manifest for {want} in the manifest list entries (available: {})",
                    image.familiar(),
                    if available.is_empty() {
                        "none".to_string()
                    } else {
                        available.join(", ")
                    }
                ))
            })?;
            let digest = Digest::try_from(desc.digest()).map_err(|e| {
                RegistryError::Protocol(format!("{}: index {}: {e}", image, top.digest))
            })?;
            let m = fetch(client, image, &digest.to_string()).await?;
            if m.kind != Kind::Image {
                return Err(RegistryError::Unsupported(format!(
                    "{}: the manifest for {platform} ({digest}) is itself an index; nested indexes are not supported",
                    image.familiar()
                )));
            }
            (m, Some(platform))
        }
    };
    let parsed: ImageManifest = serde_json::from_slice(&manifest.bytes).map_err(|e| {
        RegistryError::Protocol(format!(
            "{}: invalid manifest {}: {e}",
            image.familiar(),
            manifest.digest
        ))
    })?;
    check_image(&parsed, &image.familiar())?;
    Ok(Resolved {
        top,
        manifest,
        parsed,
        platform,
    })
}

/// Decides what a manifest document is from its media type (the body's own
/// `mediaType`, else the `Content-Type`), else its shape; refuses schema 1.
pub fn classify(
    content_type: Option<&str>,
    bytes: &[u8],
    what: &str,
) -> Result<(Kind, String), RegistryError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        schema_version: Option<u32>,
        media_type: Option<String>,
        manifests: Option<serde::de::IgnoredAny>,
        config: Option<serde::de::IgnoredAny>,
        fs_layers: Option<serde::de::IgnoredAny>,
    }
    let schema1 = |mt: &str| {
        RegistryError::Unsupported(format!(
            "{what}: schema 1 manifests ({mt}) are not supported; push the image again with a current docker or tool"
        ))
    };
    if let Some(ct) = content_type
        && (ct == SCHEMA1 || ct == SCHEMA1_SIGNED)
    {
        return Err(schema1(ct));
    }
    let probe: Probe = serde_json::from_slice(bytes)
        .map_err(|e| RegistryError::Protocol(format!("{what}: the manifest is not JSON: {e}")))?;
    if probe.schema_version == Some(1)
        || probe.fs_layers.is_some()
        || matches!(probe.media_type.as_deref(), Some(SCHEMA1 | SCHEMA1_SIGNED))
    {
        return Err(schema1(probe.media_type.as_deref().unwrap_or(SCHEMA1)));
    }
    // A generic Content-Type (`application/json`, `text/plain`) says nothing.
    let specific = |t: &&str| t.starts_with("application/vnd.");
    let media_type = probe
        .media_type
        .clone()
        .or_else(|| content_type.filter(specific).map(str::to_string));
    let kind = match media_type.as_deref() {
        Some(OCI_INDEX | DOCKER_LIST) => Kind::Index,
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => Kind::Image,
        Some(other) => {
            return Err(RegistryError::Unsupported(format!(
                "{what}: unsupported manifest media type {other}"
            )));
        }
        None if probe.manifests.is_some() => Kind::Index,
        None if probe.config.is_some() => Kind::Image,
        None => {
            return Err(RegistryError::Protocol(format!(
                "{what}: the answer is neither an image manifest nor an index"
            )));
        }
    };
    let media_type = media_type.unwrap_or_else(|| {
        match kind {
            Kind::Index => OCI_INDEX,
            Kind::Image => OCI_MANIFEST,
        }
        .to_string()
    });
    Ok((kind, media_type))
}

/// The best entry of `index` for `want` (docker's order: the best match by containerd's
/// `Only` matcher, the first listed among equals), or the platforms the index offers.
pub fn choose<'a>(
    index: &'a ImageIndex,
    want: &Platform,
) -> Result<(&'a Descriptor, Platform), Vec<String>> {
    let mut best: Option<(usize, &Descriptor, Platform)> = None;
    let mut available = Vec::new();
    for d in index.manifests() {
        let mt = d.media_type().to_string();
        if mt != OCI_MANIFEST && mt != DOCKER_MANIFEST && mt != OCI_INDEX && mt != DOCKER_LIST {
            continue;
        }
        let Some(p) = d.platform() else { continue };
        let p = Platform::new(
            &p.os().to_string(),
            &p.architecture().to_string(),
            p.variant().as_deref().unwrap_or(""),
        );
        // Attestations (`unknown/unknown`) are not images to run.
        if p.os == "unknown" {
            continue;
        }
        let shown = p.to_string();
        if !available.contains(&shown) {
            available.push(shown);
        }
        if let Some(rank) = want.rank(&p)
            && best.as_ref().is_none_or(|(r, ..)| rank < *r)
        {
            best = Some((rank, d, p));
        }
    }
    best.map(|(_, d, p)| (d, p)).ok_or(available)
}

/// Refuses manifests that are not container images, or whose layers rbuild cannot take
/// from the registry.
pub fn check_image(m: &ImageManifest, name: &str) -> Result<(), RegistryError> {
    let config = m.config().media_type().to_string();
    if config != DOCKER_CONFIG && config != OCI_CONFIG {
        return Err(RegistryError::Unsupported(format!(
            "{name}: not a container image (its config is {config})"
        )));
    }
    for l in m.layers() {
        let mt = l.media_type().to_string();
        match mt.as_str() {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.zstd" => {}
            // Foreign layers (Windows base images) live at URLs outside the registry,
            // often under licence terms; docker skips them on push and fetches them
            // from the URLs on pull. rbuild builds Linux images and does not follow
            // such URLs: refused, naming the layer.
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => {
                return Err(RegistryError::Unsupported(format!(
                    "{name}: layer {} is a foreign (non-distributable) layer ({mt}), which rbuild does not pull",
                    l.digest()
                )));
            }
            _ => {
                return Err(RegistryError::Unsupported(format!(
                    "{name}: layer {} has an unsupported media type {mt}",
                    l.digest()
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = r#"{
  "schemaVersion": 2,
  "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
  "manifests": [
    {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 1,
     "digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111",
     "platform": {"architecture": "arm", "os": "linux", "variant": "v6"}},
    {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 1,
     "digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222",
     "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}},
    {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 1,
     "digest": "sha256:3333333333333333333333333333333333333333333333333333333333333333",
     "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
    {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 1,
     "digest": "sha256:4444444444444444444444444444444444444444444444444444444444444444",
     "platform": {"architecture": "amd64", "os": "linux"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1,
     "digest": "sha256:5555555555555555555555555555555555555555555555555555555555555555",
     "platform": {"architecture": "unknown", "os": "unknown"}}
  ]
}"#;

    fn pick(want: &str) -> Result<String, Vec<String>> {
        let index: ImageIndex = serde_json::from_str(LIST).unwrap();
        let mut it = want.split('/');
        let want = Platform::new(
            it.next().unwrap(),
            it.next().unwrap(),
            it.next().unwrap_or(""),
        );
        choose(&index, &want).map(|(d, _)| d.digest().to_string()[7..8].to_string())
    }

    #[test]
    fn index_entries_by_platform() {
        assert_eq!(pick("linux/amd64").unwrap(), "4");
        assert_eq!(pick("linux/arm64").unwrap(), "3");
        assert_eq!(pick("linux/arm64/v8").unwrap(), "3");
        assert_eq!(pick("linux/arm/v7").unwrap(), "2");
        assert_eq!(pick("linux/arm").unwrap(), "2");
        assert_eq!(pick("linux/arm/v6").unwrap(), "1");
        let avail = pick("linux/s390x").unwrap_err();
        assert_eq!(
            avail,
            [
                "linux/arm/v6",
                "linux/arm/v7",
                "linux/arm64/v8",
                "linux/amd64"
            ]
        );
    }

    #[test]
    fn classification_by_type_and_shape() {
        let index = |ct| classify(ct, LIST.as_bytes(), "m").unwrap();
        assert_eq!(index(None), (Kind::Index, DOCKER_LIST.to_string()));
        assert_eq!(index(Some("application/json")).0, Kind::Index);
        let oci = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:4444444444444444444444444444444444444444444444444444444444444444","size":2},"layers":[]}"#;
        assert_eq!(
            classify(Some(OCI_MANIFEST), oci, "m").unwrap(),
            (Kind::Image, OCI_MANIFEST.to_string())
        );
        assert_eq!(
            classify(None, oci, "m").unwrap(),
            (Kind::Image, OCI_MANIFEST.to_string())
        );
        let e = classify(Some("application/vnd.cncf.helm.chart"), b"{}", "m").unwrap_err();
        assert!(
            e.to_string().contains("unsupported manifest media type"),
            "{e}"
        );
    }

    #[test]
    fn schema1_is_refused_by_type_or_content() {
        let s1 = br#"{"schemaVersion":1,"name":"x","tag":"1","fsLayers":[]}"#;
        for ct in [None, Some(SCHEMA1_SIGNED), Some("application/json")] {
            let e = classify(ct, s1, "manifest r/x:1").unwrap_err().to_string();
            assert!(
                e.starts_with("manifest r/x:1: schema 1 manifests (application/vnd.docker.distribution.manifest.v1")
                    && e.ends_with("push the image again with a current docker or tool"),
                "{e}"
            );
        }
        let e = classify(Some(SCHEMA1), b"{}", "m").unwrap_err().to_string();
        assert!(e.contains("schema 1"), "{e}");
    }

    #[test]
    fn layers_rbuild_cannot_pull_are_named() {
        let m = |config: &str, layer: &str| -> ImageManifest {
            serde_json::from_str(&format!(
                r#"{{"schemaVersion":2,"config":{{"mediaType":"{config}","digest":"sha256:4444444444444444444444444444444444444444444444444444444444444444","size":2}},
                "layers":[{{"mediaType":"{layer}","digest":"sha256:5555555555555555555555555555555555555555555555555555555555555555","size":3}}]}}"#
            ))
            .unwrap()
        };
        assert!(
            check_image(
                &m(
                    DOCKER_CONFIG,
                    "application/vnd.docker.image.rootfs.diff.tar.gzip"
                ),
                "x"
            )
            .is_ok()
        );
        assert!(
            check_image(
                &m(OCI_CONFIG, "application/vnd.oci.image.layer.v1.tar+zstd"),
                "x"
            )
            .is_ok()
        );
        let e = check_image(
            &m(
                DOCKER_CONFIG,
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            ),
            "x",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("sha256:5555") && e.contains("foreign"), "{e}");
        let e = check_image(&m("application/vnd.cncf.helm.config.v1+json", "x"), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a container image"), "{e}");
    }
}
