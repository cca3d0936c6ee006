//! `rbuild builder prune [-a] [-f] [--keep-storage SIZE] [--filter until=…]`: remove
//! build cache, as `docker builder prune` does (the semantics are in the store's
//! `cache_gc` module).

use std::process::ExitCode;

use chrono::Utc;
use clap::{Args, Subcommand};
use rbuild_builder::store::StoreError;
use rbuild_builder::store::cache_gc::{CachePrune, parse_size};
use rbuild_builder::store::filters::{Filters, parse_until};

use super::{CliError, Global, prune};

/// Manage builds.
#[derive(Debug, Subcommand)]
pub enum BuilderCommand {
    /// Remove build cache.
    Prune(BuilderPruneArgs),
}

#[derive(Debug, Args)]
pub struct BuilderPruneArgs {
    /// Remove all unused build cache, not just dangling ones.
    #[arg(short = 'a', long)]
    all: bool,
    /// Do not prompt for confirmation.
    #[arg(short = 'f', long)]
    force: bool,
    /// Amount of disk space to keep for cache (`512MB`, `10GB`; binary units).
    #[arg(long, value_name = "SIZE")]
    keep_storage: Option<String>,
    /// Provide filter values (`until=24h`: only cache last used longer ago).
    #[arg(long = "filter", value_name = "FILTER")]
    filters: Vec<String>,
}

/// docker/cli `cli/command/builder/prune.go`.
const NORMAL_WARNING: &str =
    "WARNING! This will remove all dangling build cache. Are you sure you want to continue?";
const ALL_WARNING: &str =
    "WARNING! This will remove all build cache. Are you sure you want to continue?";

pub fn run(global: &Global, cmd: BuilderCommand) -> Result<ExitCode, CliError> {
    match cmd {
        BuilderCommand::Prune(args) => prune_cache(global, args),
    }
}

fn prune_cache(global: &Global, args: BuilderPruneArgs) -> Result<ExitCode, CliError> {
    let filters = Filters::parse(&args.filters).map_err(StoreError::from)?;
    // `unused-for` is what docker 18.09 called `until`.
    filters
        .validate(&["until", "unused-for"])
        .map_err(StoreError::from)?;
    let untils: Vec<&String> = filters
        .get("until")
        .iter()
        .chain(filters.get("unused-for"))
        .collect();
    let until = match untils[..] {
        [] => None,
        [one] => Some(parse_until(one, Utc::now()).map_err(StoreError::from)?),
        _ => {
            return Err(CliError::Usage(
                "more than one until filter specified".into(),
            ));
        }
    };
    let keep_storage = args
        .keep_storage
        .as_deref()
        .map(|s| parse_size(s).map_err(|e| CliError::Usage(format!("--keep-storage: {e}"))))
        .transpose()?
        .filter(|&k| k > 0);
    if !args.force
        && !prune::confirm(if args.all {
            ALL_WARNING
        } else {
            NORMAL_WARNING
        })?
    {
        return Ok(ExitCode::SUCCESS);
    }
    let store = global.store()?;
    let report = store.prune_build_cache(&CachePrune {
        all: args.all,
        keep_storage,
        until,
    })?;
    let lines = report.images.iter().map(|id| id.hex().to_string());
    prune::print_report("Deleted build cache objects:", lines, report.reclaimed)?;
    Ok(ExitCode::SUCCESS)
}
