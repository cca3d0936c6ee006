//! `RUN --mount=type=…,key=value,…`: the five mount types (bind, cache, tmpfs, secret,
//! ssh) and their options, validated as BuildKit's `commands_runmount.go` does, with its
//! messages, its per-type rules and its defaults.
//!
//! The flag value is one CSV record (`"a,b",c` quoting as in RFC 4180). Option keys are
//! case-insensitive; values are taken as written, except `type` and `sharing` which are
//! lower-cased. BuildKit expands each value (not the keys) before validating them, so
//! a mount such as `uid=$UID` can only be checked after expansion; see
//! [`super::Deferred`].

use serde::Serialize;
use std::fmt;

use super::size::ram_in_bytes;
use super::strconv::{parse_bool, parse_u32, quote};
use crate::suggest::closest;

/// What is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    /// A directory of the build context or of another stage (read-only by default).
    #[default]
    Bind,
    /// A persistent cache directory shared between builds.
    Cache,
    /// An empty in-memory file system.
    Tmpfs,
    /// A secret file (or environment variable) provided by the build client.
    Secret,
    /// An SSH agent socket forwarded from the build client.
    Ssh,
}

impl MountType {
    const ALL: [(&'static str, MountType); 5] = [
        ("bind", MountType::Bind),
        ("cache", MountType::Cache),
        ("tmpfs", MountType::Tmpfs),
        ("secret", MountType::Secret),
        ("ssh", MountType::Ssh),
    ];

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("bind", |(n, _)| n)
    }
}

impl fmt::Display for MountType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How concurrent builds share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sharing {
    /// Several writers at once (BuildKit's default).
    Shared,
    /// Each concurrent writer gets its own copy.
    Private,
    /// Writers wait for each other.
    Locked,
}

