//! The value-rewriting operators: `${VAR#p}`, `${VAR##p}`, `${VAR%p}`, `${VAR%%p}`,
//! `${VAR/p/r}` and `${VAR//p/r}`, applied to a variable's value once the pattern
//! and replacement words have been expanded.

use super::names::is_name_char;
use super::pattern::{Pattern, PatternError, reverse_pattern};

/// `${VAR#p}` / `${VAR##p}`: drops the shortest / longest prefix matching `pattern`.
pub(crate) fn trim_prefix(
    value: &str,
    pattern: &str,
    longest: bool,
) -> Result<String, PatternError> {
    let pattern = Pattern::compile(pattern, longest)?;
    let chars: Vec<char> = value.chars().collect();
    Ok(match pattern.find(&chars, 0, true) {
        Some((_, end)) => chars.get(end..).unwrap_or_default().iter().collect(),
        None => value.to_string(),
    })
}

/// `${VAR%p}` / `${VAR%%p}`: drops the shortest / longest suffix matching `pattern`.
/// Like BuildKit, this reverses both the pattern and the value and trims a prefix,
/// because a leftmost matcher cannot find the shortest *rightmost* match.
pub(crate) fn trim_suffix(
    value: &str,
    pattern: &str,
    longest: bool,
) -> Result<String, PatternError> {
    let pattern = Pattern::compile(&reverse_pattern(pattern), longest)?;
    let reversed: Vec<char> = value.chars().rev().collect();
    Ok(match pattern.find(&reversed, 0, true) {
        Some((_, end)) => {
            let kept = reversed.get(end..).unwrap_or_default();
            kept.iter().rev().collect()
        }
        None => value.to_string(),
    })
}

/// `${VAR/p/r}` (first match) and `${VAR//p/r}` (every match). `*` is greedy.
///
/// BuildKit replaces every match with Go's `Regexp.ReplaceAllString`, which reads
/// `$0`/`${0}` in the replacement as the matched text, `$$` as `$`, and any other
/// `$name` as nothing; the single replacement is inserted literally. Both are kept.
pub(crate) fn replace(
    value: &str,
    pattern: &str,
    replacement: &str,
    all: bool,
) -> Result<String, PatternError> {
    let pattern = Pattern::compile(pattern, true)?;
    let chars: Vec<char> = value.chars().collect();
    let slice =
        |a: usize, b: usize| -> String { chars.get(a..b).unwrap_or_default().iter().collect() };
    if !all {
        return Ok(match pattern.find(&chars, 0, false) {
            Some((start, end)) => {
                let mut out = slice(0, start);
                out.push_str(replacement);
                out.push_str(&slice(end, chars.len()));
                out
            }
            None => value.to_string(),
        });
    }
    // Go's replace-all loop: an empty match right after a previous match is not
    // replaced, and the search always moves forward by at least one character.
    let mut out = String::with_capacity(value.len());
    let mut last_end = 0;
    let mut search = 0;
    while search <= chars.len() {
        let Some((start, end)) = pattern.find(&chars, search, false) else {
            break;
        };
        out.push_str(&slice(last_end, start));
        if end > last_end || start == 0 {
            expand_template(replacement, &slice(start, end), &mut out);
        }
        last_end = end;
        search = if search + 1 > end { search + 1 } else { end };
    }
    out.push_str(&slice(last_end, chars.len()));
    Ok(out)
}

/// Go's `Regexp.Expand` for a pattern without capture groups: group 0 is the
/// whole match and no group has a name.
fn expand_template(template: &str, matched: &str, out: &mut String) {
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        out.push_str(rest.get(..dollar).unwrap_or_default());
        rest = rest.get(dollar + 1..).unwrap_or_default();
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        match group_reference(rest) {
            Some((name, after)) => {
                if name == "0" {
                    out.push_str(matched);
                }
                rest = after;
            }
            // Malformed reference: the `$` is literal text.
            None => out.push('$'),
        }
    }
    out.push_str(rest);
}

