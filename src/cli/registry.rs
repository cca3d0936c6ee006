//! How the commands that talk to registries (search, and later pull, push, login) make
//! their client: the one place where insecure registries and stored credentials are to be
//! wired in.

use std::sync::Arc;

use rbuild_builder::store::registry::{self, Anonymous, Client, ClientOptions};

use super::{CliError, Global};

/// A registry client with docker's defaults: loopback registries over plain HTTP, every
/// other over HTTPS; anonymous until credentials are stored by `login`.
pub fn client(_global: &Global) -> Result<Client, CliError> {
    let opts = ClientOptions::new(Arc::new(registry::is_loopback), Arc::new(Anonymous));
    Ok(Client::new(opts)?)
}
