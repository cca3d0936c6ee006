//! `rbuild cp [-L] [-a] CONTAINER:SRC DEST|-` and `rbuild cp [-a] SRC CONTAINER:DEST`: a
//! file or directory copied out of or into a container.

use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use rbuild_builder::build::interrupt;
use rbuild_builder::container_cp::{self, CpError, Dest};

use super::{CliError, Global};

/// Copy files/folders between a container and the local filesystem.
#[derive(Debug, Args)]
pub struct CpArgs {
    /// Always follow symbol link in SRC_PATH.
    #[arg(short = 'L', long)]
    follow_link: bool,
    /// Archive mode (copy all uid/gid information); out of a container, always so.
    #[arg(short = 'a', long)]
    archive: bool,
    #[arg(value_name = "CONTAINER:SRC_PATH")]
    src: String,
    #[arg(value_name = "DEST_PATH|-")]
    dest: String,
}

/// docker's split of `NAME:PATH`: a container when the part before the first `:` has
/// no `/` (so `./a:b` and `/tmp/a:b` are local paths).
fn container_path(arg: &str) -> Option<(&str, &str)> {
    let (name, path) = arg.split_once(':')?;
    (!name.is_empty() && !name.contains('/')).then_some((name, path))
}

pub fn run(global: &Global, args: CpArgs) -> Result<ExitCode, CliError> {
    let (name, src) = match (container_path(&args.src), container_path(&args.dest)) {
        (Some(_), Some(_)) => {
            return Err(CliError::Usage(
                "copying between containers is not supported".into(),
            ));
        }
        (None, None) => {
            return Err(CliError::Usage(
                "must specify at least one container source".into(),
            ));
        }
        (None, Some((name, dest))) => return copy_in(global, &args, name, dest),
        (Some(pair), None) => pair,
    };
    if args.dest == "-" && io::stdout().is_terminal() {
        return Err(CliError::Usage(
            "cowardly refusing to write a tar to a terminal; redirect the output".into(),
        ));
    }
    // Ctrl-C stops the copy; the scratch view is unmounted and removed.
    interrupt::install_for("the copy")?;
    let store = global.store()?;
    let cancel = interrupt::requested;
    let copied = if args.dest == "-" {
        let mut out = io::BufWriter::with_capacity(1 << 20, io::stdout().lock());
        container_cp::copy_out(
            &store,
            name,
            src,
            args.follow_link,
            Dest::Tar(&mut out),
            &cancel,
        )
        .and_then(|()| {
            out.flush().map_err(|source| CpError::Io {
                what: "writing the tar".into(),
                source,
            })
        })
    } else {
        container_cp::copy_out(
            &store,
            name,
            src,
            args.follow_link,
            Dest::Path(Path::new(&args.dest)),
            &cancel,
        )
    };
    report(copied)
}

fn copy_in(global: &Global, args: &CpArgs, name: &str, dest: &str) -> Result<ExitCode, CliError> {
    if args.src == "-" {
        return Err(CliError::Usage(
            "copying a tar from standard input into a container is not supported; name a path"
                .into(),
        ));
    }
    interrupt::install_for("the copy")?;
    let store = global.store()?;
    let copied = container_cp::copy_in(
        &store,
        name,
        Path::new(&args.src),
        dest,
        args.archive,
        &interrupt::requested,
    );
    report(copied)
}

fn report(copied: Result<(), CpError>) -> Result<ExitCode, CliError> {
    match copied {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e @ (CpError::Store(_) | CpError::NotFound { .. })) => {
            eprintln!("Error response from daemon: {e}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("rbuild: cp: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_split_as_dockers() {
        assert_eq!(container_path("web:/etc/x"), Some(("web", "/etc/x")));
        assert_eq!(container_path("web:"), Some(("web", "")));
        assert_eq!(container_path("./a:b"), None);
        assert_eq!(container_path("/tmp/a:b"), None);
        assert_eq!(container_path("plain"), None);
    }
}
