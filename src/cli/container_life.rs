//! `run -d`, `stop`, `kill`, `logs`, `container prune` and the hidden
//! `container-monitor` a detached run starts: thin over `builder::container_life`.

use std::io::{self, Write};
use std::process::{Command, ExitCode};
use std::time::Duration;

use clap::Args;
use rbuild_builder::build::interrupt;
use rbuild_builder::container_life::{self, LifeError, Readiness, Start};
use rbuild_builder::store::container_filter::ContainerFilter;
use rbuild_builder::store::container_log::{LogEntry, LogReader, Stream};
use rbuild_builder::store::containers::{Container, State};
use rbuild_builder::store::filters::{FilterError, Filters};
use rbuild_builder::store::{Store, StoreError};

use super::format::units;
use super::prune::confirm;
use super::{CliError, Global};

/// Starts the monitor of a created container and prints its ID once it runs; a command
/// that cannot start is reported as a foreground run reports it, with its exit code.
pub fn detach(store: &Store, c: &Container, exit_error: u8) -> Result<ExitCode, CliError> {
    // Our own binary, by its path so that `ps` names it (/proc/self/exe if unknown).
    let exe = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    let mut monitor = Command::new(exe);
    monitor
        .arg("--root")
        .arg(store.root())
        .arg("container-monitor")
        .arg(&c.id);
    let start = container_life::start_monitor(monitor);
    // docker prints the ID of the container it created, whether or not it started.
    println!("{}", c.id);
    io::stdout().flush()?;
    Ok(match start {
        Ok(Start::Running) => ExitCode::SUCCESS,
        Ok(Start::Failed { code, message }) => super::container::fail(code, message),
        Err(e) => super::container::fail(exit_error, e),
    })
}

/// Runs a detached container (started by `run -d`; not for people).
#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// The descriptor to report readiness on.
    #[arg(long)]
    ready_fd: Option<i32>,
    container: String,
}

pub fn monitor(global: &Global, args: MonitorArgs) -> Result<ExitCode, CliError> {
    // SIGTERM or SIGINT sent to the monitor itself kill the container cleanly.
    interrupt::install()?;
    let ready = Readiness::from_fd(args.ready_fd).map_err(life)?;
    let store = global.store()?;
    let code = container_life::monitor(&store, &args.container, ready, &interrupt::requested)
        .map_err(life)?;
    Ok(ExitCode::from(code as u8))
}

fn life(e: LifeError) -> CliError {
    match e {
        LifeError::Store(e) => CliError::Store(e),
        e => CliError::Usage(e.to_string()),
    }
}

/// Prints each error as docker's daemon says it; the exit code is 1 if any failed.
fn each(
    names: &[String],
    mut f: impl FnMut(&str) -> Result<(), LifeError>,
) -> Result<ExitCode, CliError> {
    let mut failed = false;
    for name in names {
        match f(name) {
            Ok(()) => {
                println!("{name}");
                io::stdout().flush()?;
            }
            Err(e) => {
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

/// Stop one or more running containers.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait for stop before killing it.
    #[arg(short = 't', long = "time", default_value_t = 10)]
    time: u64,
    #[arg(value_name = "CONTAINER", required = true)]
    containers: Vec<String>,
}

pub fn stop(global: &Global, args: StopArgs) -> Result<ExitCode, CliError> {
    let store = global.store()?;
    each(&args.containers, |name| {
        container_life::stop(&store, name, Duration::from_secs(args.time))
    })
}

/// Kill one or more running containers.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send to the container.
    #[arg(short = 's', long, default_value = "KILL")]
    signal: String,
    #[arg(value_name = "CONTAINER", required = true)]
    containers: Vec<String>,
}

pub fn kill(global: &Global, args: KillArgs) -> Result<ExitCode, CliError> {
    let sig = match container_life::parse_signal(&args.signal) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Error response from daemon: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let store = global.store()?;
    each(&args.containers, |name| {
        container_life::kill(&store, name, sig)
    })
}

/// Fetch the logs of a container.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow log output.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Number of lines to show from the end of the logs ("all" for every line).
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show timestamps.
    #[arg(short = 't', long)]
    timestamps: bool,
    container: String,
}

pub fn logs(global: &Global, args: LogsArgs) -> Result<ExitCode, CliError> {
    let tail = match args.tail.as_str() {
        "all" => None,
        n => match n.parse::<i64>() {
            Ok(n) if n < 0 => None,
            Ok(n) => Some(n as usize),
            Err(_) => {
                return Err(CliError::Usage(format!("invalid value for \"tail\": {n}")));
            }
        },
    };
    let store = global.store()?;
    let c = match store.container(&args.container) {
        Ok(c) => c,
        Err(e @ StoreError::NoSuchContainer(_)) => {
            eprintln!("Error response from daemon: {e}");
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e.into()),
    };
    let path = store.container_log_path(&c.id);
    let mut reader = LogReader::open(&path)?;
    let mut first = match reader.as_mut() {
        Some(r) => r.read_new()?,
        None => Vec::new(),
    };
    if let Some(n) = tail {
        first.drain(..first.len().saturating_sub(n));
    }
    print_entries(&first, args.timestamps)?;
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    // Follow: new lines until the owner has recorded the exit, then what it wrote last.
    loop {
        let running = matches!(store.container(&c.id), Ok(now) if now.state == State::Running);
        if reader.is_none() {
            reader = LogReader::open(&path)?;
        }
        if let Some(r) = reader.as_mut() {
            print_entries(&r.read_new()?, args.timestamps)?;
        }
        if !running {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn print_entries(entries: &[LogEntry], timestamps: bool) -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    let mut err = io::stderr().lock();
    for e in entries {
        let w: &mut dyn Write = match e.stream {
            Stream::Stdout => &mut out,
            Stream::Stderr => &mut err,
        };
        if timestamps {
            write!(w, "{} ", e.time)?;
        }
        w.write_all(e.log.as_bytes())?;
    }
    out.flush()?;
    Ok(())
}

/// Remove all stopped containers.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short = 'f', long)]
    force: bool,
}

const PRUNE_WARNING: &str =
    "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?";

pub fn prune(global: &Global, args: PruneArgs) -> Result<ExitCode, CliError> {
    if !args.force && !confirm(PRUNE_WARNING)? {
        return Ok(ExitCode::SUCCESS);
    }
    let store = global.store()?;
    let report = container_life::prune(&store).map_err(life)?;
    let mut out = io::stdout().lock();
    if !report.removed.is_empty() {
        writeln!(out, "Deleted Containers:")?;
        for id in &report.removed {
            writeln!(out, "{id}")?;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "Total reclaimed space: {}",
        units::human_size_precise(report.reclaimed)
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `ps --filter`s, or the exit code after printing docker's error: a malformed flag is
/// the CLI's (125), an unknown key or status the daemon's (1).
pub fn ps_filter(args: &[String]) -> Result<ContainerFilter, ExitCode> {
    let parsed = Filters::parse(args).and_then(ContainerFilter::new);
    match parsed {
        Ok(f) => Ok(f),
        Err(e @ FilterError::Format) => {
            let arg = args.iter().find(|a| !a.contains('=')).cloned();
            eprintln!(
                "invalid argument \"{}\" for \"-f, --filter\" flag: {e}",
                arg.unwrap_or_default()
            );
            Err(ExitCode::from(125))
        }
        Err(e) => {
            eprintln!("Error response from daemon: {e}");
            Err(ExitCode::FAILURE)
        }
    }
}
