//! Registry credentials kept where and how docker keeps them, so `rbuild login` and
//! `docker login` share one file: `$DOCKER_CONFIG/config.json` (default
//! `~/.docker/config.json`) with `auths`, `credsStore` and `credHelpers`, and the
//! `docker-credential-NAME` helpers for secrets that do not belong in a file.
//!
//! Secrets never reach a `Debug`, an error message or a log line; errors name the file
//! or the helper instead.

mod helper;

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

use helper::{Answer, Helper};

/// Docker Hub's key in `auths` and what helpers are asked for: docker's `IndexServer`,
/// kept from the v1 registry API for compatibility with every existing config file.
pub const INDEX_SERVER: &str = "https://index.docker.io/v1/";

/// What helpers put in `Username` to say `Secret` is an identity token
/// (docker-credential-helpers `tokenUsername`).
const TOKEN_USERNAME: &str = "<token>";

/// How long a helper may take; a locked keychain may wait for a person to unlock it.
const HELPER_TIMEOUT: Duration = Duration::from_secs(60);

/// A user name and the secret that goes with it.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub secret: String,
    pub kind: SecretKind,
}

/// What the secret is, because the two are sent differently: a password goes in Basic
/// auth (or the token GET), an identity token is an OAuth2 refresh token for the token
/// server's POST (docker's `IdentityToken`, from `identitytoken` in config.json or a
/// helper answering with user name `<token>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretKind {
    Password,
    IdentityToken,
}

impl Credential {
    pub fn password(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credential {
            username: username.into(),
            secret: password.into(),
            kind: SecretKind::Password,
        }
    }

    pub fn identity_token(username: impl Into<String>, token: impl Into<String>) -> Self {
        Credential {
            username: username.into(),
            secret: token.into(),
            kind: SecretKind::IdentityToken,
        }
    }
}

/// By hand, so that printing a credential (or anything holding one) never shows it.
impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .field("kind", &self.kind)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredsError {
    #[error("{path}: {what}: {source}")]
    Io {
        path: String,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    /// Only serde_json's syntax errors get here (line and column, never content).
    #[error("{path}: not valid JSON: {reason}")]
    BadJson { path: String, reason: String },
    #[error("{path}: {reason}")]
    BadEntry { path: String, reason: String },
    #[error("credential helper {helper} {action}: {reason}")]
    Helper {
        helper: String,
        action: String,
        reason: String,
    },
    #[error("neither DOCKER_CONFIG nor HOME is set, so there is no docker config to use")]
    NoConfigDir,
}

/// Where a credential went, so the CLI can warn about a password kept in plain text as
/// docker does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// The helper program's name, e.g. `docker-credential-pass`.
    Helper(String),
    /// The config file, with the secret base64-encoded (not encrypted).
    File(PathBuf),
}

/// One docker config file and the helpers it names.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    path: PathBuf,
    helper_path: Option<OsString>,
    helper_timeout: Duration,
}

