//! `rbuild run` (foreground), `ps` and `rm`: containers over the builder's sandbox and
//! snapshotter. A container's changes stay in its `upper/` after it exits, for the
//! `diff`/`commit` to come.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use clap::Args;
use rbuild_builder::build::interrupt;
use rbuild_builder::sandbox::{self, MountKind, Network, SandboxError, SandboxMount, SandboxSpec};
use rbuild_builder::snapshot::Snapshot;
use rbuild_builder::store::Store;
use rbuild_builder::store::containers::{Container, State};
use serde_json::{Value, json};

use super::format::{table, units};
use super::{CliError, Global};

/// Create and run a new container from an image.
#[derive(Debug, Args)]
#[command(trailing_var_arg = true)]
pub struct RunArgs {
    /// Automatically remove the container when it exits.
    #[arg(long)]
    rm: bool,
    /// Keep STDIN open: the command reads rbuild's standard input.
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    tty: bool,
    /// Mount the container's root filesystem as read only.
    #[arg(long)]
    read_only: bool,
    /// Assign a name to the container.
    #[arg(long)]
    name: Option<String>,
    /// Set environment variables.
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long)]
    env_file: Vec<std::path::PathBuf>,
    /// Working directory inside the container.
    #[arg(short = 'w', long)]
    workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Bind mount a volume (HOST:CTR[:ro]).
    #[arg(short = 'v', long = "volume")]
    volumes: Vec<String>,
    /// Mount a tmpfs directory.
    #[arg(long)]
    tmpfs: Vec<String>,
    /// Connect a container to a network: host or none.
    #[arg(long, default_value = "host")]
    network: String,
    /// Container host name.
    #[arg(long)]
    hostname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long)]
    entrypoint: Option<String>,
    #[arg(value_name = "IMAGE")]
    image: String,
    #[arg(value_name = "COMMAND", allow_hyphen_values = true)]
    command: Vec<String>,
}

/// docker's exit codes for errors of its own and for a command it could not start.
const EXIT_ERROR: u8 = 125;
const EXIT_CANNOT_EXECUTE: u8 = 126;
const EXIT_NOT_FOUND: u8 = 127;

fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("rbuild: {msg}");
    ExitCode::from(code)
}

