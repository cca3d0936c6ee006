//! The registry client: distribution API v2 over HTTP(S), async on tokio.
//!
//! [`transport`] sends one request correctly (auth, redirects, retries, caps); the
//! operations (pull, push, search, login) are built on it. Callers outside async code use
//! [`runtime`] and `block_on`.

pub mod auth;
pub mod cache;
pub mod catalog;
pub mod creds;
mod error;
pub mod manifest;
pub mod progress;
pub mod pull;
pub mod push;
pub mod search;
pub mod settings;
pub mod transport;
mod upload;

pub use error::RegistryError;
pub use transport::{Anonymous, Body, Client, ClientOptions, CredentialSource, Given, Request};

use reqwest::Method;

/// A small runtime for one command: transfers are I/O-bound, and the blocking store work
/// runs on tokio's blocking pool, so two workers are enough.
pub fn runtime() -> Result<tokio::runtime::Runtime, RegistryError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| RegistryError::Protocol(format!("starting the async runtime: {e}")))
}

/// Whether a registry host is loopback, which Docker speaks to over plain HTTP.
pub fn is_loopback(registry: &str) -> bool {
    let (host, _) = settings::split_host_port(registry);
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            // `::ffff:127.0.0.1` is IPv4 loopback written as IPv6, as docker counts it.
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// Checks that the client's credentials for `registry` are accepted, as `docker login`
/// does before storing them: `GET /v2/` must end in 200 once challenges are answered.
pub async fn check_login(client: &Client, registry: &str) -> Result<(), RegistryError> {
    let url = client.url(registry, "/v2/")?;
    let req = Request::new(Method::GET, registry, url, format!("login to {registry}"));
    client.send_expect(&req, &[200]).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1",
            "127.1.2.3:80",
            "[::1]:5000",
            "[::1]",
            "[::ffff:127.0.0.1]:5000",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "docker.io",
            "10.0.0.1:5000",
            "localhost.example.com",
            "[::2]:1",
            "[::ffff:10.0.0.1]:5000",
            "128.0.0.1",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
