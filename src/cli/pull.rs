//! `rbuild pull`: an image (or every tag of a repository) from a registry, with
//! docker's output.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use rbuild_builder::parser::stages::Platform as PlatformSpec;
use rbuild_builder::store::ImageRef;
use rbuild_builder::store::platform::Platform;
use rbuild_builder::store::registry::progress::{Event, Progress};
use rbuild_builder::store::registry::pull::{self, PullOptions};

use super::transfer::TransferDisplay;
use super::{CliError, Global, registry};

/// Download an image from a registry.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Download all tagged images in the repository.
    #[arg(short = 'a', long = "all-tags")]
    all_tags: bool,
    /// The platform to pull when the image is multi-platform (default: this machine).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    /// Print only the image's reference.
    #[arg(short = 'q', long)]
    quiet: bool,
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    name: String,
}

pub fn run(global: &Global, args: PullArgs) -> Result<ExitCode, CliError> {
    let reference = ImageRef::parse(&args.name).map_err(|e| CliError::Usage(e.to_string()))?;
    if args.all_tags && (reference.tag().is_some() || reference.digest().is_some()) {
        return Err(CliError::Usage(
            "tag can't be used with --all-tags/-a".into(),
        ));
    }
    let platform = args.platform.as_deref().map(parse_platform).transpose()?;
    let opts = PullOptions {
        platform,
        max_concurrent: global.registry_settings()?.max_concurrent_downloads,
    };
    let root = global.store()?.root().to_path_buf();
    let client = registry::client(global)?;
    let display = TransferDisplay::new(args.quiet);
    if !args.all_tags && reference.tag().is_none() && reference.digest().is_none() {
        display.event(Event::Message("Using default tag: latest".into()));
    }
    let outcome = if args.all_tags {
        pull::pull_all_tags(&root, &client, &reference, &opts, &display)
            .map(|_| reference.full_name())
    } else {
        pull::pull(&root, &client, &reference, &opts, &display).map(|o| o.reference.to_string())
    };
    display.finish();
    let shown = outcome?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{shown}")?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `--platform` in any spelling containerd accepts, as the store matches it.
pub fn parse_platform(spec: &str) -> Result<Platform, CliError> {
    let p = PlatformSpec::parse(spec)
        .map_err(|e| CliError::Usage(format!("--platform {spec}: {e}")))?;
    Ok(Platform::new(&p.os, &p.architecture, &p.variant))
}
