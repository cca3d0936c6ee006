//! `run -d`, `stop`, `kill`, `logs`, `container prune` and the hidden
//! `container-monitor` a detached run starts: thin over `builder::container_life`.

use std::io::{self, IsTerminal, Write};
use std::process::{Command, ExitCode};
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Args;
use rbuild_builder::build::interrupt;
use rbuild_builder::container_life::{self, LifeError, Readiness, Start};
use rbuild_builder::store::container_filter::ContainerFilter;
use rbuild_builder::store::container_log::{LogEntry, LogReader, Stream};
use rbuild_builder::store::containers::{Container, State};
use rbuild_builder::store::filters::{FilterError, Filters, parse_until};
use rbuild_builder::store::{Store, StoreError};

use super::prune::{confirm, print_report};
use super::{CliError, Global};

/// Starts the monitor of a created container and prints its ID once it runs; a command
/// that cannot start is reported as a foreground run reports it, with its exit code.
pub fn detach(store: &Store, c: &Container, exit_error: u8) -> Result<ExitCode, CliError> {
    let start = spawn_monitor(store, c);
    // docker prints the ID of the container it created, whether or not it started.
    println!("{}", c.id);
    io::stdout().flush()?;
    Ok(match start {
        Ok(Start::Running) => ExitCode::SUCCESS,
        Ok(Start::Failed { code, message }) => super::container::fail(code, message),
        Err(e) => super::container::fail(exit_error, e),
    })
}

/// Starts container `c` under a monitor of its own (`run -d`, `start`).
fn spawn_monitor(store: &Store, c: &Container) -> Result<Start, LifeError> {
    // Our own binary, by its path so that `ps` names it (/proc/self/exe if unknown).
    let exe = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    let mut monitor = Command::new(exe);
    monitor
        .arg("--root")
        .arg(store.root())
        .arg("container-monitor")
        .arg(&c.id);
    container_life::start_monitor(monitor)
}

/// Start one or more stopped containers.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals.
    #[arg(short = 'a', long)]
    attach: bool,
    /// Attach container's STDIN.
    #[arg(short = 'i', long)]
    interactive: bool,
    #[arg(value_name = "CONTAINER", required = true)]
    containers: Vec<String>,
}

/// `start`: each stopped container runs again, detached, over the changes it kept (a
/// running one is left as it is, as docker's); with `-a` one runs in the foreground.
pub fn start(global: &Global, args: StartArgs) -> Result<ExitCode, CliError> {
    if args.attach || args.interactive {
        if args.containers.len() > 1 {
            return Err(CliError::Usage(
                "you cannot start and attach multiple containers at once".into(),
            ));
        }
        return start_attached(global, &args.containers[0], args.interactive);
    }
    let store = global.store()?;
    let failed = report_each(&args.containers, |name| {
        let c = store.container(name)?;
        start_detached(&store, &c).map(|()| name.to_string())
    })?;
    if !failed.is_empty() {
        eprintln!("Error: failed to start containers: {}", failed.join(", "));
    }
    Ok(exit_code(&failed))
}

fn start_detached(store: &Store, c: &Container) -> Result<(), LifeError> {
    if c.state == State::Running {
        return Ok(());
    }
    match spawn_monitor(store, c)? {
        Start::Running => Ok(()),
        Start::Failed { message, .. } => Err(LifeError::Refused(message)),
    }
}

fn start_attached(global: &Global, name: &str, interactive: bool) -> Result<ExitCode, CliError> {
    // Ctrl-C stops the container, as for a foreground `run`.
    interrupt::install_for("the container")?;
    let store = global.store()?;
    let c = match store.container(name) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error response from daemon: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if c.state == State::Running {
        return Ok(super::container::fail(
            1,
            format!(
                "container {name} is already running: rbuild cannot attach to it; see logs -f and exec"
            ),
        ));
    }
    let mut config = store.run_config(&c.id)?;
    // Its input only with -i, as docker attaches it.
    config.open_stdin &= interactive;
    if config.tty && config.open_stdin && !io::stdin().is_terminal() {
        return Ok(super::container::fail(1, "the input device is not a TTY"));
    }
    let layers = match store.image(&c.image_id)? {
        Some(img) => img.layers,
        None => return Err(StoreError::NoSuchImage(c.image_id.to_string()).into()),
    };
    super::container::foreground(&store, &c, &layers, &config)
}

/// Restart one or more containers.
#[derive(Debug, Args)]
pub struct RestartArgs {
    /// Seconds to wait for stop before killing it.
    #[arg(short = 't', long = "time", default_value_t = 10)]
    time: u64,
    #[arg(value_name = "CONTAINER", required = true)]
    containers: Vec<String>,
}

/// `restart`: `stop`, then `start`.
pub fn restart(global: &Global, args: RestartArgs) -> Result<ExitCode, CliError> {
    let store = global.store()?;
    each(&args.containers, |name| {
        container_life::stop(&store, name, Duration::from_secs(args.time))?;
        start_detached(&store, &store.container(name)?)
    })
}

/// Block until one or more containers stop, then print their exit codes.
#[derive(Debug, Args)]
pub struct WaitArgs {
    #[arg(value_name = "CONTAINER", required = true)]
    containers: Vec<String>,
}

