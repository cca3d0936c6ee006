//! `rbuild inspect [-f TEMPLATE] [--type image] NAME...` (also `image inspect`): the
//! JSON of `docker image inspect`, or a Go template over each image.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::format::template;
use super::{CliError, Global};

/// Display detailed information on one or more images.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format the output using the given Go template.
    #[arg(short = 'f', long)]
    format: Option<String>,
    /// Only search for objects of this type (rbuild has only `image`).
    #[arg(long = "type", value_name = "TYPE")]
    kind: Option<String>,
    #[arg(value_name = "NAME", required = true)]
    names: Vec<String>,
}

pub fn run(global: &Global, args: InspectArgs) -> Result<ExitCode, CliError> {
    if let Some(k) = args.kind.as_deref().filter(|k| *k != "image") {
        return Err(CliError::Usage(format!(
            "{k:?} is not a valid value for --type"
        )));
    }
    let store = global.store()?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &args.names {
        match store
            .resolve(name)
            .and_then(|img| store.inspect_image(&img.id))
        {
            Ok(i) => found.push(i),
            Err(e) => errors.push(e),
        }
    }
    let mut out = io::stdout().lock();
    match &args.format {
        None => {
            // As docker: the array of what was found (possibly `[]`), 4-space indented.
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            found
                .serialize(&mut ser)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            buf.push(b'\n');
            out.write_all(&buf)?;
        }
        Some(t) => {
            let t = template::Template::parse(t).map_err(|e| CliError::Usage(e.to_string()))?;
            for i in &found {
                let value = serde_json::to_value(i).map_err(|e| CliError::Usage(e.to_string()))?;
                let text = t
                    .render(&value)
                    .map_err(|e| CliError::Usage(e.to_string()))?;
                writeln!(out, "{text}")?;
            }
        }
    }
    out.flush()?;
    for e in &errors {
        eprintln!("error: {e}");
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
