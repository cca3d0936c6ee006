//! Stage 1: bytes to syntax tree, reproducing BuildKit's parser
//! (`frontend/dockerfile/parser`) exactly, so that BuildKit's own test data can check
//! it byte for byte.
//!
//! The work is split the way the format is: `lines` (physical lines, continuations,
//! comments) → `directives` (`# syntax=`, `# escape=`, `# check=` at the top) →
//! `flags` (keyword and `--flag` words) → `args` (each instruction's argument rule,
//! with `words` and `json`) → `heredoc` (`<<EOF` markers, found with the shell-word
//! splitter of [`crate::shell`], and their bodies). `reader` drives them; `dump` prints
//! BuildKit's test format.
//!
//! Known differences from BuildKit, all on inputs BuildKit mishandles or refuses:
//! invalid UTF-8 is an error here; lines longer than 64 KiB are accepted (BuildKit's
//! scanner refuses them); non-ASCII characters in `--flag` words and in HEALTHCHECK's
//! type word are read as characters (BuildKit reads those bytes one by one, as
//! Latin-1); chains of more than 32 ONBUILDs and `${…}` nested more than 64 deep on a
//! heredoc line are refused rather than followed; `<<-` heredoc bodies are stored
//! with their tabs already stripped (BuildKit strips them when it builds the step);
//! a `${…}` in a heredoc marker stays part of the delimiter (BuildKit's lexer reuses
//! its word buffer there and loses the `<<`).

mod args;
mod directives;
mod dump;
mod flags;
mod heredoc;
mod json;
mod lines;
mod node;
mod reader;
#[cfg(test)]
mod tests;
mod words;

pub use dump::go_quote;
pub use node::{Args, Directives, Dockerfile, Heredoc, KeyValue, Node, Span, Warning};

use crate::error::{Diagnostic, ParseError};

/// Parses a Dockerfile into its syntax tree.
///
/// Takes bytes, not `&str`, so that invalid UTF-8 is reported with the line it is on.
/// `file` names the Dockerfile in errors (`Dockerfile:3:1: …`).
pub fn parse(src: &[u8], file: &str) -> Result<Dockerfile, ParseError> {
    let text = match std::str::from_utf8(src) {
        Ok(text) => text,
        Err(e) => return Err(invalid_utf8(src, e).in_file(file)),
    };
    reader::read(text).map_err(|d| d.in_file(file))
}

/// Prints the tree in BuildKit's test format (`(copy ["--from=a"] "x" "/y")`, one line
/// per instruction, a final newline).
pub fn dump(df: &Dockerfile) -> String {
    dump::dump(df)
}

/// Points at the first byte that is not UTF-8. BuildKit would carry such bytes along;
/// we refuse them because every later stage works on text.
fn invalid_utf8(src: &[u8], err: std::str::Utf8Error) -> Diagnostic {
    let at = err.valid_up_to();
    let byte = src.get(at).copied().unwrap_or_default();
    let shown = String::from_utf8_lossy(src);
    Diagnostic::new(format!(
        "invalid UTF-8 (byte 0x{byte:02x}): a Dockerfile must be UTF-8 text"
    ))
    .at(&shown, at)
    .with_help("re-save the file as UTF-8")
}
