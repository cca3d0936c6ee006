//! Field splitting for [`Lexer::expand_words`](super::Lexer::expand_words).
//!
//! BuildKit splits while it expands: a whitespace character ends the current word
//! only when it is unquoted and unescaped — either written so in the Dockerfile or
//! produced by an unquoted `$VAR`. Quoted text and escaped characters are added
//! "raw" and never split. An empty word is never emitted, so `a "" b` gives two
//! words, not three.

/// Accumulates words as the expander hands it text.
#[derive(Debug, Default)]
pub(crate) struct Words {
    done: Vec<String>,
    current: String,
}

impl Words {
    /// An unquoted character: whitespace (Go's `unicode.IsSpace`, the same set as
    /// Rust's `char::is_whitespace`) closes the current word.
    pub(crate) fn push_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if !self.current.is_empty() {
                self.done.push(std::mem::take(&mut self.current));
            }
        } else {
            self.current.push(ch);
        }
    }

    /// The value of an unquoted expansion: split like literal text.
    pub(crate) fn push_expanded(&mut self, text: &str) {
        text.chars().for_each(|ch| self.push_char(ch));
    }

    /// An escaped character: part of the word even if it is a space.
    pub(crate) fn push_raw_char(&mut self, ch: char) {
        self.current.push(ch);
    }

    /// Quoted text: part of the word as it is.
    pub(crate) fn push_raw(&mut self, text: &str) {
        self.current.push_str(text);
    }

    pub(crate) fn finish(mut self) -> Vec<String> {
        if !self.current.is_empty() {
            self.done.push(self.current);
        }
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_unquoted_whitespace_only() {
        let mut w = Words::default();
        w.push_expanded("  ab c ");
        w.push_raw(" d ");
        w.push_char('\u{3000}'); // ideographic space is whitespace too
        w.push_raw_char(' ');
        w.push_char('e');
        assert_eq!(w.finish(), vec!["ab", "c", " d ", " e"]);
    }

    #[test]
    fn never_emits_empty_words() {
        let mut w = Words::default();
        w.push_raw("");
        w.push_char(' ');
        w.push_raw("");
        assert!(w.finish().is_empty());
    }
}
