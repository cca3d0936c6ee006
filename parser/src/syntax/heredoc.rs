//! Heredoc markers (`<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`) on RUN, COPY and ADD lines.
//!
//! BuildKit splits the whole instruction line into shell words (quotes and escapes
//! kept), and every word of the form `[fd]<<[-][blanks]word` names a heredoc. The
//! delimiter is that word with quotes removed; if removing quotes changed it, the body
//! is taken literally (`expand` is false). Bodies are read by the caller, one after
//! the other, from the lines that follow the instruction.

use nom::{
    IResult, Parser,
    bytes::complete::{tag, take_while},
    character::complete::{char, digit0},
    combinator::{all_consuming, opt},
};

use crate::shell::{ExpandError, Lexer};

/// A heredoc marker found on an instruction line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Marker {
    /// The delimiter, quotes removed.
    pub name: String,
    /// False when the delimiter was (partly) quoted.
    pub expand: bool,
    /// True for `<<-`: leading tabs are stripped from body lines and the terminator.
    pub chomp: bool,
    /// The descriptor before `<<` (`3<<EOF`), 0 when none.
    pub fd: u32,
}

impl Marker {
    /// The marker as a person would write it, for messages: `<<-EOF`.
    pub fn display(&self) -> String {
        format!("<<{}{}", if self.chomp { "-" } else { "" }, self.name)
    }
}

/// A marker word that BuildKit rejects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum HeredocError {
    #[error("failed to process {source_text}: {error}")]
    Lex {
        /// The delimiter text, quoted like Go's `%q`.
        source_text: String,
        error: ExpandError,
    },
    #[error("internal lexing of heredoc produced inconsistent results: {0}")]
    Inconsistent(String),
}

/// Finds the heredoc markers of an instruction line, in order.
///
/// A line the lexer cannot split (an unclosed quote, say) has no heredocs, as in
/// BuildKit, which ignores that error.
pub(super) fn markers_in_line(line: &str) -> Result<Vec<Marker>, HeredocError> {
    let Ok(words) = split(line, true, true) else {
        return Ok(Vec::new());
    };
    let mut markers = Vec::new();
    for word in &words {
        if let Some(marker) = parse_marker(word)? {
            markers.push(marker);
        }
    }
    Ok(markers)
}

/// Splits a line into shell words the way BuildKit looks for heredocs: escapes are
/// always `\\` whatever `# escape=` says, and nothing is expanded.
fn split(src: &str, raw_quotes: bool, raw_escapes: bool) -> Result<Vec<String>, ExpandError> {
    Lexer::new('\\')
        .raw_quotes(raw_quotes)
        .raw_escapes(raw_escapes)
        .split_words(src)
}