impl Sharing {
    const ALL: [(&'static str, Sharing); 3] = [
        ("shared", Sharing::Shared),
        ("private", Sharing::Private),
        ("locked", Sharing::Locked),
    ];
}

/// One validated `--mount`. Empty string options count as not given, as in BuildKit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Mount {
    #[serde(rename = "type")]
    pub kind: MountType,
    /// `from=`: the stage or image to take `source` from (bind, cache).
    pub from: Option<String>,
    /// `source=`/`src=`: path inside `from` (bind, cache) or secret id (secret).
    pub source: Option<String>,
    /// `target=`/`dst=`/`destination=`: where it appears in the container.
    pub target: Option<String>,
    /// `ro`/`readonly`, `rw`/`readwrite`; defaults to read-only except for cache and tmpfs.
    pub readonly: bool,
    /// `size=` (tmpfs only), in bytes.
    pub size: Option<u64>,
    /// `id=`: cache id, secret id or SSH agent id.
    pub id: Option<String>,
    /// `sharing=` (cache only); see [`Mount::sharing_or_default`].
    pub sharing: Option<Sharing>,
    /// `required` (secret and ssh): fail the build when the client does not provide it.
    pub required: bool,
    /// `env=` (secret): expose the secret as this environment variable.
    pub env: Option<String>,
    /// `mode=` (octal), `uid=`, `gid=`: owner and mode of the mounted path (cache, secret, ssh).
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// Why a `--mount` was refused. Messages are BuildKit's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountError {
    #[error("failed to parse csv mounts: {0}")]
    Csv(String),
    #[error("'from' doesn't support variable expansion, define alias stage instead")]
    FromVariable,
    #[error("invalid field '{0}' must be a key=value pair")]
    NotKeyValue(String),
    #[error("unexpected key '{key}' for mount type '{kind}'")]
    KeyNotForType { key: String, kind: MountType },
    #[error("unsupported mount type {}", quote(.value))]
    UnknownType {
        value: String,
        suggestion: Option<&'static str>,
    },
    #[error("unsupported sharing value {}", quote(.value))]
    UnknownSharing {
        value: String,
        suggestion: Option<&'static str>,
    },
    #[error("invalid value for {key}: {value}")]
    InvalidValue { key: String, value: String },
    #[error("invalid value {value} for {key}")]
    InvalidNumber { key: &'static str, value: String },
    #[error("unexpected key '{key}' in '{field}'")]
    UnknownKey {
        key: String,
        field: String,
        suggestion: Option<&'static str>,
    },
    #[error("{key} not allowed for \"{kind}\" type mounts")]
    FileInfoNotAllowed { key: &'static str, kind: MountType },
    #[error("secret mount should not have a from")]
    SecretFrom,
    #[error("secret mount should not define sharing")]
    SecretSharing,
    #[error("invalid secret mount. one of source, target required")]
    SecretNoTarget,
    #[error("both source and id can't be set")]
    SecretSourceAndId,
    #[error("invalid cache sharing set for {0} mount")]
    SharingNotCache(MountType),
    /// BuildKit reports this one when the step runs; it is a property of the flag alone.
    #[error("ssh does not support source")]
    SshSource,
}

impl MountError {
    /// A "did you mean" hint when the value looks like a typo.
    pub fn help(&self) -> Option<String> {
        match self {
            MountError::UnknownType {
                suggestion: Some(s),
                ..
            }
            | MountError::UnknownSharing {
                suggestion: Some(s),
                ..
            }
            | MountError::UnknownKey {
                suggestion: Some(s),
                ..
            } => Some(format!("did you mean {s}?")),
            MountError::UnknownType { .. } => {
                Some("mount types: bind, cache, tmpfs, secret, ssh".into())
            }
            _ => None,
        }
    }
}

/// Every option key BuildKit knows, for suggestions.
const KEYS: &[&str] = &[
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "env",
];

/// One CSV field of a mount: `key=value` or a bare `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountField {
    /// The field as written (for messages).
    pub raw: String,
    /// The key, lower-cased.
    pub key: String,
    /// The value after `=`; `None` for bare options such as `ro`.
    pub value: Option<String>,
}

/// Splits a `--mount` value into its fields (one CSV record).
pub fn split_fields(spec: &str) -> Result<Vec<MountField>, MountError> {
    Ok(csv_fields(spec)?
        .into_iter()
        .map(|raw| {
            let (key, value) = match raw.split_once('=') {
                Some((k, v)) => (k.to_lowercase(), Some(v.to_string())),
                None => (raw.to_lowercase(), None),
            };
            MountField { raw, key, value }
        })
        .collect())
}

/// The check BuildKit makes before expansion: `from=` must not use variables, because
/// the stage graph is built before any variable is known. A trailing `$` is literal.
pub fn check_unexpanded(fields: &[MountField]) -> Result<(), MountError> {
    for field in fields {
        if let (Some(value), "from") = (&field.value, field.key.as_str())
            && value.find('$').is_some_and(|i| i + 1 != value.len())
        {
            return Err(MountError::FromVariable);
        }
    }
    Ok(())
}

/// The `from=` value of (possibly unexpanded) fields, the last one winning.
pub fn from_of(fields: &[MountField]) -> Option<String> {
    fields
        .iter()
        .rev()
        .find(|f| f.key == "from" && f.value.is_some())
        .and_then(|f| f.value.clone())
        .filter(|v| !v.is_empty())
}

impl Mount {
    /// Validates a `--mount` value whose options need no expansion.
    pub fn parse(spec: &str) -> Result<Mount, MountError> {
        Mount::from_fields(&split_fields(spec)?)
    }

