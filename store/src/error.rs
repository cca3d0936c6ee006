//! The store's error type: every variant names what it was about (an image, a digest,
//! a file), because the CLI prints it as the whole explanation.

use std::io;

use crate::blobs::BlobError;
use crate::db::DbError;
use crate::digest::Digest;
use crate::layer::LayerError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("No such image: {0}")]
    NoSuchImage(String),
    #[error("{0}")]
    Ambiguous(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// A layer error with the blob, file or archive member it came from.
    #[error("{what}: {source}")]
    LayerIn {
        what: String,
        #[source]
        source: LayerError,
    },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("metadata database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("image config {digest}: {reason}")]
    BadConfig { digest: Digest, reason: String },
    #[error("layer {diff_id} is not in the store")]
    MissingLayer { diff_id: Digest },
    #[error(
        "layer diff ID mismatch for {what}: the config says {expected}, the content is {actual}"
    )]
    DiffIdMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("downloading {url}: {reason}")]
    Download { url: String, reason: String },
    #[error(transparent)]
    Filter(#[from] crate::filters::FilterError),
    #[error("invalid reference {0}")]
    Reference(String),
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    /// Docker's whole text (`Conflict. The container name "/x" is already in use …`).
    #[error("{0}")]
    ContainerConflict(String),
    #[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidContainerName(String),
}
