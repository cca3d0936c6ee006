//! `rbuild diff` and `rbuild export`: a container's file system as it stands, read from
//! its upper dir over its image's layers.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use rbuild_builder::export;

use super::{CliError, Global};

/// Inspect changes to files or directories on a container's filesystem.
#[derive(Debug, Args)]
pub struct DiffArgs {
    #[arg(value_name = "CONTAINER")]
    container: String,
}

pub fn diff(global: &Global, args: DiffArgs) -> Result<ExitCode, CliError> {
    let store = global.store()?;
    let changes = match store.container_changes(&args.container) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error response from daemon: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut out = io::stdout().lock();
    for c in changes {
        writeln!(out, "{} {}", c.kind.letter(), c.path)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Export a container's filesystem as a tar archive.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    #[arg(value_name = "CONTAINER")]
    container: String,
}

pub fn export(global: &Global, args: ExportArgs) -> Result<ExitCode, CliError> {
    if args.output.is_none() && io::stdout().is_terminal() {
        return Err(CliError::Usage(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
        ));
    }
    let store = global.store()?;
    let found = store.container(&args.container).and_then(|c| {
        let image = store.image(&c.image_id)?.ok_or_else(|| {
            rbuild_builder::store::StoreError::NoSuchImage(c.image_id.to_string())
        })?;
        Ok((c, image))
    });
    let (c, image) = match found {
        Ok(x) => x,
        Err(e) => {
            eprintln!("Error response from daemon: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let upper = store.container_upper_dir(&c.id).upper;
    let written = match &args.output {
        None => {
            let mut w = io::BufWriter::with_capacity(1 << 20, io::stdout().lock());
            export::write_container_tar(&store, &image, &upper, &mut w)
                .map_err(|e| e.to_string())
                .and_then(|()| w.flush().map_err(|e| e.to_string()))
        }
        Some(path) => write_file(&store, &image, &upper, path),
    };
    match written {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("rbuild: export: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Into a temp file beside `path`, renamed when complete: a failed export leaves no
/// partial tar under the name.
fn write_file(
    store: &rbuild_builder::store::Store,
    image: &rbuild_builder::store::ImageRecord,
    upper: &std::path::Path,
    path: &std::path::Path,
) -> Result<(), String> {
    let name = path.file_name().ok_or("not a file name")?;
    let tmp = path.with_file_name(format!(".{}.rbuild-tmp", name.to_string_lossy()));
    let written = (|| -> Result<(), String> {
        let file =
            std::fs::File::create(&tmp).map_err(|e| format!("creating {}: {e}", tmp.display()))?;
        let mut w = io::BufWriter::with_capacity(1 << 20, file);
        export::write_container_tar(store, image, upper, &mut w).map_err(|e| e.to_string())?;
        w.into_inner()
            .map_err(|e| e.into_error().to_string())?
            .sync_all()
            .map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, path).map_err(|e| format!("renaming to {}: {e}", path.display()))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
