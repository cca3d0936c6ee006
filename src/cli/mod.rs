//! Command-line definitions, one module per command group.

mod archive;
mod error;
// Used by the image commands landing next.
#[cfg_attr(not(test), allow(dead_code))]
mod format;
mod import;
mod outline;
mod parse;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use error::CliError;

/// A daemonless Dockerfile build engine and image tool.
#[derive(Debug, Parser)]
#[command(name = "rbuild", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// The image store (default: /var/lib/rbuild for root, else $XDG_DATA_HOME/rbuild).
    #[arg(long, global = true, env = "RBUILD_ROOT", value_name = "DIR")]
    root: Option<std::path::PathBuf>,
}

impl Global {
    /// Opens the store the options name.
    pub fn store(&self) -> Result<rbuild_builder::store::Store, CliError> {
        let root = self
            .root
            .clone()
            .unwrap_or_else(rbuild_builder::store::Store::default_root);
        Ok(rbuild_builder::store::Store::open(&root)?)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    Parse(parse::ParseArgs),
    Outline(outline::OutlineArgs),
    Import(import::ImportArgs),
    Save(archive::SaveArgs),
    Load(archive::LoadArgs),
    /// Manage images.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
}

/// `rbuild image …`: the image commands under their group name, as docker has them.
#[derive(Debug, Subcommand)]
enum ImageCommand {
    Save(archive::SaveArgs),
    Load(archive::LoadArgs),
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
        Command::Import(args) => import::run(&cli.global, args),
        Command::Save(args)
        | Command::Image {
            command: ImageCommand::Save(args),
        } => archive::save(&cli.global, args),
        Command::Load(args)
        | Command::Image {
            command: ImageCommand::Load(args),
        } => archive::load(&cli.global, args),
    }
}
