//! Sizes and ages as the docker CLI prints them (docker/go-units), so that our tables
//! read the same: `4.26MB`, `2 weeks ago`.

use chrono::{DateTime, TimeDelta, Utc};

/// Decimal units of go-units' `HumanSize`.
const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];

/// A byte count as go-units' `HumanSizeWithPrecision(float64(n), 3)` prints it, the
/// SIZE column of `docker images`: powers of 1000, three significant digits, Go's `%g`
/// (so 999 500 bytes is `1e+03kB`, as docker prints it too).
pub fn human_size(bytes: u64) -> String {
    human_size_with_precision(bytes, 3)
}

/// go-units' `HumanSize` (four significant digits): what `image prune` and `system df`
/// print, e.g. `Total reclaimed space: 1.987MB`.
pub fn human_size_precise(bytes: u64) -> String {
    human_size_with_precision(bytes, 4)
}

fn human_size_with_precision(bytes: u64, prec: usize) -> String {
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    format!("{}{}", format_g(size, prec), UNITS[unit])
}

/// Go's `fmt.Sprintf("%.*g", prec, x)` for finite `x >= 0`: `prec` significant digits,
/// trailing zeros dropped, exponent form when the exponent is below -4 or at least the
/// number of digits kept (strconv's `FormatFloat(x, 'g', prec, 64)`).
fn format_g(x: f64, prec: usize) -> String {
    if x == 0.0 {
        return "0".to_string();
    }
    // Rust's `{:e}` rounds exactly (ties to even), as strconv does.
    let sci = format!("{:.*e}", prec - 1, x);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let nd = digits.len() as i32;
    let dp = exp + 1; // position of the decimal point in `digits`
    let mut eprec = prec as i32;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    if exp < -4 || exp >= eprec {
        let mut s = digits[..1].to_string();
        if nd > 1 {
            s.push('.');
            s.push_str(&digits[1..]);
        }
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{s}e{sign}{:02}", exp.abs());
    }
    let digit = |i: i32| -> char {
        if (0..nd).contains(&i) {
            digits.as_bytes()[i as usize] as char
        } else {
            '0'
        }
    };
    let mut s: String = if dp > 0 {
        (0..dp).map(digit).collect()
    } else {
        "0".to_string()
    };
    let decimals = (nd - dp).max(0);
    if decimals > 0 {
        s.push('.');
        s.extend((0..decimals).map(|i| digit(dp + i)));
    }
    s
}

/// How long ago `t` was, as docker's CREATED column prints it:
/// `units.HumanDuration(now.Sub(t)) + " ago"`.
pub fn human_duration_since(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    format!("{} ago", human_duration(now - t))
}

/// go-units' `HumanDuration`, thresholds and rounding included: seconds and minutes are
/// truncated, hours rounded, days/weeks/months derived from the rounded hours.
fn human_duration(d: TimeDelta) -> String {
    let secs = d.num_seconds() as f64 + f64::from(d.subsec_nanos()) / 1e9;
    let seconds = secs as i64;
    let minutes = (secs / 60.0) as i64;
    let hours = (secs / 3600.0 + 0.5) as i64;
    if seconds < 1 {
        "Less than a second".to_string()
    } else if seconds == 1 {
        "1 second".to_string()
    } else if seconds < 60 {
        format!("{seconds} seconds")
    } else if minutes == 1 {
        "About a minute".to_string()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".to_string()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", (secs / 3600.0) as i64 / 24 / 365)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_go_units() {
        for (bytes, want) in [
            (0, "0B"),
            (1, "1B"),
            (999, "999B"),
            (1000, "1kB"),
            (1024, "1.02kB"),
            (1125, "1.12kB"), // a tie: rounds to even, as Go does
            (1135, "1.14kB"),
            (10_000, "10kB"),
            (12_345, "12.3kB"),
            (100_000, "100kB"),
            (999_000, "999kB"),
            (999_500, "1e+03kB"), // go-units prints this too
            (1_000_000, "1MB"),
            (4_261_296, "4.26MB"),
            (1_234_567_890, "1.23GB"),
            (5_000_000_000_000, "5TB"),
            (u64::MAX, "18.4EB"),
        ] {
            assert_eq!(human_size(bytes), want, "{bytes}");
        }
    }

    #[test]
    fn go_g_format() {
        assert_eq!(format_g(0.0001234, 3), "0.000123");
        assert_eq!(format_g(0.00001234, 3), "1.23e-05");
        assert_eq!(format_g(123456.0, 3), "1.23e+05");
        assert_eq!(format_g(120.0, 3), "120");
        assert_eq!(format_g(1.5, 3), "1.5");
    }

    #[test]
    fn durations_like_go_units() {
        let s = |secs: i64| TimeDelta::seconds(secs);
        for (d, want) in [
            (TimeDelta::milliseconds(-5000), "Less than a second"),
            (TimeDelta::milliseconds(999), "Less than a second"),
            (s(1), "1 second"),
            (TimeDelta::milliseconds(1999), "1 second"),
            (s(2), "2 seconds"),
            (s(59), "59 seconds"),
            (s(60), "About a minute"),
            (s(119), "About a minute"),
            (s(120), "2 minutes"),
            (s(5 * 60), "5 minutes"),
            (s(59 * 60 + 59), "59 minutes"),
            (s(3600), "About an hour"),
            (s(3600 + 29 * 60), "About an hour"),
            (s(3600 + 30 * 60), "2 hours"), // hours are rounded
            (s(3 * 3600), "3 hours"),
            (s(47 * 3600 + 29 * 60), "47 hours"),
            (s(47 * 3600 + 30 * 60), "2 days"),
            (s(13 * 86400), "13 days"),
            (s(14 * 86400), "2 weeks"),
            (s(59 * 86400), "8 weeks"),
            (s(60 * 86400), "2 months"),
            (s(95 * 86400), "3 months"),
            (s(729 * 86400), "24 months"),
            (s(730 * 86400), "2 years"),
            (s(3 * 365 * 86400 + 86400), "3 years"),
        ] {
            assert_eq!(human_duration(d), want, "{d}");
        }
    }

    #[test]
    fn since_adds_ago() {
        let now = DateTime::parse_from_rfc3339("2024-09-26T21:31:42Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            human_duration_since(now - TimeDelta::days(14), now),
            "2 weeks ago"
        );
        assert_eq!(
            human_duration_since(now + TimeDelta::seconds(10), now),
            "Less than a second ago"
        );
    }
}
