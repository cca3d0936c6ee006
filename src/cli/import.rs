//! `rbuild import FILE|URL|- [REPO[:TAG]] [-m MSG] [-c INSTRUCTION]...`: a one-layer image from a root file
//! system tar (plain, gzip or zstd), as `docker import` makes.

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use rbuild_builder::config_edit::apply_changes;
use rbuild_builder::store::config::ContainerConfig;
use rbuild_builder::store::import::ImportOptions;
use rbuild_builder::store::{StoreError, download};

use super::{CliError, Global};

/// Create an image from a tarball of a root file system.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Commit message: the history comment (default "Imported from SOURCE").
    #[arg(short = 'm', long = "message")]
    message: Option<String>,
    /// Apply a Dockerfile instruction to the image's config (CMD, ENTRYPOINT, ENV,
    /// EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR).
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    changes: Vec<String>,
    /// The tar to import: a file, an http(s) URL, or `-` for standard input.
    #[arg(value_name = "FILE|URL|-")]
    source: PathBuf,
    /// Name for the image.
    #[arg(value_name = "REPOSITORY[:TAG]")]
    name: Option<String>,
}

pub fn run(global: &Global, args: ImportArgs) -> Result<ExitCode, CliError> {
    // Validate the name before reading anything, as docker does.
    let name = args.name.as_deref().map(super::tag::new_tag).transpose()?;
    // And the changes, so a typo costs no import.
    let mut config = ContainerConfig::default();
    apply_changes(&mut config, &args.changes)?;
    let store = global.store()?;
    let opts = ImportOptions {
        config,
        comment: args.message,
        ..ImportOptions::default()
    };
    let source = args.source.to_string_lossy();
    let id = if source == "-" {
        store.import(io::stdin().lock(), "-", opts)?
    } else if download::is_url(&source) {
        let body = download::open(&source)?;
        store.import(body, &download::redact(&source), opts)?
    } else {
        let what = args.source.display().to_string();
        let file = File::open(&args.source).map_err(|source| StoreError::Io {
            what: format!("opening {what}"),
            source,
        })?;
        store.import(io::BufReader::with_capacity(1 << 20, file), &what, opts)?
    };
    if let Some(name) = &name {
        store.tag(&id, name)?;
    }
    writeln!(io::stdout(), "{id}")?;
    Ok(ExitCode::SUCCESS)
}
