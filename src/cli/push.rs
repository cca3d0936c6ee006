//! `rbuild push [-a] [-q] NAME[:TAG]` (also `image push`): an image into a registry, with
//! docker's output.

use std::process::ExitCode;

use clap::Args;
use rbuild_builder::store::ImageRef;
use rbuild_builder::store::registry::progress::{Event, Progress};
use rbuild_builder::store::registry::push::{self, PushOptions};

use super::transfer::TransferDisplay;
use super::{CliError, Global, registry};

/// Upload an image to a registry.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Push all tags of an image to the repository.
    #[arg(short = 'a', long = "all-tags")]
    all_tags: bool,
    /// Suppress verbose output.
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    #[arg(value_name = "NAME[:TAG]")]
    name: String,
}

/// `RBUILD_PUSH_CHUNK_SIZE` (bytes): the largest blob sent in one request and the size
/// of each chunk of larger ones; for tests that need chunked uploads of small images.
const CHUNK_SIZE_ENV: &str = "RBUILD_PUSH_CHUNK_SIZE";

pub fn run(global: &Global, args: PushArgs) -> Result<ExitCode, CliError> {
    let name = ImageRef::parse(&args.name).map_err(|e| CliError::Usage(e.to_string()))?;
    if name.digest().is_some() {
        return Err(CliError::Usage("cannot push a digest reference".into()));
    }
    if args.all_tags && name.tag().is_some() {
        return Err(CliError::Usage(
            "tag can't be used with --all-tags/-a".into(),
        ));
    }
    let store = global.store()?;
    let local = push::local_tags(&store, &name)?;
    if local.is_empty() {
        return Err(CliError::Usage(format!(
            "An image does not exist locally with the tag: {}",
            name.familiar_name()
        )));
    }
    let root = store.root().to_path_buf();
    drop(store);
    let targets = if args.all_tags {
        local
    } else {
        vec![name.clone().with_default_tag()]
    };

    let mut opts = PushOptions {
        max_concurrent: global.registry_settings()?.max_concurrent_uploads,
        ..PushOptions::default()
    };
    if let Some(n) = std::env::var(CHUNK_SIZE_ENV)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        opts.chunk_size = n.max(1);
    }
    let client = registry::client(global)?;
    TransferDisplay::new(args.quiet).event(Event::Message(format!(
        "The push refers to repository [{}]",
        name.full_name()
    )));
    for target in &targets {
        // Each tag gets its own block of layer lines, as in docker's output.
        let display = TransferDisplay::new(args.quiet);
        let pushed = push::push(&root, &client, target, &opts, &display);
        display.finish();
        pushed?;
    }
    if args.quiet {
        // docker -q prints the reference it pushed, in full.
        let shown = match &targets[..] {
            [one] if !args.all_tags => one.to_string(),
            _ => name.full_name(),
        };
        println!("{shown}");
    }
    Ok(ExitCode::SUCCESS)
}
