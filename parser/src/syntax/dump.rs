//! BuildKit's `Node.Dump` test format and Go's `%q` string quoting.
//!
//! One line per instruction: `(keyword ["--flag" …] "arg" …)`. ENV and LABEL print
//! key, value and separator for each pair; ONBUILD prints its trigger nested; an
//! unknown instruction prints a single `""` because BuildKit keeps none of its words.
//! Heredoc bodies and parser directives are not printed (BuildKit does not either).

use super::args::is_known;
use super::node::{Args, Dockerfile, Node};

/// Prints the whole tree, one instruction per line, with a final newline.
pub(super) fn dump(df: &Dockerfile) -> String {
    let mut out = String::new();
    for node in &df.nodes {
        out.push('(');
        out.push_str(&dump_node(node));
        out.push_str(")\n");
    }
    // BuildKit trims the whole dump, then its test adds the final newline back.
    let mut out = out.trim().to_string();
    out.push('\n');
    out
}

/// One instruction without its surrounding parentheses.
fn dump_node(node: &Node) -> String {
    // Follow the ONBUILD chain with a loop: each level opens a parenthesis that is
    // closed once the innermost trigger has been printed.
    let mut out = String::new();
    let mut closers = 0usize;
    let mut current = node;
    loop {
        out.push_str(&current.keyword);
        if !current.flags.is_empty() {
            out.push_str(" [");
            let flags: Vec<String> = current.flags.iter().map(|f| go_quote(f)).collect();
            out.push_str(&flags.join(" "));
            out.push(']');
        }
        match &current.args {
            Args::Nested(inner) => {
                out.push_str(" (");
                closers += 1;
                current = inner;
                continue;
            }
            Args::Words(_) if !is_known(&current.keyword) => out.push_str(" \"\""),
            Args::Words(words) => push_quoted(&mut out, words.iter().map(String::as_str)),
            Args::Pairs(pairs) => push_quoted(
                &mut out,
                pairs
                    .iter()
                    .flat_map(|kv| [kv.key.as_str(), kv.value.as_str(), kv.sep.as_str()]),
            ),
        }
        break;
    }
    let mut out = out.trim().to_string();
    for _ in 0..closers {
        out.push(')');
    }
    out
}

fn push_quoted<'a>(out: &mut String, words: impl Iterator<Item = &'a str>) {
    for word in words {
        out.push(' ');
        out.push_str(&go_quote(word));
    }
}

/// Quotes `s` like Go's `strconv.Quote` (`%q`): printable characters as they are,
/// `\"` and `\\`, the C escapes (`\a \b \f \n \r \t \v`), `\xNN` for other ASCII
/// controls and `\uNNNN`/`\UNNNNNNNN` for non-printable Unicode.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_go_printable(c) => out.push(c),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII
/// space. Rust's standard library has no general-category table, so this rejects what
/// can be named without one — controls (Cc), spaces and separators other than U+0020
/// (Z*), format characters (Cf), private use (Co) and noncharacters — and treats other
/// unassigned code points as printable, where Go would escape them.
fn is_go_printable(c: char) -> bool {
    let u = c as u32;
    if u < 0x80 {
        return (0x20..0x7f).contains(&u);
    }
    !(c.is_control()
        || c.is_whitespace()
        || is_format(u)
        || is_private_use(u)
        || (0xFDD0..=0xFDEF).contains(&u)
        || u & 0xFFFE == 0xFFFE)
}

/// The Unicode 15 format characters (general category Cf).
fn is_format(u: u32) -> bool {
    const RANGES: &[(u32, u32)] = &[
        (0x00AD, 0x00AD),
        (0x0600, 0x0605),
        (0x061C, 0x061C),
        (0x06DD, 0x06DD),
        (0x070F, 0x070F),
        (0x0890, 0x0891),
        (0x08E2, 0x08E2),
        (0x180E, 0x180E),
        (0x200B, 0x200F),
        (0x202A, 0x202E),
        (0x2060, 0x2064),
        (0x2066, 0x206F),
        (0xFEFF, 0xFEFF),
        (0xFFF9, 0xFFFB),
        (0x110BD, 0x110BD),
        (0x110CD, 0x110CD),
        (0x13430, 0x1343F),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0001, 0xE0001),
        (0xE0020, 0xE007F),
    ];
    RANGES.iter().any(|&(lo, hi)| (lo..=hi).contains(&u))
}

fn is_private_use(u: u32) -> bool {
    (0xE000..=0xF8FF).contains(&u)
        || (0xF0000..=0xFFFFD).contains(&u)
        || (0x100000..=0x10FFFD).contains(&u)
}

#[cfg(test)]
mod tests {
    use super::go_quote;

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("\t\n\r\x07\x08\x0b\x0c"), r#""\t\n\r\a\b\v\f""#);
        assert_eq!(go_quote("\0\x1b\x7f"), r#""\x00\x1b\x7f""#);
        assert_eq!(go_quote("♥ é 한국어 😀"), "\"♥ é 한국어 😀\"");
        assert_eq!(
            go_quote("\u{a0}\u{85}\u{200b}\u{feff}"),
            r#""\u00a0\u0085\u200b\ufeff""#
        );
        assert_eq!(go_quote("\u{e0001}\u{10fffd}"), r#""\U000e0001\U0010fffd""#);
        assert_eq!(go_quote(""), "\"\"");
    }
}
