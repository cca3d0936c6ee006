//! Human-readable byte sizes (`64m`, `1.5GiB`, `512 kb`) as `docker/go-units`'
//! `RAMInBytes` (v0.5.0, the version BuildKit pins) reads them for `RUN --mount=type=tmpfs,size=`.
//! Units are binary (k = 1024), case-insensitive, with an optional `b` or `ib`.

/// Parses a size; `None` for anything `RAMInBytes` refuses. BuildKit only says
/// "invalid value for size: …" whatever the reason, so no finer error is kept.
pub fn ram_in_bytes(input: &str) -> Option<u64> {
    // The number ends at the last digit, dot or space; a space there is a separator.
    let sep = input.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')?;
    let (num, suffix) = if input.as_bytes().get(sep) == Some(&b' ') {
        (&input[..sep], &input[sep + 1..])
    } else {
        (&input[..sep + 1], &input[sep + 1..])
    };
    let size = parse_go_float(num)?;
    if size < 0.0 {
        return None;
    }
    let multiplier: u64 = if suffix.is_empty() {
        1
    } else {
        let suffix = suffix.to_ascii_lowercase();
        if suffix.len() > 3 || !suffix.is_ascii() {
            return None;
        }
        let (first, tail) = suffix.split_at(1);
        let power = match first {
            "b" if tail.is_empty() => 0,
            "b" => return None,
            "k" => 1,
            "m" => 2,
            "g" => 3,
            "t" => 4,
            "p" => 5,
            _ => return None,
        };
        if !matches!(tail, "" | "b" | "ib") {
            return None;
        }
        1u64 << (10 * power)
    };
    // Go converts float64 → int64; out-of-range values are meaningless there, so they
    // saturate here rather than wrap.
    Some((size * multiplier as f64) as u64)
}

/// `strconv.ParseFloat(s, 64)` for the decimal forms that can reach it here (the text
/// always ends in a digit or `.`, so `inf`/`nan` cannot): optional sign, digits, one
/// dot, optional exponent. Overflow to infinity is an error, as in Go.
fn parse_go_float(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let mantissa_end = body.find(['e', 'E']).unwrap_or(body.len());
    let (mantissa, exponent) = body.split_at(mantissa_end);
    let mantissa_ok = mantissa.bytes().any(|b| b.is_ascii_digit())
        && mantissa.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && mantissa.matches('.').count() <= 1;
    let exponent_ok = exponent.is_empty() || {
        let digits = exponent[1..]
            .strip_prefix(['+', '-'])
            .unwrap_or(&exponent[1..]);
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    };
    if !mantissa_ok || !exponent_ok {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_binary_units() {
        let cases: &[(&str, u64)] = &[
            ("0", 0),
            ("1024", 1024),
            ("32", 32),
            ("32b", 32),
            ("32B", 32),
            ("32k", 32 * 1024),
            ("32K", 32 * 1024),
            ("32kb", 32 * 1024),
            ("32Kib", 32 * 1024),
            ("32KIB", 32 * 1024),
            ("32Mb", 32 << 20),
            ("32Gb", 32 << 30),
            ("32Tb", 32 << 40),
            ("32Pb", 32 << 50),
            ("32 mb", 32 << 20),
            ("1.5k", 1536),
            ("0.3k", 307),
            ("1e3", 1000),
            ("+5m", 5 << 20),
            ("5.", 5),
            ("32 ", 32),
        ];
        for (input, want) in cases {
            assert_eq!(ram_in_bytes(input), Some(*want), "{input}");
        }
    }

    #[test]
    fn refuses_what_go_units_refuses() {
        for bad in [
            "", "m", "-1", "-1k", "32bb", "32kbb", "32x", "32kib2", ". ", "1.2.3", "32ki", "32mi",
            "1e", "1e400", "1_000", "32 k b",
        ] {
            assert_eq!(ram_in_bytes(bad), None, "{bad:?}");
        }
    }
}