pub fn run(global: &Global, args: RunArgs) -> Result<ExitCode, CliError> {
    // Ctrl-C stops the container (killed, unmounted, recorded as exited).
    interrupt::install()?;
    // docker's check, before anything is created: raw mode needs a terminal to put in it.
    if args.tty && args.interactive && !io::stdin().is_terminal() {
        return Ok(fail(1, "the input device is not a TTY"));
    }
    let store = global.store()?;
    let img = match store.resolve(&args.image) {
        Ok(i) => i,
        Err(e) => return Ok(fail(EXIT_ERROR, e)),
    };
    let config = store.config(&img.id)?;
    let cc = config.config.clone().unwrap_or_default();
    let entrypoint = match &args.entrypoint {
        Some(e) if e.is_empty() => Vec::new(),
        Some(e) => vec![e.clone()],
        None => cc.entrypoint.clone().unwrap_or_default(),
    };
    // Like docker: a new entrypoint drops the image's CMD.
    let cmd = if !args.command.is_empty() {
        args.command.clone()
    } else if args.entrypoint.is_some() {
        Vec::new()
    } else {
        cc.cmd.clone().unwrap_or_default()
    };
    let argv: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if argv.is_empty() {
        return Ok(fail(EXIT_ERROR, "no command specified"));
    }
    let network = match args.network.as_str() {
        "host" | "default" => Network::Host,
        "none" => Network::None,
        other => {
            return Ok(fail(
                EXIT_ERROR,
                format!("network {other} not found (rbuild offers host and none)"),
            ));
        }
    };
    let mut env = cc.env.clone().unwrap_or_default();
    for f in &args.env_file {
        let text = std::fs::read_to_string(f)
            .map_err(|e| CliError::Usage(format!("open {}: {e}", f.display())))?;
        for line in text.lines().map(str::trim) {
            if !line.is_empty() && !line.starts_with('#') {
                set_env(&mut env, line);
            }
        }
    }
    for e in &args.env {
        set_env(&mut env, e);
    }
    let mut mounts = Vec::new();
    for v in &args.volumes {
        let parts: Vec<&str> = v.split(':').collect();
        let (src, dst, readonly) = match parts.as_slice() {
            [s, d] => (*s, *d, false),
            [s, d, "ro"] => (*s, *d, true),
            [s, d, "rw"] => (*s, *d, false),
            _ => {
                return Ok(fail(
                    EXIT_ERROR,
                    format!("invalid volume specification: '{v}'"),
                ));
            }
        };
        if !src.starts_with('/') || !dst.starts_with('/') {
            return Ok(fail(
                EXIT_ERROR,
                format!(
                    "invalid volume specification: '{v}' (rbuild takes absolute HOST:CTR paths)"
                ),
            ));
        }
        mounts.push(SandboxMount {
            source: Some(src.into()),
            target: dst.to_string(),
            kind: MountKind::Bind { readonly },
        });
    }
    for t in &args.tmpfs {
        let target = t.split(':').next().unwrap_or(t);
        mounts.push(SandboxMount {
            source: None,
            target: target.to_string(),
            kind: MountKind::Tmpfs { size: None },
        });
    }

    let container = match store.create_container(args.name.as_deref(), &img.id, &argv) {
        Ok(c) => c,
        Err(e) => return Ok(fail(EXIT_ERROR, e)),
    };
    let result = run_container(&store, &container, &img.layers, |snapshot| SandboxSpec {
        rootfs: snapshot.merged().to_path_buf(),
        args: argv.clone(),
        env: env.clone(),
        cwd: args
            .workdir
            .clone()
            .or(cc.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into()),
        user: args.user.clone().or(cc.user.clone()).unwrap_or_default(),
        hostname: args
            .hostname
            .clone()
            .unwrap_or_else(|| container.short_id().to_string()),
        network,
        hosts: None,
        resolv_conf: None,
        mounts: mounts.clone(),
        readonly_rootfs: args.read_only,
        stdin: args.interactive,
        tty: args.tty,
    });
    let code = match result {
        Ok(code) => {
            store.set_container_exited(&container.id, code)?;
            ExitCode::from(code as u8)
        }
        Err(e) => {
            let code = match &e {
                RunError::Sandbox(SandboxError::NotFound { .. }) => EXIT_NOT_FOUND,
                RunError::Sandbox(SandboxError::Exec { .. }) => EXIT_CANNOT_EXECUTE,
                // Killed on Ctrl-C: the shell's code for SIGINT, as docker's.
                RunError::Interrupted => 130,
                _ => EXIT_ERROR,
            };
            store.set_container_exited(&container.id, i32::from(code))?;
            fail(code, e)
        }
    };
    if args.rm {
        store.remove_container(&container.id)?;
    }
    Ok(code)
}

#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Snapshot(#[from] rbuild_builder::snapshot::SnapshotError),
    #[error("{0}")]
    Refused(String),
    #[error("interrupted")]
    Interrupted,
}

/// Mounts the container's root over the image's layers, runs the command, and
/// unmounts, keeping the container's changes. Returns the command's exit code.
fn run_container(
    store: &Store,
    container: &Container,
    layers: &[rbuild_builder::store::Digest],
    spec: impl FnOnce(&Snapshot) -> SandboxSpec,
) -> Result<i32, RunError> {
    let snapshot =
        Snapshot::prepare_for_container(store, layers, store.container_upper_dir(&container.id))?;
    // The sandbox mounts /dev, /proc and /sys over these: a symlink there would point
    // the mount somewhere else.
    for d in ["dev", "proc", "sys"] {
        let p = snapshot.merged().join(d);
        if p.symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            return Err(RunError::Refused(format!(
                "the image's /{d} is a symbolic link; refusing to run it"
            )));
        }
    }
    let spec = spec(&snapshot);
    let _ = store.set_container_running(&container.id, std::process::id() as i32);
    let stop = || interrupt::CANCEL.load(Ordering::SeqCst);
    let outcome = sandbox::run_observed(
        &spec,
        &stop,
        &mut |init| {
            let _ = store.set_container_init_pid(&container.id, init);
        },
        |b| {
            let mut o = io::stdout().lock();
            let _ = o.write_all(b);
            let _ = o.flush();
        },
        |b| {
            let mut e = io::stderr().lock();
            let _ = e.write_all(b);
        },
    );
    snapshot.keep()?;
    match outcome {
        Ok(o) => Ok(o.exit_code),
        Err(SandboxError::Cancelled) => Err(RunError::Interrupted),
        Err(e) => Err(e.into()),
    }
}

