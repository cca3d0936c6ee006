//! rbuild's local image store and registry client: everything on disk and on the wire.
//!
//! Knows nothing of Dockerfiles or of the CLI.
#![forbid(unsafe_code)]

pub mod archive;
pub mod blob_sources;
pub mod blobs;
pub mod build_cache;
pub mod cache_gc;
pub mod check;
pub mod commit;
pub mod config;
pub mod container_diff;
pub mod container_filter;
pub mod container_inspect;
pub mod container_log;
pub mod container_prune;
pub mod containers;
pub mod db;
pub mod df;
pub mod digest;
pub mod download;
mod error;
pub mod filters;
pub mod fsutil;
pub mod gc;
pub mod history;
pub mod images;
pub mod import;
pub mod inspect;
pub mod layer;
pub mod layer_blob;
pub mod list;
pub mod lock;
mod mounts;
pub mod packed;
pub mod platform;
pub mod prune;
pub mod reference;
pub mod registry;
pub mod remove;
mod store;
pub mod unpack;

pub use config::ImageConfig;
pub use digest::{Digest, DigestError};
pub use error::StoreError;
pub use images::{ImageRecord, NewImage};
pub use reference::{ImageRef, ReferenceError};
pub use store::Store;
