//! The expander proper: one pass over a word that removes quotes and escapes and
//! replaces `$` substitutions, structured like BuildKit's `shellWord` so that its
//! many corner cases (which the conformance data pins down) fall out the same way.
//!
//! Recursion happens only through `${NAME<op>word}`, whose word is expanded in
//! turn; it is capped at [`MAX_DEPTH`] levels.

use std::collections::BTreeSet;

use super::Lexer;
use super::env::Env;
use super::error::ExpandError;
use super::modifiers::{replace, trim_prefix, trim_suffix};
use super::names::read_name;
use super::pattern::PatternError;
use super::scanner::Scanner;
use super::words::Words;

/// How deeply `${a:-${b:-…}}` may nest before expansion gives up.
pub const MAX_DEPTH: usize = 64;

/// State of one expansion: the cursor, the options, and the variables seen.
pub(crate) struct Expander<'w, 'e> {
    lexer: &'e Lexer,
    env: &'e dyn Env,
    scan: Scanner<'w>,
    depth: usize,
    pub(crate) used: BTreeSet<String>,
    pub(crate) unset: BTreeSet<String>,
}

impl<'w, 'e> Expander<'w, 'e> {
    pub(crate) fn new(lexer: &'e Lexer, word: &'w str, env: &'e dyn Env) -> Self {
        Expander {
            lexer,
            env,
            scan: Scanner::new(word),
            depth: 0,
            used: BTreeSet::new(),
            unset: BTreeSet::new(),
        }
    }

    /// Expands the whole word, feeding `words` when the caller wants fields.
    pub(crate) fn run(&mut self, words: Option<&mut Words>) -> Result<String, ExpandError> {
        self.sequence(None, self.lexer.raw_escapes, words)
    }

    /// Reads text up to `stop` (consumed) or to the end of the word. `raw` keeps
    /// escape characters in the output: BuildKit does so for the pattern and
    /// replacement words of `#`, `%` and `/`, whose own escapes (`\*`, `\}`) the
    /// pattern compiler reads later.
    fn sequence(
        &mut self,
        stop: Option<char>,
        raw: bool,
        mut words: Option<&mut Words>,
    ) -> Result<String, ExpandError> {
        let mut out = String::new();
        while let Some(ch) = self.scan.peek() {
            if stop == Some(ch) {
                self.scan.next_char();
                return Ok(out);
            }
            match ch {
                '$' => {
                    let value = self.dollar()?;
                    if let Some(w) = words.as_deref_mut() {
                        w.push_expanded(&value);
                    }
                    out.push_str(&value);
                }
                '<' => {
                    let text = self.possible_heredoc();
                    if let Some(w) = words.as_deref_mut() {
                        w.push_raw(&text);
                    }
                    out.push_str(&text);
                }
                '\'' | '"' if !self.lexer.literal_quotes => {
                    let text = if ch == '\'' {
                        self.single_quoted()?
                    } else {
                        self.double_quoted(raw)?
                    };
                    if let Some(w) = words.as_deref_mut() {
                        w.push_raw(&text);
                    }
                    out.push_str(&text);
                }
                _ => {
                    self.scan.next_char();
                    if ch == self.lexer.escape {
                        if raw {
                            if let Some(w) = words.as_deref_mut() {
                                w.push_raw_char(ch);
                            }
                            out.push(ch);
                        }
                        // An escape at the very end of the word is dropped.
                        let Some(escaped) = self.scan.next_char() else {
                            break;
                        };
                        if let Some(w) = words.as_deref_mut() {
                            w.push_raw_char(escaped);
                        }
                        out.push(escaped);
                    } else {
                        if let Some(w) = words.as_deref_mut() {
                            w.push_char(ch);
                        }
                        out.push(ch);
                    }
                }
            }
        }
        match stop {
            // Only reached at the end of the word; the caller names the real problem.
            Some(_) => Err(ExpandError::MissingBrace {
                text: String::new(),
                offset: self.scan.pos(),
            }),
            None => Ok(out),
        }
    }

    /// `'…'`: everything literal up to the next single quote; nothing escapes it.
    fn single_quoted(&mut self) -> Result<String, ExpandError> {
        let start = self.scan.pos();
        self.scan.next_char();
        let mut out = String::new();
        if self.lexer.raw_quotes {
            out.push('\'');
        }
        loop {
            match self.scan.next_char() {
                None => {
                    return Err(ExpandError::UnterminatedQuote {
                        quote: '\'',
                        offset: start,
                    });
                }
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(ch) => out.push(ch),
            }
        }
    }

