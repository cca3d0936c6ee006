//! Bracket expressions: `[abc]`, `[a-z]`, `[^0-9]`.
//!
//! The grammar is Go's `filepath.Match` (Docker validates every pattern with it):
//! `[` then an optional `^`, then one or more ranges `lo` or `lo-hi` (a `\` escapes the
//! next character), then `]`. A `]` closes the class only after the first range, and an
//! unescaped `-` or `]` can never be a range bound, so `[]`, `[-a]` and `[a-]` are errors.
//! Inside a class every other character is literal, including `*`, `?` and `/`.

use std::iter::Peekable;

/// One parsed bracket expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Class {
    negated: bool,
    /// Inclusive ranges; a single character `c` is `(c, c)`.
    ranges: Vec<(char, char)>,
}

/// Why a bracket expression is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClassError {
    #[error("'[' is not closed by ']'")]
    Unclosed,
    #[error("unescaped '{0}' where a character class expects a character (write '\\{0}')")]
    MisplacedBound(char),
    // Go's filepath.Match accepts a reversed range (it matches nothing), but Docker hands
    // the class to Go's regexp package, which rejects it when the pattern is first used,
    // failing the build. Rejecting it up front gives the same outcome with a line number.
    #[error("character class range '{lo}-{hi}' is reversed")]
    Reversed { lo: char, hi: char },
}

impl Class {
    /// Parses a class whose opening `[` has just been consumed from `chars`, consuming
    /// everything up to and including the closing `]`.
    pub(crate) fn parse(
        chars: &mut Peekable<impl Iterator<Item = char>>,
    ) -> Result<Self, ClassError> {
        let negated = chars.next_if_eq(&'^').is_some();
        let mut ranges = Vec::new();
        loop {
            if !ranges.is_empty() && chars.next_if_eq(&']').is_some() {
                return Ok(Class { negated, ranges });
            }
            let lo = bound(chars)?;
            let hi = if chars.next_if_eq(&'-').is_some() {
                bound(chars)?
            } else {
                lo
            };
            if lo > hi {
                return Err(ClassError::Reversed { lo, hi });
            }
            ranges.push((lo, hi));
        }
    }

    /// Whether `c` is in the class. A negated class also matches `/` and newlines, as
    /// both `filepath.Match` and Go's regexp (compiled with `ClassNL`) do.
    pub(crate) fn matches(&self, c: char) -> bool {
        let inside = self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
        inside != self.negated
    }
}

/// One range bound: any character but an unescaped `-` or `]`, with `\` escaping.
fn bound(chars: &mut impl Iterator<Item = char>) -> Result<char, ClassError> {
    match chars.next() {
        None => Err(ClassError::Unclosed),
        Some(c @ ('-' | ']')) => Err(ClassError::MisplacedBound(c)),
        Some('\\') => chars.next().ok_or(ClassError::Unclosed),
        Some(c) => Ok(c),
    }
}

#[cfg(test)]
mod tests {
    use super::{Class, ClassError};

    /// Parses the class after a leading `[`, returning it and what was left unconsumed.
    fn parse(text: &str) -> (Result<Class, ClassError>, String) {
        let mut chars = text
            .strip_prefix('[')
            .expect("test input starts with [")
            .chars()
            .peekable();
        let class = Class::parse(&mut chars);
        (class, chars.collect())
    }

    #[test]
    fn ranges_negation_and_escapes() {
        let (class, rest) = parse("[b-d]e");
        let class = class.unwrap();
        assert_eq!(rest, "e");
        assert!(class.matches('c') && class.matches('b') && class.matches('d'));
        assert!(!class.matches('a') && !class.matches('e'));

        let class = parse("[^b-d]").0.unwrap();
        assert!(class.matches('z') && class.matches('/') && class.matches('\n'));
        assert!(!class.matches('c'));

        // `]` after the first range closes; escaped `]` and `-` are literal; `*` is literal.
        let class = parse("[\\]\\-*]").0.unwrap();
        assert!(class.matches(']') && class.matches('-') && class.matches('*'));
        assert!(!class.matches('a'));

        // `!` is not negation in Go's grammar, `[` inside a class is literal.
        let class = parse("[!a[]").0.unwrap();
        assert!(class.matches('!') && class.matches('a') && class.matches('['));
        assert!(!class.matches('b'));

        // Multi-byte characters are single characters.
        let class = parse("[é-ë]").0.unwrap();
        assert!(class.matches('ê') && !class.matches('e'));
    }

    #[test]
    fn malformed_classes() {
        let cases = [
            ("[", ClassError::Unclosed),
            ("[a", ClassError::Unclosed),
            ("[a-z", ClassError::Unclosed),
            ("[a\\", ClassError::Unclosed),
            ("[]", ClassError::MisplacedBound(']')),
            ("[]a]", ClassError::MisplacedBound(']')),
            ("[^]", ClassError::MisplacedBound(']')),
            ("[-a]", ClassError::MisplacedBound('-')),
            ("[a-]", ClassError::MisplacedBound(']')),
            ("[a-b-c]", ClassError::MisplacedBound('-')),
            ("[z-a]", ClassError::Reversed { lo: 'z', hi: 'a' }),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).0, Err(want), "{text:?}");
        }
    }
}
