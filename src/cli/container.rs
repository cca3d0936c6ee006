//! `rbuild run` (foreground), `ps` and `rm`: containers over the builder's sandbox and
//! snapshotter. A container's changes stay in its `upper/` after it exits, for the
//! `diff`/`commit` to come.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use clap::Args;
use rbuild_builder::build::interrupt;
use rbuild_builder::container;
use rbuild_builder::container_life as container_life_lib;
use rbuild_builder::store::Store;
use rbuild_builder::store::container_log::{LogWriter, Stream};
use rbuild_builder::store::containers::{Container, State};
use serde_json::{Value, json};

use super::container_life;
use super::format::{table, units};
use super::{CliError, Global};

/// Create and run a new container from an image.
#[derive(Debug, Args)]
#[command(trailing_var_arg = true)]
pub struct RunArgs {
    /// Run container in background and print container ID.
    #[arg(short = 'd', long)]
    detach: bool,
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
    /// Add a custom host-to-IP mapping (host:ip).
    #[arg(long = "add-host", value_name = "HOST:IP")]
    add_host: Vec<String>,
    /// Run an init inside the container (rbuild always does: its own init is PID 1).
    #[arg(long)]
    init: bool,
    /// Publish a container's port(s) to the host (discarded: containers share the
    /// host's network, as docker's `--network host`).
    #[arg(short = 'p', long = "publish", value_name = "PORTS")]
    publish: Vec<String>,
    /// Publish all exposed ports (discarded, as `-p`).
    #[arg(short = 'P', long)]
    publish_all: bool,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long)]
    entrypoint: Option<String>,
    #[arg(value_name = "IMAGE")]
    image: String,
    #[arg(value_name = "COMMAND", allow_hyphen_values = true)]
    command: Vec<String>,
}

/// docker's exit code for errors of its own.
const EXIT_ERROR: u8 = 125;

pub(super) fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("rbuild: {msg}");
    ExitCode::from(code)
}

pub fn run(global: &Global, args: RunArgs) -> Result<ExitCode, CliError> {
    run_or_create(global, args, false)
}

/// `create`: the container as `run` would make it, not started (`start` runs it).
pub fn create(global: &Global, args: RunArgs) -> Result<ExitCode, CliError> {
    if args.detach {
        return Err(CliError::Usage("unknown shorthand flag: 'd' in -d".into()));
    }
    run_or_create(global, args, true)
}

