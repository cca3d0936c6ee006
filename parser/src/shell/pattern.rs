//! The glob patterns of `${VAR#p}`, `${VAR%p}` and `${VAR/p/r}`.
//!
//! BuildKit turns the pattern into a Go regular expression (`*` → `.*` or `.*?`,
//! `?` → `.`, everything else literal; no bracket expressions) and takes Go's
//! *leftmost-first* match. We compile to the same three kinds of token and run a
//! small Pike VM that returns exactly the match Go's engine would, in
//! O(text × pattern) time and constant stack, whatever the input.
//!
//! Two Go details matter and are kept: `.` (so `?` and `*`) never matches `\n`,
//! and `text/scanner` skips a byte-order mark at the start of the pattern.

use super::scanner::Scanner;

/// A pattern that cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Only `\*`, `\?`, `\\` (and `\}`, `\/`, whose backslash is dropped) are escapes.
    #[error("invalid escape '\\{0}'")]
    InvalidEscape(char),
    /// The pattern ends with a lone backslash.
    #[error("invalid escape '\\' at the end of the pattern")]
    TrailingEscape,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Lit(char),
    /// `?`: one character other than a newline.
    Any,
    /// `*`: any run of characters other than newlines.
    Star,
}

/// A compiled pattern. `greedy` picks whether `*` prefers the longest (`##`, `%%`,
/// `/`) or the shortest (`#`, `%`) run, exactly as `.*` vs `.*?` do in Go.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    tokens: Vec<Token>,
    greedy: bool,
}

/// A thread of the VM: the token it waits on (or `tokens.len()` = matched) and
/// the char index where its match began.
type Thread = (usize, usize);

impl Pattern {
    pub(crate) fn compile(pattern: &str, greedy: bool) -> Result<Pattern, PatternError> {
        let mut scan = Scanner::new(pattern);
        let mut tokens = Vec::new();
        while let Some(ch) = scan.next_char() {
            let token = match ch {
                '*' => Token::Star,
                '?' => Token::Any,
                '\\' => {
                    // `\}` and `\/` protect the ${} syntax; the backslash is not
                    // part of the pattern and the next character is read as usual.
                    if matches!(scan.peek(), Some('}' | '/')) {
                        continue;
                    }
                    match scan.next_char() {
                        Some(c @ ('*' | '?' | '\\')) => Token::Lit(c),
                        Some(c) => return Err(PatternError::InvalidEscape(c)),
                        None => return Err(PatternError::TrailingEscape),
                    }
                }
                c => Token::Lit(c),
            };
            // `**` matches exactly what `*` matches, with the same preference
            // (greedy or lazy), so runs of stars are kept as one; this keeps the
            // VM's thread lists short for patterns such as `${X#*****…}`.
            if token == Token::Star && tokens.last() == Some(&Token::Star) {
                continue;
            }
            tokens.push(token);
        }
        Ok(Pattern { tokens, greedy })
    }

    /// The leftmost-first match in `text` starting at or after char index `from`
    /// (only at `from` when `anchored`), as `(start, end)` char indices.
    pub(crate) fn find(
        &self,
        text: &[char],
        from: usize,
        anchored: bool,
    ) -> Option<(usize, usize)> {
        let accept = self.tokens.len();
        // seen[state] == generation marks states already on the list being built.
        let mut seen = vec![usize::MAX; accept + 1];
        let mut current: Vec<Thread> = Vec::new();
        let mut next: Vec<Thread> = Vec::new();
        let mut found = None;
        let mut pos = from;
        loop {
            // A new attempt starting here has the lowest priority, and none is
            // started once a match is known (leftmost wins).
            if found.is_none() && (pos == from || !anchored) && pos <= text.len() {
                self.add(&mut current, &mut seen, pos, 0, pos);
            }
            if current.is_empty() {
                break;
            }
            let ch = text.get(pos).copied();
            next.clear();
            for &(state, start) in &current {
                if state == accept {
                    // Every thread after this one has lower priority: drop them.
                    found = Some((start, pos));
                    break;
                }
                let (Some(c), Some(token)) = (ch, self.tokens.get(state)) else {
                    continue;
                };
                let to = match *token {
                    Token::Lit(l) if l == c => state + 1,
                    Token::Any if c != '\n' => state + 1,
                    Token::Star if c != '\n' => state,
                    _ => continue,
                };
                self.add(&mut next, &mut seen, pos + 1, to, start);
            }
            if ch.is_none() {
                break;
            }
            std::mem::swap(&mut current, &mut next);
            pos += 1;
        }
        found
    }

