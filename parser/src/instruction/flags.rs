//! `--flag` words of an instruction, checked against that instruction's table of known
//! flags the way BuildKit's `bflag.go` does: unknown flags are refused (with a "did you
//! mean" when one is close), a flag may appear once unless it collects a list
//! (`--exclude`, `--mount`), a string flag needs `=value`, a bool flag takes `--flag`,
//! `--flag=true` or `--flag=false` (any case).

use crate::suggest::closest;

/// How a flag's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// `--link`, `--link=true`, `--link=FALSE`.
    Bool,
    /// `--chown=1:1`; once only.
    String,
    /// `--exclude=a --exclude=b`; may repeat, values collected in order.
    Strings,
}

/// One flag an instruction accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagSpec {
    pub name: &'static str,
    pub kind: FlagKind,
}

impl FlagSpec {
    pub const fn bool(name: &'static str) -> Self {
        FlagSpec {
            name,
            kind: FlagKind::Bool,
        }
    }
    pub const fn string(name: &'static str) -> Self {
        FlagSpec {
            name,
            kind: FlagKind::String,
        }
    }
    pub const fn strings(name: &'static str) -> Self {
        FlagSpec {
            name,
            kind: FlagKind::Strings,
        }
    }
}

/// Why the flags of an instruction were refused. Messages are BuildKit's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    #[error("arg should start with -- : {0}")]
    NotAFlag(String),
    #[error("unknown flag: {flag}")]
    Unknown {
        flag: String,
        suggestion: Option<&'static str>,
    },
    #[error("duplicate flag specified: {0}")]
    Duplicate(String),
    #[error("missing a value on flag: {0}")]
    MissingValue(String),
    #[error("expecting boolean value for flag {flag}, not: {value}")]
    NotBool { flag: String, value: String },
}

impl FlagError {
    /// A hint such as `did you mean --chown?`.
    pub fn help(&self) -> Option<String> {
        match self {
            FlagError::Unknown {
                suggestion: Some(s),
                ..
            } => Some(format!("did you mean --{s}?")),
            _ => None,
        }
    }

