//! Located errors: every parse, type or graph error names `Dockerfile:LINE:COL`,
//! shows the offending line and puts a caret under the column, because a person
//! fixing a Dockerfile needs to see *where*, not only *what*.

use std::fmt;

/// A position in the Dockerfile: 1-based line and column (column in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// One problem found in a Dockerfile, with where it is and, when we can guess,
/// what the user probably meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    /// Where the problem is; `None` for whole-file problems (e.g. "file is empty").
    pub pos: Option<Pos>,
    /// The text of the line at `pos`, shown under the message.
    pub line_text: Option<String>,
    /// A hint such as "did you mean COPY?".
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            pos: None,
            line_text: None,
            help: None,
        }
    }

    /// Locates the diagnostic at byte `offset` of `src`, capturing the line text.
    pub fn at(mut self, src: &str, offset: usize) -> Self {
        let (pos, text) = locate(src, offset);
        self.pos = Some(pos);
        self.line_text = Some(text.to_string());
        self
    }

    /// Locates the diagnostic at the start of 1-based `line`, column `column`.
    pub fn at_line(mut self, src: &str, line: usize, column: usize) -> Self {
        let text = src.lines().nth(line.saturating_sub(1)).unwrap_or("");
        self.pos = Some(Pos { line, column });
        self.line_text = Some(text.to_string());
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Names the file, turning the diagnostic into a printable error.
    pub fn in_file(self, file: impl Into<String>) -> ParseError {
        ParseError {
            file: file.into(),
            diagnostic: self,
        }
    }
}

/// Computes the 1-based line/column of byte `offset` in `src` and returns the line's text.
/// Offsets past the end point just after the last character.
pub fn locate(src: &str, offset: usize) -> (Pos, &str) {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let line_start = src[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = src[offset..].find('\n').map_or(src.len(), |i| offset + i);
    let line = src[..line_start].matches('\n').count() + 1;
    let column = src[line_start..offset].chars().count() + 1;
    let text = src[line_start..line_end].trim_end_matches('\r');
    (Pos { line, column }, text)
}

/// A diagnostic with the file name it belongs to; what the CLI prints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    pub file: String,
    pub diagnostic: Diagnostic,
}

impl ParseError {
    /// The 1-based line the error points at, if any.
    pub fn line(&self) -> Option<usize> {
        self.diagnostic.pos.map(|p| p.line)
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.diagnostic;
        match d.pos {
            Some(p) => write!(f, "{}:{}:{}: {}", self.file, p.line, p.column, d.message)?,
            None => write!(f, "{}: {}", self.file, d.message)?,
        }
        if let (Some(p), Some(text)) = (d.pos, &d.line_text) {
            let gutter = p.line.to_string();
            // Tabs keep their width under the caret by being copied into the padding.
            let pad: String = text
                .chars()
                .take(p.column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(
                f,
                "\n {gutter} | {text}\n {} | {pad}^",
                " ".repeat(gutter.len())
            )?;
        }
        if let Some(help) = &d.help {
            // Continuation lines of a multi-line hint line up under its first line.
            write!(f, "\n help: {}", help.replace('\n', "\n       "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_counts_lines_and_chars() {
        let src = "FROM a\nRUN é x\n";
        let (pos, text) = locate(src, src.find('x').unwrap());
        assert_eq!(pos, Pos { line: 2, column: 7 });
        assert_eq!(text, "RUN é x");
    }

    #[test]
    fn display_shows_line_and_caret() {
        let src = "FROM a\nCOPY x\n";
        let err = Diagnostic::new("COPY requires at least two arguments")
            .at(src, 7)
            .with_help("COPY <src>... <dest>")
            .in_file("Dockerfile");
        assert_eq!(
            err.to_string(),
            "Dockerfile:2:1: COPY requires at least two arguments\n 2 | COPY x\n   | ^\n help: COPY <src>... <dest>"
        );
    }
}
