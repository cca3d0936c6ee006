//! Number, boolean and quoting rules of Go's `strconv`, which BuildKit uses to read flag
//! values. Rust's `str::parse` is close but not equal (it accepts `+1` for unsigned
//! numbers and rejects `T`/`F` as booleans), and a Dockerfile that BuildKit accepts must
//! be accepted here too, so these small functions reproduce Go's rules exactly.

/// Go's `strconv.ParseBool`: `1 t T TRUE true True` and `0 f F FALSE false False`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseUint(s, radix, 32)`: digits of `radix` only (no sign, no prefix, no
/// underscores), the value must fit in 32 bits.
pub fn parse_u32(s: &str, radix: u32) -> Option<u32> {
    if s.is_empty() || !s.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(s, radix).ok()
}

/// Why Go's `strconv.ParseInt(s, 10, 32)` refused a value; the text is Go's own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntError {
    #[error("strconv.ParseInt: parsing {}: invalid syntax", quote(.0))]
    Syntax(String),
    #[error("strconv.ParseInt: parsing {}: value out of range", quote(.0))]
    Range(String),
}

/// Go's `strconv.ParseInt(s, 10, 32)`: optional sign, decimal digits, 32-bit range.
pub fn parse_i32(s: &str) -> Result<i32, IntError> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IntError::Syntax(s.to_string()));
    }
    // Every syntactically valid input that does not fit an i32 is a range error, however
    // many digits it has; i32's own parser tells the two apart the same way.
    s.parse::<i32>().map_err(|_| IntError::Range(s.to_string()))
}

/// Go's `%q`, which BuildKit uses to show user values in its messages.
pub use crate::syntax::go_quote as quote;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bools_follow_go() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        for bad in ["", "yes", "tRUE", "on", " true"] {
            assert_eq!(parse_bool(bad), None, "{bad}");
        }
    }

    #[test]
    fn unsigned_rejects_signs_and_prefixes() {
        assert_eq!(parse_u32("0755", 8), Some(0o755));
        assert_eq!(parse_u32("1000", 10), Some(1000));
        assert_eq!(parse_u32("4294967295", 10), Some(u32::MAX));
        for bad in ["", "+1", "-1", "0o7", "1_0", "8", "4294967296"] {
            let radix = if bad == "8" { 8 } else { 10 };
            assert_eq!(parse_u32(bad, radix), None, "{bad}");
        }
    }

    #[test]
    fn signed_reports_syntax_and_range_like_go() {
        assert_eq!(parse_i32("+3"), Ok(3));
        assert_eq!(parse_i32("-7"), Ok(-7));
        assert_eq!(
            parse_i32("x").unwrap_err().to_string(),
            r#"strconv.ParseInt: parsing "x": invalid syntax"#
        );
        assert_eq!(
            parse_i32("99999999999").unwrap_err().to_string(),
            r#"strconv.ParseInt: parsing "99999999999": value out of range"#
        );
        assert!(matches!(parse_i32("-"), Err(IntError::Syntax(_))));
    }

    #[test]
    fn quote_escapes_like_go() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quote("x\ny\u{1}"), r#""x\ny\x01""#);
        assert_eq!(quote("é"), "\"é\"");
    }
}
