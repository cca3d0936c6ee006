#![allow(dead_code)] // Used by pull, push, login and search, which land next (issue 5).
//! The one place the CLI makes a registry client, so every command that talks to a
//! registry (pull, push, login, search) trusts the same hosts and sends the same
//! credentials.

use std::sync::Arc;
use std::time::Duration;

use rbuild_builder::store::registry::{self, Anonymous, Client, ClientOptions};

use super::{CliError, Global};

/// A client for this invocation. Loopback registries speak plain HTTP, others HTTPS.
///
/// `RBUILD_REGISTRY_TIMEOUT` (seconds) sets the idle timeout, for tests that make a
/// registry stop answering and must not wait docker's 30 s five times.
pub fn client(_global: &Global) -> Result<Arc<Client>, CliError> {
    let mut opts = ClientOptions::new(Arc::new(registry::is_loopback), Arc::new(Anonymous));
    if let Some(secs) = std::env::var("RBUILD_REGISTRY_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        opts.idle_timeout = Duration::from_secs(secs.max(1));
    }
    Ok(Arc::new(Client::new(opts)?))
}