    /// Builds the mount from (expanded) fields, applying BuildKit's rules in its order:
    /// options left to right (so `required` before `type=secret` is refused), then the
    /// per-type checks, then the read-only default.
    pub fn from_fields(fields: &[MountField]) -> Result<Mount, MountError> {
        let mut m = Mount::default();
        let mut readonly_given = false;
        for field in fields {
            let key = field.key.as_str();
            let Some(value) = field.value.as_deref() else {
                match key {
                    "readonly" | "ro" => {
                        m.readonly = true;
                        readonly_given = true;
                    }
                    "readwrite" | "rw" => {
                        m.readonly = false;
                        readonly_given = true;
                    }
                    "required" => {
                        m.require_secret_or_ssh(key)?;
                        m.required = true;
                    }
                    _ => return Err(MountError::NotKeyValue(field.raw.clone())),
                }
                continue;
            };
            let bool_value = || {
                parse_bool(value).ok_or_else(|| MountError::InvalidValue {
                    key: key.to_string(),
                    value: value.to_string(),
                })
            };
            let non_empty = || Some(value.to_string()).filter(|v| !v.is_empty());
            match key {
                "type" => m.kind = parse_type(value)?,
                "from" => m.from = non_empty(),
                "source" | "src" => m.source = non_empty(),
                "target" | "dst" | "destination" => m.target = non_empty(),
                "readonly" | "ro" => {
                    m.readonly = bool_value()?;
                    readonly_given = true;
                }
                "readwrite" | "rw" => {
                    m.readonly = !bool_value()?;
                    readonly_given = true;
                }
                "required" => {
                    m.require_secret_or_ssh(key)?;
                    m.required = bool_value()?;
                }
                "size" => {
                    if m.kind != MountType::Tmpfs {
                        return Err(MountError::KeyNotForType {
                            key: key.to_string(),
                            kind: m.kind,
                        });
                    }
                    m.size = Some(ram_in_bytes(value).ok_or_else(|| MountError::InvalidValue {
                        key: key.to_string(),
                        value: value.to_string(),
                    })?);
                }
                "id" => m.id = non_empty(),
                "sharing" => m.sharing = Some(parse_sharing(value)?),
                "mode" => m.mode = Some(number("mode", value, 8)?),
                "uid" => m.uid = Some(number("uid", value, 10)?),
                "gid" => m.gid = Some(number("gid", value, 10)?),
                "env" => m.env = Some(value.to_string()),
                _ => {
                    return Err(MountError::UnknownKey {
                        key: key.to_string(),
                        field: field.raw.clone(),
                        suggestion: closest(key, KEYS.iter().copied()),
                    });
                }
            }
        }
        m.check_type_rules()?;
        if !readonly_given {
            m.readonly = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
        }
        Ok(m)
    }

    fn require_secret_or_ssh(&self, key: &str) -> Result<(), MountError> {
        if matches!(self.kind, MountType::Secret | MountType::Ssh) {
            Ok(())
        } else {
            Err(MountError::KeyNotForType {
                key: key.to_string(),
                kind: self.kind,
            })
        }
    }

    fn check_type_rules(&self) -> Result<(), MountError> {
        let file_info_allowed = matches!(
            self.kind,
            MountType::Secret | MountType::Ssh | MountType::Cache
        );
        if !file_info_allowed {
            for (key, given) in [
                ("mode", self.mode.is_some()),
                ("uid", self.uid.is_some()),
                ("gid", self.gid.is_some()),
            ] {
                if given {
                    return Err(MountError::FileInfoNotAllowed {
                        key,
                        kind: self.kind,
                    });
                }
            }
        }
        if self.kind == MountType::Secret {
            if self.from.is_some() {
                return Err(MountError::SecretFrom);
            }
            if self.sharing.is_some() {
                return Err(MountError::SecretSharing);
            }
            if self.source.is_none() && self.target.is_none() && self.id.is_none() {
                return Err(MountError::SecretNoTarget);
            }
            if self.source.is_some() && self.id.is_some() {
                return Err(MountError::SecretSourceAndId);
            }
        }
        if self.sharing.is_some() && self.kind != MountType::Cache {
            return Err(MountError::SharingNotCache(self.kind));
        }
        if self.kind == MountType::Ssh && self.source.is_some() {
            return Err(MountError::SshSource);
        }
        Ok(())
    }

    /// The sharing mode of a cache mount: `shared` unless given (BuildKit's default);
    /// `None` for other types.
    pub fn sharing_or_default(&self) -> Option<Sharing> {
        (self.kind == MountType::Cache).then(|| self.sharing.unwrap_or(Sharing::Shared))
    }

    /// The id of a cache mount: `id=`, else the cleaned target path (BuildKit's default).
    pub fn cache_id(&self) -> Option<String> {
        if self.kind != MountType::Cache {
            return None;
        }
        self.id
            .clone()
            .or_else(|| Some(clean_path(self.target.as_deref().unwrap_or(""))))
    }

    /// The id of a secret: `source=`, else `id=`, else the base name of the target.
    pub fn secret_id(&self) -> Option<String> {
        if self.kind != MountType::Secret {
            return None;
        }
        self.source
            .clone()
            .or_else(|| self.id.clone())
            .or_else(|| self.target.as_deref().map(base_name))
    }

