//! Command-line definitions, one module per command group.

mod error;
// Used by the image commands landing next.
#[cfg_attr(not(test), allow(dead_code))]
mod format;
mod outline;
mod parse;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use error::CliError;

/// A daemonless Dockerfile build engine and image tool.
#[derive(Debug, Parser)]
#[command(name = "rbuild", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Parse(parse::ParseArgs),
    Outline(outline::OutlineArgs),
}

impl Cli {
    pub fn parse_args() -> Self {
        Cli::parse()
    }
}

/// Runs one command and returns the process exit code.
pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Parse(args) => parse::run(args),
        Command::Outline(args) => outline::run(args),
    }
}
