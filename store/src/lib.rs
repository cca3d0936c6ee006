//! rbuild's local image store and registry client: everything on disk and on the wire.
//!
//! Knows nothing of Dockerfiles or of the CLI.
#![forbid(unsafe_code)]

pub mod config;
pub mod digest;
pub mod reference;

pub use config::ImageConfig;
pub use digest::{Digest, DigestError};
pub use reference::{ImageRef, ReferenceError};
