//! `rbuild rmi [-f] [--no-prune] IMAGE...` (also `image rm`/`image remove`): untag and
//! delete images with docker's rules, then free what no image needs any more.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Args;
use rbuild_builder::store::StoreError;
use rbuild_builder::store::remove::Removed;

use super::{CliError, Global};

/// Remove one or more images.
#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Force removal of the image (an image with several names).
    #[arg(short = 'f', long)]
    force: bool,
    /// Do not delete untagged parents.
    #[arg(long)]
    no_prune: bool,
    #[arg(value_name = "IMAGE", required = true)]
    images: Vec<String>,
}

pub fn run(global: &Global, args: RmiArgs) -> Result<ExitCode, CliError> {
    let store = global.store()?;
    let mut failed = false;
    let mut out = io::stdout().lock();
    for name in &args.images {
        match store.remove_image(name, args.force, !args.no_prune) {
            Ok(removed) => {
                for r in removed {
                    match r {
                        Removed::Untagged(r) => writeln!(out, "Untagged: {}", r.familiar())?,
                        Removed::Deleted(id) => writeln!(out, "Deleted: {id}")?,
                    }
                }
            }
            Err(e) => {
                // Like docker: report, carry on with the rest, fail at the end.
                out.flush()?;
                if matches!(e, StoreError::Conflict(_)) {
                    // docker's words for a conflict, which scripts match.
                    eprintln!("Error response from daemon: {e}");
                } else {
                    eprintln!("error: {e}");
                }
                failed = true;
            }
        }
    }
    out.flush()?;
    // Free the layers and blobs now; if a build holds the store, the next GC will.
    store.try_collect_garbage()?;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
