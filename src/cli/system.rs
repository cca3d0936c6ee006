//! `rbuild system df` and `rbuild system check`.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;

use super::format::{table, units};
use super::{CliError, Global};

/// Manage the store.
#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show disk usage.
    Df(DfArgs),
    /// Verify every blob, layer and image of the store.
    Check,
}

#[derive(Debug, Args)]
pub struct DfArgs {
    /// `table`, `table TEMPLATE`, `json`, or a Go template.
    #[arg(long)]
    format: Option<String>,
}

const DF_HEADERS: &[(&str, &str)] = &[
    ("Type", "TYPE"),
    ("TotalCount", "TOTAL"),
    ("Active", "ACTIVE"),
    ("Size", "SIZE"),
    ("Reclaimable", "RECLAIMABLE"),
];

const DF_DEFAULT: &str =
    r"table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";

pub fn run(global: &Global, cmd: SystemCommand) -> Result<ExitCode, CliError> {
    match cmd {
        SystemCommand::Df(args) => df(global, args),
        SystemCommand::Check => check(global),
    }
}

fn df(global: &Global, args: DfArgs) -> Result<ExitCode, CliError> {
    let store = global.store()?;
    let du = store.disk_usage()?;
    let containers = store.container_usage()?;
    let cache = store.cache_usage()?;
    let reclaimable = |part: u64, whole: u64| match (part * 100).checked_div(whole) {
        Some(pct) => format!("{} ({pct}%)", units::human_size_precise(part)),
        None => units::human_size_precise(part),
    };
    let row = |kind: &str, total: usize, active: usize, size: u64, free: String| {
        json!({"Type": kind, "TotalCount": total.to_string(), "Active": active.to_string(),
               "Size": units::human_size_precise(size), "Reclaimable": free})
    };
    // rbuild has no volumes; in their place it shows the layers images share. The
    // build cache's entries are intermediate images, counted with the images too; its
    // size is what only the cache keeps (what `builder prune -a` frees).
    let rows = [
        row(
            "Images",
            du.images,
            du.active_images,
            du.size,
            reclaimable(du.reclaimable, du.size),
        ),
        row(
            "Containers",
            containers.containers,
            containers.running,
            containers.size,
            reclaimable(containers.reclaimable, containers.size),
        ),
        row(
            "Layers",
            du.layers,
            du.active_layers,
            du.size,
            reclaimable(du.reclaimable, du.size),
        ),
        row(
            "Build Cache",
            cache.entries,
            0,
            cache.size,
            units::human_size_precise(cache.size),
        ),
    ];
    let format = match args.format.as_deref() {
        None | Some("table") => DF_DEFAULT,
        Some(f) => f,
    };
    let out = table::render_items(format, DF_HEADERS, &rows)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    io::stdout().lock().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn check(global: &Global) -> Result<ExitCode, CliError> {
    let store = global.store()?;
    let report = store.check()?;
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "checked {} blob(s), {} layer(s), {} image(s) in {}",
        report.blobs,
        report.layers,
        report.images,
        store.root().display()
    )?;
    for p in &report.problems {
        writeln!(out, "problem: {p}")?;
    }
    for r in &report.reclaimable {
        writeln!(out, "note: {r} (the next garbage collection removes it)")?;
    }
    if report.is_clean() {
        writeln!(out, "no problems found")?;
        Ok(ExitCode::SUCCESS)
    } else {
        out.flush()?;
        eprintln!("error: {} problem(s) found", report.problems.len());
        Ok(ExitCode::FAILURE)
    }
}
