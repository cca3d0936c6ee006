//! The image config JSON (the blob an image ID is the digest of), as Docker reads and
//! writes it: the OCI image config plus Docker's extra keys.
//!
//! Our own serde types rather than `oci_spec::image::ImageConfiguration`, because that
//! type drops what Docker keeps and `docker inspect` shows: `Healthcheck`, `OnBuild`,
//! `Shell`, `ArgsEscaped`, and the legacy top-level `container`, `container_config`,
//! `docker_version`, `comment`. Keys neither type knows are kept in `extra` maps, so a
//! config read and written again loses nothing.
//!
//! Writing: fields that are unset are left out, never written as `null`. That is what
//! BuildKit writes (every field of its config is `omitempty`); Docker's legacy builder
//! wrote `"Cmd":null` and the like, which every reader takes to mean the same as absent,
//! so such a `null` reads as `None` and is not written back. An empty list stays an empty
//! list (`Some(vec![])` is `[]`). Pulled configs are stored as the bytes the registry
//! sent, never re-serialised, so this never changes an image ID.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::digest::Digest;

/// An image config. Top-level keys are declared in alphabetical order, the order
/// BuildKit writes them in, so a config we make looks like one BuildKit made.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// `amd64`, `arm64`, … (GOARCH names). Required by OCI, so always written.
    #[serde(default)]
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Legacy: the `-m` of `docker commit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    /// Legacy: the ID of the container the image was committed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Legacy: that container's config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_config: Option<ContainerConfig>,
    /// RFC 3339 with up to nanoseconds, as Go writes it (see [`format_time`]). Kept as
    /// the string that was read so that re-serialising cannot change its precision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Legacy: the version of the daemon that made the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_version: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    /// `linux`. Required by OCI, so always written.
    #[serde(default)]
    pub os: String,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(default)]
    pub rootfs: RootFs,
    /// `v7`, `v8`, … for ARM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Keys this type does not know, kept so that they survive a round trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The layers of an image, bottom first, by diff ID (digest of the uncompressed tar).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> RootFs {
        RootFs {
            kind: "layers".to_string(),
            diff_ids: Vec::new(),
        }
    }
}

/// One step of the image's history, as `docker history` lists it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// True for steps that changed only the config (ENV, CMD, …): they have no entry in
    /// `rootfs.diff_ids`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// What a container started from the image gets, with Docker's JSON names. Keys in the
/// order BuildKit writes them (OCI's `ImageConfig`, then Docker's extension).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `"80/tcp": {}`, a set written as an object as Go writes `map[string]struct{}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Empty>>,
    /// `KEY=value` entries, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// Mount points, a set like `exposed_ports`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Empty>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Windows only in Docker; kept for round trips. Go omits `false`, so do we.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub args_escaped: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    /// ONBUILD instructions, as written in the Dockerfile, run by images built FROM this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    /// SHELL: the shell for shell-form RUN, CMD and ENTRYPOINT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    /// Keys this type does not know (`Hostname`, `AttachStdin`, … of legacy configs).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// HEALTHCHECK. Durations are integer nanoseconds, as Go's `time.Duration` marshals;
/// Docker omits zero values, and so does the builder by leaving them `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `["NONE"]`, `["CMD", args…]` or `["CMD-SHELL", command]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
}

/// The `{}` value of Go's `map[string]struct{}` sets (exposed ports, volumes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

impl ImageConfig {
    /// Parses a config blob.
    pub fn from_slice(bytes: &[u8]) -> Result<ImageConfig, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Compact JSON, keys in declaration order then unknown keys: the same config always
    /// gives the same bytes, hence the same image ID. (Go would escape `<`, `>` and `&`
    /// as `\u003c`…; we do not, so a config with those bytes differs from BuildKit's.)
    pub fn to_vec(&self) -> Vec<u8> {
        // Serialising these types cannot fail: all keys are strings, no custom errors.
        serde_json::to_vec(self).unwrap_or_else(|e| unreachable!("image config to JSON: {e}"))
    }

    /// `created` as a time, when it is present and valid RFC 3339.
    pub fn created_time(&self) -> Option<DateTime<Utc>> {
        parse_time(self.created.as_deref()?)
    }
}

impl History {
    /// `created` as a time, when it is present and valid RFC 3339.
    pub fn created_time(&self) -> Option<DateTime<Utc>> {
        parse_time(self.created.as_deref()?)
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Formats a time as Go's `time.RFC3339Nano` does (what Docker and BuildKit write in
/// `created`): UTC `Z`, fractional seconds only when non-zero and without trailing zeros,
/// e.g. `2024-09-26T21:31:42Z`, `2024-09-26T21:31:42.0512Z`.
pub fn format_time(t: DateTime<Utc>) -> String {
    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.timestamp_subsec_nanos();
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

#[cfg(test)]
mod tests;
