//! What counts as a parameter name after `$`, with Go's Unicode classes.
//!
//! BuildKit reads names with Go's `unicode.IsLetter` (general category L) and
//! `unicode.IsDigit` (category Nd). Rust's `char::is_alphabetic`/`is_numeric` are
//! wider (they take combining vowel signs, `²`, `½`, Roman numerals…), which would
//! change where a name ends, so the categories are checked directly.

use super::scanner::Scanner;
use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};

/// Go's `unicode.IsLetter`.
pub(crate) fn is_letter(ch: char) -> bool {
    if ch.is_ascii() {
        return ch.is_ascii_alphabetic();
    }
    ch.general_category_group() == GeneralCategoryGroup::Letter
}

/// Go's `unicode.IsDigit`.
pub(crate) fn is_digit(ch: char) -> bool {
    if ch.is_ascii() {
        return ch.is_ascii_digit();
    }
    ch.general_category() == GeneralCategory::DecimalNumber
}

/// A character that may continue a name (`[letter digit _]`).
pub(crate) fn is_name_char(ch: char) -> bool {
    ch == '_' || is_letter(ch) || is_digit(ch)
}

/// POSIX special parameters (`$@`, `$*`, `$#`, `$?`, `$-`, `$$`, `$!`, `$0`): a
/// Dockerfile never sets them, but they are still *names*, so `$@x` is `x`.
pub(crate) fn is_special_param(ch: char) -> bool {
    matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

/// Reads the name after `$` or `${`, BuildKit's way: a run of digits (a
/// positional parameter such as `$1` or `$001`), or one special parameter, or a
/// run of letters, digits and `_`. Returns "" when no name starts here.
pub(crate) fn read_name<'a>(scan: &mut Scanner<'a>) -> &'a str {
    let start = scan.pos();
    match scan.peek() {
        Some(ch) if is_digit(ch) => {
            while scan.peek().is_some_and(is_digit) {
                scan.next_char();
            }
        }
        Some(ch) if is_special_param(ch) => {
            scan.next_char();
        }
        _ => {
            while scan.peek().is_some_and(is_name_char) {
                scan.next_char();
            }
        }
    }
    scan.since(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> (&str, &str) {
        let mut scan = Scanner::new(s);
        let n = read_name(&mut scan);
        (n, scan.rest())
    }

    #[test]
    fn plain_names_stop_at_non_name_characters() {
        assert_eq!(name("FOO_1.x"), ("FOO_1", ".x"));
        assert_eq!(name("_a"), ("_a", ""));
        assert_eq!(name("한국어!"), ("한국어", "!"));
        assert_eq!(name(".x"), ("", ".x"));
    }

    #[test]
    fn positional_names_are_all_the_digits() {
        assert_eq!(name("999aaa"), ("999", "aaa"));
        assert_eq!(name("001x"), ("001", "x"));
        assert_eq!(name("0abc"), ("0", "abc"));
    }

    #[test]
    fn special_parameters_are_one_character() {
        assert_eq!(name("@@@"), ("@", "@@"));
        assert_eq!(name("#x"), ("#", "x"));
        assert_eq!(name("$$"), ("$", "$"));
    }

    #[test]
    fn go_unicode_classes_not_rusts() {
        // U+00B2 SUPERSCRIPT TWO is numeric for Rust but not a Go digit.
        assert!('²'.is_numeric());
        assert!(!is_digit('²') && !is_name_char('²'));
        // U+0663 ARABIC-INDIC DIGIT THREE is Nd: a digit for Go.
        assert!(is_digit('\u{663}'));
        // U+093E DEVANAGARI VOWEL SIGN AA is alphabetic for Rust, a mark for Go.
        assert!('\u{93e}'.is_alphabetic());
        assert!(!is_letter('\u{93e}'));
    }
}
