//! Parser directives: `# syntax=…`, `# escape=…`, `# check=…`.
//!
//! BuildKit only honours them at the very top of the file: the first line that is not
//! a directive (an instruction, a blank line, any other comment, even an unknown
//! `# foo=bar`) ends the directive section for good. Keys are case-insensitive, a key
//! may appear once, and `escape` accepts only `` ` `` or `\`.

use nom::{
    IResult, Parser,
    bytes::complete::{tag, take_while},
    character::complete::satisfy,
    combinator::recognize,
};

use super::node::Directives;

/// Why a directive line was rejected. The messages are BuildKit's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum DirectiveError {
    #[error("only one {0} parser directive can be used")]
    Duplicate(&'static str),
    #[error("invalid escape token '{0}' does not match ` or \\")]
    InvalidEscape(String),
}

/// What a directive line did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Not a directive (and, from now on, no line will be).
    NotDirective,
    /// A directive; the escape character may have changed.
    Directive,
}

/// Tracks the directive section at the top of a Dockerfile.
#[derive(Debug, Default)]
pub(super) struct DirectiveParser {
    done: bool,
    pub directives: Directives,
}

impl DirectiveParser {
    /// Looks at one line (newline and leading whitespace already trimmed).
    pub fn feed(&mut self, line: &str) -> Result<Outcome, DirectiveError> {
        if self.done {
            return Ok(Outcome::NotDirective);
        }
        let Some((key, value)) = split_directive(line) else {
            self.done = true;
            return Ok(Outcome::NotDirective);
        };
        let (name, slot_taken) = match key.to_ascii_lowercase().as_str() {
            "syntax" => ("syntax", self.directives.syntax.is_some()),
            "escape" => ("escape", self.directives.escape.is_some()),
            "check" => ("check", self.directives.check.is_some()),
            // An unknown key is an ordinary comment, and it ends the directive section.
            _ => {
                self.done = true;
                return Ok(Outcome::NotDirective);
            }
        };
        if slot_taken {
            return Err(DirectiveError::Duplicate(name));
        }
        match name {
            "syntax" => self.directives.syntax = Some(value.to_string()),
            "check" => self.directives.check = Some(value.to_string()),
            _ => self.directives.escape = Some(escape_token(value)?),
        }
        Ok(Outcome::Directive)
    }
}

/// Only `` ` `` and `\` can be escape characters.
fn escape_token(value: &str) -> Result<char, DirectiveError> {
    match value {
        "`" => Ok('`'),
        "\\" => Ok('\\'),
        other => Err(DirectiveError::InvalidEscape(other.to_string())),
    }
}

/// Go's regexp `\s`: ASCII whitespace without `\v`.
fn is_go_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r')
}

fn directive_key(input: &str) -> IResult<&str, &str> {
    recognize((
        satisfy(|c| c.is_ascii_alphabetic()),
        take_while(|c: char| c.is_ascii_alphanumeric()),
    ))
    .parse(input)
}

fn key_and_equals(input: &str) -> IResult<&str, &str> {
    let (rest, key) = directive_key(input)?;
    let (rest, _) = (take_while(is_go_space), tag("=")).parse(rest)?;
    Ok((rest, key))
}

/// Splits `#  key = value  ` into key and value the way BuildKit's
/// `^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` does (after `#` and leading whitespace).
fn split_directive(line: &str) -> Option<(&str, &str)> {
    let body = line.strip_prefix('#')?.trim_start();
    let (after_eq, key) = key_and_equals(body).ok()?;
    // The value needs at least one character. When everything after `=` is blank, the
    // regex backs off and keeps the last blank as the value.
    let value = after_eq.trim_start_matches(is_go_space);
    let value = if value.is_empty() {
        let last = after_eq.chars().next_back()?;
        after_eq.get(after_eq.len() - last.len_utf8()..)?
    } else {
        value.trim_end_matches(is_go_space)
    };
    Some((key, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_buildkit_regex() {
        assert_eq!(split_directive("# escape=`"), Some(("escape", "`")));
        assert_eq!(split_directive("#escape = ` "), Some(("escape", "`")));
        assert_eq!(
            split_directive("# Syntax = docker/dockerfile:1 "),
            Some(("Syntax", "docker/dockerfile:1"))
        );
        assert_eq!(split_directive("# escape=  "), Some(("escape", " ")));
        assert_eq!(split_directive("# escape="), None);
        assert_eq!(split_directive("# 1x=y"), None);
        assert_eq!(split_directive("# hello world"), None);
        assert_eq!(split_directive("escape=`"), None);
    }

    #[test]
    fn section_ends_at_first_other_line() {
        let mut p = DirectiveParser::default();
        assert_eq!(p.feed("# syntax=a").unwrap(), Outcome::Directive);
        assert_eq!(p.feed("# foo=bar").unwrap(), Outcome::NotDirective);
        assert_eq!(p.feed("# escape=`").unwrap(), Outcome::NotDirective);
        assert_eq!(p.directives.syntax.as_deref(), Some("a"));
        assert_eq!(p.directives.escape, None);
    }

    #[test]
    fn duplicates_and_bad_escapes_fail() {
        let mut p = DirectiveParser::default();
        p.feed("# ESCAPE=`").unwrap();
        assert_eq!(
            p.feed("# escape=\\").unwrap_err().to_string(),
            "only one escape parser directive can be used"
        );
        let mut p = DirectiveParser::default();
        assert_eq!(
            p.feed("# escape=x").unwrap_err().to_string(),
            "invalid escape token 'x' does not match ` or \\"
        );
    }
}