    /// Adds `state` and the states reachable from it without reading a character
    /// (through `*`, which may match nothing), in priority order. Iterative so a
    /// pattern of a million stars needs no stack.
    fn add(
        &self,
        list: &mut Vec<Thread>,
        seen: &mut [usize],
        generation: usize,
        state: usize,
        start: usize,
    ) {
        let mut stars = Vec::new();
        let mut s = state;
        let mut tail = None;
        loop {
            match seen.get(s) {
                Some(&g) if g != generation => {}
                _ => break,
            }
            if let Some(mark) = seen.get_mut(s) {
                *mark = generation;
            }
            if self.tokens.get(s) == Some(&Token::Star) {
                stars.push(s);
                s += 1;
            } else {
                tail = Some(s);
                break;
            }
        }
        if self.greedy {
            // `.*`: consuming another character beats moving on.
            list.extend(stars.iter().map(|&st| (st, start)));
            list.extend(tail.map(|t| (t, start)));
        } else {
            // `.*?`: moving on beats consuming.
            list.extend(tail.map(|t| (t, start)));
            list.extend(stars.iter().rev().map(|&st| (st, start)));
        }
    }
}

/// Reverses a pattern so that a suffix search can run as a prefix search, keeping
/// each backslash in front of the character it escapes (`a\*c` → `c\*a`). A lone
/// backslash at the very end travels to the front, as in BuildKit.
pub(crate) fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut groups: Vec<&[char]> = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let len = if chars.get(i) == Some(&'\\') && i + 1 < chars.len() {
            2
        } else {
            1
        };
        if let Some(group) = chars.get(i..i + len) {
            groups.push(group);
        }
        i += len;
    }
    groups.iter().rev().flat_map(|g| g.iter()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    fn find(p: &str, greedy: bool, text: &str, anchored: bool) -> Option<(usize, usize)> {
        Pattern::compile(p, greedy)
            .unwrap()
            .find(&chars(text), 0, anchored)
    }

    #[test]
    fn compiles_escapes_like_buildkit() {
        assert_eq!(
            Pattern::compile("\\x", true).unwrap_err(),
            PatternError::InvalidEscape('x')
        );
        assert_eq!(
            Pattern::compile("\\", true).unwrap_err(),
            PatternError::TrailingEscape
        );
        assert_eq!(
            Pattern::compile("\\\\\\", true).unwrap_err(),
            PatternError::TrailingEscape
        );
        let p = Pattern::compile("\\*\\?\\\\\\}\\/", true).unwrap();
        assert_eq!(
            p.tokens,
            vec![
                Token::Lit('*'),
                Token::Lit('?'),
                Token::Lit('\\'),
                Token::Lit('}'),
                Token::Lit('/')
            ]
        );
        // A leading byte-order mark is dropped (Go's scanner), a later one is not.
        assert_eq!(
            Pattern::compile("\u{feff}a\u{feff}", true)
                .unwrap()
                .tokens
                .len(),
            2
        );
    }

    #[test]
    fn lazy_and_greedy_stars() {
        assert_eq!(find("*x*y", false, "xxyy", true), Some((0, 3)));
        assert_eq!(find("*x*y", true, "xxyy", true), Some((0, 4)));
        assert_eq!(find("*", false, "abc", true), Some((0, 0)));
        assert_eq!(find("*", true, "abc", true), Some((0, 3)));
        assert_eq!(find("?b", true, "ab", true), Some((0, 2)));
        assert_eq!(find("b", true, "ab", true), None);
    }

    #[test]
    fn unanchored_search_finds_the_leftmost_start() {
        assert_eq!(find("b*", true, "abcb", false), Some((1, 4)));
        assert_eq!(find("b*", false, "abcb", false), Some((1, 2)));
        assert_eq!(find("", true, "ab", false), Some((0, 0)));
        assert_eq!(find("z", true, "ab", false), None);
        let p = Pattern::compile("o", true).unwrap();
        assert_eq!(p.find(&chars("foo"), 2, false), Some((2, 3)));
    }

    #[test]
    fn wildcards_do_not_cross_newlines() {
        assert_eq!(find("*/", false, "a\nb/c", true), None);
        assert_eq!(find("?", true, "\n", true), None);
        assert_eq!(find("a\nb", true, "a\nb", true), Some((0, 3)));
    }

    #[test]
    fn wildcards_count_characters_not_bytes() {
        assert_eq!(find("??", true, "한국어", true), Some((0, 2)));
    }

    #[test]
    fn runs_of_stars_behave_like_one() {
        let p = Pattern::compile("a**b***", true).unwrap();
        assert_eq!(
            p.tokens,
            vec![Token::Lit('a'), Token::Star, Token::Lit('b'), Token::Star]
        );
        let p = "*".repeat(200_000) + "x";
        let text = "a".repeat(2_000);
        assert_eq!(find(&p, false, &text, true), None);
        assert_eq!(find(&p, true, &(text + "x"), true), Some((0, 2_001)));
    }

    #[test]
    fn long_alternating_patterns_finish() {
        let p = "?*".repeat(300) + "x";
        let text = "a".repeat(1_000);
        assert_eq!(find(&p, true, &text, false), None);
        assert_eq!(find(&p, false, &(text + "x"), true), Some((0, 1_001)));
    }

    #[test]
    fn reverses_keeping_escapes_in_front() {
        assert_eq!(reverse_pattern("a\\*c"), "c\\*a");
        assert_eq!(reverse_pattern("\\\\\\ab"), "b\\a\\\\");
        assert_eq!(reverse_pattern("ab\\"), "\\ba");
        assert_eq!(reverse_pattern("👽\\🚀🖖"), "🖖\\🚀👽");
        assert_eq!(reverse_pattern("\\\\b"), "b\\\\");
        assert_eq!(reverse_pattern(""), "");
    }
}

