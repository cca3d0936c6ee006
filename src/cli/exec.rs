//! `rbuild exec`: run a command in a running container.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use clap::Args;
use rbuild_builder::build::interrupt;
use rbuild_builder::container::Io;
use rbuild_builder::container_exec::{self, ExecError, Request};
use rbuild_builder::store::StoreError;

use super::{CliError, Global};

/// Execute a command in a running container.
#[derive(Debug, Args)]
#[command(trailing_var_arg = true)]
pub struct ExecArgs {
    /// Detached mode: run command in the background.
    #[arg(short = 'd', long)]
    detach: bool,
    /// Set environment variables.
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// Keep STDIN open: the command reads rbuild's standard input.
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    tty: bool,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long)]
    workdir: Option<String>,
    #[arg(value_name = "CONTAINER")]
    container: String,
    #[arg(value_name = "COMMAND", required = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

pub fn run(global: &Global, args: ExecArgs) -> Result<ExitCode, CliError> {
    // docker's check: raw mode needs a terminal to put in it.
    if args.tty && args.interactive && !io::stdin().is_terminal() {
        eprintln!("the input device is not a TTY");
        return Ok(ExitCode::FAILURE);
    }
    // Ctrl-C kills the command (and what it started), not the container.
    interrupt::install()?;
    let store = global.store()?;
    let request = Request {
        command: args.command,
        env: args.env,
        workdir: args.workdir,
        user: args.user,
        interactive: args.interactive,
        detach: args.detach,
        tty: args.tty,
    };
    let io = Io {
        cancel: &|| interrupt::CANCEL.load(Ordering::SeqCst),
        stdout: &mut |b| {
            let mut o = io::stdout().lock();
            let _ = o.write_all(b);
            let _ = o.flush();
        },
        stderr: &mut |b| {
            let _ = io::stderr().lock().write_all(b);
        },
        started: &mut || {},
    };
    match container_exec::exec(&store, &args.container, &request, io) {
        Ok(code) => Ok(ExitCode::from(code as u8)),
        Err(e) => {
            match &e {
                // Already says "Error response from daemon: …".
                ExecError::Store(StoreError::Ambiguous(msg)) => eprintln!("{msg}"),
                e if e.from_daemon() => eprintln!("Error response from daemon: {e}"),
                e => eprintln!("{e}"),
            }
            Ok(ExitCode::from(e.exit_code(args.detach)))
        }
    }
}
