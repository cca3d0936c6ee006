//! Containers over the build's sandbox and snapshotter: how `run`'s flags and an image's
//! config become a [`RunConfig`], and how a recorded container runs. The CLI's `run`
//! (foreground) and the monitor of a detached container both go through [`run`], so a
//! container behaves the same whoever holds it.

use std::path::PathBuf;

use crate::cgroup::ContainerCgroup;
use crate::sandbox::{self, MountKind, Network, SandboxError, SandboxMount, SandboxSpec};
use crate::snapshot::{Snapshot, SnapshotError};
use crate::store::config::ContainerConfig as ImageRunConfig;
use crate::store::containers::{Container, RunConfig};
use crate::store::{Digest, Store};

/// What the caller of `run` asked for, before the image's config is applied.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `--entrypoint`: `Some("")` clears the image's.
    pub entrypoint: Option<String>,
    /// Arguments after the image; empty keeps the image's CMD.
    pub command: Vec<String>,
    /// `--env-file` lines, then `-e` values, in order: `K=V` sets, a bare `K` takes
    /// the caller's own value of K (or drops K when the caller has none), as docker.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub network: String,
    pub binds: Vec<String>,
    pub tmpfs: Vec<String>,
    pub read_only: bool,
    pub tty: bool,
    pub interactive: bool,
    pub auto_remove: bool,
    /// `--add-host HOST:IP` (or `HOST=IP`).
    pub add_hosts: Vec<String>,
}

/// A request that cannot run; docker reports these before creating anything.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no command specified")]
    NoCommand,
    #[error("network {0} not found (rbuild offers host and none)")]
    Network(String),
    #[error("invalid volume specification: '{0}'")]
    Volume(String),
    #[error("invalid volume specification: '{0}' (rbuild takes absolute HOST:CTR paths)")]
    VolumeNotAbsolute(String),
    /// docker's words.
    #[error(
        "invalid argument \"{0}\" for \"--add-host\" flag: invalid IP address in add-host: \"{1}\""
    )]
    AddHost(String, String),
}

/// Applies docker's rules for combining the image's config with the request: a new
/// entrypoint drops the image's CMD, `-e` replaces the image's value, `-w`/`-u`
/// override WORKDIR/USER. The hostname is left empty here: it defaults to the short
/// container ID, known only once the container is created.
pub fn resolve(image: &ImageRunConfig, req: &Request) -> Result<RunConfig, ConfigError> {
    let entrypoint = match &req.entrypoint {
        Some(e) if e.is_empty() => Vec::new(),
        Some(e) => vec![e.clone()],
        None => image.entrypoint.clone().unwrap_or_default(),
    };
    let cmd = if !req.command.is_empty() {
        req.command.clone()
    } else if req.entrypoint.is_some() {
        Vec::new()
    } else {
        image.cmd.clone().unwrap_or_default()
    };
    let entrypoint_len = entrypoint.len();
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(ConfigError::NoCommand);
    }
    let network = match req.network.as_str() {
        "host" | "default" | "" => "host",
        "none" => "none",
        other => return Err(ConfigError::Network(other.to_string())),
    };
    let mut env = image.env.clone().unwrap_or_default();
    for e in &req.env {
        set_env(&mut env, e);
    }
    let config = RunConfig {
        args,
        entrypoint_len,
        env,
        working_dir: req
            .workdir
            .clone()
            .or(image.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into()),
        user: req.user.clone().or(image.user.clone()).unwrap_or_default(),
        hostname: req.hostname.clone().unwrap_or_default(),
        network: network.to_string(),
        binds: req.binds.clone(),
        tmpfs: req.tmpfs.clone(),
        readonly_rootfs: req.read_only,
        tty: req.tty,
        open_stdin: req.interactive,
        auto_remove: req.auto_remove,
        extra_hosts: req
            .add_hosts
            .iter()
            .map(|h| extra_host(h))
            .collect::<Result<_, _>>()?,
    };
    mounts(&config)?;
    Ok(config)
}

/// `HOST:IP` or `HOST=IP` as docker's `--add-host` takes it (an IPv6 address may be in
/// brackets), kept as `HOST:IP`.
fn extra_host(arg: &str) -> Result<String, ConfigError> {
    let (host, ip) = arg
        .split_once('=')
        .or_else(|| arg.split_once(':'))
        .ok_or_else(|| ConfigError::AddHost(arg.to_string(), String::new()))?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || ip.parse::<std::net::IpAddr>().is_err() {
        return Err(ConfigError::AddHost(arg.to_string(), ip.to_string()));
    }
    Ok(format!("{host}:{ip}"))
}

