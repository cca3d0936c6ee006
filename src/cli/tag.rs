//! `rbuild tag SOURCE TARGET` (also `image tag`): another name for an image.

use std::process::ExitCode;

use clap::Args;
use rbuild_builder::store::ImageRef;

use super::{CliError, Global};

/// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
#[derive(Debug, Args)]
pub struct TagArgs {
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    source: String,
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    target: String,
}

pub fn run(global: &Global, args: TagArgs) -> Result<ExitCode, CliError> {
    // The target is checked first, as docker's CLI does before calling the daemon.
    let target = new_tag(&args.target)?;
    let store = global.store()?;
    let img = store.resolve(&args.source)?;
    store.tag(&img.id, &target)?;
    Ok(ExitCode::SUCCESS)
}

/// A name to give an image (`tag`, `import`, `commit`), `:latest` when it has no tag,
/// checked as docker's CLI checks it before anything is done: no digest.
pub(super) fn new_tag(name: &str) -> Result<ImageRef, CliError> {
    let r = ImageRef::parse(name).map_err(|e| CliError::Usage(e.to_string()))?;
    if r.digest().is_some() {
        return Err(CliError::Usage(
            "refusing to create a tag with a digest reference".into(),
        ));
    }
    Ok(r.with_default_tag())
}
