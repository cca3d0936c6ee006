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
    let reclaimable = match (du.reclaimable * 100).checked_div(du.size) {
        Some(pct) => format!("{} ({pct}%)", units::human_size_precise(du.reclaimable)),
        None => units::human_size_precise(du.reclaimable),
    };
    // rbuild has no volumes, and its build cache is its intermediate images, counted
    // with the images; instead of those rows it shows the layers images share.
    let rows = [
        json!({"Type": "Images", "TotalCount": du.images.to_string(),
               "Active": du.active_images.to_string(),
               "Size": units::human_size_precise(du.size), "Reclaimable": reclaimable}),
        json!({"Type": "Layers", "TotalCount": du.layers.to_string(),
               "Active": du.active_layers.to_string(),
               "Size": units::human_size_precise(du.size), "Reclaimable": reclaimable}),
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