impl DockerConfig {
    /// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`, as docker's
    /// `config.Dir()` decides.
    pub fn from_env() -> Result<Self, CredsError> {
        let dir = match std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            Some(d) => PathBuf::from(d),
            None => std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".docker"))
                .ok_or(CredsError::NoConfigDir)?,
        };
        Ok(Self::in_dir(&dir))
    }

    /// `DIR/config.json`; what `DOCKER_CONFIG=DIR` means.
    pub fn in_dir(dir: &Path) -> Self {
        DockerConfig {
            path: dir.join("config.json"),
            helper_path: None,
            helper_timeout: HELPER_TIMEOUT,
        }
    }

    /// Finds helpers in these `PATH`-style directories instead of the process's `$PATH`.
    pub fn with_helper_path(mut self, path: impl Into<OsString>) -> Self {
        self.helper_path = Some(path.into());
        self
    }

    pub fn with_helper_timeout(mut self, timeout: Duration) -> Self {
        self.helper_timeout = timeout;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fails as the first read of the file would (unreadable, not JSON), so a command
    /// can say so before it prompts for a password or talks to a registry.
    pub fn check(&self) -> Result<(), CredsError> {
        self.load().map(|_| ())
    }

    /// The credential for `registry` (`docker.io`, `localhost:5000`, or any key form
    /// docker accepts): from the helper `credHelpers` names for that host, else the
    /// `credsStore` helper, else `auths`. `auths` is also read when a helper has nothing,
    /// so a file written before a helper was configured keeps working.
    pub fn get(&self, registry: &str) -> Result<Option<Credential>, CredsError> {
        let doc = self.load()?;
        let key = server_key(registry);
        if let Some(name) = helper_name(&doc, registry) {
            let helper = self.helper(&name);
            if let Answer::Ok(out) = helper.run("get", key.as_bytes(), "")?
                && let Some(cred) = parse_helper_answer(&helper, &out)?
            {
                return Ok(Some(cred));
            }
        }
        match find_entry(&doc, registry, &self.path)? {
            Some((key, entry)) => decode_entry(&self.path, key, entry),
            None => Ok(None),
        }
    }

    /// Keeps `cred` for `registry` (`rbuild login`): in the helper when one is configured,
    /// leaving `auths[KEY] = {}` in the file as docker does, else base64 in `auths`.
    pub fn store(&self, registry: &str, cred: &Credential) -> Result<Stored, CredsError> {
        let mut doc = self.load()?;
        let key = server_key(registry);
        let helper_name = helper_name(&doc, registry);
        let entry = match &helper_name {
            Some(name) => {
                let username = match cred.kind {
                    SecretKind::Password => cred.username.as_str(),
                    SecretKind::IdentityToken => TOKEN_USERNAME,
                };
                let input = serde_json::json!({
                    "ServerURL": key,
                    "Username": username,
                    "Secret": cred.secret,
                });
                let helper = self.helper(name);
                match helper.run("store", input.to_string().as_bytes(), &cred.secret)? {
                    Answer::Ok(_) => Map::new(),
                    Answer::NotFound => {
                        return Err(CredsError::Helper {
                            helper: helper_program(name),
                            action: "store".into(),
                            reason: "failed: credentials not found".into(),
                        });
                    }
                }
            }
            None => encode_entry(cred),
        };
        auths_mut(&mut doc, &self.path)?.insert(key, Value::Object(entry));
        self.save(&doc)?;
        Ok(match helper_name {
            Some(name) => Stored::Helper(helper_program(&name)),
            None => Stored::File(self.path.clone()),
        })
    }

    /// Forgets `registry`'s credential (`rbuild logout`): the helper's copy and every
    /// `auths` entry for that host (`host`, `https://host`, `http://host/v2/`, ...).
    /// Returns whether there was anything to forget.
    pub fn erase(&self, registry: &str) -> Result<bool, CredsError> {
        let mut doc = self.load()?;
        let mut had = false;
        if let Some(name) = helper_name(&doc, registry) {
            let key = server_key(registry);
            // An error leaves the file alone, so a retry still finds the entry.
            had |= matches!(
                self.helper(&name).run("erase", key.as_bytes(), "")?,
                Answer::Ok(_)
            );
        }
        let host = host_of(registry);
        let mut removed = false;
        if let Some(Value::Object(auths)) = doc.get_mut("auths") {
            let before = auths.len();
            auths.retain(|k, _| host_of(k) != host);
            removed = auths.len() != before;
        }
        if removed {
            self.save(&doc)?;
        }
        Ok(had || removed)
    }

    fn helper<'a>(&'a self, name: &'a str) -> Helper<'a> {
        Helper {
            name,
            search_path: self.helper_path.as_ref(),
            timeout: self.helper_timeout,
        }
    }

    /// The whole file as a JSON object, every key kept (docker's file has many sections
    /// we never read); a missing or empty file is an empty object, as for docker.
    fn load(&self) -> Result<Map<String, Value>, CredsError> {
        let text = match std::fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Map::new()),
            Err(e) => return Err(self.io("reading", e)),
        };
        if text.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        match serde_json::from_slice::<Value>(&text) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(CredsError::BadJson {
                path: self.path.display().to_string(),
                reason: "the top level is not an object".into(),
            }),
            Err(e) => Err(CredsError::BadJson {
                path: self.path.display().to_string(),
                reason: e.to_string(),
            }),
        }
    }

    /// Temp file, fsync, rename, mode 0600, tab-indented like docker's `MarshalIndent`;
    /// a symlinked config.json (dotfile managers) is written through, not replaced.
    fn save(&self, doc: &Map<String, Value>) -> Result<(), CredsError> {
        let path = match std::fs::canonicalize(&self.path) {
            Ok(real) => real,
            Err(_) => self.path.clone(),
        };
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| self.io("creating its directory", e))?;
        }
        let mut bytes = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut bytes, fmt);
        serde::Serialize::serialize(doc, &mut ser).expect("a JSON map always serializes");
        crate::fsutil::atomic_write(&path, &bytes).map_err(|e| self.io("writing", e))
    }

    fn io(&self, what: &'static str, source: io::Error) -> CredsError {
        CredsError::Io {
            path: self.path.display().to_string(),
            what,
            source,
        }
    }
}

/// The host part of a registry name or config key, as docker's `ConvertToHostname`
/// (scheme and path dropped), lower-cased, with Docker Hub's aliases as `docker.io`.
pub fn host_of(key: &str) -> String {
    let lower = key.trim().to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .unwrap_or(&lower);
    let host = rest.split('/').next().unwrap_or("");
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        h => h.into(),
    }
}

/// The key docker writes for `registry` and asks helpers about: [`INDEX_SERVER`] for
/// Docker Hub, the bare `host[:port]` for every other registry.
pub fn server_key(registry: &str) -> String {
    match host_of(registry).as_str() {
        "docker.io" => INDEX_SERVER.into(),
        host => host.into(),
    }
}

