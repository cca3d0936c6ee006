//! How `rbuild build` shows the library's progress events on standard error: BuildKit's
//! plain lines, a live display on a terminal, JSON lines for tools, or nothing.
//!
//! Every printer is `Send` (the build may call it from its stage threads) and writes
//! through `std::io::stderr()` one whole piece of text at a time, never holding its lock
//! across the build.

mod json;
mod plain;
mod tty;

use std::io::{IsTerminal, Write};

use clap::ValueEnum;
use rbuild_builder::build::Event;

/// The `--progress` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// `tty` when standard error is a terminal, else `plain`.
    Auto,
    /// BuildKit's plain lines (`#3 [2/5] RUN make`), every output line in full.
    Plain,
    /// A live display of the running steps and their last lines of output.
    Tty,
    /// Nothing.
    Quiet,
    /// One JSON object per event and line (schema in the README).
    Json,
}

/// Shows events as they come; [`Printer::finish`] closes the display.
pub enum Printer {
    Quiet,
    Plain,
    Tty(Box<tty::Tty>),
    Json,
}

impl Printer {
    /// The printer for `mode`; `Err` says why it cannot be had (`tty` without a
    /// terminal, as buildx refuses it too).
    pub fn new(mode: Mode) -> Result<Printer, String> {
        let terminal = std::io::stderr().is_terminal();
        Ok(match mode {
            Mode::Quiet => Printer::Quiet,
            Mode::Plain => Printer::Plain,
            Mode::Json => Printer::Json,
            // A dumb terminal cannot move its cursor: the live display would scroll.
            Mode::Auto if !terminal || std::env::var_os("TERM").is_some_and(|t| t == "dumb") => {
                Printer::Plain
            }
            Mode::Auto | Mode::Tty if terminal => Printer::Tty(Box::new(tty::Tty::new())),
            Mode::Auto | Mode::Tty => {
                return Err("--progress tty: standard error is not a terminal".to_string());
            }
        })
    }

    pub fn event(&mut self, e: Event) {
        match self {
            Printer::Quiet => {}
            Printer::Plain => write_stderr(&plain::format(&e)),
            Printer::Tty(t) => t.event(e),
            Printer::Json => write_stderr(&json::format(&e, chrono::Utc::now())),
        }
    }

    /// Ends the display, `ok` saying whether the build succeeded: the live display is
    /// replaced by its final state, then the failed step's output and the warnings.
    pub fn finish(self, ok: bool) {
        if let Printer::Tty(t) = self {
            t.finish(ok);
        }
    }
}

/// Progress is best effort: a closed standard error must not fail the build.
fn write_stderr(text: &str) {
    let _ = std::io::stderr().write_all(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printers_can_move_to_build_threads() {
        fn send<T: Send>() {}
        send::<Printer>();
    }
}
