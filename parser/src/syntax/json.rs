//! The exec (JSON array) form of an instruction's arguments: `CMD ["a", "b"]`.
//!
//! BuildKit hands the arguments to Go's `encoding/json` and falls back to the shell
//! form on *any* decoding error, but fails hard when the JSON is valid and an element
//! is not a string. Reproducing that split exactly needs Go's rules, which differ from
//! serde_json's in corners (lone UTF-16 surrogates become U+FFFD, nesting may go
//! 10,000 deep, numbers that overflow an f64 are decoding errors), so this is a small
//! validator of our own. It walks nesting with an explicit stack, never recursion.

use nom::{
    IResult, Parser,
    branch::alt,
    bytes::complete::tag,
    character::complete::{char, digit0, digit1, one_of, satisfy},
    combinator::{opt, recognize},
};

/// Go's `encoding/json` refuses documents nested deeper than this.
const MAX_DEPTH: usize = 10_000;

/// What the arguments turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum JsonArgs {
    /// Not a JSON array (or not valid JSON): use the shell form.
    NotJson,
    /// Valid JSON, but some element is not a string: an error in BuildKit.
    NotStrings,
    /// An array of strings, decoded.
    Strings(Vec<String>),
}

/// Decodes `rest` as a JSON array of strings.
pub(super) fn parse_json_array(rest: &str) -> JsonArgs {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return JsonArgs::NotJson;
    }
    match validate(rest) {
        None => JsonArgs::NotJson,
        Some(doc) if doc.overflow => JsonArgs::NotJson,
        Some(doc) => doc
            .elements
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .map_or(JsonArgs::NotStrings, JsonArgs::Strings),
    }
}

/// The facts about a valid document that BuildKit's decision needs.
struct Document {
    /// Top-level array elements: `Some` for strings, `None` for anything else.
    elements: Vec<Option<String>>,
    /// A number somewhere does not fit an f64 (Go reports that as a decoding error).
    overflow: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Container {
    Array,
    Object,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Right after `[`: a value or `]`.
    FirstValue,
    Value,
    /// Right after `{`: a key or `}`.
    FirstKey,
    Key,
    Colon,
    CommaOrClose,
}

fn is_json_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Checks that `input` is exactly one JSON value (plus whitespace).
fn validate(input: &str) -> Option<Document> {
    let mut doc = Document {
        elements: Vec::new(),
        overflow: false,
    };
    let mut stack: Vec<Container> = Vec::new();
    let mut expect = Expect::Value;
    let mut rest = input;

    loop {
        rest = rest.trim_start_matches(is_json_space);
        if stack.is_empty() && expect == Expect::CommaOrClose {
            return rest.is_empty().then_some(doc);
        }
        let next = rest.chars().next()?;
        match expect {
            Expect::FirstValue if next == ']' => {
                rest = rest.get(1..)?;
                stack.pop();
                expect = Expect::CommaOrClose;
            }
            Expect::FirstValue | Expect::Value => {
                let element = stack.len() == 1;
                match next {
                    '[' | '{' => {
                        if element {
                            doc.elements.push(None);
                        }
                        let (container, then) = if next == '[' {
                            (Container::Array, Expect::FirstValue)
                        } else {
                            (Container::Object, Expect::FirstKey)
                        };
                        stack.push(container);
                        if stack.len() > MAX_DEPTH {
                            return None;
                        }
                        rest = rest.get(1..)?;
                        expect = then;
                    }
                    '"' => {
                        let (after, s) = string(rest).ok()?;
                        if element {
                            doc.elements.push(Some(s));
                        }
                        rest = after;
                        expect = Expect::CommaOrClose;
                    }
                    _ => {
                        let (after, overflow) = scalar(rest).ok()?;
                        doc.overflow |= overflow;
                        if element {
                            doc.elements.push(None);
                        }
                        rest = after;
                        expect = Expect::CommaOrClose;
                    }
                }
            }
            Expect::FirstKey if next == '}' => {
                rest = rest.get(1..)?;
                stack.pop();
                expect = Expect::CommaOrClose;
            }
            Expect::FirstKey | Expect::Key => {
                let (after, _) = string(rest).ok()?;
                rest = after;
                expect = Expect::Colon;
            }
            Expect::Colon => {
                rest = rest.strip_prefix(':')?;
                expect = Expect::Value;
            }
            Expect::CommaOrClose => {
                let top = *stack.last()?;
                rest = rest.get(1..)?;
                match (next, top) {
                    (',', Container::Array) => expect = Expect::Value,
                    (',', Container::Object) => expect = Expect::Key,
                    (']', Container::Array) | ('}', Container::Object) => {
                        stack.pop();
                    }
                    _ => return None,
                }
            }
        }
    }
}

/// A number or `true`/`false`/`null`; the flag says whether a number overflowed.
fn scalar(input: &str) -> IResult<&str, bool> {
    let literal: IResult<&str, &str> = alt((tag("true"), tag("false"), tag("null"))).parse(input);
    if let Ok((rest, _)) = literal {
        return Ok((rest, false));
    }
    let (rest, text) = recognize((
        opt(char('-')),
        alt((
            tag("0"),
            recognize((satisfy(|c| matches!(c, '1'..='9')), digit0)),
        )),
        opt((char('.'), digit1)),
        opt((one_of("eE"), opt(one_of("+-")), digit1)),
    ))
    .parse(input)?;
    let overflow = text.parse::<f64>().map_or(true, f64::is_infinite);
    Ok((rest, overflow))
}

/// A JSON string starting at `input` (which begins with `"`), decoded as Go does.
fn string(input: &str) -> IResult<&str, String> {
    let fail = || nom::Err::Error(nom::error::Error::new(input, nom::error::ErrorKind::Char));
    let (body, _) = char('"').parse(input)?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((body.get(i + 1..).ok_or_else(fail)?, out)),
            '\\' => {
                let (_, esc) = chars.next().ok_or_else(fail)?;
                match esc {
                    '"' | '\\' | '/' => out.push(esc),
                    'b' => out.push('\x08'),
                    'f' => out.push('\x0c'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'u' => {
                        let hex_at = i + 2;
                        let unit = hex4(body.get(hex_at..)).ok_or_else(fail)?;
                        skip(&mut chars, 4);
                        out.push(decode_unit(unit, body.get(hex_at + 4..), &mut chars));
                    }
                    _ => return Err(fail()),
                }
            }
            c if (c as u32) < 0x20 => return Err(fail()),
            c => out.push(c),
        }
    }
    Err(fail())
}