/// `/etc/hosts` with the `--add-host` lines after the defaults, as docker writes it.
fn hosts_file(hostname: &str, extra: &[String]) -> String {
    let mut text = crate::sandbox::mountpoints::hosts(hostname);
    for h in extra {
        if let Some((host, ip)) = h.split_once(':') {
            text.push_str(&format!("{ip}\t{host}\n"));
        }
    }
    text
}

/// The environment a container's process gets: its own, and with a terminal
/// `TERM=xterm` unless it names a TERM, as docker's daemon adds (not kept in the
/// container's config, so `commit` does not bake it into an image).
pub(crate) fn process_env(env: &[String], tty: bool) -> Vec<String> {
    let mut env = env.to_vec();
    if tty && !env.iter().any(|kv| kv.split('=').next() == Some("TERM")) {
        env.push("TERM=xterm".into());
    }
    env
}

/// `K=V` replaces K; a bare `K` takes K from our own environment (or drops it).
pub(crate) fn set_env(env: &mut Vec<String>, kv: &str) {
    let (key, value) = match kv.split_once('=') {
        Some((k, v)) => (k.to_string(), Some(v.to_string())),
        None => (kv.to_string(), std::env::var(kv).ok()),
    };
    env.retain(|e| e.split('=').next() != Some(key.as_str()));
    if let Some(v) = value {
        env.push(format!("{key}={v}"));
    }
}

/// The sandbox mounts for `-v` and `--tmpfs`.
fn mounts(config: &RunConfig) -> Result<Vec<SandboxMount>, ConfigError> {
    let mut mounts = Vec::new();
    for v in &config.binds {
        let parts: Vec<&str> = v.split(':').collect();
        let (src, dst, readonly) = match parts.as_slice() {
            [s, d] => (*s, *d, false),
            [s, d, "ro"] => (*s, *d, true),
            [s, d, "rw"] => (*s, *d, false),
            _ => return Err(ConfigError::Volume(v.clone())),
        };
        if !src.starts_with('/') || !dst.starts_with('/') {
            return Err(ConfigError::VolumeNotAbsolute(v.clone()));
        }
        mounts.push(SandboxMount {
            source: Some(src.into()),
            target: dst.to_string(),
            kind: MountKind::Bind { readonly },
        });
    }
    for t in &config.tmpfs {
        let target = t.split(':').next().unwrap_or(t);
        mounts.push(SandboxMount {
            source: None,
            target: target.to_string(),
            kind: MountKind::Tmpfs { size: None },
        });
    }
    Ok(mounts)
}

/// The sandbox's description of a container's process, rooted at `rootfs`.
pub fn sandbox_spec(
    container: &Container,
    config: &RunConfig,
    rootfs: PathBuf,
) -> Result<SandboxSpec, ConfigError> {
    let hostname = if config.hostname.is_empty() {
        container.short_id().to_string()
    } else {
        config.hostname.clone()
    };
    Ok(SandboxSpec {
        rootfs,
        args: config.args.clone(),
        env: process_env(&config.env, config.tty),
        cwd: config.working_dir.clone(),
        user: config.user.clone(),
        hosts: (!config.extra_hosts.is_empty()).then(|| hosts_file(&hostname, &config.extra_hosts)),
        hostname,
        network: if config.network == "none" {
            Network::None
        } else {
            Network::Host
        },
        resolv_conf: None,
        mounts: mounts(config)?,
        readonly_rootfs: config.readonly_rootfs,
        stdin: config.open_stdin,
        tty: config.tty,
        cgroup: None,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Refused(String),
    #[error("interrupted")]
    Interrupted,
    /// Someone else runs it: its record must not be touched.
    #[error("container {0} is already running")]
    AlreadyRunning(String),
}

impl RunError {
    /// docker's exit code for a container that could not run: 127 for a command not
    /// found, 126 for one that cannot execute, 130 when interrupted, 125 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Sandbox(SandboxError::NotFound { .. }) => 127,
            RunError::Sandbox(SandboxError::Exec { .. }) => 126,
            // Killed on Ctrl-C: the shell's code for SIGINT, as docker's.
            RunError::Interrupted => 130,
            _ => 125,
        }
    }
}

/// Where a running container's output goes and when to stop it.
pub struct Io<'a> {
    /// Asked every 50 ms; true kills the container.
    pub cancel: &'a (dyn Fn() -> bool + Sync),
    pub stdout: &'a mut dyn FnMut(&[u8]),
    pub stderr: &'a mut dyn FnMut(&[u8]),
    /// Told once the command has started (exec'd), after the record names its init.
    pub started: &'a mut dyn FnMut(),
}

