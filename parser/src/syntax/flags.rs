//! Splitting a logical line into keyword, leading `--flag` words and the rest
//! (BuildKit's `splitCommand` and `extractBuilderFlags`).
//!
//! Flags are the words right after the keyword that start with `--`; the first word
//! that does not, or a bare `--`, ends them. Inside a flag word quotes are removed and
//! the escape character escapes the next character, so `--label="a b"` is one flag.

/// BuildKit's `reWhitespace`: the separators between keyword and arguments.
pub(super) fn is_separator(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

/// A logical line cut into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CommandLine<'a> {
    /// The keyword as written (not lower-cased).
    pub keyword: &'a str,
    /// The `--flag` words, unquoted.
    pub flags: Vec<String>,
    /// Everything after the flags, trimmed.
    pub rest: &'a str,
}

/// Cuts `line` into keyword, flags and arguments.
pub(super) fn split_command(line: &str, escape: char) -> CommandLine<'_> {
    let line = line.trim();
    let Some(sep) = line.find(is_separator) else {
        return CommandLine {
            keyword: line,
            flags: Vec::new(),
            rest: "",
        };
    };
    let keyword = line.get(..sep).unwrap_or(line);
    let after = line
        .get(sep..)
        .unwrap_or("")
        .trim_start_matches(is_separator);
    let (rest, flags) = extract_flags(after, escape);
    CommandLine {
        keyword,
        flags,
        rest: rest.trim(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Spaces,
    Word,
    Quote(char),
}

/// Reads leading `--` words off `line`; returns the remainder and the flags.
///
/// BuildKit walks the line byte by byte and so turns non-ASCII bytes of a flag word
/// into Latin-1 characters; we walk characters, which only differs for non-ASCII
/// flag values (and gives them back intact).
fn extract_flags(line: &str, escape: char) -> (&str, Vec<String>) {
    let mut flags = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut phase = Phase::Spaces;
    let mut chars = line.char_indices().peekable();

    while let Some((pos, ch)) = chars.next() {
        match phase {
            Phase::Spaces => {
                if ch.is_whitespace() {
                    continue;
                }
                let next_is_dash = chars.peek().is_some_and(|&(_, c)| c == '-');
                if ch != '-' || !next_is_dash {
                    return (line.get(pos..).unwrap_or(""), flags);
                }
                phase = Phase::Word;
                word.push(ch);
            }
            Phase::Word => {
                if ch.is_whitespace() {
                    if word == "--" {
                        return (line.get(pos..).unwrap_or(""), flags);
                    }
                    if blank_ok || !word.is_empty() {
                        flags.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    blank_ok = false;
                    phase = Phase::Spaces;
                } else if ch == '\'' || ch == '"' {
                    blank_ok = true;
                    phase = Phase::Quote(ch);
                } else if ch == escape {
                    // An escape at the very end is dropped; otherwise the next
                    // character is taken literally.
                    if let Some((_, next)) = chars.next() {
                        word.push(next);
                    }
                } else {
                    word.push(ch);
                }
            }
            Phase::Quote(quote) => {
                if ch == quote {
                    phase = Phase::Word;
                } else if ch == escape {
                    match chars.next() {
                        Some((_, next)) => word.push(next),
                        None => phase = Phase::Word,
                    }
                } else {
                    word.push(ch);
                }
            }
        }
    }
    if phase != Phase::Spaces && word != "--" && (blank_ok || !word.is_empty()) {
        flags.push(word);
    }
    ("", flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> (String, Vec<String>, String) {
        let c = split_command(line, '\\');
        (c.keyword.to_string(), c.flags, c.rest.to_string())
    }

    #[test]
    fn keyword_flags_rest() {
        assert_eq!(
            split("  COPY --from=a --chown=1:1  x /y "),
            (
                "COPY".into(),
                vec!["--from=a".into(), "--chown=1:1".into()],
                "x /y".into()
            )
        );
        assert_eq!(split("RUN"), ("RUN".into(), vec![], "".into()));
        assert_eq!(
            split("CMD\t[ \"a\" ]"),
            ("CMD".into(), vec![], "[ \"a\" ]".into())
        );
    }

    #[test]
    fn double_dash_ends_flags() {
        assert_eq!(
            split("COPY --doit=true -- foo /tmp/"),
            (
                "COPY".into(),
                vec!["--doit=true".into()],
                "foo /tmp/".into()
            )
        );
        assert_eq!(
            split("CMD --doit --"),
            ("CMD".into(), vec!["--doit".into()], "".into())
        );
        assert_eq!(split("RUN -x --y"), ("RUN".into(), vec![], "-x --y".into()));
    }

    #[test]
    fn quotes_and_escapes_in_flags() {
        assert_eq!(
            split(r#"LABEL --a="x y" --b='' --c=\"q k"#),
            (
                "LABEL".into(),
                vec!["--a=x y".into(), "--b=".into(), "--c=\"q".into()],
                "k".into()
            )
        );
        assert_eq!(
            split("RUN --a=x\\"),
            ("RUN".into(), vec!["--a=x".into()], "".into())
        );
        assert_eq!(
            split("RUN --a=\"x"),
            ("RUN".into(), vec!["--a=x".into()], "".into())
        );
    }
}