/// The parts of `^(\d*)<<(-?)\s*([^<]*)$`.
fn marker_parts(word: &str) -> IResult<&str, (&str, bool, &str)> {
    all_consuming((
        digit0,
        tag("<<"),
        opt(char('-')),
        take_while(|c| matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r')),
        take_while(|c| c != '<'),
    ))
    .map(|(fd, _, dash, _, rest)| (fd, dash.is_some(), rest))
    .parse(word)
}

/// Reads one word as a heredoc marker (BuildKit's `ParseHeredoc`); `None` when it is not one.
pub(super) fn parse_marker(word: &str) -> Result<Option<Marker>, HeredocError> {
    let Ok((_, (fd, chomp, rest))) = marker_parts(word) else {
        return Ok(None);
    };
    if rest.is_empty() {
        return Ok(None);
    }
    let lex = |raw_quotes| {
        split(rest, raw_quotes, false).map_err(|error| HeredocError::Lex {
            source_text: super::dump::go_quote(rest),
            error,
        })
    };
    let cooked = lex(false)?;
    let [name] = cooked.as_slice() else {
        return Ok(None);
    };
    let raw = lex(true)?;
    let [raw_name] = raw.as_slice() else {
        return Err(HeredocError::Inconsistent(rest.to_string()));
    };
    let quotes = |s: &str| s.chars().filter(|c| matches!(c, '\'' | '"')).count();
    Ok(Some(Marker {
        name: name.clone(),
        expand: quotes(name) == quotes(raw_name),
        chomp,
        // Go parses the digits as an unsigned integer and ignores failures; we
        // saturate instead of wrapping on absurdly long digit runs.
        fd: if fd.is_empty() {
            0
        } else {
            fd.parse().unwrap_or(u32::MAX)
        },
    }))
}

/// Removes leading tabs from every line of a `<<-` body.
pub(super) fn chomp(body: &str) -> String {
    body.split_inclusive('\n')
        .map(|line| line.trim_start_matches('\t'))
        .collect()
}

/// True when `line` (a body line with its newline) ends the heredoc `marker`.
pub(super) fn is_terminator(line: &str, marker: &Marker) -> bool {
    let line = super::lines::trim_newline(line);
    let line = if marker.chomp {
        line.trim_start_matches('\t')
    } else {
        line
    };
    line == marker.name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(line: &str) -> Vec<String> {
        markers_in_line(line)
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect()
    }

    #[test]
    fn buildkit_marker_helpers() {
        for src in [
            "<<EOF",
            "<<'EOF'",
            "<<\"EOF\"",
            "<<-EOF",
            "<<-'EOF'",
            "<<-\"EOF\"",
            "<<EO\"F\"",
            "<< EOF",
            "<<- EOF",
        ] {
            assert_eq!(parse_marker(src).unwrap().unwrap().name, "EOF", "{src}");
        }
        for src in ["<<'EOF", "<<\"EOF", "<<EOF'", "<<EOF\""] {
            assert!(parse_marker(src).is_err(), "{src}");
        }
        for src in ["", "EOF", "<<", "<<-", "<EOF", "<<<EOF", "<<EOF sh"] {
            assert_eq!(parse_marker(src).unwrap(), None, "{src}");
        }
    }

    #[test]
    fn markers_on_lines() {
        assert_eq!(names("RUN <<EOF"), ["EOF"]);
        assert_eq!(names("RUN <<-EOF"), ["EOF"]);
        assert_eq!(names("RUN << -EOF"), ["-EOF"]);
        assert_eq!(names("RUN <<'EOF'"), ["EOF"]);
        assert_eq!(names("RUN 4<<EOF"), ["EOF"]);
        assert_eq!(names("RUN <<EOF <<EOF2"), ["EOF", "EOF2"]);
        assert_eq!(names("RUN <<  EOF  > foo"), ["EOF"]);
        assert!(names("RUN '<<EOF'").is_empty());
        assert!(names("RUN \"<<EOF\"").is_empty());
        assert!(names("RUN <<EOF 'unclosed").is_empty());
    }

    #[test]
    fn quoting_decides_expansion() {
        let m = |s| parse_marker(s).unwrap().unwrap();
        assert!(m("<<EOF").expand);
        assert!(!m("<<'EOF'").expand);
        assert!(!m("<<eo'f'").expand);
        assert!(m("<<eo\\'f").expand);
        assert_eq!(m("<<eo\\'f").name, "eo'f");
        assert!(!m("<<'e'o\\'f").expand);
        assert_eq!(m("<<'one two'").name, "one two");
        assert_eq!(m("3<<-X").fd, 3);
        assert!(m("3<<-X").chomp);
        assert_eq!(
            parse_marker("<<'EOF").unwrap_err().to_string(),
            "failed to process \"'EOF\": unexpected end of statement while looking for matching single-quote"
        );
    }

    #[test]
    fn chomp_and_terminators() {
        assert_eq!(chomp("\thello\n\t\tworld\n x\n"), "hello\nworld\n x\n");
        let m = parse_marker("<<-EOF").unwrap().unwrap();
        assert!(is_terminator("\t\tEOF\r\n", &m));
        let m = parse_marker("<<EOF").unwrap().unwrap();
        assert!(!is_terminator("\tEOF\n", &m));
        assert!(is_terminator("EOF", &m));
    }
}
