//! The one place the CLI makes a registry client, so every command that talks to a
//! registry (pull, push, login, search, build's FROM) trusts the same hosts and sends the
//! same credentials.

use std::sync::Arc;
use std::time::Duration;

use rbuild_builder::store::registry::creds::DockerConfig;
use rbuild_builder::store::registry::settings::RegistrySettings;
use rbuild_builder::store::registry::{Client, ClientOptions, CredentialSource};

use super::{CliError, Global};

/// A client with the user's stored credentials (docker's config.json and helpers).
pub fn client(global: &Global) -> Result<Arc<Client>, CliError> {
    let settings = global.registry_settings()?;
    client_with(&settings, Arc::new(DockerConfig::from_env()?))
}

/// A client for `settings`: loopback and `--insecure-registry` hosts over plain HTTP,
/// others HTTPS, sending what `credentials` gives.
///
/// `RBUILD_REGISTRY_TIMEOUT` (seconds) sets the idle timeout, for tests that make a
/// registry stop answering and must not wait docker's 30 s five times.
pub fn client_with(
    settings: &RegistrySettings,
    credentials: Arc<dyn CredentialSource>,
) -> Result<Arc<Client>, CliError> {
    let settings = settings.clone();
    let mut opts = ClientOptions::new(Arc::new(move |h| settings.is_insecure(h)), credentials);
    if let Some(secs) = std::env::var("RBUILD_REGISTRY_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        opts.idle_timeout = Duration::from_secs(secs.max(1));
    }
    Ok(Arc::new(Client::new(opts)?))
}
