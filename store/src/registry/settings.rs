//! Registry settings that outlive one command: which registries may be reached over
//! plain HTTP and how many transfers run at once. They live in the store's own
//! `config.json`, with dockerd's `daemon.json` key names so that a docker user already
//! knows them; command-line options are applied on top by the CLI.

use std::io;
use std::net::IpAddr;
use std::path::Path;

use serde_json::{Map, Value};

/// `<store root>/config.json`.
pub const CONFIG_FILE: &str = "config.json";

#[derive(Debug, Clone, PartialEq)]
pub struct RegistrySettings {
    /// `host`, `host:port` or a CIDR (`10.0.0.0/8`), reached over plain HTTP.
    pub insecure: Vec<String>,
    pub max_concurrent_downloads: usize,
    pub max_concurrent_uploads: usize,
    /// Keys this version does not read (later settings, such as a cache size), kept so
    /// nothing in the file is lost on the way through.
    pub other: Map<String, Value>,
}

impl Default for RegistrySettings {
    /// dockerd's defaults: 3 downloads and 5 uploads at once.
    fn default() -> Self {
        RegistrySettings {
            insecure: Vec::new(),
            max_concurrent_downloads: 3,
            max_concurrent_uploads: 5,
            other: Map::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{path}: reading: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {reason}")]
    Bad { path: String, reason: String },
}

impl RegistrySettings {
    /// Reads `<store root>/config.json`; a missing file means the defaults.
    pub fn load(store_root: &Path) -> Result<Self, SettingsError> {
        let path = store_root.join(CONFIG_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => Self::from_json(&path, &bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(SettingsError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Parses the file's text; `path` is only for the errors.
    pub fn from_json(path: &Path, bytes: &[u8]) -> Result<Self, SettingsError> {
        let bad = |reason: String| SettingsError::Bad {
            path: path.display().to_string(),
            reason,
        };
        let mut doc = match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(doc)) => doc,
            Ok(_) => return Err(bad("the top level is not a JSON object".into())),
            Err(e) => return Err(bad(format!("not valid JSON: {e}"))),
        };
        let mut settings = RegistrySettings::default();
        if let Some(list) = doc.remove("insecure-registries") {
            let Value::Array(list) = list else {
                return Err(bad("\"insecure-registries\" is not a list".into()));
            };
            for entry in list {
                let Value::String(entry) = entry else {
                    return Err(bad("\"insecure-registries\" holds a non-string".into()));
                };
                check_insecure_entry(&entry)
                    .map_err(|e| bad(format!("insecure-registries: {e}")))?;
                settings.insecure.push(entry);
            }
        }
        for (key, slot) in [
            (
                "max-concurrent-downloads",
                &mut settings.max_concurrent_downloads,
            ),
            (
                "max-concurrent-uploads",
                &mut settings.max_concurrent_uploads,
            ),
        ] {
            if let Some(v) = doc.remove(key) {
                *slot = v
                    .as_u64()
                    .filter(|n| *n >= 1)
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| {
                        bad(format!("\"{key}\" must be a whole number of at least 1"))
                    })?;
            }
        }
        settings.other = doc;
        Ok(settings)
    }

    /// Whether `host` (`host`, `host:port`, `[v6]:port`) is reached over plain HTTP:
    /// loopback always (as docker does), else when an `insecure` entry names it. An entry
    /// without a port covers every port of that host; a CIDR covers IP literals in it
    /// (names are not resolved to find out).
    pub fn is_insecure(&self, host: &str) -> bool {
        if super::is_loopback(host) {
            return true;
        }
        let (name, port) = split_host_port(host);
        self.insecure.iter().any(|entry| {
            if let Some(net) = Cidr::parse(entry) {
                return name.parse::<IpAddr>().is_ok_and(|ip| net.contains(ip));
            }
            let (e_name, e_port) = split_host_port(entry);
            e_name == name && (e_port.is_none() || e_port == port)
        })
    }
}

/// Checks one `--insecure-registry` / `insecure-registries` value; the message says
/// what is wrong with it.
pub fn check_insecure_entry(entry: &str) -> Result<(), String> {
    if entry.contains("://") {
        return Err(format!(
            "insecure registry {entry} should not contain '://' (give host[:port] or a CIDR)"
        ));
    }
    if entry.contains('/') {
        return match Cidr::parse(entry) {
            Some(_) => Ok(()),
            None => Err(format!("insecure registry {entry} is not a valid CIDR")),
        };
    }
    let (name, port) = split_host_port(entry);
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(format!("insecure registry {entry:?} has no host"));
    }
    match port {
        Some(p) if p.parse::<u16>().is_err() => {
            Err(format!("insecure registry {entry} has an invalid port"))
        }
        _ => Ok(()),
    }
}

/// Lower-cased host (brackets of an IPv6 literal removed) and port, if any.
pub(super) fn split_host_port(s: &str) -> (String, Option<String>) {
    let s = s.trim().to_ascii_lowercase();
    if let Some(rest) = s.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            let port = after.strip_prefix(':').map(str::to_string);
            return (host.to_string(), port);
        }
        return (s, None);
    }
    match s.split_once(':') {
        // More than one colon without brackets is a bare IPv6 address.
        Some((host, port)) if !port.contains(':') => (host.to_string(), Some(port.to_string())),
        _ => (s, None),
    }
}