/// `-e K=V` replaces K; `-e K` takes K from rbuild's own environment (or drops it).
fn set_env(env: &mut Vec<String>, kv: &str) {
    let (key, value) = match kv.split_once('=') {
        Some((k, v)) => (k.to_string(), Some(v.to_string())),
        None => (kv.to_string(), std::env::var(kv).ok()),
    };
    env.retain(|e| e.split('=').next() != Some(key.as_str()));
    if let Some(v) = value {
        env.push(format!("{key}={v}"));
    }
}

/// List containers.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short = 'a', long)]
    all: bool,
    /// Only display container IDs.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Format output using a custom template.
    #[arg(long)]
    format: Option<String>,
}

const PS_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";
const PS_HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("RunningFor", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Status", "STATUS"),
    ("State", "STATE"),
    ("Ports", "PORTS"),
    ("Names", "NAMES"),
];

pub fn ps(global: &Global, args: PsArgs) -> Result<ExitCode, CliError> {
    let store = global.store()?;
    let now = Utc::now();
    let list: Vec<Container> = store
        .containers()?
        .into_iter()
        .filter(|c| args.all || c.state == State::Running)
        .collect();
    let mut out = io::stdout().lock();
    if args.quiet {
        for c in &list {
            let id = if args.no_trunc {
                &c.id[..]
            } else {
                c.short_id()
            };
            writeln!(out, "{id}")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let items: Vec<Value> = list
        .iter()
        .map(|c| ps_item(&store, c, !args.no_trunc, now))
        .collect();
    let format = match args.format.as_deref() {
        None | Some("") | Some("table") => PS_TABLE,
        Some(f) => f,
    };
    let text = table::render_items(format, PS_HEADERS, &items)
        .map_err(|e| CliError::Usage(format!("template: {e}")))?;
    out.write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn ps_item(store: &Store, c: &Container, trunc: bool, now: DateTime<Utc>) -> Value {
    let image = store
        .image(&c.image_id)
        .ok()
        .flatten()
        .and_then(|i| i.tags.first().map(|t| t.familiar()))
        .unwrap_or_else(|| c.image_id.short().to_string());
    let at = |t: i64| DateTime::from_timestamp(t, 0).unwrap_or_default();
    let status = match c.state {
        State::Created => "Created".to_string(),
        State::Running => format!(
            "Up {}",
            units::human_duration_since(at(c.started_at.unwrap_or(c.created)), now)
                .trim_end_matches(" ago")
        ),
        State::Exited => format!(
            "Exited ({}) {}",
            c.exit_code.unwrap_or(0),
            units::human_duration_since(at(c.finished_at.unwrap_or(c.created)), now)
        ),
    };
    let mut command = c
        .command
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ");
    if trunc && command.chars().count() > 20 {
        command = command.chars().take(19).collect::<String>() + "…";
    }
    json!({
        "ID": if trunc { c.short_id().to_string() } else { c.id.clone() },
        "Image": image,
        "Command": format!("\"{command}\""),
        "CreatedAt": at(c.created).format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string(),
        "RunningFor": units::human_duration_since(at(c.created), now),
        "Status": status,
        "State": match c.state { State::Created => "created", State::Running => "running", State::Exited => "exited" },
        "Ports": "",
        "Names": c.name,
    })
}

/// Remove one or more containers.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of a running container.
    #[arg(short = 'f', long)]
    force: bool,
    #[arg(value_name = "CONTAINER", required = true)]
    containers: Vec<String>,
}

pub fn rm(global: &Global, args: RmArgs) -> Result<ExitCode, CliError> {
    let store = global.store()?;
    let mut failed = false;
    let mut out = io::stdout().lock();
    for name in &args.containers {
        let res = store.container(name).and_then(|c| {
            if c.state == State::Running && !args.force {
                return Err(rbuild_builder::store::StoreError::ContainerConflict(format!(
                    "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                    c.id
                )));
            }
            // A foreground run's process belongs to that rbuild; with -f its record
            // and files go, and that rbuild's own unmount ends the rest.
            store.remove_container(&c.id)
        });
        match res {
            // docker prints what was asked for.
            Ok(()) => writeln!(out, "{name}")?,
            Err(e) => {
                out.flush()?;
                eprintln!("Error response from daemon: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
