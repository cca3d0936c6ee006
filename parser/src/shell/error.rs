//! Why a word could not be expanded.

use super::pattern::PatternError;
use crate::error::Diagnostic;

/// An expansion failure. Messages follow BuildKit's wording and add the offending
/// text; `offset` is the byte offset in the expanded word where the problem
/// starts (the opening quote, or the `$` of the substitution), so callers can
/// point a [`Diagnostic`] at it with [`ExpandError::diagnostic`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// `'abc` or `"abc`: the quote is never closed.
    #[error("unexpected end of statement while looking for matching {}", quote_name(.quote))]
    UnterminatedQuote { quote: char, offset: usize },

    /// `${VAR` or `${VAR:-x`: the word ends before the closing brace.
    #[error("syntax error: missing '}}' in \"{text}\"")]
    MissingBrace { text: String, offset: usize },

    /// `${}`, `${{x}`, `${:x}`: no parameter name where one must be.
    #[error("syntax error: bad substitution in \"{text}\"")]
    BadSubstitution { text: String, offset: usize },

    /// `${VAR:=x}`, `${VAR.}`, `${VAR:#x}`: an operator BuildKit does not implement.
    #[error("unsupported modifier ({modifier}) in substitution \"{text}\"")]
    UnsupportedModifier {
        modifier: String,
        text: String,
        offset: usize,
    },

    /// `${VAR/pattern` without the `/` that starts the replacement.
    #[error("syntax error: missing '/' in \"{text}\"")]
    MissingSlash { text: String, offset: usize },

    /// `${VAR?msg}` with VAR unset, or `${VAR:?msg}` with VAR unset or empty.
    #[error("{name}: {message}")]
    Required {
        name: String,
        message: String,
        offset: usize,
    },

    /// A `#`, `%` or `/` pattern with a bad escape, e.g. `${VAR#\x}`.
    #[error("invalid pattern ({pattern}) in substitution: {source}")]
    InvalidPattern {
        pattern: String,
        #[source]
        source: PatternError,
        offset: usize,
    },

    /// `${a:-${b:-${c:-…}}}` nested past the limit; refused so that hostile input
    /// cannot exhaust the stack.
    #[error("substitutions nested more than {limit} levels deep")]
    TooDeep { limit: usize, offset: usize },
}

fn quote_name(quote: &char) -> &'static str {
    if *quote == '\'' {
        "single-quote"
    } else {
        "double-quote"
    }
}

impl ExpandError {
    /// Byte offset in the word where the problem starts.
    pub fn offset(&self) -> usize {
        match self {
            ExpandError::UnterminatedQuote { offset, .. }
            | ExpandError::MissingBrace { offset, .. }
            | ExpandError::BadSubstitution { offset, .. }
            | ExpandError::UnsupportedModifier { offset, .. }
            | ExpandError::MissingSlash { offset, .. }
            | ExpandError::Required { offset, .. }
            | ExpandError::InvalidPattern { offset, .. }
            | ExpandError::TooDeep { offset, .. } => *offset,
        }
    }

    /// A located diagnostic for a word that starts at byte `word_start` of `src`
    /// (the Dockerfile text), pointing at the problem inside the word.
    pub fn diagnostic(&self, src: &str, word_start: usize) -> Diagnostic {
        Diagnostic::new(self.to_string()).at(src, word_start.saturating_add(self.offset()))
    }
}
