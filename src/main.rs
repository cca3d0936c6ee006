//! The `rbuild` command: argument parsing and printing only; every piece of work is one
//! call into the library crates.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse_args();
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            // A closed pipe (`rbuild parse | head`) is not a failure, as for any Unix filter.
            if err.is_broken_pipe() {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
