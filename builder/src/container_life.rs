//! A container's life after `run` created it: a detached container's monitor (a
//! re-executed rbuild in a session of its own that runs it, logs its output and records
//! its exit), and `stop`, `kill` and `rm -f`, which signal the container's init (it
//! forwards every catchable signal to the command; SIGKILL ends the namespace) and wait
//! for whoever owns the container — a foreground `run` or a monitor — to record the
//! exit, which it does only after unmounting.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::cgroup::ContainerCgroup;
use crate::container::{self, Io, RunError};
use crate::store::container_log::{LogWriter, Stream};
use crate::store::container_prune::PrunedContainers;
use crate::store::containers::{Container, State};
use crate::store::{Store, StoreError};
use crate::sys::session;

#[derive(Debug, thiserror::Error)]
pub enum LifeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// docker's text for `kill` of a stopped container.
    #[error("Cannot kill container: {name}: Container {id} is not running")]
    NotRunning { name: String, id: String },
    #[error("Invalid signal: {0}")]
    InvalidSignal(String),
    #[error("container {0} did not exit after SIGKILL")]
    Stuck(String),
    #[error("the container's monitor ended before the container started")]
    MonitorDied,
    /// Refused, in docker's words (why a container could not start, as its monitor
    /// said; a container not running or not paused).
    #[error("{0}")]
    Refused(String),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: io::Error,
    },
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> LifeError {
    move |source| LifeError::Io { what, source }
}

/// docker's `signal.ParseSignal`: a number, or a name with or without `SIG`, any case.
pub fn parse_signal(s: &str) -> Result<Signal, LifeError> {
    let bad = || LifeError::InvalidSignal(s.to_string());
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = s.to_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    Signal::from_str(&format!("SIG{name}")).map_err(|_| bad())
}

/// How long `rm -f` and `stop` wait for the owner to record an exit after SIGKILL.
const AFTER_KILL: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);