/// The matcher must agree with a real leftmost-first regex engine (Rust's `regex`
/// has Go's semantics here) on the regex BuildKit would build from the pattern.
#[cfg(test)]
mod against_regex {
    use super::*;
    use proptest::prelude::*;

    fn go_regex(p: &Pattern) -> String {
        let mut s = String::from("^");
        for token in &p.tokens {
            match token {
                Token::Star if p.greedy => s.push_str(".*"),
                Token::Star => s.push_str(".*?"),
                Token::Any => s.push('.'),
                Token::Lit(c) => s.push_str(&regex::escape(&c.to_string())),
            }
        }
        s
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn same_match_as_regex(
            pat in "[ab*?]{0,8}",
            text in "[ab\n]{0,10}",
            greedy: bool,
            anchored: bool,
            from in 0usize..4,
        ) {
            let p = Pattern::compile(&pat, greedy).unwrap();
            let chars: Vec<char> = text.chars().collect();
            let re = go_regex(&p);
            let (re, from) = if anchored { (re, 0) } else { (re[1..].to_string(), from.min(text.len())) };
            let re = regex::Regex::new(&re).unwrap();
            // All characters here are ASCII, so byte and char indices agree.
            let want = re.find_at(&text, from).map(|m| (m.start(), m.end()));
            prop_assert_eq!(p.find(&chars, from, anchored), want);
        }
    }
}
