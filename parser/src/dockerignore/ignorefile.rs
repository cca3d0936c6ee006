//! Reading the text of a `.dockerignore` file (moby/patternmatcher's
//! `ignorefile.ReadAll`), keeping line numbers so a bad pattern can be pointed at.
//!
//! Rules, in Docker's order: a UTF-8 byte-order mark on the first line is dropped; a line
//! whose very first character is `#` is a comment (an indented `#` is a pattern); the rest
//! is trimmed and blank lines are skipped; after a leading `!` the rest is trimmed again;
//! the pattern is cleaned like a path (`./a//b/` is `a/b`) and one leading `/` is removed,
//! since patterns are relative to the context root anyway.

use super::clean::clean;
use super::matcher::Matcher;
use super::pattern::{Pattern, PatternError};
use crate::error::Diagnostic;

/// Docker reads the file with Go's `bufio.Scanner`, which fails on a line of 64 KiB or
/// more (`bufio.MaxScanTokenSize`); such a file is rejected here as well.
pub const MAX_LINE_BYTES: usize = 64 * 1024 - 1;

/// One pattern read from an ignore file, as Docker's reader returns it (`!` included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreLine {
    /// 1-based line number in the file.
    pub line: usize,
    /// 1-based column (in characters) where the pattern starts.
    pub column: usize,
    /// The normalised pattern, e.g. `!inverted/abs/path` for `! /inverted/abs/path`.
    pub pattern: String,
}

/// A `.dockerignore` file that cannot be used, with the line at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreFileError {
    #[error("line {line}: line is longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong { line: usize },
    #[error("line {line}: {source}")]
    InvalidPattern {
        line: usize,
        column: usize,
        #[source]
        source: PatternError,
    },
}

impl IgnoreFileError {
    /// The 1-based line at fault.
    pub fn line(&self) -> usize {
        match self {
            IgnoreFileError::LineTooLong { line }
            | IgnoreFileError::InvalidPattern { line, .. } => *line,
        }
    }

    /// A located diagnostic for `src` (the file's text) so the CLI can show the line and a
    /// caret, e.g. `diag.in_file(".dockerignore")`.
    pub fn to_diagnostic(&self, src: &str) -> Diagnostic {
        match self {
            IgnoreFileError::LineTooLong { line } => {
                Diagnostic::new(format!("line is longer than {MAX_LINE_BYTES} bytes"))
                    .at_line(src, *line, 1)
            }
            IgnoreFileError::InvalidPattern {
                line,
                column,
                source,
            } => Diagnostic::new(source.to_string()).at_line(src, *line, *column),
        }
    }
}

/// Reads the patterns of an ignore file, in order, without compiling them.
pub fn read_ignore_file(text: &str) -> Result<Vec<IgnoreLine>, IgnoreFileError> {
    let mut out = Vec::new();
    for (index, raw) in text.split('\n').enumerate() {
        let line = index + 1;
        if raw.len() > MAX_LINE_BYTES {
            return Err(IgnoreFileError::LineTooLong { line });
        }
        let raw = if index == 0 {
            raw.strip_prefix('\u{feff}').unwrap_or(raw)
        } else {
            raw
        };
        if raw.starts_with('#') {
            continue;
        }
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            continue;
        }
        let column = raw.chars().take_while(|c| c.is_whitespace()).count() + 1;
        let (invert, body) = match trimmed.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, trimmed),
        };
        let mut pattern = if body.is_empty() {
            String::new()
        } else {
            let cleaned = clean(body);
            match cleaned.strip_prefix('/') {
                Some(relative) if !relative.is_empty() => relative.to_string(),
                _ => cleaned,
            }
        };
        if invert {
            pattern.insert(0, '!');
        }
        out.push(IgnoreLine {
            line,
            column,
            pattern,
        });
    }
    Ok(out)
}

