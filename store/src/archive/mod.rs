//! Image archives: `save` writes one tar that is both a Docker archive
//! (`manifest.json`, `repositories`) and an OCI image layout (`oci-layout`,
//! `index.json`, `blobs/sha256/`), as Docker 25+ does; `load` reads Docker archives
//! old and new and OCI layout tars, plain or compressed.

mod load;
mod members;
mod save;

pub use load::{LoadedImage, load_path, load_reader};
pub use save::{ArchiveFormat, SaveRequest, save, save_as, save_to_path, save_to_path_as};

use serde::{Deserialize, Serialize};

use crate::error::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{0}")]
    Malformed(String),
    #[error("archive member {0} is missing")]
    MissingMember(String),
    #[error("not an image archive: it has neither manifest.json nor index.json")]
    NotAnImage,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::blobs::BlobError> for ArchiveError {
    fn from(e: crate::blobs::BlobError) -> Self {
        ArchiveError::Store(e.into())
    }
}

/// One entry of a Docker archive's `manifest.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// Annotation Docker and containerd put on index entries: the image's full name.
const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// The OCI annotation for a tag (or, from other tools, a whole reference).
const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