/// An IPv4 or IPv6 network, `addr/len`.
struct Cidr {
    addr: IpAddr,
    len: u32,
}

impl Cidr {
    fn parse(s: &str) -> Option<Cidr> {
        let (addr, len) = s.trim().split_once('/')?;
        let addr: IpAddr = addr.parse().ok()?;
        let len: u32 = len.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (len <= max).then_some(Cidr { addr, len })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - self.len).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - self.len).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(insecure: &[&str]) -> RegistrySettings {
        RegistrySettings {
            insecure: insecure.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn loopback_is_always_plain_http() {
        let s = with(&[]);
        for host in [
            "localhost",
            "localhost:5000",
            "LocalHost:5000",
            "127.0.0.1",
            "127.0.0.1:5000",
            "127.3.2.1:80",
            "[::1]",
            "[::1]:5000",
            "::1",
        ] {
            assert!(s.is_insecure(host), "{host}");
        }
        for host in [
            "docker.io",
            "128.0.0.1:5000",
            "localhost.example.com",
            "[::2]:5000",
            "10.1.2.3",
        ] {
            assert!(!s.is_insecure(host), "{host}");
        }
    }

    #[test]
    fn listed_hosts_ports_and_cidrs() {
        let s = with(&[
            "reg.example:5000",
            "plain.example",
            "10.0.0.0/8",
            "fd00::/8",
        ]);
        assert!(s.is_insecure("reg.example:5000"));
        assert!(s.is_insecure("REG.example:5000"));
        assert!(!s.is_insecure("reg.example"), "a port entry names one port");
        assert!(!s.is_insecure("reg.example:5001"));
        assert!(s.is_insecure("plain.example"));
        assert!(s.is_insecure("plain.example:8443"), "no port: any port");
        assert!(s.is_insecure("10.200.3.4:5000"));
        assert!(s.is_insecure("10.0.0.1"));
        assert!(!s.is_insecure("11.0.0.1"));
        assert!(s.is_insecure("[fd12::1]:5000"));
        assert!(!s.is_insecure("[fe80::1]:5000"));
        assert!(with(&["0.0.0.0/0"]).is_insecure("8.8.8.8"));
        assert!(with(&["192.168.1.7/32"]).is_insecure("192.168.1.7:443"));
        assert!(!with(&["192.168.1.7/32"]).is_insecure("192.168.1.8"));
    }

    #[test]
    fn file_keys_defaults_and_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            RegistrySettings::load(dir.path()).unwrap(),
            RegistrySettings::default()
        );
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            r#"{"insecure-registries": ["reg.example:5000", "10.0.0.0/8"],
                "max-concurrent-downloads": 7, "max-cache-size": "10GB"}"#,
        )
        .unwrap();
        let s = RegistrySettings::load(dir.path()).unwrap();
        assert_eq!(s.insecure, ["reg.example:5000", "10.0.0.0/8"]);
        assert_eq!(s.max_concurrent_downloads, 7);
        assert_eq!(s.max_concurrent_uploads, 5);
        assert_eq!(s.other["max-cache-size"], "10GB");
    }

    #[test]
    fn bad_files_name_the_file() {
        let path = Path::new("/store/config.json");
        for (text, needle) in [
            ("{", "not valid JSON"),
            ("[]", "not a JSON object"),
            (r#"{"insecure-registries": "x"}"#, "not a list"),
            (r#"{"insecure-registries": ["http://x"]}"#, "://"),
            (r#"{"insecure-registries": ["10.0.0.0/33"]}"#, "CIDR"),
            (r#"{"insecure-registries": ["x:port"]}"#, "port"),
            (r#"{"max-concurrent-downloads": 0}"#, "at least 1"),
            (
                r#"{"max-concurrent-uploads": "3"}"#,
                "max-concurrent-uploads",
            ),
        ] {
            let err = RegistrySettings::from_json(path, text.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("/store/config.json: ") && err.contains(needle),
                "{text}: {err}"
            );
        }
    }
}