    /// Where a secret file appears: the target, or `/run/secrets/<id>` when neither a
    /// target nor `env=` is given. `None` for an env-only secret or a non-secret mount.
    pub fn secret_path(&self) -> Option<String> {
        if self.kind != MountType::Secret {
            return None;
        }
        match (&self.target, &self.env) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(_)) => None,
            (None, None) => Some(format!(
                "/run/secrets/{}",
                base_name(&self.secret_id().unwrap_or_default())
            )),
        }
    }

    /// The SSH agent id: `id=`, else `default`.
    pub fn ssh_id(&self) -> Option<String> {
        (self.kind == MountType::Ssh).then(|| self.id.clone().unwrap_or_else(|| "default".into()))
    }

    /// The mode BuildKit gives the mounted path when `uid`, `gid` or `mode` is set:
    /// `mode=` or the type's default (cache 0755, secret 0400, ssh 0600). `None` when
    /// none of the three is given (the path keeps its own mode).
    pub fn file_mode(&self) -> Option<u32> {
        if self.uid.is_none() && self.gid.is_none() && self.mode.is_none() {
            return None;
        }
        self.mode.or(match self.kind {
            MountType::Cache => Some(0o755),
            MountType::Secret => Some(0o400),
            MountType::Ssh => Some(0o600),
            MountType::Bind | MountType::Tmpfs => None,
        })
    }
}

fn parse_type(value: &str) -> Result<MountType, MountError> {
    let lower = value.to_lowercase();
    MountType::ALL
        .iter()
        .find(|(n, _)| *n == lower)
        .map(|(_, t)| *t)
        .ok_or_else(|| MountError::UnknownType {
            value: value.to_string(),
            suggestion: closest(value, MountType::ALL.iter().map(|(n, _)| *n)),
        })
}

fn parse_sharing(value: &str) -> Result<Sharing, MountError> {
    let lower = value.to_lowercase();
    Sharing::ALL
        .iter()
        .find(|(n, _)| *n == lower)
        .map(|(_, s)| *s)
        .ok_or_else(|| MountError::UnknownSharing {
            value: value.to_string(),
            suggestion: closest(value, Sharing::ALL.iter().map(|(n, _)| *n)),
        })
}

fn number(key: &'static str, value: &str, radix: u32) -> Result<u32, MountError> {
    parse_u32(value, radix).ok_or_else(|| MountError::InvalidNumber {
        key,
        value: value.to_string(),
    })
}

/// One CSV record as Go's `encoding/csv` reads it (comma separator, `"` quoting with
/// `""` for a quote inside quotes, no trimming, no lazy quotes). Errors use Go's texts.
fn csv_fields(line: &str) -> Result<Vec<String>, MountError> {
    let line = line
        .strip_suffix("\r\n")
        .or_else(|| line.strip_suffix('\n'))
        .unwrap_or(line);
    if line.is_empty() {
        return Err(MountError::Csv("EOF".into()));
    }
    let err = |col: usize, what: &str| {
        MountError::Csv(format!("parse error on line 1, column {}: {what}", col + 1))
    };
    let mut fields = Vec::new();
    let mut rest = line;
    let mut pos = 0usize;
    loop {
        if let Some(quoted) = rest.strip_prefix('"') {
            pos += 1;
            rest = quoted;
            let mut field = String::new();
            loop {
                let Some(i) = rest.find('"') else {
                    return Err(err(pos, "extraneous or missing \" in quoted-field"));
                };
                field.push_str(&rest[..i]);
                rest = &rest[i + 1..];
                pos += i + 1;
                if let Some(after) = rest.strip_prefix('"') {
                    field.push('"');
                    rest = after;
                    pos += 1;
                } else if let Some(after) = rest.strip_prefix(',') {
                    fields.push(field);
                    rest = after;
                    pos += 1;
                    break;
                } else if rest.is_empty() {
                    fields.push(field);
                    return Ok(fields);
                } else {
                    return Err(err(pos - 1, "extraneous or missing \" in quoted-field"));
                }
            }
        } else {
            let end = rest.find(',');
            let field = &rest[..end.unwrap_or(rest.len())];
            if let Some(j) = field.find('"') {
                return Err(err(pos + j, "bare \" in non-quoted-field"));
            }
            fields.push(field.to_string());
            match end {
                Some(i) => {
                    rest = &rest[i + 1..];
                    pos += i + 1;
                }
                None => return Ok(fields),
            }
        }
    }
}

/// Go's `path.Clean`: lexical clean-up of a slash-separated path.
fn clean_path(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Go's `path.Base`: the last element, ignoring trailing slashes.
fn base_name(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".into();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

#[cfg(test)]
#[path = "mount_tests.rs"]
mod tests;