/// Records the container running (owned by this process), mounts its root over the
/// image's layers, runs its command and unmounts, keeping the container's changes in
/// its upper dir. Returns the command's exit code; the caller records the exit, except
/// after [`RunError::AlreadyRunning`], when the record is another run's.
pub fn run(
    store: &Store,
    container: &Container,
    layers: &[Digest],
    config: &RunConfig,
    io: Io<'_>,
) -> Result<i32, RunError> {
    // Ours before anything is mounted: a second `start` of it stops here.
    if !store.claim_container(&container.id, std::process::id() as i32)? {
        return Err(RunError::AlreadyRunning(container.id.clone()));
    }
    let snapshot =
        Snapshot::prepare_for_container(store, layers, store.container_upper_dir(&container.id))?;
    // The sandbox mounts /dev, /proc and /sys over these: a symlink there would point
    // the mount somewhere else.
    for d in ["dev", "proc", "sys"] {
        let p = snapshot.merged().join(d);
        if p.symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            snapshot.keep()?;
            return Err(RunError::Refused(format!(
                "the image's /{d} is a symbolic link; refusing to run it"
            )));
        }
    }
    let mut spec = match sandbox_spec(container, config, snapshot.merged().to_path_buf()) {
        Ok(s) => s,
        Err(e) => {
            snapshot.keep()?;
            return Err(e.into());
        }
    };
    // Its own cgroup, so that `commit` can freeze it; removed when it ends.
    let cgroup = match ContainerCgroup::create(&container.id) {
        Ok(cg) => cg,
        Err(e) => {
            snapshot.keep()?;
            return Err(RunError::Refused(format!(
                "creating the container's cgroup: {e}"
            )));
        }
    };
    spec.cgroup = cgroup.as_ref().map(|cg| cg.dir.clone());
    let outcome = sandbox::run_observed(
        &spec,
        io.cancel,
        &mut |init| {
            let _ = store.set_container_init_pid(&container.id, init);
            (io.started)();
        },
        io.stdout,
        io.stderr,
    );
    if let Some(cg) = &cgroup {
        let _ = cg.remove();
    }
    snapshot.keep()?;
    match outcome {
        Ok(o) => Ok(o.exit_code),
        Err(SandboxError::Cancelled) => Err(RunError::Interrupted),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ImageRunConfig {
        ImageRunConfig {
            entrypoint: Some(vec!["/ep".into()]),
            cmd: Some(vec!["a".into(), "b".into()]),
            env: Some(vec!["PATH=/bin".into(), "K=image".into()]),
            working_dir: Some("/srv".into()),
            user: Some("app".into()),
            ..Default::default()
        }
    }

    #[test]
    fn the_image_config_applies_with_dockers_overrides() {
        let c = resolve(&image(), &Request::default()).unwrap();
        assert_eq!(c.args, ["/ep", "a", "b"]);
        assert_eq!(c.entrypoint_len, 1);
        assert_eq!(c.working_dir, "/srv");
        assert_eq!(c.user, "app");
        assert_eq!(c.network, "host");
        let c = resolve(
            &image(),
            &Request {
                command: vec!["x".into()],
                env: vec!["K=flag".into(), "NEW=1".into()],
                workdir: Some("/w".into()),
                user: Some("0".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.args, ["/ep", "x"]);
        assert_eq!(c.env, ["PATH=/bin", "K=flag", "NEW=1"]);
        assert_eq!((c.working_dir.as_str(), c.user.as_str()), ("/w", "0"));
        // A new entrypoint drops the image's CMD; an empty one clears it.
        let c = resolve(
            &image(),
            &Request {
                entrypoint: Some("sh".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            (c.args.as_slice(), c.entrypoint_len),
            (["sh".to_string()].as_slice(), 1)
        );
        let e = resolve(
            &image(),
            &Request {
                entrypoint: Some(String::new()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(matches!(e, ConfigError::NoCommand));
    }

    #[test]
    fn bad_networks_and_volumes_are_refused_before_anything_runs() {
        let req = |f: fn(&mut Request)| {
            let mut r = Request::default();
            f(&mut r);
            resolve(&image(), &r)
        };
        assert!(matches!(
            req(|r| r.network = "bridge".into()),
            Err(ConfigError::Network(_))
        ));
        assert!(matches!(
            req(|r| r.binds = vec!["/a".into()]),
            Err(ConfigError::Volume(_))
        ));
        assert!(matches!(
            req(|r| r.binds = vec!["rel:/b".into()]),
            Err(ConfigError::VolumeNotAbsolute(_))
        ));
        assert!(req(|r| r.binds = vec!["/a:/b:ro".into()]).is_ok());
    }
}
