//! Command-line definitions, one module per command group.

mod archive;
mod build;
mod error;
mod format;
mod history;
mod image;
mod images;
mod import;
mod inspect;
mod outline;
mod parse;
mod progress;
mod prune;
mod push;
mod registry;
mod rmi;
mod system;
mod tag;
mod transfer;

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
    Build(build::BuildArgs),
    Parse(parse::ParseArgs),
    Outline(outline::OutlineArgs),
    Import(import::ImportArgs),
    /// List images.
    Images(images::ImagesArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(tag::TagArgs),
    /// Remove one or more images.
    Rmi(rmi::RmiArgs),
    Inspect(inspect::InspectArgs),
    History(history::HistoryArgs),
    Save(archive::SaveArgs),
    Load(archive::LoadArgs),
    /// Upload an image to a registry.
    Push(push::PushArgs),
    #[command(subcommand)]
    Image(image::ImageCommand),
    #[command(subcommand)]
    System(system::SystemCommand),
}

impl Cli {
    /// Parses the process arguments; `rbuild -t NAME CONTEXT` means `rbuild build …`.
    pub fn parse_args() -> Self {
        let commands: Vec<String> = <Cli as clap::CommandFactory>::command()
            .get_subcommands()
            .flat_map(|c| {
                std::iter::once(c.get_name().to_string())
                    .chain(c.get_all_aliases().map(str::to_string))
            })
            .chain(["help".to_string()])
            .collect();
        let names: Vec<&str> = commands.iter().map(String::as_str).collect();
        Cli::parse_from(build::rewrite_shorthand(std::env::args().collect(), &names))
    }
}

/// Runs one command and returns the process exit code.
pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Build(args) => build::run(&cli.global, args),
        Command::Parse(args) => parse::run(args),
        Command::Outline(args) => outline::run(args),
        Command::Import(args) => import::run(&cli.global, args),
        Command::Images(args) => images::run(&cli.global, args),
        Command::Tag(args) => tag::run(&cli.global, args),
        Command::Rmi(args) => rmi::run(&cli.global, args),
        Command::Inspect(args) => inspect::run(&cli.global, args),
        Command::History(args) => history::run(&cli.global, args),
        Command::Image(cmd) => image::run(&cli.global, cmd),
        Command::System(cmd) => system::run(&cli.global, cmd),
        Command::Save(args) => archive::save(&cli.global, args),
        Command::Load(args) => archive::load(&cli.global, args),
        Command::Push(args) => push::run(&cli.global, args),
    }
}
