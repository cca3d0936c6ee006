//! `rbuild commit [-a AUTHOR] [-m MSG] [-c INSTRUCTION]... [-p|--pause=false] CONTAINER
//! [REPO[:TAG]]`: a new image from a container's changes, as `docker commit`.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Args;
use rbuild_builder::build::interrupt;
use rbuild_builder::container_commit::{self, CommitError};
use rbuild_builder::upper_copy::CopyError;

use super::{CliError, Global};

/// Create a new image from a container's changes.
#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>").
    #[arg(short = 'a', long = "author")]
    author: Option<String>,
    /// Commit message.
    #[arg(short = 'm', long = "message")]
    message: Option<String>,
    /// Apply Dockerfile instruction to the created image (CMD, ENTRYPOINT, ENV, EXPOSE,
    /// HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR).
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    changes: Vec<String>,
    /// Pause container during commit (--pause=false to leave it running).
    #[arg(
        short = 'p',
        long = "pause",
        value_name = "true|false",
        num_args = 0..=1,
        require_equals = true,
        default_value_t = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pause: bool,
    #[arg(value_name = "CONTAINER")]
    container: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    name: Option<String>,
}

/// docker's words for a failure on the daemon's side; a message that has them already
/// (an ambiguous ID prefix) is printed as it is.
fn daemon_error(e: impl std::fmt::Display) -> ExitCode {
    let msg = e.to_string();
    if msg.starts_with("Error response from daemon") {
        eprintln!("{msg}");
    } else {
        eprintln!("Error response from daemon: {msg}");
    }
    ExitCode::FAILURE
}

pub fn run(global: &Global, args: CommitArgs) -> Result<ExitCode, CliError> {
    // The name first, as docker checks it before committing anything.
    let name = args.name.as_deref().map(super::tag::new_tag).transpose()?;
    // Ctrl-C stops the copy, thaws the container and stores nothing.
    interrupt::install_for("the commit")?;
    let store = global.store()?;
    let container = match store.container(&args.container) {
        Ok(c) => c,
        Err(e) => return Ok(daemon_error(e)),
    };
    let request = container_commit::Request {
        author: args.author,
        message: args.message,
        changes: args.changes,
        pause: args.pause,
        cancel: &interrupt::requested,
    };
    let id = match container_commit::commit(&store, &container, &request) {
        Ok(id) => id,
        Err(CommitError::Change(e)) => return Err(e.into()),
        Err(CommitError::Copy(CopyError::Cancelled)) => {
            eprintln!("rbuild: commit: interrupted");
            return Ok(ExitCode::from(130));
        }
        Err(e) => return Ok(daemon_error(e)),
    };
    if let Some(name) = &name {
        store.tag(&id, name)?;
    }
    writeln!(io::stdout(), "{id}")?;
    Ok(ExitCode::SUCCESS)
}
