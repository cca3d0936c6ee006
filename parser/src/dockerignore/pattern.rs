//! One ignore pattern: cleaning, the `!` prefix, syntax checking and matching.
//!
//! Docker (moby/patternmatcher) picks one of four ways to compare a pattern with a path,
//! and the choice is visible in results, so it is reproduced exactly:
//!
//! * **exact** — no wildcard, class or escape: the path must equal the pattern;
//! * **prefix** — literal text then a final `**` (`dir/**`): the path must start with the
//!   text before `**` (so `abc/**` does not match `abc`, and `abc**` matches `abcdef`);
//! * **suffix** — `**` first and literal text after it (`**/foo`): the path must end with
//!   the text after `**`, or equal it minus its leading `/` (so `**file` also matches
//!   `myfile`, where the regular expression Docker would otherwise build would not);
//! * **glob** — everything else, run by [`Glob`] with Docker's regular-expression meaning.

use std::fmt;

use super::class::{Class, ClassError};
use super::clean::clean;
use super::glob::{Glob, Step};

/// Why a pattern cannot be used. Docker rejects the same patterns (through
/// `filepath.Match`'s syntax check, or its regexp compiler for reversed ranges).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("illegal exclusion pattern: \"!\" (a '!' needs a pattern after it)")]
    LoneExclamation,
    #[error("invalid pattern {pattern:?}: a trailing '\\' escapes nothing")]
    TrailingBackslash { pattern: String },
    #[error("invalid pattern {pattern:?}: {source}")]
    Class {
        pattern: String,
        #[source]
        source: ClassError,
    },
}

/// A compiled ignore pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The cleaned pattern without its `!`, as Docker's `Pattern.String()` shows it.
    text: String,
    exception: bool,
    form: Form,
}

/// How the pattern is compared with a path; see the module documentation.
#[derive(Debug, Clone)]
enum Form {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Glob(Glob),
}

/// Which [`Form`] the scan has settled on so far (Docker's `matchType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Glob,
}

impl Pattern {
    /// Compiles one pattern the way Docker's `patternmatcher.New` does: surrounding
    /// whitespace is trimmed, the pattern is cleaned like a path (`filepath.Clean`), and a
    /// leading `!` makes it an exception that re-includes what it matches. Returns
    /// `Ok(None)` for a blank pattern, which Docker skips.
    pub fn parse(raw: &str) -> Result<Option<Pattern>, PatternError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        let cleaned = clean(trimmed);
        let (exception, text) = match cleaned.strip_prefix('!') {
            Some("") => return Err(PatternError::LoneExclamation),
            Some(rest) => (true, rest.to_string()),
            None => (false, cleaned),
        };
        let form = compile(&text)?;
        Ok(Some(Pattern {
            text,
            exception,
            form,
        }))
    }

    /// The cleaned pattern, without the `!` of an exception.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether this is a `!` pattern, re-including what earlier patterns excluded.
    pub fn is_exception(&self) -> bool {
        self.exception
    }

    /// Whether the pattern matches `path` itself (Docker's `Pattern.match`).
    pub fn matches(&self, path: &str) -> bool {
        match &self.form {
            Form::Exact(text) => path == text,
            Form::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Form::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            Form::Glob(glob) => glob.matches(path),
        }
    }

    /// Whether the pattern matches `dir` or one of its ancestors: `dir` cut just before
    /// each `/`, then `dir` whole — the parents Docker tries for a path in `dir`.
    pub(crate) fn matches_dir_or_ancestor(&self, dir: &str) -> bool {
        match &self.form {
            Form::Glob(glob) => glob.matches_dir_or_ancestor(dir),
            _ => dir
                .match_indices('/')
                .filter_map(|(i, _)| dir.get(..i))
                .chain([dir])
                .any(|prefix| self.matches(prefix)),
        }
    }

    /// Whether the pattern might match some path strictly below `dir` (`dir/…`).
    /// May say `true` when no such path exists, never `false` when one does.
    pub(crate) fn could_match_below(&self, dir: &str) -> bool {
        let below = format!("{dir}/");
        match &self.form {
            Form::Exact(text) => text.len() > below.len() && text.starts_with(&below),
            Form::Prefix(prefix) => {
                prefix.starts_with(&below) || below.starts_with(prefix.as_str())
            }
            // `dir/x<suffix>` ends with any suffix.
            Form::Suffix(_) => true,
            Form::Glob(glob) => glob.could_match_below(dir),
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.exception {
            f.write_str("!")?;
        }
        f.write_str(&self.text)
    }
}

