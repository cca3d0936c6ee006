//! Physical lines and the small per-line rules BuildKit applies before joining them
//! into logical lines: newline trimming, comment detection, escape-character line
//! continuations and "empty continuation line" detection.
//!
//! BuildKit reads the file with a `bufio.Scanner` that keeps each line's `\n`; every
//! rule below is stated in those terms so that CRLF files, a missing final newline
//! and stray `\r`s behave exactly as they do there.

/// One physical line of the source.
#[derive(Debug, Clone, Copy)]
pub(super) struct PhysLine<'a> {
    /// Byte offset of the line's first byte in the source.
    pub start: usize,
    /// The line's text including its terminating `\n` (absent on a last line without one).
    pub text: &'a str,
    /// 1-based line number.
    pub number: usize,
}

impl PhysLine<'_> {
    /// Byte offset just past the line's content, before any `\r`/`\n` terminator.
    pub fn content_end(&self) -> usize {
        self.start + trim_newline(self.text).len()
    }
}

/// Iterates the physical lines of a source, each keeping its `\n`.
#[derive(Debug, Clone)]
pub(super) struct Lines<'a> {
    src: &'a str,
    pos: usize,
    number: usize,
}

impl<'a> Lines<'a> {
    pub fn new(src: &'a str) -> Self {
        Lines {
            src,
            pos: 0,
            number: 0,
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = PhysLine<'a>;

    fn next(&mut self) -> Option<PhysLine<'a>> {
        let rest = self.src.get(self.pos..).filter(|r| !r.is_empty())?;
        let len = rest.find('\n').map_or(rest.len(), |i| i + 1);
        let text = rest.get(..len)?;
        let line = PhysLine {
            start: self.pos,
            text,
            number: self.number + 1,
        };
        self.pos += len;
        self.number += 1;
        Some(line)
    }
}

/// Removes every trailing `\r` and `\n` (BuildKit's `trimNewline`), so `a\r\r\n` is `a`.
pub(super) fn trim_newline(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

/// A comment line is one whose first non-whitespace character is `#`.
pub(super) fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// The text BuildKit keeps for a comment line: everything after the line's *first
/// byte*, trimmed. BuildKit slices the untrimmed line, so `  # x` yields `# x`; we
/// keep that quirk because it decides what `PrevComment` holds.
pub(super) fn comment_text(raw_line: &str) -> String {
    let bytes = raw_line.as_bytes();
    let tail = bytes.get(1..).unwrap_or_default();
    String::from_utf8_lossy(tail).trim().to_string()
}

/// True for a line inside a continuation that holds only whitespace; BuildKit skips it
/// and warns that such lines will become errors.
pub(super) fn is_empty_continuation(line: &str) -> bool {
    trim_newline(line).trim_start().is_empty()
}

/// Applies the line-continuation rule to a newline-trimmed line.
///
/// A line continues when it ends with the escape character (optionally followed by
/// spaces and tabs) and that escape character is either the whole line or preceded by
/// a character other than the escape character. BuildKit's regex cannot see that the
/// escape in `foo \\\` is itself unescaped, so such a line does *not* continue; neither
/// does `foo\\`. Returns the line without the escape and trailing blanks, and whether
/// it continues.
pub(super) fn strip_continuation(line: &str, escape: char) -> (&str, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    let Some(before) = trimmed.strip_suffix(escape) else {
        return (line, false);
    };
    match before.chars().next_back() {
        None => ("", true),
        Some(c) if c != escape => (before, true),
        Some(_) => (line, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_terminators_and_number_from_one() {
        let got: Vec<_> = Lines::new("a\r\nb\n\nc")
            .map(|l| (l.start, l.text, l.number))
            .collect();
        assert_eq!(
            got,
            vec![(0, "a\r\n", 1), (3, "b\n", 2), (5, "\n", 3), (6, "c", 4)]
        );
        assert_eq!(Lines::new("").count(), 0);
    }

    #[test]
    fn continuation_follows_buildkit_regex() {
        assert_eq!(strip_continuation("RUN a \\", '\\'), ("RUN a ", true));
        assert_eq!(strip_continuation("RUN a\\ \t ", '\\'), ("RUN a", true));
        assert_eq!(strip_continuation("\\", '\\'), ("", true));
        assert_eq!(strip_continuation("  \\ ", '\\'), ("  ", true));
        assert_eq!(strip_continuation("a\\\\", '\\'), ("a\\\\", false));
        assert_eq!(strip_continuation("a \\\\\\", '\\'), ("a \\\\\\", false));
        assert_eq!(strip_continuation("FROM `", '`'), ("FROM ", true));
        assert_eq!(strip_continuation("FROM \\", '`'), ("FROM \\", false));
        assert_eq!(strip_continuation("é\\", '\\'), ("é", true));
    }

    #[test]
    fn comments_keep_buildkit_slicing() {
        assert!(is_comment("  # x\n"));
        assert!(!is_comment("RUN # x"));
        assert_eq!(comment_text("# hello \n"), "hello");
        assert_eq!(comment_text("  # x\n"), "# x");
        assert_eq!(comment_text("#\n"), "");
        assert!(is_empty_continuation(" \t\r\n"));
        assert!(!is_empty_continuation(" x\n"));
    }
}
