//! The registry client's errors. Each names the registry host and what was being fetched
//! or sent; none carries a credential, a token or a URL's query string (upload state and
//! signed redirect parameters live there).

use crate::digest::Digest;
use crate::error::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The connection could not be made or broke, after every retry.
    #[error("{what}: cannot reach {host}: {reason}")]
    Connect {
        host: String,
        what: String,
        reason: String,
    },
    /// The server stopped answering for longer than the idle timeout, after every retry.
    #[error("{what}: {host} did not answer within {secs} s")]
    Timeout {
        host: String,
        what: String,
        secs: u64,
    },
    /// An answer we cannot go on from; `detail` is the registry's own error message.
    #[error("{what}: {host} answered {status}{detail}")]
    Status {
        host: String,
        what: String,
        status: u16,
        detail: String,
    },
    #[error("{what}: {host}: unauthorized: authentication required{detail}")]
    Unauthorized {
        host: String,
        what: String,
        detail: String,
    },
    /// A redirect led to another host that asked for credentials: ours are never sent
    /// across hosts.
    #[error(
        "{what}: {host} redirected to {to}, which asks for credentials; they are not sent to another host"
    )]
    RedirectAuth {
        host: String,
        what: String,
        to: String,
    },
    #[error("{what}: not found on {host}{detail}")]
    NotFound {
        host: String,
        what: String,
        detail: String,
    },
    #[error("{what}: the answer from {host} is larger than {limit} bytes")]
    TooLarge {
        host: String,
        what: String,
        limit: u64,
    },
    #[error("digest mismatch for {expected}: the bytes received hash to {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    /// The registry broke the protocol (a bad manifest, a missing header, …).
    #[error("{0}")]
    Protocol(String),
    /// What the user asked cannot be done (schema 1, no matching platform, …).
    #[error("{0}")]
    Unsupported(String),
    #[error("credentials: {0}")]
    Credentials(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("interrupted")]
    Interrupted,
}

impl RegistryError {
    /// Whether a retry of the same request may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Connect { .. } | RegistryError::Timeout { .. } => true,
            RegistryError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}