pub fn wait(global: &Global, args: WaitArgs) -> Result<ExitCode, CliError> {
    let store = global.store()?;
    let failed = report_each(&args.containers, |name| {
        container_life::wait(&store, name).map(|code| code.to_string())
    })?;
    Ok(exit_code(&failed))
}

/// Pause or unpause all processes within one or more containers.
#[derive(Debug, Args)]
pub struct PauseArgs {
    #[arg(value_name = "CONTAINER", required = true)]
    containers: Vec<String>,
}

/// `pause`: each container's processes frozen (its freezer cgroup), as docker's.
pub fn pause(global: &Global, args: PauseArgs) -> Result<ExitCode, CliError> {
    let store = global.store()?;
    each(&args.containers, |name| container_life::pause(&store, name))
}

/// `unpause`: thawed again.
pub fn unpause(global: &Global, args: PauseArgs) -> Result<ExitCode, CliError> {
    let store = global.store()?;
    each(&args.containers, |name| {
        container_life::unpause(&store, name)
    })
}

/// Rename a container.
#[derive(Debug, Args)]
pub struct RenameArgs {
    #[arg(value_name = "CONTAINER")]
    container: String,
    #[arg(value_name = "NEW_NAME")]
    new_name: String,
}

pub fn rename(global: &Global, args: RenameArgs) -> Result<ExitCode, CliError> {
    let store = global.store()?;
    match store.rename_container(&args.container, &args.new_name) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("Error response from daemon: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Display the running processes of a container.
#[derive(Debug, Args)]
#[command(trailing_var_arg = true)]
pub struct TopArgs {
    #[arg(value_name = "CONTAINER")]
    container: String,
    /// Options for ps(1) (default -ef).
    #[arg(value_name = "PS OPTIONS", allow_hyphen_values = true)]
    ps_options: Vec<String>,
}

/// `top`: the host's `ps` (`-ef` unless told otherwise), only the rows of the
/// container's processes, as docker's daemon does.
pub fn top(global: &Global, args: TopArgs) -> Result<ExitCode, CliError> {
    let store = global.store()?;
    let pids = match container_life::processes(&store, &args.container) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("Error response from daemon: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let options = if args.ps_options.is_empty() {
        vec!["-ef".to_string()]
    } else {
        args.ps_options
    };
    let out = Command::new("ps")
        .args(&options)
        .output()
        .map_err(|e| CliError::Usage(format!("running ps (Debian's procps): {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        eprintln!(
            "Error response from daemon: ps: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return Ok(ExitCode::FAILURE);
    }
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let Some(column) = header.split_whitespace().position(|h| h == "PID") else {
        eprintln!("Error response from daemon: Couldn't find PID field in ps output");
        return Ok(ExitCode::FAILURE);
    };
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{header}")?;
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse().ok());
        if pid.is_some_and(|p: i32| pids.binary_search(&p).is_ok()) {
            writeln!(stdout, "{line}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
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

/// Runs `f` for each name, printing what it returns, or the error as docker's daemon
/// says it; returns the names that failed.
fn report_each(
    names: &[String],
    mut f: impl FnMut(&str) -> Result<String, LifeError>,
) -> Result<Vec<&str>, CliError> {
    let mut failed = Vec::new();
    for name in names {
        match f(name) {
            Ok(line) => {
                println!("{line}");
                io::stdout().flush()?;
            }
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                failed.push(name.as_str());
            }
        }
    }
    Ok(failed)
}

/// 1 if any failed, as docker's.
fn exit_code(failed: &[&str]) -> ExitCode {
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// [`report_each`] printing the name, as `stop`, `kill`, `restart` and `rm` do.
pub(super) fn each(
    names: &[String],
    mut f: impl FnMut(&str) -> Result<(), LifeError>,
) -> Result<ExitCode, CliError> {
    let failed = report_each(names, |name| f(name).map(|()| name.to_string()))?;
    Ok(exit_code(&failed))
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
    /// Show logs since a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m").
    #[arg(long)]
    since: Option<String>,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m").
    #[arg(long)]
    until: Option<String>,
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
    // docker's timestamps, as the `until` filters take them.
    let now = Utc::now();
    let time = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(|v| parse_until(v, now))
            .transpose()
            .map_err(|e| CliError::Usage(format!("invalid value for \"{flag}\": {e}")))
    };
    let (since, until) = (time("since", &args.since)?, time("until", &args.until)?);
    // Entries in the window; times the log does not parse are kept.
    let in_window = |e: &LogEntry| match DateTime::parse_from_rfc3339(&e.time) {
        Ok(t) => since.is_none_or(|s| t >= s) && until.is_none_or(|u| t <= u),
        Err(_) => true,
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
    first.retain(&in_window);
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
            let mut new = r.read_new()?;
            new.retain(&in_window);
            print_entries(&new, args.timestamps)?;
        }
        // Nothing later can be in the window once `until` has passed.
        if !running || until.is_some_and(|u| Utc::now() > u) {
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
    print_report("Deleted Containers:", report.removed, report.reclaimed)?;
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