    /// The flag as written before any `=` (`--chown`), to point at it in the line.
    pub fn flag(&self) -> &str {
        match self {
            FlagError::NotAFlag(f) | FlagError::Duplicate(f) | FlagError::MissingValue(f) => f,
            FlagError::Unknown { flag, .. } | FlagError::NotBool { flag, .. } => flag,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum FlagValue {
    Bool(bool),
    String(String),
    Strings(Vec<String>),
}

/// The flags given to one instruction, validated against its table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Flags {
    used: Vec<(&'static str, FlagValue)>,
}

impl Flags {
    /// Checks `words` (as the syntax tree keeps them: `--name` or `--name=value`) against
    /// `table`. A bare `--` ends the flags, as in POSIX utilities.
    pub fn parse(words: &[String], table: &[FlagSpec]) -> Result<Flags, FlagError> {
        let mut flags = Flags::default();
        for word in words {
            if word == "--" {
                break;
            }
            let Some(body) = word.strip_prefix("--") else {
                return Err(FlagError::NotAFlag(word.clone()));
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let written = format!("--{name}");
            let Some(spec) = table.iter().find(|s| s.name == name) else {
                return Err(FlagError::Unknown {
                    flag: written,
                    suggestion: suggest(name, table),
                });
            };
            let previous = flags.used.iter_mut().find(|(n, _)| *n == spec.name);
            match (spec.kind, previous) {
                (FlagKind::Strings, Some((_, FlagValue::Strings(list)))) => {
                    list.push(value.ok_or(FlagError::MissingValue(written))?.to_string());
                }
                (_, Some(_)) => return Err(FlagError::Duplicate(written)),
                (kind, None) => {
                    let parsed = read_value(kind, &written, value)?;
                    flags.used.push((spec.name, parsed));
                }
            }
        }
        Ok(flags)
    }

    /// The value of a bool flag, `None` when it was not given.
    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.get(name)? {
            FlagValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The value of a string flag, `None` when it was not given.
    pub fn string(&self, name: &str) -> Option<&str> {
        match self.get(name)? {
            FlagValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The values of a repeatable flag, in the order written (empty when not given).
    pub fn strings(&self, name: &str) -> &[String] {
        match self.get(name) {
            Some(FlagValue::Strings(v)) => v,
            _ => &[],
        }
    }

    /// Whether the flag was given at all.
    pub fn is_used(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    fn get(&self, name: &str) -> Option<&FlagValue> {
        self.used.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

fn read_value(kind: FlagKind, written: &str, value: Option<&str>) -> Result<FlagValue, FlagError> {
    Ok(match kind {
        FlagKind::Bool => match value {
            None => FlagValue::Bool(true),
            Some("") => return Err(FlagError::MissingValue(written.to_string())),
            Some(v) if v.eq_ignore_ascii_case("true") => FlagValue::Bool(true),
            Some(v) if v.eq_ignore_ascii_case("false") => FlagValue::Bool(false),
            Some(v) => {
                return Err(FlagError::NotBool {
                    flag: written.to_string(),
                    value: v.to_string(),
                });
            }
        },
        FlagKind::String => FlagValue::String(
            value
                .ok_or_else(|| FlagError::MissingValue(written.to_string()))?
                .to_string(),
        ),
        FlagKind::Strings => FlagValue::Strings(vec![
            value
                .ok_or_else(|| FlagError::MissingValue(written.to_string()))?
                .to_string(),
        ]),
    })
}

/// The known flag a misspelt one most likely meant; a flag differing only in case
/// (`--CHOWN`) counts, since flag names are case-sensitive.
fn suggest(name: &str, table: &[FlagSpec]) -> Option<&'static str> {
    if let Some(spec) = table.iter().find(|s| s.name.eq_ignore_ascii_case(name)) {
        return Some(spec.name);
    }
    closest(name, table.iter().map(|s| s.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[FlagSpec] = &[
        FlagSpec::string("chown"),
        FlagSpec::bool("link"),
        FlagSpec::strings("exclude"),
    ];

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    fn parse(w: &[&str]) -> Result<Flags, FlagError> {
        Flags::parse(&words(w), TABLE)
    }

    #[test]
    fn reads_each_kind() {
        let f = parse(&["--chown=1:2", "--link", "--exclude=a", "--exclude=b"]).unwrap();
        assert_eq!(f.string("chown"), Some("1:2"));
        assert_eq!(f.bool("link"), Some(true));
        assert_eq!(f.strings("exclude"), ["a", "b"]);
        assert!(f.is_used("chown"));
        let none = parse(&[]).unwrap();
        assert_eq!(none.string("chown"), None);
        assert_eq!(none.bool("link"), None);
        assert!(none.strings("exclude").is_empty());
        assert!(!none.is_used("link"));
    }

    #[test]
    fn string_values_may_be_empty_or_hold_equals() {
        let f = parse(&["--chown="]).unwrap();
        assert_eq!(f.string("chown"), Some(""));
        let f = parse(&["--chown=a=b"]).unwrap();
        assert_eq!(f.string("chown"), Some("a=b"));
    }

    #[test]
    fn bool_values() {
        assert_eq!(parse(&["--link=TRUE"]).unwrap().bool("link"), Some(true));
        assert_eq!(parse(&["--link=False"]).unwrap().bool("link"), Some(false));
        assert_eq!(
            parse(&["--link="]).unwrap_err().to_string(),
            "missing a value on flag: --link"
        );
        assert_eq!(
            parse(&["--link=yes"]).unwrap_err().to_string(),
            "expecting boolean value for flag --link, not: yes"
        );
    }

    #[test]
    fn string_flags_need_a_value() {
        assert_eq!(
            parse(&["--chown"]).unwrap_err().to_string(),
            "missing a value on flag: --chown"
        );
        assert_eq!(
            parse(&["--exclude=a", "--exclude"])
                .unwrap_err()
                .to_string(),
            "missing a value on flag: --exclude"
        );
        assert_eq!(
            parse(&["--exclude"]).unwrap_err().to_string(),
            "missing a value on flag: --exclude"
        );
    }

    #[test]
    fn duplicates_refused_except_lists() {
        let err = parse(&["--chown=a", "--chown=b"]).unwrap_err();
        assert_eq!(err.to_string(), "duplicate flag specified: --chown");
        assert_eq!(err.flag(), "--chown");
        let err = parse(&["--link", "--link=false"]).unwrap_err();
        assert_eq!(err.to_string(), "duplicate flag specified: --link");
    }

    #[test]
    fn unknown_flags_get_suggestions() {
        let err = parse(&["--chwon=1"]).unwrap_err();
        assert_eq!(err.to_string(), "unknown flag: --chwon");
        assert_eq!(err.help().as_deref(), Some("did you mean --chown?"));
        assert_eq!(err.flag(), "--chwon");
        let err = parse(&["--CHOWN=1"]).unwrap_err();
        assert_eq!(err.help().as_deref(), Some("did you mean --chown?"));
        let err = parse(&["--platform=x"]).unwrap_err();
        assert_eq!(err.to_string(), "unknown flag: --platform");
        assert_eq!(err.help(), None);
    }

    #[test]
    fn non_flags_and_double_dash() {
        assert_eq!(
            parse(&["-x"]).unwrap_err().to_string(),
            "arg should start with -- : -x"
        );
        let f = parse(&["--link", "--", "--bogus"]).unwrap();
        assert_eq!(f.bool("link"), Some(true));
    }
}
