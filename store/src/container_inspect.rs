//! `inspect` of a container, as `docker container inspect` shows it (moby
//! `api/types/container` `InspectResponse`): the fields a daemonless container has, in
//! docker's order and spelling, so that `inspect -f '{{.State.Pid}}'`, `{{.State.Status}}`,
//! `{{.Config.Cmd}}`, `{{.GraphDriver.Data.UpperDir}}` and the like read as with docker.
//!
//! `State.Pid` is the host PID of the container's init (its PID 1), as docker's is of
//! its PID 1; `Config` is the image's config with `run`'s flags applied (moby's
//! `container.Config`); `Driver` is `overlay`, the snapshotter rbuild mounts with.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::containers::{Container, RunConfig, State};
use crate::error::StoreError;
use crate::inspect::{GraphDriver, InspectConfig};
use crate::store::Store;

/// Go's zero time, which docker shows for a time that has not happened.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerInspect {
    pub id: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub state: ContainerState,
    pub image: String,
    pub log_path: String,
    /// With docker's leading slash.
    pub name: String,
    pub restart_count: u32,
    pub driver: String,
    pub platform: String,
    pub host_config: HostConfig,
    pub graph_driver: GraphDriver,
    pub mounts: Vec<MountPoint>,
    pub config: InspectConfig,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerState {
    /// `created`, `running` or `exited`.
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
}

/// The part of moby's `HostConfig` that `run`'s flags set.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    pub binds: Option<Vec<String>>,
    pub extra_hosts: Option<Vec<String>>,
    pub network_mode: String,
    pub auto_remove: bool,
    pub readonly_rootfs: bool,
    pub tmpfs: Option<BTreeMap<String, String>>,
}

/// A `-v` or `--tmpfs` mount, as docker lists it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountPoint {
    #[serde(rename = "Type")]
    pub kind: String,
    pub source: String,
    pub destination: String,
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    pub propagation: String,
}

fn rfc3339(t: Option<i64>) -> String {
    t.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| ZERO_TIME.to_string())
}

/// `-v HOST:CTR[:ro|:rw]` as docker's mount list shows it.
fn bind_mount(spec: &str) -> Option<MountPoint> {
    let mut parts = spec.splitn(3, ':');
    let (source, destination) = (parts.next()?, parts.next()?);
    let mode = parts.next().unwrap_or("");
    Some(MountPoint {
        kind: "bind".into(),
        source: source.into(),
        destination: destination.into(),
        mode: mode.into(),
        rw: !mode.split(',').any(|m| m == "ro"),
        propagation: "rprivate".into(),
    })
}

fn tmpfs_mount(spec: &str) -> MountPoint {
    MountPoint {
        kind: "tmpfs".into(),
        source: String::new(),
        destination: spec.split(':').next().unwrap_or(spec).into(),
        mode: String::new(),
        rw: true,
        propagation: String::new(),
    }
}

/// moby's `container.Config` of a container: the image's, with `run`'s flags applied.
fn config(
    image: &crate::config::ContainerConfig,
    run: &RunConfig,
    hostname: String,
    image_name: String,
) -> InspectConfig {
    let mut c = InspectConfig::from(image);
    let (entrypoint, cmd) = run.args.split_at(run.entrypoint_len.min(run.args.len()));
    c.hostname = hostname;
    c.user = run.user.clone();
    c.attach_stdin = run.open_stdin;
    c.tty = run.tty;
    c.open_stdin = run.open_stdin;
    c.env = Some(run.env.clone());
    c.cmd = (!cmd.is_empty()).then(|| cmd.to_vec());
    c.entrypoint = (!entrypoint.is_empty()).then(|| entrypoint.to_vec());
    c.working_dir = run.working_dir.clone();
    c.image = image_name;
    c
}

