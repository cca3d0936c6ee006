//! `rbuild image prune [-a] [-f] [--filter …]`: remove dangling (or all unused)
//! images, as `docker image prune` does.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;

use chrono::Utc;
use clap::Args;
use rbuild_builder::store::StoreError;
use rbuild_builder::store::filters::Filters;
use rbuild_builder::store::remove::Removed;

use super::format::units;
use super::{CliError, Global};

/// Remove unused images.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones.
    #[arg(short = 'a', long)]
    all: bool,
    /// Do not prompt for confirmation.
    #[arg(short = 'f', long)]
    force: bool,
    /// Provide filter values (until=DURATION|TIMESTAMP, label=K[=V], label!=K[=V]).
    #[arg(long = "filter", value_name = "FILTER")]
    filters: Vec<String>,
}

/// docker/cli `cli/command/image/prune.go`. rbuild has no containers, so "unused" is
/// "without a tag or a child that needs it"; the wording stays docker's.
const DANGLING_WARNING: &str =
    "WARNING! This will remove all dangling images.\nAre you sure you want to continue?";
const ALL_WARNING: &str = "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?";

pub fn run(global: &Global, args: PruneArgs) -> Result<ExitCode, CliError> {
    let mut filters = Filters::parse(&args.filters).map_err(StoreError::from)?;
    filters.add("dangling", if args.all { "false" } else { "true" });
    if !args.force
        && !confirm(if args.all {
            ALL_WARNING
        } else {
            DANGLING_WARNING
        })?
    {
        // Docker's CLI says nothing more and exits 0 when the answer is no.
        return Ok(ExitCode::SUCCESS);
    }
    let store = global.store()?;
    let report = store.prune(&filters, Utc::now())?;
    let lines = report.removed.iter().map(|r| match r {
        Removed::Untagged(r) => format!("untagged: {}", r.familiar()),
        Removed::Deleted(id) => format!("deleted: {id}"),
    });
    print_report("Deleted Images:", lines, report.reclaimed)?;
    Ok(ExitCode::SUCCESS)
}

/// docker's report of a prune: a titled list of what went (nothing when nothing did),
/// then the space reclaimed.
pub(super) fn print_report(
    title: &str,
    lines: impl IntoIterator<Item = String>,
    reclaimed: u64,
) -> io::Result<()> {
    let mut out = io::stdout().lock();
    let mut lines = lines.into_iter().peekable();
    if lines.peek().is_some() {
        writeln!(out, "{title}")?;
        for line in lines {
            writeln!(out, "{line}")?;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "Total reclaimed space: {}",
        units::human_size_precise(reclaimed)
    )
}

/// docker's `PromptForConfirmation`: the question on stdout, `y`/`Y` on stdin to go on.
pub(super) fn confirm(message: &str) -> Result<bool, CliError> {
    let mut out = io::stdout().lock();
    write!(out, "{message} [y/N] ")?;
    out.flush()?;
    let mut answer = String::new();
    io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y"))
}