fn helper_program(name: &str) -> String {
    format!("docker-credential-{name}")
}

/// `credHelpers` for this host (keys compared as hosts), else `credsStore`.
fn helper_name(doc: &Map<String, Value>, registry: &str) -> Option<String> {
    let host = host_of(registry);
    let per_host = doc
        .get("credHelpers")
        .and_then(Value::as_object)
        .and_then(|helpers| {
            helpers
                .iter()
                .find(|(k, _)| host_of(k) == host)
                .and_then(|(_, v)| v.as_str())
        });
    per_host
        .or_else(|| doc.get("credsStore").and_then(Value::as_str))
        .filter(|name| !name.is_empty())
        .map(str::to_string)
}

fn auths_mut<'a>(
    doc: &'a mut Map<String, Value>,
    path: &Path,
) -> Result<&'a mut Map<String, Value>, CredsError> {
    doc.entry("auths")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| CredsError::BadEntry {
            path: path.display().to_string(),
            reason: "\"auths\" is not an object".into(),
        })
}

/// The `auths` entry for `registry`: its exact key first, then any key naming the
/// same host (`https://host`, `http://host/v2/`), as docker's `GetAuthConfig` does.
fn find_entry<'a>(
    doc: &'a Map<String, Value>,
    registry: &str,
    path: &Path,
) -> Result<Option<(&'a str, &'a Value)>, CredsError> {
    let auths = match doc.get("auths") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(a)) => a,
        Some(_) => {
            return Err(CredsError::BadEntry {
                path: path.display().to_string(),
                reason: "\"auths\" is not an object".into(),
            });
        }
    };
    let key = server_key(registry);
    if let Some((k, v)) = auths.get_key_value(&key) {
        return Ok(Some((k.as_str(), v)));
    }
    let host = host_of(registry);
    Ok(auths
        .iter()
        .find(|(k, _)| host_of(k) == host)
        .map(|(k, v)| (k.as_str(), v)))
}

/// Reads one `auths` entry: base64 `auth` = `user:password`, or the separate `username`
/// and `password` of older files, and `identitytoken`. An empty entry (`{}`, what a
/// login through a helper leaves) is no credential.
fn decode_entry(path: &Path, key: &str, entry: &Value) -> Result<Option<Credential>, CredsError> {
    let bad = |reason: &str| CredsError::BadEntry {
        path: path.display().to_string(),
        reason: format!("auths[{key:?}]: {reason}"),
    };
    let Value::Object(entry) = entry else {
        return Err(bad("not an object"));
    };
    let field = |name: &str| entry.get(name).and_then(Value::as_str).unwrap_or("");
    let (username, password) = match field("auth") {
        "" => (field("username").to_string(), field("password").to_string()),
        auth => {
            let decoded = BASE64
                .decode(auth.trim())
                .map_err(|_| bad("\"auth\" is not base64"))?;
            let text = String::from_utf8(decoded).map_err(|_| bad("\"auth\" is not UTF-8"))?;
            let (u, p) = text
                .split_once(':')
                .ok_or_else(|| bad("\"auth\" is not user:password"))?;
            (u.to_string(), p.to_string())
        }
    };
    let token = field("identitytoken");
    Ok(if !token.is_empty() {
        Some(Credential::identity_token(username, token))
    } else if username.is_empty() && password.is_empty() {
        None
    } else {
        Some(Credential::password(username, password))
    })
}

fn encode_entry(cred: &Credential) -> Map<String, Value> {
    let mut entry = Map::new();
    let password = match cred.kind {
        SecretKind::Password => cred.secret.as_str(),
        SecretKind::IdentityToken => "",
    };
    if !cred.username.is_empty() || !password.is_empty() {
        let auth = BASE64.encode(format!("{}:{password}", cred.username));
        entry.insert("auth".into(), Value::String(auth));
    }
    if cred.kind == SecretKind::IdentityToken {
        entry.insert("identitytoken".into(), Value::String(cred.secret.clone()));
    }
    entry
}

/// A helper's `get` answer: `{"ServerURL", "Username", "Secret"}`.
fn parse_helper_answer(helper: &Helper, out: &[u8]) -> Result<Option<Credential>, CredsError> {
    let bad = || CredsError::Helper {
        helper: helper_program(helper.name),
        action: "get".into(),
        reason: "its answer is not a JSON object with Username and Secret".into(),
    };
    let Ok(Value::Object(answer)) = serde_json::from_slice::<Value>(out) else {
        return Err(bad());
    };
    let field = |name: &str| answer.get(name).and_then(Value::as_str).unwrap_or("");
    let (username, secret) = (field("Username"), field("Secret"));
    Ok(if secret.is_empty() && username.is_empty() {
        None
    } else if username == TOKEN_USERNAME {
        Some(Credential::identity_token("", secret))
    } else {
        Some(Credential::password(username, secret))
    })
}

#[cfg(test)]
mod tests;
