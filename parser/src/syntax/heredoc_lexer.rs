//! The word splitter BuildKit uses to find heredoc markers.
//!
//! BuildKit finds heredocs by running its shell lexer over the instruction line with
//! an empty environment, "leave unset variables as written" and optionally "keep
//! quotes and escapes raw". This module reproduces that lexer for exactly that setting
//! (so `$X`, `${X:-y}` and `${X/a/b}` are kept as text, never expanded), including its
//! quirks, because they decide which words look like `<<EOF`:
//!
//! * `<<` followed by spaces or tabs stays glued to the next word (`<<  EOF`).
//! * Escapes are always `\`, whatever `# escape=` says.
//! * A nested `${…}` word clears the word being built (BuildKit shares one buffer
//!   between nesting levels), so `ab${x:-y}` splits as the single word `${x:-y}`.
//!
//! Nesting of `${…}` is followed with bounded recursion; beyond [`MAX_NESTING`] levels
//! the line is reported as unlexable, which for heredoc detection means "no heredoc".

/// Deeper `${…${…}…}` nesting than this is refused rather than risk the stack.
pub(super) const MAX_NESTING: usize = 64;

/// Why a line could not be split. Messages are BuildKit's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum LexError {
    #[error("unexpected end of statement while looking for matching {0}")]
    Unterminated(char),
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    #[error("variable substitutions nested more than {MAX_NESTING} deep")]
    TooDeep,
}

/// The lexer's settings: escapes are always `\` and unset variables are kept.
#[derive(Debug, Clone, Copy)]
pub(super) struct Mode {
    /// Keep quote characters in the words.
    pub raw_quotes: bool,
    /// Keep escape characters in the words.
    pub raw_escapes: bool,
}

const ESCAPE: char = '\\';

/// Splits `src` into shell words under `mode` (BuildKit's `ProcessWords`).
pub(super) fn split(src: &str, mode: Mode) -> Result<Vec<String>, LexError> {
    let mut chars: Vec<char> = src.chars().collect();
    // Go's text/scanner skips a byte-order mark at the start of its input.
    if chars.first() == Some(&'\u{FEFF}') {
        chars.remove(0);
    }
    let mut lexer = Lexer {
        chars,
        pos: 0,
        shared: String::new(),
        raw_quotes: mode.raw_quotes,
        raw_escapes: mode.raw_escapes,
        depth: 0,
    };
    let (_, words) = lexer.process_until(None, mode.raw_escapes)?;
    Ok(words)
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    /// The word buffer shared by every nesting level, as in BuildKit.
    shared: String,
    raw_quotes: bool,
    raw_escapes: bool,
    depth: usize,
}