/// Turns one `\uXXXX` into a character. A high surrogate followed by a `\u` low
/// surrogate makes one character (and consumes that escape); any other surrogate
/// becomes U+FFFD, like Go.
fn decode_unit(
    unit: u32,
    after: Option<&str>,
    chars: &mut impl Iterator<Item = (usize, char)>,
) -> char {
    if !(0xD800..0xE000).contains(&unit) {
        return char::from_u32(unit).unwrap_or('\u{FFFD}');
    }
    let low = after
        .and_then(|a| a.strip_prefix("\\u"))
        .and_then(|a| hex4(Some(a)));
    match low {
        Some(low) if (0xD800..0xDC00).contains(&unit) && (0xDC00..0xE000).contains(&low) => {
            skip(chars, 6);
            char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)).unwrap_or('\u{FFFD}')
        }
        _ => '\u{FFFD}',
    }
}

fn skip(chars: &mut impl Iterator<Item = (usize, char)>, n: usize) {
    for _ in 0..n {
        chars.next();
    }
}

/// Reads exactly four hex digits at the start of `s`.
fn hex4(s: Option<&str>) -> Option<u32> {
    let digits = s?.get(..4)?;
    if !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> JsonArgs {
        JsonArgs::Strings(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn arrays_of_strings() {
        assert_eq!(parse_json_array("[]"), strings(&[]));
        assert_eq!(
            parse_json_array(" [ \"a\",\t\"b\" ] \n"),
            strings(&["a", "b"])
        );
        assert_eq!(
            parse_json_array(r#"["\" \\ \/ \b \f \n \r \t \u0000 \u2603"]"#),
            strings(&["\" \\ / \x08 \x0c \n \r \t \0 ☃"])
        );
        assert_eq!(parse_json_array(r#"["\ud83d\ude00"]"#), strings(&["😀"]));
        assert_eq!(
            parse_json_array(r#"["\ud800x", "\udc00"]"#),
            strings(&["\u{FFFD}x", "\u{FFFD}"])
        );
        assert_eq!(
            parse_json_array(r#"["\ud800\u0041"]"#),
            strings(&["\u{FFFD}A"])
        );
    }

    #[test]
    fn valid_json_with_non_strings_is_an_error() {
        assert_eq!(parse_json_array(r#"["a", 1]"#), JsonArgs::NotStrings);
        assert_eq!(
            parse_json_array(r#"[ "echo", [ "nested json" ] ]"#),
            JsonArgs::NotStrings
        );
        assert_eq!(
            parse_json_array(r#"[{"a": [1, -2.5e3, true, null]}]"#),
            JsonArgs::NotStrings
        );
    }

    #[test]
    fn anything_else_is_shell_form() {
        for s in [
            "",
            "echo [a]",
            "['a']",
            r#"["a""#,
            r#"["a]"#,
            r#"["a",]"#,
            r#"["a"] x"#,
            r#"["a\x"]"#,
            "[\"a\tb\"]",
            r#"[01]"#,
            r#"["a", 1e400]"#,
            r#"["\u12"]"#,
            "[\"a\"]\x0b",
            r#"[{"a" 1}]"#,
            r#"[tru]"#,
        ] {
            assert_eq!(parse_json_array(s), JsonArgs::NotJson, "{s:?}");
        }
    }

    #[test]
    fn nesting_is_bounded_not_recursive() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(parse_json_array(&ok), JsonArgs::NotStrings);
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(parse_json_array(&deep), JsonArgs::NotJson);
    }
}
