//! Docker's `--filter key=value` sets (moby `api/types/filters`) and the matchers the
//! image filters use: labels, `path.Match` globs over reference names, and `until`
//! times.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};

/// A filter the user got wrong; messages are moby's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("bad format of filter (expected name=value)")]
    Format,
    #[error("invalid filter '{0}'")]
    Key(String),
    /// A known key with a value it cannot take: `invalid filter 'dangling=[maybe]'`.
    #[error("invalid filter '{key}=[{value}]'")]
    Value { key: String, value: String },
    #[error("{0}")]
    Other(String),
}

/// `key → values`, as several `--filter` flags give them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    /// Parses `key=value` words (docker's `filters.ParseFlag`: split at the first `=`,
    /// key trimmed and lower-cased, so `label!=x` is key `label!`).
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Filters, FilterError> {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for a in args {
            let (k, v) = a.as_ref().split_once('=').ok_or(FilterError::Format)?;
            let k = k.trim().to_lowercase();
            let v = v.trim().to_string();
            let values = map.entry(k).or_default();
            if !values.contains(&v) {
                values.push(v);
            }
        }
        Ok(Filters(map))
    }

    /// Refuses keys not in `accepted`.
    pub fn validate(&self, accepted: &[&str]) -> Result<(), FilterError> {
        match self.0.keys().find(|k| !accepted.contains(&k.as_str())) {
            Some(k) => Err(FilterError::Key(k.clone())),
            None => Ok(()),
        }
    }

    pub fn add(&mut self, key: &str, value: &str) {
        let values = self.0.entry(key.to_string()).or_default();
        if !values.iter().any(|v| v == value) {
            values.push(value.to_string());
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map_or(&[], Vec::as_slice)
    }

    /// A boolean filter (`dangling`): `None` when absent; `true`/`false` (any case,
    /// also `1`/`0`), anything else refused.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, FilterError> {
        let values = self.get(key);
        if values.is_empty() {
            return Ok(None);
        }
        let parsed: Vec<Option<bool>> = values
            .iter()
            .map(|v| match v.to_lowercase().as_str() {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => None,
            })
            .collect();
        match parsed.as_slice() {
            [Some(b)] => Ok(Some(*b)),
            _ => Err(FilterError::Value {
                key: key.to_string(),
                value: values.join(" "),
            }),
        }
    }
}

/// Docker's `MatchKVList`: every `key` or `key=value` in `wanted` is in `labels`.
pub fn labels_match(wanted: &[String], labels: &BTreeMap<String, String>) -> bool {
    wanted.iter().all(|w| match w.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(w.as_str()),
    })
}

/// Go's `path.Match`: `*` any run of non-`/` characters, `?` one non-`/` character,
/// `[a-z]`/`[^…]` classes, `\` escapes. A malformed pattern is an error, as in Go.
pub fn path_match(pattern: &str, name: &str) -> Result<bool, FilterError> {
    let bad = || FilterError::Other(format!("syntax error in pattern: {pattern:?}"));
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Check the whole pattern's syntax first, so errors do not depend on the name.
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '[' => i = class_end(&p, i).ok_or_else(bad)?,
            '\\' if i + 1 >= p.len() => return Err(bad()),
            '\\' => i += 2,
            _ => i += 1,
        }
    }
    Ok(glob(&p, &n))
}

fn glob(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len())
            .take_while(|&k| k == 0 || n[k - 1] != '/')
            .any(|k| glob(&p[1..], &n[k..])),
        Some(_) if n.is_empty() => false,
        Some('?') => n[0] != '/' && glob(&p[1..], &n[1..]),
        Some('[') => {
            let end = class_end(p, 0).unwrap_or(p.len());
            n[0] != '/' && class_matches(&p[1..end - 1], n[0]) && glob(&p[end..], &n[1..])
        }
        Some('\\') => p.get(1) == Some(&n[0]) && glob(&p[2..], &n[1..]),
        Some(c) => *c == n[0] && glob(&p[1..], &n[1..]),
    }
}

/// Index just past the `]` closing the class that opens at `start`.
fn class_end(p: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if p.get(i) == Some(&'^') {
        i += 1;
    }
    let first = i;
    loop {
        match p.get(i)? {
            ']' if i > first => return Some(i + 1),
            '\\' => i += 2,
            '-' if i == first => return None,
            _ => i += 1,
        }
    }
}