/// Words collected by one nesting level (the characters live in `Lexer::shared`).
#[derive(Default)]
struct Words {
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, buf: &mut String, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !buf.is_empty() {
                self.words.push(std::mem::take(buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(buf, ch);
        }
    }

    fn add_raw_char(&mut self, buf: &mut String, ch: char) {
        buf.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, buf: &mut String, s: &str) {
        for ch in s.chars() {
            self.add_char(buf, ch);
        }
    }

    fn add_raw_string(&mut self, buf: &mut String, s: &str) {
        buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self, buf: &mut String) -> Vec<String> {
        if !buf.is_empty() {
            self.words.push(std::mem::take(buf));
        }
        self.words
    }
}

impl Lexer {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// BuildKit's `processStopOn`: reads until `stop` (consumed) or the end.
    fn process_until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), LexError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(LexError::TooDeep);
        }
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let result = self.process_body(stop);
        self.raw_escapes = saved;
        self.depth -= 1;
        result
    }

    fn process_body(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), LexError> {
        let mut result = String::new();
        self.shared.clear();
        let mut words = Words::default();

        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                let words = words.finish(&mut self.shared);
                return Ok((result, words));
            }
            match ch {
                '$' => {
                    let tmp = self.process_dollar()?;
                    result.push_str(&tmp);
                    words.add_string(&mut self.shared, &tmp);
                }
                '<' | '\'' | '"' => {
                    let tmp = match ch {
                        '<' => self.process_possible_heredoc(),
                        '\'' => self.process_single_quote()?,
                        _ => self.process_double_quote()?,
                    };
                    result.push_str(&tmp);
                    words.add_raw_string(&mut self.shared, &tmp);
                }
                _ => {
                    self.next();
                    if ch == ESCAPE {
                        if self.raw_escapes {
                            words.add_raw_char(&mut self.shared, ch);
                            result.push(ch);
                        }
                        let Some(escaped) = self.next() else { break };
                        words.add_raw_char(&mut self.shared, escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(&mut self.shared, ch);
                        result.push(ch);
                    }
                }
            }
        }
        if let Some(stop) = stop {
            return Err(LexError::Unterminated(stop));
        }
        let words = words.finish(&mut self.shared);
        Ok((result, words))
    }

    fn process_single_quote(&mut self) -> Result<String, LexError> {
        let mut out = String::new();
        self.next();
        if self.raw_quotes {
            out.push('\'');
        }
        loop {
            match self.next() {
                None => return Err(LexError::UnterminatedSingleQuote),
                Some('\'') => {
                    if self.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> Result<String, LexError> {
        let mut out = String::new();
        self.next();
        if self.raw_quotes {
            out.push('"');
        }
        loop {
            match self.peek() {
                None => return Err(LexError::UnterminatedDoubleQuote),
                Some('"') => {
                    self.next();
                    if self.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let value = self.process_dollar()?;
                    out.push_str(&value);
                }
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == ESCAPE {
                        if self.raw_escapes {
                            out.push(ch);
                        }
                        match self.peek() {
                            // A trailing escape is dropped; the loop then reports
                            // the missing quote.
                            None => continue,
                            Some('"' | '$' | ESCAPE) => ch = self.next().unwrap_or_default(),
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    /// `$name`, `${name}` and `${name<op>word}`, all left as written because no
    /// variable is ever set here.
    fn process_dollar(&mut self) -> Result<String, LexError> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.process_name();
            return Ok(format!("${name}"));
        }
        self.next();
        match self.peek() {
            None => return Err(LexError::MissingBrace),
            Some('{' | '}' | ':') => return Err(LexError::BadSubstitution),
            Some(_) => {}
        }
        let name = self.process_name();
        let ch = self.next();
        // Go turns the end of input into U+FFFD when it prints the modifier.
        let mut modifier = String::from(ch.unwrap_or('\u{FFFD}'));
        match ch {
            Some('}') => Ok(format!("${{{name}}}")),
            Some(':' | '+' | '-' | '?' | '#' | '%') => {
                let mut op = ch;
                let null_is_unset = op == Some(':');
                if null_is_unset {
                    op = self.next();
                    modifier.push(op.unwrap_or('\u{FFFD}'));
                }
                let raw = matches!(op, Some('#' | '%'));
                if null_is_unset && raw {
                    return Err(LexError::UnsupportedModifier(modifier));
                }
                let (word, _) = self
                    .process_until(Some('}'), raw)
                    .map_err(|e| self.missing_at_end(e, LexError::MissingBrace))?;
                Ok(format!("${{{name}{modifier}{word}}}"))
            }
            Some('/') => {
                if self.peek() == Some('/') {
                    self.next();
                }
                let (pattern, _) = self
                    .process_until(Some('/'), true)
                    .map_err(|e| self.missing_at_end(e, LexError::MissingSlash))?;
                let (replacement, _) = self
                    .process_until(Some('}'), true)
                    .map_err(|e| self.missing_at_end(e, LexError::MissingBrace))?;
                // BuildKit prints a `//` (replace-all) substitution with one slash.
                Ok(format!("${{{name}/{pattern}/{replacement}}}"))
            }
            _ => Err(LexError::UnsupportedModifier(modifier)),
        }
    }

    /// At the end of input BuildKit replaces a nested error by a "missing" one.
    fn missing_at_end(&self, err: LexError, missing: LexError) -> LexError {
        if self.peek().is_none() && err != LexError::TooDeep {
            missing
        } else {
            err
        }
    }

    /// A variable name: digits, one special parameter, or letters/digits/underscores.
    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_numeric() {
                while let Some(d) = self.peek().filter(|c| c.is_numeric()) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                name.push(ch);
                return name;
            }
            if !(ch.is_alphabetic() || ch.is_numeric() || ch == '_') {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }

    /// `<<` and any blanks after it form one raw piece, so `<<  EOF` stays one word.
    fn process_possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".to_string();
        }
        self.next();
        let mut out = String::from("<<");
        while let Some(c) = self.peek().filter(|c| matches!(c, '\t' | '\r' | ' ')) {
            out.push(c);
            self.next();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: Mode = Mode {
        raw_quotes: true,
        raw_escapes: true,
    };
    const COOKED: Mode = Mode {
        raw_quotes: false,
        raw_escapes: false,
    };

    #[test]
    fn raw_mode_keeps_quotes_escapes_and_glues_heredocs() {
        assert_eq!(
            split("RUN <<  EOF  > foo", RAW).unwrap(),
            ["RUN", "<<  EOF", ">", "foo"]
        );
        assert_eq!(
            split(r#"RUN '<<EOF' "a b" c\ d"#, RAW).unwrap(),
            ["RUN", "'<<EOF'", "\"a b\"", "c\\ d"]
        );
        assert_eq!(split("a <b", RAW).unwrap(), ["a", "<b"]);
    }

    #[test]
    fn cooked_mode_removes_quotes() {
        assert_eq!(split("eo'f'", COOKED).unwrap(), ["eof"]);
        assert_eq!(split(r"eo\'f", COOKED).unwrap(), ["eo'f"]);
        assert_eq!(split("'one two'", COOKED).unwrap(), ["one two"]);
        assert_eq!(split(r#""a\"b\x""#, COOKED).unwrap(), ["a\"b\\x"]);
        assert_eq!(split(r#""a\x""#, RAW).unwrap(), ["\"a\\\\x\""]);
    }

    #[test]
    fn variables_are_kept_as_written() {
        assert_eq!(
            split("$EOF ${A} $ $1x", COOKED).unwrap(),
            ["$EOF", "${A}", "$", "$1x"]
        );
        assert_eq!(split("${A:-x y}", COOKED).unwrap(), ["${A:-x", "y}"]);
        assert_eq!(split("${A//a/b}", COOKED).unwrap(), ["${A/a/b}"]);
        // The nested word clears the shared buffer.
        assert_eq!(split("ab${x:-y}", COOKED).unwrap(), ["${x:-y}"]);
    }

    #[test]
    fn errors_match_buildkit() {
        let err = |s| split(s, RAW).unwrap_err().to_string();
        assert_eq!(
            err("'a"),
            "unexpected end of statement while looking for matching single-quote"
        );
        assert_eq!(
            err("\"a"),
            "unexpected end of statement while looking for matching double-quote"
        );
        assert_eq!(err("${"), "syntax error: missing '}'");
        assert_eq!(err("${}"), "syntax error: bad substitution");
        assert_eq!(err("${a:-b"), "syntax error: missing '}'");
        assert_eq!(err("${a/b"), "syntax error: missing '/' in ${}");
        assert_eq!(
            err("${a"),
            "unsupported modifier (\u{FFFD}) in substitution"
        );
        assert_eq!(err("${a:#x}"), "unsupported modifier (:#) in substitution");
        assert_eq!(err("${a!}"), "unsupported modifier (!) in substitution");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = "${a:-".repeat(10_000) + &"}".repeat(10_000);
        assert_eq!(split(&deep, RAW), Err(LexError::TooDeep));
        let ok = "${a:-".repeat(10) + &"}".repeat(10);
        assert_eq!(split(&ok, RAW).unwrap().len(), 1);
    }
}
