//! A character cursor over one word, with the two quirks of Go's `text/scanner`
//! that BuildKit's lexer inherits and that change results.

/// Walks a word one `char` at a time, remembering the byte offset so errors can
/// point into the original text.
#[derive(Debug, Clone)]
pub(crate) struct Scanner<'a> {
    src: &'a str,
    pos: usize,
}

/// U+FEFF. Go's `text/scanner` drops it when it is the very first character of
/// its input, so BuildKit never sees a leading byte-order mark.
pub(crate) const BOM: char = '\u{feff}';

impl<'a> Scanner<'a> {
    /// Starts at the beginning of `src`, skipping a leading byte-order mark as Go does.
    pub(crate) fn new(src: &'a str) -> Self {
        let pos = if src.starts_with(BOM) {
            BOM.len_utf8()
        } else {
            0
        };
        Scanner { src, pos }
    }

    /// The next character without consuming it; `None` at the end.
    pub(crate) fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// Consumes and returns the next character; `None` (and no movement) at the end.
    pub(crate) fn next_char(&mut self) -> Option<char> {
        let ch = self.peek()?;
        self.pos += ch.len_utf8();
        Some(ch)
    }

    /// Consumes the next character if it equals `want`.
    pub(crate) fn eat(&mut self, want: char) -> bool {
        if self.peek() == Some(want) {
            self.pos += want.len_utf8();
            true
        } else {
            false
        }
    }

    /// Byte offset of the next character in the source word.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    /// The unread part of the word.
    pub(crate) fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    /// The source text from byte `start` up to the cursor (empty if `start` is not
    /// a valid earlier position).
    pub(crate) fn since(&self, start: usize) -> &'a str {
        self.src.get(start..self.pos).unwrap_or("")
    }

    /// The source text from byte `start` to the end of the word.
    pub(crate) fn from(&self, start: usize) -> &'a str {
        self.src.get(start..).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_multibyte_characters() {
        let mut s = Scanner::new("한a");
        assert_eq!(s.peek(), Some('한'));
        assert_eq!(s.next_char(), Some('한'));
        assert_eq!(s.pos(), 3);
        assert!(s.eat('a'));
        assert!(s.at_end());
        assert_eq!(s.next_char(), None);
        assert_eq!(s.since(0), "한a");
    }

    #[test]
    fn skips_only_a_leading_bom() {
        let mut s = Scanner::new("\u{feff}x\u{feff}");
        assert_eq!(s.next_char(), Some('x'));
        assert_eq!(s.next_char(), Some('\u{feff}'));
        assert_eq!(s.next_char(), None);
    }
}