fn class_matches(class: &[char], c: char) -> bool {
    let (negated, class) = match class.split_first() {
        Some(('^', rest)) => (true, rest),
        _ => (false, class),
    };
    let mut items = Vec::new();
    let mut i = 0;
    while i < class.len() {
        let lo = if class[i] == '\\' {
            i += 1;
            class[i]
        } else {
            class[i]
        };
        i += 1;
        let hi = if class.get(i) == Some(&'-') && i + 1 < class.len() {
            i += 1;
            let h = if class[i] == '\\' {
                i += 1;
                class[i]
            } else {
                class[i]
            };
            i += 1;
            h
        } else {
            lo
        };
        items.push((lo, hi));
    }
    items.iter().any(|&(lo, hi)| lo <= c && c <= hi) != negated
}

/// docker's `timetypes.GetTimestamp` for `until`: a Go duration (`24h`, `1h30m`) back
/// from `now`, unix seconds (`1700000000`, `1700000000.5`), or an RFC 3339 time, date
/// and time, or date (UTC when no zone is given).
pub fn parse_until(value: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, FilterError> {
    if let Some(d) = go_duration(value) {
        return Ok(now - d);
    }
    if let Ok(secs) = value.parse::<f64>() {
        let whole = secs.trunc() as i64;
        let nanos = ((secs - secs.trunc()) * 1e9).round() as u32;
        if let Some(t) = DateTime::from_timestamp(whole, nanos) {
            return Ok(t);
        }
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(value, f) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc());
    }
    Err(FilterError::Other(format!(
        "failed to parse value as time or duration: {value:?}"
    )))
}

/// Go's `time.ParseDuration` for non-negative values: `300ms`, `1.5h`, `2h45m`.
fn go_duration(s: &str) -> Option<TimeDelta> {
    if s == "0" {
        return Some(TimeDelta::zero());
    }
    let mut rest = s;
    let mut nanos = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        nanos += num * scale;
    }
    Some(TimeDelta::nanoseconds(nanos as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_validate() {
        let f = Filters::parse(&["dangling=true", "label!=a=b", " Reference = x* "]).unwrap();
        assert_eq!(f.get("label!"), ["a=b"]);
        assert_eq!(f.get("reference"), ["x*"]);
        assert_eq!(f.bool("dangling"), Ok(Some(true)));
        assert_eq!(
            f.validate(&["dangling", "reference"])
                .unwrap_err()
                .to_string(),
            "invalid filter 'label!'"
        );
        assert_eq!(
            Filters::parse(&["nope"]).unwrap_err().to_string(),
            "bad format of filter (expected name=value)"
        );
        let f = Filters::parse(&["dangling=maybe"]).unwrap();
        assert_eq!(
            f.bool("dangling").unwrap_err().to_string(),
            "invalid filter 'dangling=[maybe]'"
        );
    }

    #[test]
    fn globs_like_go_path_match() {
        let m = |p, n| path_match(p, n).unwrap();
        assert!(m("busy*", "busybox"));
        assert!(m("*/app:1.*", "me/app:1.2"));
        assert!(!m("*/app:1.*", "a/b/app:1.2"), "* stops at /");
        assert!(!m("busy*", "me/busybox"));
        assert!(m("b?sybox", "busybox"));
        assert!(m("[a-c]usybox", "busybox"));
        assert!(!m("[^a-c]usybox", "busybox"));
        assert!(m("a\\*", "a*"));
        assert!(path_match("[a", "a").is_err());
        assert!(path_match("a\\", "a").is_err());
    }

    #[test]
    fn labels() {
        let l: BTreeMap<String, String> = [("a".into(), "1".into()), ("b".into(), "".into())]
            .into_iter()
            .collect();
        assert!(labels_match(&["a".into(), "b=".into()], &l));
        assert!(labels_match(&["a=1".into()], &l));
        assert!(!labels_match(&["a=2".into()], &l));
        assert!(!labels_match(&["c".into()], &l));
    }

    #[test]
    fn until_values() {
        let now = DateTime::parse_from_rfc3339("2024-01-02T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let t = |s| parse_until(s, now).unwrap().to_rfc3339();
        assert_eq!(t("24h"), "2024-01-01T00:00:00+00:00");
        assert_eq!(t("1h30m"), "2024-01-01T22:30:00+00:00");
        assert_eq!(t("1704067200"), "2024-01-01T00:00:00+00:00");
        assert_eq!(t("2023-12-31"), "2023-12-31T00:00:00+00:00");
        assert_eq!(t("2023-12-31T10:00:00+02:00"), "2023-12-31T08:00:00+00:00");
        assert!(parse_until("soon", now).is_err());
        // `logs --since/--until` take the same values.
        assert_eq!(t("1.5h"), "2024-01-01T22:30:00+00:00");
        assert_eq!(t("90s"), "2024-01-01T23:58:30+00:00");
        assert_eq!(t("2023-12-31T09:30:00"), "2023-12-31T09:30:00+00:00");
        assert!(parse_until("10x", now).is_err());
        assert!(parse_until("", now).is_err());
    }
}