/// Scans a cleaned pattern (without `!`) into its [`Form`], following the order of
/// decisions in Docker's `Pattern.compile` so that the same form is chosen.
fn compile(text: &str) -> Result<Form, PatternError> {
    let mut glob = Glob::new();
    let mut kind = Kind::Exact;
    let mut chars = text.chars().peekable();
    let mut first = true;
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.next_if_eq(&'*').is_some() => {
                // `**/` is the same as `**`.
                chars.next_if_eq(&'/');
                if chars.peek().is_none() {
                    if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        glob.push(Step::AnyText);
                        kind = Kind::Glob;
                    }
                } else {
                    glob.push_dirs();
                    kind = Kind::Glob;
                }
                if first {
                    kind = Kind::Suffix;
                }
            }
            '*' => {
                glob.push(Step::Star);
                kind = Kind::Glob;
            }
            '?' => {
                glob.push(Step::AnyChar);
                kind = Kind::Glob;
            }
            '\\' => match chars.next() {
                Some(escaped) => {
                    glob.push(Step::Char(escaped));
                    kind = Kind::Glob;
                }
                None => {
                    return Err(PatternError::TrailingBackslash {
                        pattern: text.to_string(),
                    });
                }
            },
            '[' => {
                let class = Class::parse(&mut chars).map_err(|source| PatternError::Class {
                    pattern: text.to_string(),
                    source,
                })?;
                glob.push(Step::Class(class));
                kind = Kind::Glob;
            }
            // A stray `]` is literal, but Docker still switches to its regexp path.
            ']' => {
                glob.push(Step::Char(']'));
                kind = Kind::Glob;
            }
            other => glob.push(Step::Char(other)),
        }
        first = false;
    }
    Ok(match kind {
        Kind::Exact => Form::Exact(text.to_string()),
        Kind::Prefix => match text.strip_suffix("**") {
            Some(prefix) => Form::Prefix(prefix.to_string()),
            None => Form::Glob(glob),
        },
        Kind::Suffix => match text.strip_prefix("**") {
            Some(suffix) => Form::Suffix(suffix.to_string()),
            None => Form::Glob(glob),
        },
        Kind::Glob => Form::Glob(glob),
    })
}

#[cfg(test)]
mod tests {
    use super::{Form, Pattern, PatternError};
    use crate::dockerignore::class::ClassError;

    fn pattern(raw: &str) -> Pattern {
        Pattern::parse(raw).unwrap().unwrap()
    }

    fn form(raw: &str) -> &'static str {
        match pattern(raw).form {
            Form::Exact(_) => "exact",
            Form::Prefix(_) => "prefix",
            Form::Suffix(_) => "suffix",
            Form::Glob(_) => "glob",
        }
    }

    #[test]
    fn picks_dockers_form() {
        assert_eq!(form("a.b(c)$"), "exact");
        assert_eq!(form("dir/**"), "prefix");
        assert_eq!(form("abc**"), "prefix");
        assert_eq!(form("**"), "suffix");
        assert_eq!(form("**/foo.bar"), "suffix");
        assert_eq!(form("**/*.txt"), "glob");
        assert_eq!(form("**/a**"), "glob");
        assert_eq!(form("a\\b"), "glob");
        assert_eq!(form("a]"), "glob");
        assert_eq!(form("a/*.txt**"), "glob");
    }

    #[test]
    fn form_quirks_are_dockers() {
        // Suffix form: `**file` is "ends with file".
        assert!(pattern("**file").matches("myfile"));
        // Glob form: `**` inside is `(.*/)?`, so `a**b` needs a slash or nothing between.
        assert!(pattern("a**b").matches("ab"));
        assert!(pattern("a**b").matches("a/x/b"));
        assert!(!pattern("a**b").matches("axb"));
        // Prefix form: plain string prefix.
        assert!(pattern("abc**").matches("abcdef/x"));
        assert!(!pattern("abc/**").matches("abc"));
        // Escapes are literal characters.
        assert!(pattern("a\\*b").matches("a*b"));
        assert!(!pattern("a\\*b").matches("axb"));
        assert!(pattern("\\d").matches("d"));
    }

    #[test]
    fn parse_trims_cleans_and_reads_the_bang() {
        assert!(Pattern::parse("   ").unwrap().is_none());
        let p = pattern("  ./a//b/../c/  ");
        assert_eq!((p.text(), p.is_exception()), ("a/c", false));
        let p = pattern("!docs/README.md");
        assert_eq!((p.text(), p.is_exception()), ("docs/README.md", true));
        assert_eq!(p.to_string(), "!docs/README.md");
        // Like Docker's New, the text after `!` is not trimmed again.
        assert_eq!(pattern("! x").text(), " x");
    }

    #[test]
    fn rejects_what_docker_rejects() {
        assert_eq!(
            Pattern::parse("!").unwrap_err(),
            PatternError::LoneExclamation
        );
        assert_eq!(
            Pattern::parse(" !/ ").unwrap_err(),
            PatternError::LoneExclamation
        );
        assert!(matches!(
            Pattern::parse("a\\").unwrap_err(),
            PatternError::TrailingBackslash { .. }
        ));
        assert_eq!(
            Pattern::parse("[").unwrap_err(),
            PatternError::Class {
                pattern: "[".into(),
                source: ClassError::Unclosed
            }
        );
        assert!(Pattern::parse("!a[b-").is_err());
        assert!(Pattern::parse("x/[z-a]").is_err());
    }

    #[test]
    fn ancestors_and_below() {
        let p = pattern("docs");
        assert!(p.matches_dir_or_ancestor("docs/img"));
        assert!(!p.matches_dir_or_ancestor("a/docs"));
        assert!(!p.could_match_below("docs"));

        assert!(pattern("a/b/c").could_match_below("a"));
        assert!(pattern("a/b/c").could_match_below("a/b"));
        assert!(!pattern("a/b/c").could_match_below("a/b/c"));
        assert!(!pattern("a/b").could_match_below("ab"));
        assert!(pattern("a/**").could_match_below("a/b"));
        assert!(pattern("a/b**").could_match_below("a"));
        assert!(!pattern("a/b**").could_match_below("c"));
        assert!(pattern("**/keep").could_match_below("anything"));
        assert!(pattern("*/keep").could_match_below("x"));
        assert!(!pattern("*/keep").could_match_below("x/y"));
    }
}
