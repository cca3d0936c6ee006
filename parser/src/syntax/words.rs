//! BuildKit's `parseWords`: splits ENV/LABEL/ARG arguments into words on whitespace,
//! keeping quotes and escapes in the words (they are removed later, when the words are
//! expanded), so `a="b c" d` is the two words `a="b c"` and `d`.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Spaces,
    Word,
    Quote(char),
}

/// Splits `rest` into words the way BuildKit does for ENV, LABEL and ARG.
pub(super) fn split_words(rest: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut phase = Phase::Spaces;
    let mut chars = rest.chars().peekable();

    while let Some(ch) = chars.next() {
        if phase == Phase::Spaces {
            if ch.is_whitespace() {
                continue;
            }
            phase = Phase::Word;
        }
        match phase {
            Phase::Spaces => {}
            Phase::Word => {
                if ch.is_whitespace() {
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    blank_ok = false;
                    phase = Phase::Spaces;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    blank_ok = true;
                    phase = Phase::Quote(ch);
                }
                if ch == escape {
                    // An escape at the very end is dropped; otherwise it is kept
                    // together with the character it escapes, even a quote.
                    if let Some(next) = chars.next() {
                        word.push(ch);
                        word.push(next);
                    }
                    continue;
                }
                word.push(ch);
            }
            Phase::Quote(quote) => {
                if ch == quote {
                    phase = Phase::Word;
                }
                // Nothing can be escaped inside single quotes.
                if ch == escape && quote != '\'' {
                    match chars.next() {
                        Some(next) => {
                            word.push(ch);
                            word.push(next);
                        }
                        None => phase = Phase::Word,
                    }
                    continue;
                }
                word.push(ch);
            }
        }
    }
    if phase != Phase::Spaces && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::split_words;

    fn w(s: &str) -> Vec<String> {
        split_words(s, '\\')
    }

    #[test]
    fn buildkit_parse_words_cases() {
        assert_eq!(w("foo"), ["foo"]);
        assert_eq!(w("foo bar"), ["foo", "bar"]);
        assert_eq!(w("foo\\ bar"), ["foo\\ bar"]);
        assert_eq!(w("foo=bar"), ["foo=bar"]);
        assert_eq!(w("foo bar 'abc xyz'"), ["foo", "bar", "'abc xyz'"]);
        assert_eq!(w(r#"foo bar "abc xyz""#), ["foo", "bar", r#""abc xyz""#]);
        assert_eq!(w("àöû"), ["àöû"]);
        assert_eq!(w(r#"föo bàr "âbc xÿz""#), ["föo", "bàr", r#""âbc xÿz""#]);
    }

    #[test]
    fn escapes_and_quotes_stay_in_words() {
        assert_eq!(w(r#"a="x\"y" b='c\'"#), [r#"a="x\"y""#, r"b='c\'"]);
        assert_eq!(w("a\\"), ["a"]);
        assert_eq!(w("\"\""), ["\"\""]);
        assert_eq!(w("a=\"b\\"), ["a=\"b"]);
        assert!(w("   ").is_empty());
        assert_eq!(split_words("a`  b", '`'), ["a` ", "b"]);
    }
}
