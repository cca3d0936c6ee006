//! Shell-word expansion with BuildKit's semantics.
//!
//! Dockerfile instructions such as `COPY`, `ENV`, `WORKDIR` or `FROM` expand
//! `$VAR` themselves (the shell never sees them), and users rely on every quirk of
//! BuildKit's lexer (`frontend/dockerfile/shell/lex.go`): which operators exist,
//! how quotes and the escape character interact, what splits into words. This
//! module reproduces those rules and is checked against BuildKit's own test data
//! (`shared/conformance/shell`).
//!
//! Supported: `$VAR`, `${VAR}`, `${VAR:-x}`, `${VAR-x}`, `${VAR:+x}`, `${VAR+x}`,
//! `${VAR:?msg}`, `${VAR?msg}`, `${VAR#p}`, `${VAR##p}`, `${VAR%p}`, `${VAR%%p}`,
//! `${VAR/p/r}`, `${VAR//p/r}`, single and double quotes, and the escape character
//! (`\` or `` ` ``). Positional and special parameters (`$1`, `$@`, `$#`, …) are
//! names like any other and normally unset. Anything else inside `${…}` is an error.
//!
//! Every expansion reports which variables it looked up, split into those that
//! were set ([`Expanded::used`], which the build cache key needs) and those that
//! were not ([`Expanded::unset`], for "undefined variable" warnings).
//!
//! Known deviations from BuildKit, all in error paths or in BuildKit bugs, are
//! listed on [`Lexer`].

use std::collections::BTreeSet;

mod env;
mod error;
mod expand;
mod modifiers;
mod names;
mod pattern;
mod scanner;
mod words;

#[cfg(test)]
mod tests;

pub use env::{EmptyEnv, Env};
pub use error::ExpandError;
pub use expand::MAX_DEPTH;
pub use pattern::PatternError;

use expand::Expander;
use names::{is_name_char, is_special_param};
use words::Words;

/// The result of an expansion and the variables it referenced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expanded<T> {
    pub value: T,
    /// Variables the word referenced that were set (cache keys need them).
    pub used: BTreeSet<String>,
    /// Variables referenced but not set (for "undefined variable" warnings).
    /// Includes positional/special names such as `1` or `@` when referenced.
    pub unset: BTreeSet<String>,
}

/// A configured expander. Cheap to build and to copy; holds no state between calls.
///
/// Differences from BuildKit, chosen knowingly:
/// - Error messages name the offending substitution, and `${VAR` reports the
///   missing `}` (BuildKit: "unsupported modifier (\u{fffd})").
/// - `expand_words` on a word holding `${VAR<op>word}` keeps the text before the
///   substitution; BuildKit's `ProcessWords` shares one buffer between nesting
///   levels and loses it (`a${X:-b}c` gives `abc`, not `bc`).
/// - In [`keep_unset`](Lexer::keep_unset) mode, `${VAR//p/r}` is kept with both
///   slashes (BuildKit writes one back, turning replace-all into replace-first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    literal_quotes: bool,
    keep_unset: bool,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer::new('\\')
    }
}

impl Lexer {
    /// An expander using `escape` (`\`, or `` ` `` after `# escape=``) as the escape character.
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            literal_quotes: false,
            keep_unset: false,
        }
    }

    /// The escape character this expander honours.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// Keep quote characters in the output instead of removing them (BuildKit's
    /// `RawQuotes`; used to tell whether a heredoc delimiter was quoted).
    pub fn raw_quotes(mut self, on: bool) -> Self {
        self.raw_quotes = on;
        self
    }

    /// Keep escape characters in the output (BuildKit's `RawEscapes`).
    pub fn raw_escapes(mut self, on: bool) -> Self {
        self.raw_escapes = on;
        self
    }

    /// Treat `'` and `"` as ordinary characters (BuildKit's `SkipProcessQuotes`,
    /// used when expanding heredoc bodies, where quotes belong to the content).
    pub fn literal_quotes(mut self, on: bool) -> Self {
        self.literal_quotes = on;
        self
    }

    /// Leave references to unset variables as written, `$VAR`, `${VAR:-x}` and
    /// all (BuildKit's `SkipUnsetEnv`). With [`EmptyEnv`] this is the
    /// non-expanding mode: quotes and escapes are processed, no `$` is replaced
    /// and `${VAR:?msg}` does not fail. See [`Lexer::split_words`].
    pub fn keep_unset(mut self, on: bool) -> Self {
        self.keep_unset = on;
        self
    }

    /// Expands one word: quotes removed, variables expanded, no field splitting
    /// (BuildKit's `ProcessWord`).
    pub fn expand_word(&self, word: &str, env: &dyn Env) -> Result<Expanded<String>, ExpandError> {
        let mut expander = Expander::new(self, word, env);
        let value = expander.run(None)?;
        Ok(Expanded {
            value,
            used: expander.used,
            unset: expander.unset,
        })
    }

    /// Expands and splits into words on unquoted whitespace, including whitespace
    /// produced by unquoted expansions (BuildKit's `ProcessWords`). Quoted empty
    /// strings produce no word.
    pub fn expand_words(
        &self,
        word: &str,
        env: &dyn Env,
    ) -> Result<Expanded<Vec<String>>, ExpandError> {
        let mut expander = Expander::new(self, word, env);
        let mut words = Words::default();
        expander.run(Some(&mut words))?;
        Ok(Expanded {
            value: words.finish(),
            used: expander.used,
            unset: expander.unset,
        })
    }

    /// Splits `word` into words without expanding anything: `$VAR` stays as
    /// written, quotes and escapes are processed as usual.
    pub fn split_words(&self, word: &str) -> Result<Vec<String>, ExpandError> {
        Ok(self.keep_unset(true).expand_words(word, &EmptyEnv)?.value)
    }
}

/// Whether expanding `word` with escape character `escape` would look up any
/// variable, i.e. whether it has a `$NAME` or `${` outside single quotes and not
/// escaped. Lets callers skip expansion (and keep the text byte-identical) when
/// there is nothing to expand. Malformed `${` counts, so its error is not skipped.
pub fn contains_vars(word: &str, escape: char) -> bool {
    let mut chars = word.chars().peekable();
    let mut in_double = false;
    while let Some(ch) = chars.next() {
        if ch == escape {
            // Outside double quotes the escape protects any character; inside,
            // only `"`, `$` and the escape character itself.
            let protects = match chars.peek() {
                Some(&next) => !in_double || next == '"' || next == '$' || next == escape,
                None => false,
            };
            if protects {
                chars.next();
            }
        } else if ch == '\'' && !in_double {
            for inner in chars.by_ref() {
                if inner == '\'' {
                    break;
                }
            }
        } else if ch == '"' {
            in_double = !in_double;
        } else if ch == '$'
            && let Some(&next) = chars.peek()
            && (next == '{' || is_name_char(next) || is_special_param(next))
        {
            return true;
        }
    }
    false
}