fn run_or_create(global: &Global, args: RunArgs, create_only: bool) -> Result<ExitCode, CliError> {
    if !args.publish.is_empty() || args.publish_all {
        eprintln!("WARNING: Published ports are discarded when using host network mode");
    }
    // Ctrl-C stops the container (killed, unmounted, recorded as exited).
    interrupt::install_for("the container")?;
    // docker's check, before anything is created: raw mode needs a terminal to put in it.
    if !create_only && args.tty && args.interactive && !io::stdin().is_terminal() {
        return Ok(fail(1, "the input device is not a TTY"));
    }
    let store = global.store()?;
    let img = match store.resolve(&args.image) {
        Ok(i) => i,
        Err(e) => return Ok(fail(EXIT_ERROR, e)),
    };
    let mut env = Vec::new();
    for f in &args.env_file {
        let text = std::fs::read_to_string(f)
            .map_err(|e| CliError::Usage(format!("open {}: {e}", f.display())))?;
        env.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    env.extend(args.env.iter().cloned());
    let request = container::Request {
        entrypoint: args.entrypoint.clone(),
        command: args.command.clone(),
        env,
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        hostname: args.hostname.clone(),
        network: args.network.clone(),
        binds: args.volumes.clone(),
        tmpfs: args.tmpfs.clone(),
        read_only: args.read_only,
        tty: args.tty,
        interactive: args.interactive,
        auto_remove: args.rm,
        add_hosts: args.add_host.clone(),
    };
    let image_config = store.config(&img.id)?.config.unwrap_or_default();
    let config = match container::resolve(&image_config, &request) {
        Ok(c) => c,
        Err(e) => return Ok(fail(EXIT_ERROR, e)),
    };
    let created = match store.create_container(args.name.as_deref(), &img.id, &config) {
        Ok(c) => c,
        Err(e) => return Ok(fail(EXIT_ERROR, e)),
    };
    if create_only {
        println!("{}", created.id);
        return Ok(ExitCode::SUCCESS);
    }
    if args.detach {
        return container_life::detach(&store, &created, EXIT_ERROR);
    }
    foreground(&store, &created, &img.layers, &config)
}

/// Runs container `c` attached to rbuild's own streams (`run` without `-d`, `start -a`):
/// its output shown and logged, Ctrl-C stopping it, its exit code ours, removed after
/// if it was made with `--rm`.
pub(super) fn foreground(
    store: &Store,
    c: &Container,
    layers: &[rbuild_builder::store::Digest],
    config: &rbuild_builder::store::containers::RunConfig,
) -> Result<ExitCode, CliError> {
    // Logged as well, as docker's daemon logs a foreground container's output.
    let log = std::cell::RefCell::new(LogWriter::open(&store.container_log_path(&c.id)).ok());
    let io = container::Io {
        cancel: &|| interrupt::CANCEL.load(Ordering::SeqCst),
        stdout: &mut |b| {
            let mut o = io::stdout().lock();
            let _ = o.write_all(b);
            let _ = o.flush();
            if let Some(l) = log.borrow_mut().as_mut() {
                let _ = l.write(Stream::Stdout, b);
            }
        },
        stderr: &mut |b| {
            let _ = io::stderr().lock().write_all(b);
            if let Some(l) = log.borrow_mut().as_mut() {
                let _ = l.write(Stream::Stderr, b);
            }
        },
        started: &mut || {},
    };
    let outcome = container::run(store, c, layers, config, io);
    if let Some(l) = log.borrow_mut().as_mut() {
        let _ = l.finish();
    }
    let code = match outcome {
        Ok(code) => {
            store.set_container_exited(&c.id, code)?;
            ExitCode::from(code as u8)
        }
        // Another rbuild runs it: not ours to record.
        Err(e @ container::RunError::AlreadyRunning(_)) => return Ok(fail(1, e)),
        Err(e) => {
            let code = e.exit_code();
            store.set_container_exited(&c.id, i32::from(code))?;
            fail(code, e)
        }
    };
    if config.auto_remove {
        store.remove_container(&c.id)?;
    }
    Ok(code)
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
    /// Filter output based on conditions provided (status=, name=, id=).
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    filters: Vec<String>,
    /// Show n last created containers (includes all states).
    #[arg(short = 'n', long = "last", value_name = "N", default_value_t = -1)]
    last: i64,
    /// Show the latest created container (includes all states).
    #[arg(short = 'l', long)]
    latest: bool,
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
    let filter = match container_life::ps_filter(&args.filters) {
        Ok(f) => f,
        Err(code) => return Ok(code),
    };
    let store = global.store()?;
    let now = Utc::now();
    // docker lists stopped containers when asked for a status or the last ones.
    let last = if args.latest { 1 } else { args.last };
    let all = args.all || filter.has_status() || last >= 0;
    // Each with whether it is paused, which only its cgroup knows.
    let list: Vec<(Container, bool)> = store
        .containers()?
        .into_iter()
        .map(|c| {
            let paused = container_life_lib::is_paused(&c);
            (c, paused)
        })
        .filter(|(c, paused)| (all || c.state == State::Running) && filter.matches(c, *paused))
        // Newest first, as listed; 0 is no limit, as docker's daemon takes it.
        .take(
            usize::try_from(last)
                .ok()
                .filter(|n| *n > 0)
                .unwrap_or(usize::MAX),
        )
        .collect();
    let mut out = io::stdout().lock();
    if args.quiet {
        for (c, _) in &list {
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
        .map(|(c, paused)| ps_item(&store, c, *paused, !args.no_trunc, now))
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

fn ps_item(store: &Store, c: &Container, paused: bool, trunc: bool, now: DateTime<Utc>) -> Value {
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
            "Up {}{}",
            units::human_duration_since(at(c.started_at.unwrap_or(c.created)), now)
                .trim_end_matches(" ago"),
            if paused { " (Paused)" } else { "" }
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
        // strconv.Quote, as docker: inner quotes and backslashes escaped.
        "Command": format!("{command:?}"),
        "CreatedAt": at(c.created).format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string(),
        "RunningFor": units::human_duration_since(at(c.created), now),
        "Status": status,
        "State": match c.state {
            State::Created => "created",
            State::Running if paused => "paused",
            State::Running => "running",
            State::Exited => "exited",
        },
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
    // docker prints what was asked for.
    container_life::each(&args.containers, |name| {
        let c = store.container(name)?;
        if args.force {
            // Killed, its owner's exit (and unmount) awaited, then removed.
            return rbuild_builder::container_life::remove_forced(&store, name);
        }
        if c.state == State::Running {
            return Err(rbuild_builder::store::StoreError::ContainerConflict(format!(
                "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                c.id
            ))
            .into());
        }
        rbuild_builder::container_life::remove(&store, &c.id)
    })
}
