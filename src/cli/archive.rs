//! `rbuild save [-o FILE] IMAGE...` and `rbuild load [-i FILE] [-q]` (also as
//! `rbuild image save|load`): image archives docker reads and writes.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use rbuild_builder::store::archive::{self, LoadedImage, SaveRequest};
use rbuild_builder::store::{Digest, ImageRef};

use super::{CliError, Global};

/// Save one or more images to a tar archive (streamed to STDOUT by default).
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Images by name (the names are recorded) or by ID (no name is recorded).
    #[arg(value_name = "IMAGE", required = true)]
    images: Vec<String>,
}

/// Load an image from a tar archive or STDIN.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from a tar archive file (plain, gzip or zstd), instead of STDIN.
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    input: Option<PathBuf>,
    /// Suppress the load output (accepted for docker compatibility: rbuild shows no
    /// progress, and the `Loaded image` lines are printed either way, as docker does).
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
}

pub fn save(global: &Global, args: SaveArgs) -> Result<ExitCode, CliError> {
    if args.output.is_none() && io::stdout().is_terminal() {
        return Err(CliError::Usage(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
        ));
    }
    let store = global.store()?;
    // One request per image, in the order first named, with every name given for it.
    let mut requests: Vec<SaveRequest> = Vec::new();
    for arg in &args.images {
        let image = store.resolve(arg)?;
        let name = named_tag(arg).filter(|n| image.tags.contains(n));
        match requests.iter_mut().find(|r| r.image.id == image.id) {
            Some(r) => r.names.extend(name.filter(|n| !r.names.contains(n))),
            None => requests.push(SaveRequest {
                image,
                names: name.into_iter().collect(),
            }),
        }
    }
    match &args.output {
        Some(path) => archive::save_to_path(&store, &requests, path)?,
        None => {
            let mut out = io::BufWriter::with_capacity(1 << 20, io::stdout().lock());
            archive::save(&store, &requests, &mut out)?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The tag an argument names, if it is a name rather than an ID or ID prefix.
fn named_tag(arg: &str) -> Option<ImageRef> {
    if arg.parse::<Digest>().is_ok() {
        return None;
    }
    ImageRef::parse(arg)
        .ok()
        .map(ImageRef::with_default_tag)
        .filter(|r| r.digest().is_none())
}

pub fn load(global: &Global, args: LoadArgs) -> Result<ExitCode, CliError> {
    let _ = args.quiet;
    let loaded = match &args.input {
        Some(path) => {
            let store = global.store()?;
            archive::load_path(&store, path)?
        }
        None => {
            let stdin = io::stdin();
            if stdin.is_terminal() {
                return Err(CliError::Usage(
                    "requested load from stdin, but stdin is empty".into(),
                ));
            }
            let store = global.store()?;
            archive::load_reader(&store, stdin.lock(), "-")?
        }
    };
    let mut out = io::stdout().lock();
    for img in &loaded {
        print_loaded(&mut out, img)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What docker prints per image loaded (`moby/image/tarexport/load.go`).
fn print_loaded(out: &mut impl Write, img: &LoadedImage) -> io::Result<()> {
    if img.tags.is_empty() {
        return writeln!(out, "Loaded image ID: {}", img.id);
    }
    for tag in &img.tags {
        if let Some((_, old)) = img.replaced.iter().find(|(t, _)| t == tag) {
            writeln!(
                out,
                "The image {} already exists, renaming the old one with ID {old} to empty string",
                tag.familiar()
            )?;
        }
        writeln!(out, "Loaded image: {}", tag.familiar())?;
    }
    Ok(())
}