impl Store {
    /// What `inspect` shows for container `c`; `paused`: its processes are frozen (the
    /// store cannot tell).
    pub fn inspect_container(
        &self,
        c: &Container,
        paused: bool,
    ) -> Result<ContainerInspect, StoreError> {
        let run = self.run_config(&c.id).unwrap_or_default();
        let image = self.image(&c.image_id)?;
        let image_config = self.config(&c.image_id).ok().and_then(|cfg| cfg.config);
        let image_name = image
            .as_ref()
            .and_then(|i| i.tags.first().map(|t| t.familiar()))
            .unwrap_or_else(|| c.image_id.to_string());
        let hostname = if run.hostname.is_empty() {
            c.short_id().to_string()
        } else {
            run.hostname.clone()
        };
        let dirs = self.container_upper_dir(&c.id);
        let mut data = BTreeMap::new();
        if let Some(img) = &image {
            let lower: Vec<String> = img
                .layers
                .iter()
                .rev()
                .map(|d| self.layer_dir(d).display().to_string())
                .collect();
            data.insert("LowerDir".to_string(), lower.join(":"));
        }
        data.insert("UpperDir".into(), dirs.upper.display().to_string());
        data.insert("WorkDir".into(), dirs.work.display().to_string());
        data.insert(
            "MergedDir".into(),
            dirs.root.join("merged").display().to_string(),
        );
        let running = c.state == State::Running;
        let mounts = run
            .binds
            .iter()
            .filter_map(|b| bind_mount(b))
            .chain(run.tmpfs.iter().map(|t| tmpfs_mount(t)))
            .collect();
        Ok(ContainerInspect {
            id: c.id.clone(),
            created: rfc3339(Some(c.created)),
            path: run.args.first().cloned().unwrap_or_default(),
            args: run.args.iter().skip(1).cloned().collect(),
            state: ContainerState {
                status: match c.state {
                    State::Created => "created",
                    State::Running if paused => "paused",
                    State::Running => "running",
                    State::Exited => "exited",
                }
                .into(),
                running,
                paused,
                restarting: false,
                oom_killed: false,
                dead: false,
                pid: if running { c.init_pid.unwrap_or(0) } else { 0 },
                exit_code: c.exit_code.unwrap_or(0),
                error: String::new(),
                started_at: rfc3339(c.started_at),
                finished_at: rfc3339(c.finished_at),
            },
            image: c.image_id.to_string(),
            log_path: self.container_log_path(&c.id).display().to_string(),
            name: format!("/{}", c.name),
            restart_count: 0,
            driver: "overlay".into(),
            platform: "linux".into(),
            host_config: HostConfig {
                binds: (!run.binds.is_empty()).then(|| run.binds.clone()),
                extra_hosts: (!run.extra_hosts.is_empty()).then(|| run.extra_hosts.clone()),
                network_mode: run.network.clone(),
                auto_remove: run.auto_remove,
                readonly_rootfs: run.readonly_rootfs,
                tmpfs: (!run.tmpfs.is_empty()).then(|| {
                    run.tmpfs
                        .iter()
                        .map(|t| match t.split_once(':') {
                            Some((path, opts)) => (path.to_string(), opts.to_string()),
                            None => (t.clone(), String::new()),
                        })
                        .collect()
                }),
            },
            graph_driver: GraphDriver {
                data,
                name: "overlay".into(),
            },
            mounts,
            config: config(
                &image_config.unwrap_or_default(),
                &run,
                hostname,
                image_name,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_flags_override_the_image_config() {
        let image = crate::config::ContainerConfig {
            cmd: Some(vec!["sh".into()]),
            env: Some(vec!["A=1".into()]),
            labels: Some(BTreeMap::from([("l".into(), "v".into())])),
            ..Default::default()
        };
        let run = RunConfig {
            args: vec!["/ep".into(), "x".into(), "y".into()],
            entrypoint_len: 1,
            env: vec!["A=1".into(), "B=2".into()],
            working_dir: "/w".into(),
            tty: true,
            ..Default::default()
        };
        let c = config(&image, &run, "h".into(), "img:1".into());
        assert_eq!(c.entrypoint, Some(vec!["/ep".to_string()]));
        assert_eq!(c.cmd, Some(vec!["x".to_string(), "y".to_string()]));
        assert_eq!(c.env, Some(vec!["A=1".to_string(), "B=2".to_string()]));
        assert_eq!((c.working_dir.as_str(), c.tty), ("/w", true));
        assert_eq!((c.hostname.as_str(), c.image.as_str()), ("h", "img:1"));
        // The image's labels stay.
        assert_eq!(c.labels.unwrap()["l"], "v");
        let no_ep = RunConfig {
            args: vec!["sh".into()],
            ..Default::default()
        };
        assert_eq!(
            config(&image, &no_ep, String::new(), String::new()).entrypoint,
            None
        );
    }

    #[test]
    fn mounts_read_as_dockers() {
        let m = bind_mount("/h:/c:ro").unwrap();
        assert_eq!(
            (m.source.as_str(), m.destination.as_str(), m.rw),
            ("/h", "/c", false)
        );
        assert!(bind_mount("/h:/c").unwrap().rw);
        assert_eq!(tmpfs_mount("/t:size=1m").destination, "/t");
        assert_eq!(rfc3339(None), ZERO_TIME);
        assert_eq!(rfc3339(Some(0)), "1970-01-01T00:00:00Z");
    }
}
