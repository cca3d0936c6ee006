//! `rbuild diff` and `rbuild export`: a container's file system as it stands, read from
//! its upper dir over its image's layers.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Args;

use super::{CliError, Global};

/// Inspect changes to files or directories on a container's filesystem.
#[derive(Debug, Args)]
pub struct DiffArgs {
    #[arg(value_name = "CONTAINER")]
    container: String,
}

pub fn diff(global: &Global, args: DiffArgs) -> Result<ExitCode, CliError> {
    let store = global.store()?;
    let changes = match store.container_changes(&args.container) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error response from daemon: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut out = io::stdout().lock();
    for c in changes {
        writeln!(out, "{} {}", c.kind.letter(), c.path)?;
    }
    Ok(ExitCode::SUCCESS)
}