/// Parses `name` or `{name}` after a `$` (name = letters, digits, `_`), returning
/// the name and the text after it.
fn group_reference(s: &str) -> Option<(&str, &str)> {
    let (body, braced) = match s.strip_prefix('{') {
        Some(inner) => (inner, true),
        None => (s, false),
    };
    let len = body.find(|c: char| !is_name_char(c)).unwrap_or(body.len());
    if len == 0 {
        return None;
    }
    let (name, after) = body.split_at(len);
    if braced {
        return after.strip_prefix('}').map(|after| (name, after));
    }
    Some((name, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_shortest_and_longest() {
        assert_eq!(trim_prefix("xxyy", "*x", false).unwrap(), "xyy");
        assert_eq!(trim_prefix("xxyy", "*x", true).unwrap(), "yy");
        assert_eq!(trim_prefix("xxyy", "*", false).unwrap(), "xxyy");
        assert_eq!(trim_prefix("xxyy", "*", true).unwrap(), "");
        assert_eq!(trim_prefix("xxyy", "z", true).unwrap(), "xxyy");
        assert_eq!(trim_prefix("???y", "?\\?", false).unwrap(), "?y");
        assert_eq!(trim_prefix("한국어", "?", false).unwrap(), "국어");
    }

    #[test]
    fn suffixes_shortest_and_longest() {
        assert_eq!(trim_suffix("file.tar.gz", ".*", false).unwrap(), "file.tar");
        assert_eq!(trim_suffix("file.tar.gz", ".*", true).unwrap(), "file");
        assert_eq!(trim_suffix("xx**", "\\**", true).unwrap(), "xx");
        assert_eq!(trim_suffix("a***yy*", "\\**\\*", true).unwrap(), "a");
        assert_eq!(trim_suffix("xxyy", "x", false).unwrap(), "xxyy");
        assert_eq!(trim_suffix("한국어", "?", false).unwrap(), "한국");
    }

    #[test]
    fn suffix_pattern_is_reversed_first_like_buildkit() {
        // `a*\` reversed is `\*a`: a literal `*` then `a`, so the suffix `a*` goes.
        assert_eq!(trim_suffix("xa*", "a*\\", false).unwrap(), "x");
        assert!(trim_prefix("a*x", "a*\\", false).is_err());
    }

    #[test]
    fn replaces_first_or_all() {
        assert_eq!(
            replace("/foo*/*/*.txt", "\\*/", ".", false).unwrap(),
            "/foo.*/*.txt"
        );
        assert_eq!(
            replace("/foo*/*/*.txt", "\\*/", ".", true).unwrap(),
            "/foo..*.txt"
        );
        assert_eq!(
            replace("/a/foo/b/c.txt", "/?/", "/", true).unwrap(),
            "/foo/c.txt"
        );
        assert_eq!(replace("xxyy", "", "ww", false).unwrap(), "wwxxyy");
        assert_eq!(replace("xxyy", "", "", true).unwrap(), "xxyy");
        assert_eq!(replace("ab", "", "-", true).unwrap(), "-a-b-");
        assert_eq!(replace("abc", "b*", "-", true).unwrap(), "a-");
        assert_eq!(replace("abc", "z", "-", true).unwrap(), "abc");
    }

    #[test]
    fn replace_all_reads_go_templates() {
        assert_eq!(replace("foo", "o", "[$0]", true).unwrap(), "f[o][o]");
        assert_eq!(replace("foo", "o", "[${0}]", true).unwrap(), "f[o][o]");
        assert_eq!(replace("foo", "o", "$$", true).unwrap(), "f$$");
        assert_eq!(replace("foo", "o", "$1x", true).unwrap(), "f");
        assert_eq!(replace("foo", "o", "$00", true).unwrap(), "f");
        assert_eq!(replace("foo", "o", "$.", true).unwrap(), "f$.$.");
        assert_eq!(replace("foo", "o", "${0", true).unwrap(), "f${0${0");
        // The first-match form inserts the replacement literally.
        assert_eq!(replace("foo", "o", "[$0]", false).unwrap(), "f[$0]o");
    }
}
