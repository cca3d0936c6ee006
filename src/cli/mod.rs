//! Command-line definitions, one module per command group.

mod archive;
mod build;
mod build_cache;
mod build_output;
mod builder;
mod container;
mod container_commit;
mod container_cp;
mod container_fs;
mod container_group;
mod container_life;
mod error;
mod exec;
mod format;
mod history;
mod image;
mod images;
mod import;
mod inspect;
mod login;
mod outline;
mod parse;
mod progress;
mod prune;
mod pull;
mod push;
mod registry;
mod rmi;
mod search;
mod system;
mod tag;
mod transfer;

use std::num::NonZeroUsize;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rbuild_builder::store::registry::settings::{RegistrySettings, check_insecure_entry};

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
    /// A registry reached over plain HTTP: host, host:port or CIDR (loopback always is).
    #[arg(
        long = "insecure-registry",
        global = true,
        env = "RBUILD_INSECURE_REGISTRIES",
        value_delimiter = ',',
        value_name = "HOST"
    )]
    insecure_registries: Vec<String>,
    /// Layers downloaded at once (default 3, or the store's config.json).
    #[arg(long, global = true, value_name = "N")]
    max_concurrent_downloads: Option<NonZeroUsize>,
    /// Layers uploaded at once (default 5, or the store's config.json).
    #[arg(long, global = true, value_name = "N")]
    max_concurrent_uploads: Option<NonZeroUsize>,
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

    /// The store's `config.json` registry settings with the command line's on top.
    /// Reads the file only: logging in needs no store.
    pub fn registry_settings(&self) -> Result<RegistrySettings, CliError> {
        let root = self
            .root
            .clone()
            .unwrap_or_else(rbuild_builder::store::Store::default_root);
        let mut settings = RegistrySettings::load(&root)?;
        for entry in &self.insecure_registries {
            check_insecure_entry(entry).map_err(CliError::Usage)?;
            settings.insecure.push(entry.clone());
        }
        if let Some(n) = self.max_concurrent_downloads {
            settings.max_concurrent_downloads = n.get();
        }
        if let Some(n) = self.max_concurrent_uploads {
            settings.max_concurrent_uploads = n.get();
        }
        Ok(settings)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    Build(Box<build::BuildArgs>),
    Parse(parse::ParseArgs),
    Outline(outline::OutlineArgs),
    Import(import::ImportArgs),
    /// List images.
    Images(images::ImagesArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(tag::TagArgs),
    /// Remove one or more images.
    Rmi(rmi::RmiArgs),
    /// List containers.
    Ps(container::PsArgs),
    /// Remove one or more containers.
    Rm(container::RmArgs),
    #[command(hide = true)]
    ContainerMonitor(container_life::MonitorArgs),
    #[command(subcommand)]
    Container(container_group::ContainerCommand),
    #[command(flatten)]
    ContainerVerb(container_group::ContainerVerb),
    Inspect(inspect::InspectArgs),
    History(history::HistoryArgs),
    Save(archive::SaveArgs),
    Load(archive::LoadArgs),
    /// Upload an image to a registry.
    Push(push::PushArgs),
    Login(login::LoginArgs),
    Logout(login::LogoutArgs),
    Search(search::SearchArgs),
    Pull(pull::PullArgs),
    #[command(subcommand)]
    Image(image::ImageCommand),
    #[command(subcommand)]
    System(system::SystemCommand),
    #[command(subcommand)]
    Builder(builder::BuilderCommand),
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
        Command::Build(args) => build::run(&cli.global, *args),
        Command::Parse(args) => parse::run(args),
        Command::Outline(args) => outline::run(args),
        Command::Import(args) => import::run(&cli.global, args),
        Command::Images(args) => images::run(&cli.global, args),
        Command::Tag(args) => tag::run(&cli.global, args),
        Command::Rmi(args) => rmi::run(&cli.global, args),
        Command::Ps(args) => container::ps(&cli.global, args),
        Command::Rm(args) => container::rm(&cli.global, args),
        Command::ContainerMonitor(args) => container_life::monitor(&cli.global, args),
        Command::Container(cmd) => container_group::run(&cli.global, cmd),
        Command::ContainerVerb(v) => container_group::run_verb(&cli.global, v),
        Command::Inspect(args) => inspect::run(&cli.global, args),
        Command::History(args) => history::run(&cli.global, args),
        Command::Image(cmd) => image::run(&cli.global, cmd),
        Command::System(cmd) => system::run(&cli.global, cmd),
        Command::Builder(cmd) => builder::run(&cli.global, cmd),
        Command::Save(args) => archive::save(&cli.global, args),
        Command::Load(args) => archive::load(&cli.global, args),
        Command::Push(args) => push::run(&cli.global, args),
        Command::Login(args) => login::login(&cli.global, args),
        Command::Logout(args) => login::logout(&cli.global, args),
        Command::Search(args) => search::run(&cli.global, args),
        Command::Pull(args) => pull::run(&cli.global, args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(args: &[&str]) -> RegistrySettings {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"insecure-registries": ["from-file:5000"], "max-concurrent-downloads": 4}"#,
        )
        .unwrap();
        let root = dir.path().to_str().unwrap();
        let mut all = vec!["rbuild", "--root", root];
        all.extend_from_slice(args);
        all.push("images");
        Cli::try_parse_from(all)
            .unwrap()
            .global
            .registry_settings()
            .unwrap()
    }

    #[test]
    fn flags_apply_on_top_of_the_store_config() {
        let s = settings(&[]);
        assert_eq!(s.insecure, ["from-file:5000"]);
        assert_eq!(
            (s.max_concurrent_downloads, s.max_concurrent_uploads),
            (4, 5)
        );
        let s = settings(&[
            "--insecure-registry",
            "a.example,10.0.0.0/8",
            "--insecure-registry=b.example:5000",
            "--max-concurrent-downloads",
            "2",
            "--max-concurrent-uploads=9",
        ]);
        assert_eq!(
            s.insecure,
            [
                "from-file:5000",
                "a.example",
                "10.0.0.0/8",
                "b.example:5000"
            ]
        );
        assert!(s.is_insecure("10.1.1.1:5000") && s.is_insecure("from-file:5000"));
        assert_eq!(
            (s.max_concurrent_downloads, s.max_concurrent_uploads),
            (2, 9)
        );
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(
            Cli::try_parse_from(["rbuild", "--max-concurrent-downloads", "0", "images"]).is_err()
        );
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        let args = [
            "rbuild",
            "--root",
            root,
            "--insecure-registry",
            "http://x",
            "images",
        ];
        let cli = Cli::try_parse_from(args).unwrap();
        let err = cli.global.registry_settings().unwrap_err().to_string();
        assert!(err.contains("://"), "{err}");
    }
}
