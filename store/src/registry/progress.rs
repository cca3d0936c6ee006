//! What a pull or push reports as it goes, for the CLI to show as docker does: one line
//! (or bar) per layer, keyed by the layer's short digest, plus whole-operation messages.
//! The store knows nothing of terminals; the CLI renders these.

/// Receives a transfer's events; called from several tasks at once.
pub trait Progress: Send + Sync {
    fn event(&self, e: Event);
}

/// One thing that happened during a pull or push.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A line about the whole operation: `latest: Pulling from library/busybox`,
    /// `Digest: sha256:…`, `The push refers to repository […]`.
    Message(String),
    /// A layer's state, in docker's words: `Pulling fs layer`, `Waiting`,
    /// `Verifying Checksum`, `Download complete`, `Extracting`, `Pull complete`,
    /// `Already exists`, `Preparing`, `Pushed`, `Layer already exists`,
    /// `Mounted from other/repo`, `Retrying in 2 seconds`.
    Status { id: String, status: String },
    /// Bytes moved for a layer so far (`action` is `Downloading` or `Pushing`).
    Bytes {
        id: String,
        action: &'static str,
        current: u64,
        total: u64,
    },
}

/// Drops every event: for callers that want only the result (the builder's pulls of
/// base images report through their own progress).
pub struct Silent;

impl Progress for Silent {
    fn event(&self, _: Event) {}
}

/// Docker's layer ID in progress lines: the first 12 hex digits of the digest.
pub fn short_id(d: &crate::Digest) -> String {
    d.hex()[..12].to_string()
}