/// Reads and compiles an ignore file; an invalid pattern is reported with its line.
pub fn parse_ignore_file(text: &str) -> Result<Matcher, IgnoreFileError> {
    let mut patterns = Vec::new();
    for entry in read_ignore_file(text)? {
        let compiled =
            Pattern::parse(&entry.pattern).map_err(|source| IgnoreFileError::InvalidPattern {
                line: entry.line,
                column: entry.column,
                source,
            })?;
        patterns.extend(compiled);
    }
    Ok(Matcher::from_patterns(patterns))
}

#[cfg(test)]
mod tests {
    use super::{IgnoreFileError, MAX_LINE_BYTES, parse_ignore_file, read_ignore_file};
    use crate::dockerignore::PatternError;

    fn patterns(text: &str) -> Vec<String> {
        read_ignore_file(text)
            .unwrap()
            .into_iter()
            .map(|l| l.pattern)
            .collect()
    }

    #[test]
    fn reads_like_dockers_readall() {
        // The content of moby/patternmatcher's ignorefile test.
        let text = "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! ";
        assert_eq!(
            patterns(text),
            [
                "test1",
                "test2",
                "a/file/here",
                "lastfile",
                "!inverted/abs/path",
                "!",
                "!"
            ]
        );
    }

    #[test]
    fn comments_only_in_column_one() {
        assert_eq!(
            patterns("# note\n  # not a comment\n#\n"),
            ["# not a comment"]
        );
    }

    #[test]
    fn cleaning_bom_and_crlf() {
        assert_eq!(
            patterns("\u{feff}./a//b/\r\n  dir/../x  \r\n/\r\n**/\r\n!./keep/\r\n//root"),
            ["a/b", "x", "/", "**", "!keep", "root"]
        );
        // A byte-order mark only counts on the first line.
        assert_eq!(patterns("a\n\u{feff}b"), ["a", "\u{feff}b"]);
    }

    #[test]
    fn line_numbers_and_columns() {
        let lines = read_ignore_file("# c\n\n  foo\n!bar").unwrap();
        let at: Vec<(usize, usize)> = lines.iter().map(|l| (l.line, l.column)).collect();
        assert_eq!(at, [(3, 3), (4, 1)]);
    }

    #[test]
    fn invalid_patterns_name_their_line() {
        let text = "ok\n# fine\n  src/[a-\n";
        let err = parse_ignore_file(text).unwrap_err();
        assert_eq!(err.line(), 3);
        assert!(matches!(
            err,
            IgnoreFileError::InvalidPattern {
                line: 3,
                column: 3,
                source: PatternError::Class { .. }
            }
        ));
        let shown = err.to_diagnostic(text).in_file(".dockerignore").to_string();
        assert!(
            shown.starts_with(".dockerignore:3:3: invalid pattern \"src/[a-\""),
            "{shown}"
        );
        assert!(shown.contains("\n 3 |   src/[a-\n   |   ^"), "{shown}");

        let err = parse_ignore_file("a\n!\n").unwrap_err();
        assert_eq!(
            err,
            IgnoreFileError::InvalidPattern {
                line: 2,
                column: 1,
                source: PatternError::LoneExclamation
            }
        );
        assert_eq!(
            err.to_string(),
            "line 2: illegal exclusion pattern: \"!\" (a '!' needs a pattern after it)"
        );
        assert_eq!(parse_ignore_file("x\\").unwrap_err().line(), 1);
    }

    #[test]
    fn overlong_lines_are_rejected_like_docker() {
        let fits = "a".repeat(MAX_LINE_BYTES);
        assert!(parse_ignore_file(&format!("x\n{fits}\n")).is_ok());
        let long = format!("x\n{fits}a\n");
        assert_eq!(
            parse_ignore_file(&long).unwrap_err(),
            IgnoreFileError::LineTooLong { line: 2 }
        );
    }

    #[test]
    fn parsed_file_matches() {
        let m = parse_ignore_file("# build output\n/target\n*.log\n!important.log\n").unwrap();
        assert!(m.excluded("target/debug/x"));
        assert!(m.excluded("debug.log"));
        assert!(!m.excluded("important.log"));
        assert!(!m.excluded("src/main.rs"));
    }
}
