//! `inspect`: an image as `docker image inspect` shows it (moby `api/types/image`
//! `InspectResponse`, API 1.45+: no `Container`, `ContainerConfig` or `VirtualSize`).
//!
//! `Config` has the shape of moby's `container.Config`, which `docker image inspect`
//! has shown for years: every field present (`""`, `false`, `null` when unset) except
//! those Go marks `omitempty` (`ExposedPorts`, `Healthcheck`, `ArgsEscaped`,
//! `StopSignal`, `Shell`). `GraphDriver` names the layer trees as an overlay mount of
//! the image would use them: `UpperDir` the top layer, `LowerDir` the others, top
//! first; no `MergedDir`/`WorkDir`, as nothing is mounted.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::config::{ContainerConfig, Empty, HealthConfig};
use crate::digest::Digest;
use crate::error::StoreError;
use crate::store::Store;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub parent: String,
    pub comment: String,
    pub created: String,
    pub docker_version: String,
    pub author: String,
    pub config: Option<InspectConfig>,
    pub architecture: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub variant: String,
    pub os: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub os_version: String,
    pub size: u64,
    pub graph_driver: GraphDriver,
    #[serde(rename = "RootFS")]
    pub rootfs: InspectRootFs,
    pub metadata: Metadata,
}

/// moby's `container.Config`, in its field order.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectConfig {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Empty>>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub env: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub args_escaped: bool,
    pub image: String,
    pub volumes: Option<BTreeMap<String, Empty>>,
    pub working_dir: String,
    pub entrypoint: Option<Vec<String>>,
    pub on_build: Option<Vec<String>>,
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    pub data: BTreeMap<String, String>,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectRootFs {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Metadata {
    /// The store does not record tag times; Go's zero time, as docker shows for an
    /// image never tagged.
    pub last_tag_time: String,
}

impl From<&ContainerConfig> for InspectConfig {
    fn from(c: &ContainerConfig) -> InspectConfig {
        // Keys of legacy configs this type has no field for (Hostname, Image, …).
        let s = |k: &str| match c.extra.get(k) {
            Some(Value::String(v)) => v.clone(),
            _ => String::new(),
        };
        let b = |k: &str| matches!(c.extra.get(k), Some(Value::Bool(true)));
        InspectConfig {
            hostname: s("Hostname"),
            domainname: s("Domainname"),
            user: c.user.clone().unwrap_or_default(),
            attach_stdin: b("AttachStdin"),
            attach_stdout: b("AttachStdout"),
            attach_stderr: b("AttachStderr"),
            exposed_ports: c.exposed_ports.clone().filter(|p| !p.is_empty()),
            tty: b("Tty"),
            open_stdin: b("OpenStdin"),
            stdin_once: b("StdinOnce"),
            env: c.env.clone(),
            cmd: c.cmd.clone(),
            healthcheck: c.healthcheck.clone(),
            args_escaped: c.args_escaped,
            image: s("Image"),
            volumes: c.volumes.clone(),
            working_dir: c.working_dir.clone().unwrap_or_default(),
            entrypoint: c.entrypoint.clone(),
            on_build: c.on_build.clone(),
            labels: c.labels.clone(),
            stop_signal: c.stop_signal.clone().unwrap_or_default(),
            shell: c.shell.clone().filter(|s| !s.is_empty()),
        }
    }
}

impl Store {
    /// What `inspect` shows for image `id`.
    pub fn inspect_image(&self, id: &Digest) -> Result<ImageInspect, StoreError> {
        let img = self
            .image(id)?
            .ok_or_else(|| StoreError::NoSuchImage(id.to_string()))?;
        let config = self.config(id)?;
        let mut data = BTreeMap::new();
        let dirs: Vec<String> = img
            .layers
            .iter()
            .rev()
            .map(|d| self.layer_dir(d).display().to_string())
            .collect();
        if let Some((upper, lower)) = dirs.split_first() {
            data.insert("UpperDir".to_string(), upper.clone());
            if !lower.is_empty() {
                data.insert("LowerDir".to_string(), lower.join(":"));
            }
        }
        Ok(ImageInspect {
            id: id.to_string(),
            repo_tags: img.tags.iter().map(|r| r.familiar()).collect(),
            repo_digests: img.digests.iter().map(|r| r.familiar()).collect(),
            parent: img.parent.map(|p| p.to_string()).unwrap_or_default(),
            // docker's: an image without its own comment (a commit's) shows its last
            // history entry's.
            comment: config
                .comment
                .clone()
                .filter(|c| !c.is_empty())
                .or_else(|| config.history.last().and_then(|h| h.comment.clone()))
                .unwrap_or_default(),
            created: config.created.clone().unwrap_or_default(),
            docker_version: config.docker_version.clone().unwrap_or_default(),
            author: config.author.clone().unwrap_or_default(),
            config: config.config.as_ref().map(InspectConfig::from),
            architecture: config.architecture.clone(),
            variant: config.variant.clone().unwrap_or_default(),
            os: config.os.clone(),
            os_version: config.os_version.clone().unwrap_or_default(),
            size: img.size,
            graph_driver: GraphDriver {
                data,
                name: "overlay".to_string(),
            },
            rootfs: InspectRootFs {
                kind: config.rootfs.kind.clone(),
                layers: config
                    .rootfs
                    .diff_ids
                    .iter()
                    .map(|d| d.to_string())
                    .collect(),
            },
            metadata: Metadata {
                last_tag_time: "0001-01-01T00:00:00Z".to_string(),
            },
        })
    }
}