    /// `"…"`: literal except `$` substitutions, and the escape character, which
    /// escapes only `"`, `$` and itself (otherwise it stays, as in `sh`).
    fn double_quoted(&mut self, raw: bool) -> Result<String, ExpandError> {
        let start = self.scan.pos();
        self.scan.next_char();
        let mut out = String::new();
        if self.lexer.raw_quotes {
            out.push('"');
        }
        loop {
            match self.scan.peek() {
                None => {
                    return Err(ExpandError::UnterminatedQuote {
                        quote: '"',
                        offset: start,
                    });
                }
                Some('"') => {
                    self.scan.next_char();
                    if self.lexer.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some(mut ch) => {
                    self.scan.next_char();
                    if ch == self.lexer.escape {
                        if raw {
                            out.push(ch);
                        }
                        match self.scan.peek() {
                            // Dropped; the missing quote is reported next turn.
                            None => continue,
                            Some(next)
                                if next == '"' || next == '$' || next == self.lexer.escape =>
                            {
                                self.scan.next_char();
                                ch = next;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    /// `<<` (plus any blanks after it) is kept whole so a heredoc marker such as
    /// `<< EOF` stays one word when splitting, as BuildKit's heredoc detection needs.
    fn possible_heredoc(&mut self) -> String {
        self.scan.next_char();
        if !self.scan.eat('<') {
            return "<".to_string();
        }
        let mut out = "<<".to_string();
        while let Some(ch @ (' ' | '\t' | '\r')) = self.scan.peek() {
            self.scan.next_char();
            out.push(ch);
        }
        out
    }

    /// A `$` substitution, with the cursor on the `$`.
    fn dollar(&mut self) -> Result<String, ExpandError> {
        let start = self.scan.pos();
        self.scan.next_char();
        if !self.scan.eat('{') {
            let name = read_name(&mut self.scan);
            if name.is_empty() {
                // `$.`, `$` at the end, `$"`: a literal dollar.
                return Ok("$".to_string());
            }
            return Ok(match self.get(name) {
                Some(value) => value.to_string(),
                None if self.lexer.keep_unset => format!("${name}"),
                None => String::new(),
            });
        }
        match self.scan.peek() {
            None => return Err(self.missing_brace(start)),
            Some('{' | '}' | ':') => {
                self.scan.next_char();
                return Err(ExpandError::BadSubstitution {
                    text: self.snippet(start),
                    offset: start,
                });
            }
            Some(_) => {}
        }
        let name = read_name(&mut self.scan);
        match self.scan.next_char() {
            Some('}') => Ok(match self.get(name) {
                Some(value) => value.to_string(),
                None if self.lexer.keep_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':') => {
                let op = self.scan.next_char();
                self.modifier(start, name, true, op)
            }
            Some(op @ ('+' | '-' | '?' | '#' | '%')) => self.modifier(start, name, false, Some(op)),
            Some('/') => self.substitute(start, name),
            // BuildKit calls this an unsupported modifier (U+FFFD); the brace is what's missing.
            None => Err(self.missing_brace(start)),
            Some(other) => Err(ExpandError::UnsupportedModifier {
                modifier: other.to_string(),
                text: self.snippet(start),
                offset: start,
            }),
        }
    }

    /// `${NAME<op>word}` for `-`, `+`, `?`, `#`, `%`, with or without `:`. The
    /// word is always expanded, even when the operator ends up not using it, so
    /// its variables count as referenced and its errors surface, as in BuildKit.
    fn modifier(
        &mut self,
        start: usize,
        name: &str,
        colon: bool,
        op: Option<char>,
    ) -> Result<String, ExpandError> {
        let mut modifier = String::new();
        if colon {
            modifier.push(':');
        }
        modifier.extend(op);
        let is_pattern = matches!(op, Some('#' | '%'));
        if colon && is_pattern {
            return Err(self.unsupported(start, modifier));
        }
        let word = self.nested(start, '}', is_pattern)?;
        let value = self.get(name);
        let Some(op) = op else {
            return Err(self.unsupported(start, modifier));
        };
        if value.is_none() && self.lexer.keep_unset {
            return Ok(format!("${{{name}{modifier}{word}}}"));
        }
        let missing = match value {
            None => true,
            Some(v) => colon && v.is_empty(),
        };
        match op {
            '-' => Ok(if missing {
                word
            } else {
                value.unwrap_or_default().to_string()
            }),
            '+' => Ok(if missing { String::new() } else { word }),
            '?' => match value {
                Some(v) if !missing => Ok(v.to_string()),
                _ => {
                    let message = if !word.is_empty() {
                        word
                    } else if value.is_none() {
                        "is not allowed to be unset".to_string()
                    } else {
                        "is not allowed to be empty".to_string()
                    };
                    Err(ExpandError::Required {
                        name: name.to_string(),
                        message,
                        offset: start,
                    })
                }
            },
            '#' | '%' => {
                // A doubled operator (`##`, `%%`) asks for the longest match.
                let (longest, pattern) = match word.strip_prefix(op) {
                    Some(rest) => (true, rest),
                    None => (false, word.as_str()),
                };
                let value = value.unwrap_or_default();
                let result = if op == '#' {
                    trim_prefix(value, pattern, longest)
                } else {
                    trim_suffix(value, pattern, longest)
                };
                result.map_err(|source| invalid_pattern(pattern, source, start))
            }
            _ => Err(self.unsupported(start, modifier)),
        }
    }

    /// `${NAME/pattern/replacement}` and `${NAME//pattern/replacement}`.
    fn substitute(&mut self, start: usize, name: &str) -> Result<String, ExpandError> {
        let all = self.scan.eat('/');
        let pattern = self.nested(start, '/', true)?;
        let replacement = self.nested(start, '}', true)?;
        let value = self.get(name);
        if value.is_none() && self.lexer.keep_unset {
            let slashes = if all { "//" } else { "/" };
            return Ok(format!("${{{name}{slashes}{pattern}/{replacement}}}"));
        }
        replace(value.unwrap_or_default(), &pattern, &replacement, all)
            .map_err(|source| invalid_pattern(&pattern, source, start))
    }

    /// Expands the word inside `${…}` up to `stop`, one nesting level deeper. Any
    /// failure that ran into the end of the word is reported as the missing
    /// closing `}` (or `/`) of the substitution that started at `start`.
    fn nested(&mut self, start: usize, stop: char, raw: bool) -> Result<String, ExpandError> {
        if self.depth >= MAX_DEPTH {
            return Err(ExpandError::TooDeep {
                limit: MAX_DEPTH,
                offset: start,
            });
        }
        self.depth += 1;
        let result = self.sequence(Some(stop), raw, None);
        self.depth -= 1;
        result.map_err(|err| {
            if !self.scan.at_end() {
                err
            } else if stop == '/' {
                ExpandError::MissingSlash {
                    text: self.scan.from(start).to_string(),
                    offset: start,
                }
            } else {
                self.missing_brace(start)
            }
        })
    }

    /// Looks a variable up and records it as used or unset.
    fn get(&mut self, name: &str) -> Option<&'e str> {
        let value = self.env.lookup(name);
        let set = if value.is_some() {
            &mut self.used
        } else {
            &mut self.unset
        };
        if !set.contains(name) {
            set.insert(name.to_string());
        }
        value
    }

    fn missing_brace(&self, start: usize) -> ExpandError {
        ExpandError::MissingBrace {
            text: self.scan.from(start).to_string(),
            offset: start,
        }
    }

    fn unsupported(&self, start: usize, modifier: String) -> ExpandError {
        ExpandError::UnsupportedModifier {
            modifier,
            text: self.snippet(start),
            offset: start,
        }
    }

    /// The substitution that failed, for the error message: from its `$` through
    /// the next `}` at or after the cursor (or to the end of the word).
    fn snippet(&self, start: usize) -> String {
        let upto = self.scan.since(start);
        let rest = self.scan.rest();
        if upto.ends_with('}') {
            return upto.to_string();
        }
        match rest.find('}') {
            Some(i) => format!("{upto}{}", rest.get(..=i).unwrap_or_default()),
            None => format!("{upto}{rest}"),
        }
    }
}

fn invalid_pattern(pattern: &str, source: PatternError, offset: usize) -> ExpandError {
    ExpandError::InvalidPattern {
        pattern: pattern.to_string(),
        source,
        offset,
    }
}