/// The container's record, or None once it is gone (an `--rm` container removed by its
/// owner).
fn current(store: &Store, id: &str) -> Result<Option<Container>, LifeError> {
    match store.container(id) {
        Ok(c) => Ok(Some(c)),
        Err(StoreError::NoSuchContainer(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Waits up to `limit` for the container to stop running: true once its owner recorded
/// the exit (or died, or removed it).
fn wait_exited(store: &Store, id: &str, limit: Duration) -> Result<bool, LifeError> {
    let until = Instant::now() + limit;
    loop {
        match current(store, id)? {
            Some(c) if c.state == State::Running => {}
            _ => return Ok(true),
        }
        if Instant::now() >= until {
            return Ok(false);
        }
        std::thread::sleep(POLL);
    }
}

/// The running container's init, waiting briefly while its command is being started;
/// None once it is not running.
fn wait_init(store: &Store, id: &str) -> Result<Option<i32>, LifeError> {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        match current(store, id)? {
            Some(c) if c.state == State::Running => {
                if let Some(p) = c.init_pid {
                    return Ok(Some(p));
                }
            }
            _ => return Ok(None),
        }
        if Instant::now() >= until {
            return Ok(None);
        }
        std::thread::sleep(POLL);
    }
}

/// `kill -s SIG`: to the command through init (SIGKILL to init ends them all).
pub fn kill(store: &Store, name: &str, sig: Signal) -> Result<(), LifeError> {
    let c = store.container(name)?;
    let not_running = || LifeError::NotRunning {
        name: name.to_string(),
        id: c.id.clone(),
    };
    if c.state != State::Running {
        return Err(not_running());
    }
    match wait_init(store, &c.id)? {
        Some(init) if session::signal(init, sig).map_err(io_err("sending the signal"))? => {}
        _ => return Err(not_running()),
    }
    // As docker's daemon, SIGKILL returns once the container is gone.
    if sig == Signal::SIGKILL {
        thaw(&c.id);
        if !wait_exited(store, &c.id, AFTER_KILL)? {
            return Err(LifeError::Stuck(c.id.clone()));
        }
    }
    Ok(())
}

/// `stop`: the image's StopSignal (default SIGTERM), SIGKILL after `timeout`, and back
/// once the owner has recorded the exit. A stopped container is left as it is.
pub fn stop(store: &Store, name: &str, timeout: Duration) -> Result<(), LifeError> {
    let c = store.container(name)?;
    if c.state != State::Running {
        return Ok(());
    }
    let sig = store
        .config(&c.image_id)
        .ok()
        .and_then(|cfg| cfg.config)
        .and_then(|cfg| cfg.stop_signal)
        .and_then(|s| parse_signal(&s).ok())
        .unwrap_or(Signal::SIGTERM);
    let until = Instant::now() + timeout;
    if let Some(init) = wait_init(store, &c.id)? {
        session::signal(init, sig).map_err(io_err("sending the stop signal"))?;
        // A paused container takes the signal once thawed, as docker's stop does.
        thaw(&c.id);
    }
    if wait_exited(
        store,
        &c.id,
        until.saturating_duration_since(Instant::now()),
    )? {
        return Ok(());
    }
    end(store, &c)
}

/// SIGKILL to init (or to the owner, before init exists) and wait for the exit record.
fn end(store: &Store, c: &Container) -> Result<(), LifeError> {
    // Init is known as soon as the command runs; only an owner stuck before that is
    // killed itself (its sandbox dies with it, its stale mounts go with `rm`).
    let target = match wait_init(store, &c.id)? {
        Some(init) => Some(init),
        None => match current(store, &c.id)? {
            Some(now) if now.state == State::Running => now.pid,
            _ => return Ok(()),
        },
    };
    if let Some(pid) = target {
        session::signal(pid, Signal::SIGKILL).map_err(io_err("killing the container"))?;
        thaw(&c.id);
    }
    if wait_exited(store, &c.id, AFTER_KILL)? {
        Ok(())
    } else {
        Err(LifeError::Stuck(c.id.clone()))
    }
}

/// `top`: the host PIDs of the running container's processes (those in its PID
/// namespace, its init included), ascending.
pub fn processes(store: &Store, name: &str) -> Result<Vec<i32>, LifeError> {
    let c = store.container(name)?;
    let not_running = || LifeError::Refused(format!("Container {} is not running", c.id));
    let init = match (c.state, c.init_pid) {
        (State::Running, Some(pid)) => pid,
        _ => return Err(not_running()),
    };
    let ns_of = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let Some(ns) = ns_of(&init.to_string()) else {
        return Err(not_running());
    };
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")
        .map_err(io_err("listing /proc"))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| ns_of(&pid.to_string()).as_ref() == Some(&ns))
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// `pause`: freezes every process of a running container until `unpause`.
pub fn pause(store: &Store, name: &str) -> Result<(), LifeError> {
    let (c, cg) = freezer_of_running(store, name)?;
    if cg
        .is_frozen()
        .map_err(io_err("reading the freezer state"))?
    {
        return Err(LifeError::Refused(format!(
            "Container {} is already paused",
            c.id
        )));
    }
    cg.freeze()
        .map_err(io_err("freezing the container"))?
        .keep();
    Ok(())
}

/// `unpause`: thaws a paused container.
pub fn unpause(store: &Store, name: &str) -> Result<(), LifeError> {
    let (c, cg) = freezer_of_running(store, name)?;
    if !cg
        .is_frozen()
        .map_err(io_err("reading the freezer state"))?
    {
        return Err(LifeError::Refused(format!(
            "Container {} is not paused",
            c.id
        )));
    }
    cg.thaw().map_err(io_err("thawing the container"))
}

/// Whether container `c` runs and is paused (its cgroup frozen).
pub fn is_paused(c: &Container) -> bool {
    c.state == State::Running
        && ContainerCgroup::existing(&c.id).is_some_and(|cg| cg.is_frozen().unwrap_or(false))
}

fn freezer_of_running(
    store: &Store,
    name: &str,
) -> Result<(Container, ContainerCgroup), LifeError> {
    let c = store.container(name)?;
    if c.state != State::Running {
        return Err(LifeError::Refused(format!(
            "Container {} is not running",
            c.id
        )));
    }
    match ContainerCgroup::existing(&c.id) {
        Some(cg) => Ok((c, cg)),
        None => Err(LifeError::Refused(format!(
            "Container {} has no freezer cgroup (none could be made on this machine): it cannot be paused",
            c.id
        ))),
    }
}

/// `wait`: blocks until the container is not running, then gives its exit code.
pub fn wait(store: &Store, name: &str) -> Result<i32, LifeError> {
    let c = store.container(name)?;
    loop {
        match current(store, &c.id)? {
            Some(now) if now.state == State::Running => std::thread::sleep(POLL),
            Some(now) => return Ok(now.exit_code.unwrap_or(0)),
            // Removed meanwhile (`--rm`): the code it exited with, kept by the store.
            None => {
                let kept = store.removed_exit_code(&c.id)?;
                return Ok(kept.or(c.exit_code).unwrap_or(0));
            }
        }
    }
}

/// `rm -f`: a running container is killed and its owner's exit (and unmount) awaited,
/// then whatever is left goes (stale mounts of a dead owner included).
pub fn remove_forced(store: &Store, name: &str) -> Result<(), LifeError> {
    let c = store.container(name)?;
    if c.state == State::Running {
        end(store, &c)?;
    }
    if current(store, &c.id)?.is_some() {
        remove(store, &c.id)?;
    }
    Ok(())
}

/// Removes a container that is not running: its record and files, and the cgroup a
/// killed rbuild may have left (one still holding processes stays with its run).
pub fn remove(store: &Store, id: &str) -> Result<(), LifeError> {
    store.remove_container(id)?;
    drop_stale_cgroup(id);
    Ok(())
}

/// `container prune`: the store removes the containers that are not running; their
/// stale cgroups go too.
pub fn prune(store: &Store) -> Result<PrunedContainers, LifeError> {
    let report = store.prune_containers()?;
    for id in &report.removed {
        drop_stale_cgroup(id);
    }
    Ok(report)
}

/// After a SIGKILL: a container left frozen (by a commit that was killed) would never
/// take it. A commit still running sees its copy fail, as the container is going.
fn thaw(id: &str) {
    if let Some(cg) = ContainerCgroup::existing(id) {
        let _ = cg.thaw();
    }
}

fn drop_stale_cgroup(id: &str) {
    if let Some(cg) = ContainerCgroup::of(id)
        && cg.pids().is_ok_and(|p| p.is_empty())
    {
        let _ = cg.remove();
    }
}

/// What a detached container's monitor says once it knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// The command is running.
    Running,
    /// It could not start: the exit code recorded and why, as a foreground run says.
    Failed { code: u8, message: String },
}

/// Starts `monitor` (the `rbuild container-monitor ID` command line) in a new session
/// with its standard streams on /dev/null, passing it the write end of a readiness pipe
/// as `--ready-fd N`, and waits for its word. The monitor outlives us.
pub fn start_monitor(mut monitor: Command) -> Result<Start, LifeError> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| io_err("creating a pipe")(e.into()))?;
    monitor
        .arg("--ready-fd")
        .arg(w.as_raw_fd().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = session::spawn_in_new_session(&mut monitor, w.as_raw_fd())
        .map_err(io_err("starting the container's monitor"))?;
    drop(w);
    let mut word = String::new();
    File::from(r)
        .read_to_string(&mut word)
        .map_err(io_err("reading the monitor's readiness"))?;
    // Reap it now if it is already done (a failed start); else it is adopted at our exit.
    let _ = child.try_wait();
    match word.split_once(' ') {
        _ if word == "ok" => Ok(Start::Running),
        Some((code, message)) => Ok(Start::Failed {
            code: code.parse().unwrap_or(125),
            message: message.to_string(),
        }),
        None => Err(LifeError::MonitorDied),
    }
}

/// The monitor's end of the readiness pipe.
pub struct Readiness(Option<File>);

impl Readiness {
    /// From the descriptor number `start_monitor` passed (None: nobody waits).
    pub fn from_fd(fd: Option<i32>) -> Result<Readiness, LifeError> {
        Ok(Readiness(match fd {
            Some(fd) => Some(session::inherited_fd(fd).map_err(io_err("the readiness pipe"))?),
            None => None,
        }))
    }

    fn say(&mut self, word: &str) {
        if let Some(mut f) = self.0.take() {
            let _ = f.write_all(word.as_bytes());
        }
    }
}

/// The monitor's work: runs the recorded container, logs its output, records its exit
/// and removes it if it was created with `--rm`. Returns the exit code.
pub fn monitor(
    store: &Store,
    id: &str,
    mut ready: Readiness,
    cancel: &(dyn Fn() -> bool + Sync),
) -> Result<i32, LifeError> {
    let c = store.container(id)?;
    let config = store.run_config(&c.id)?;
    let fail = |ready: &mut Readiness, code: u8, message: String| -> Result<i32, LifeError> {
        store.set_container_exited(&c.id, i32::from(code))?;
        ready.say(&format!("{code} {message}"));
        if config.auto_remove {
            store.remove_container(&c.id)?;
        }
        Ok(i32::from(code))
    };
    let layers = match store.image(&c.image_id)? {
        Some(img) => img.layers,
        None => return fail(&mut ready, 125, format!("No such image: {}", c.image_id)),
    };
    if config.open_stdin
        && let Err(e) = session::hold_stdin_open()
    {
        return fail(&mut ready, 125, format!("keeping the input open: {e}"));
    }
    let mut log = match LogWriter::open(&store.container_log_path(&c.id)) {
        Ok(l) => l,
        Err(e) => return fail(&mut ready, 125, format!("opening the container's log: {e}")),
    };
    let outcome = {
        let ready = std::cell::RefCell::new(&mut ready);
        let log = std::cell::RefCell::new(&mut log);
        let io = Io {
            cancel,
            stdout: &mut |b| {
                let _ = log.borrow_mut().write(Stream::Stdout, b);
            },
            stderr: &mut |b| {
                let _ = log.borrow_mut().write(Stream::Stderr, b);
            },
            started: &mut || ready.borrow_mut().say("ok"),
        };
        container::run(store, &c, &layers, &config, io)
    };
    let _ = log.finish();
    match outcome {
        Ok(code) => {
            // Killed before its command was exec'd (a quick `stop`): it did run.
            ready.say("ok");
            store.set_container_exited(&c.id, code)?;
            if config.auto_remove {
                store.remove_container(&c.id)?;
            }
            Ok(code)
        }
        // Another monitor (a concurrent `start`) has it: its record stays as it is.
        Err(e @ RunError::AlreadyRunning(_)) => {
            ready.say(&format!("1 {e}"));
            Ok(1)
        }
        Err(e) => fail(&mut ready, e.exit_code(), e.to_string()),
    }
}
