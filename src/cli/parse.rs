//! `rbuild parse`: the syntax tree in BuildKit's dump format, or the typed instructions as JSON.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use rbuild_builder::parser::{instruction, syntax};
use rbuild_builder::source;

use super::CliError;

/// Print a Dockerfile's syntax tree (BuildKit's test format) or its typed instructions.
#[derive(Debug, Args)]
pub struct ParseArgs {
    /// The Dockerfile to read, `-` for standard input.
    #[arg(short = 'f', long = "file", default_value = "Dockerfile")]
    file: PathBuf,
    /// Print the typed instructions, with their line ranges, as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: ParseArgs) -> Result<ExitCode, CliError> {
    let src = source::read_dockerfile(&args.file)?;
    let tree = syntax::parse(&src.bytes, &src.name)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let text = src.text();
        let typed = instruction::from_dockerfile(&tree, text).map_err(|d| d.in_file(&src.name))?;
        serde_json::to_writer_pretty(&mut out, &typed).map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else {
        out.write_all(syntax::dump(&tree).as_bytes())?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
