//! `HEALTHCHECK NONE` / `HEALTHCHECK [--interval=…] [--timeout=…] [--start-period=…]
//! [--start-interval=…] [--retries=…] CMD <command>`.

use serde::{Serialize, Serializer};
use std::time::Duration;

use super::duration::parse_go_duration;
use super::run::ShellOrExec;
use super::strconv::parse_i32;
use super::{Ctx, FlagSpec, Flags};
use crate::error::Diagnostic;

/// A health check setting for the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any check inherited from the base image.
    None,
    Cmd(HealthcheckCmd),
}

/// `HEALTHCHECK CMD`. Zero durations and zero retries mean "inherit / default", as in
/// the image config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthcheckCmd {
    /// Shell form becomes Docker's `CMD-SHELL`, exec form `CMD`.
    pub test: ShellOrExec,
    #[serde(serialize_with = "nanos")]
    pub interval: Duration,
    #[serde(serialize_with = "nanos")]
    pub timeout: Duration,
    #[serde(serialize_with = "nanos")]
    pub start_period: Duration,
    #[serde(serialize_with = "nanos")]
    pub start_interval: Duration,
    pub retries: u32,
}

/// Durations appear in JSON as nanoseconds, as in Docker's image config.
fn nanos<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

const FLAGS: &[FlagSpec] = &[
    FlagSpec::string("interval"),
    FlagSpec::string("timeout"),
    FlagSpec::string("start-period"),
    FlagSpec::string("start-interval"),
    FlagSpec::string("retries"),
];

const USAGE: &str = "HEALTHCHECK [OPTIONS] CMD <command> or HEALTHCHECK NONE";

pub(super) fn parse(cx: &Ctx<'_>) -> Result<Healthcheck, Diagnostic> {
    let Some((kind, rest)) = cx.words().split_first() else {
        return Err(cx
            .error("HEALTHCHECK requires at least one argument")
            .with_help(USAGE));
    };
    let kind = kind.to_uppercase();
    if kind == "NONE" {
        // BuildKit does not look at the flags of HEALTHCHECK NONE.
        if !rest.is_empty() {
            return Err(cx.error("HEALTHCHECK NONE takes no arguments"));
        }
        return Ok(Healthcheck::None);
    }
    let flags = cx.flags(FLAGS)?;
    if kind != "CMD" {
        return Err(cx
            .error(format!(
                "Unknown type {} in HEALTHCHECK (try CMD)",
                super::strconv::quote(&kind)
            ))
            .with_help(USAGE));
    }
    if rest.is_empty() {
        return Err(cx
            .error("Missing command after HEALTHCHECK CMD")
            .with_help(USAGE));
    }
    let test = if cx.node.json {
        ShellOrExec::Exec(rest.to_vec())
    } else {
        ShellOrExec::Shell(rest.join(" "))
    };
    Ok(Healthcheck::Cmd(HealthcheckCmd {
        test,
        interval: interval(cx, &flags, "interval")?,
        timeout: interval(cx, &flags, "timeout")?,
        start_period: interval(cx, &flags, "start-period")?,
        start_interval: interval(cx, &flags, "start-interval")?,
        retries: retries(cx, &flags)?,
    }))
}

/// BuildKit's `parseOptInterval`: empty or zero means unset; anything else must be at
/// least one millisecond (which also refuses negative values).
fn interval(cx: &Ctx<'_>, flags: &Flags, name: &str) -> Result<Duration, Diagnostic> {
    let flag = format!("--{name}");
    let text = flags.string(name).unwrap_or("");
    if text.is_empty() {
        return Ok(Duration::ZERO);
    }
    let nanos = parse_go_duration(text).map_err(|e| {
        cx.error_at_flag(&flag, e.to_string())
            .with_help("durations are written like 30s, 1m30s or 500ms")
    })?;
    if nanos == 0 {
        return Ok(Duration::ZERO);
    }
    if nanos < 1_000_000 {
        return Err(cx.error_at_flag(
            &flag,
            format!("Interval \"{name}\" cannot be less than 1ms"),
        ));
    }
    Ok(Duration::from_nanos(nanos.unsigned_abs()))
}

fn retries(cx: &Ctx<'_>, flags: &Flags) -> Result<u32, Diagnostic> {
    let text = flags.string("retries").unwrap_or("");
    if text.is_empty() {
        return Ok(0);
    }
    let n = parse_i32(text).map_err(|e| cx.error_at_flag("--retries", e.to_string()))?;
    u32::try_from(n)
        .map_err(|_| cx.error_at_flag("--retries", format!("--retries cannot be negative ({n})")))
}

#[cfg(test)]
mod tests {
    use super::super::Instruction;
    use super::super::test_node::{error, json_node, node, parse as parse_node};
    use super::*;

    fn hc(flags: &[&str], words: &[&str]) -> HealthcheckCmd {
        match parse_node(&node("healthcheck", flags, words)) {
            Ok(Instruction::Healthcheck(Healthcheck::Cmd(c))) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn none_form() {
        assert_eq!(
            parse_node(&node("healthcheck", &[], &["none"])),
            Ok(Instruction::Healthcheck(Healthcheck::None))
        );
        assert_eq!(
            parse_node(&node("healthcheck", &["--bogus"], &["NONE"])),
            Ok(Instruction::Healthcheck(Healthcheck::None)),
            "BuildKit ignores flags on NONE"
        );
        assert_eq!(
            error(&node("healthcheck", &[], &["NONE", "x"])),
            "HEALTHCHECK NONE takes no arguments"
        );
    }

    #[test]
    fn cmd_forms() {
        let c = hc(&[], &["CMD", "curl -f http://localhost/"]);
        assert_eq!(
            c.test,
            ShellOrExec::Shell("curl -f http://localhost/".into())
        );
        assert_eq!(c.interval, Duration::ZERO);
        assert_eq!(c.retries, 0);
        let c = match parse_node(&json_node("healthcheck", &[], &["cmd", "curl", "-f"])) {
            Ok(Instruction::Healthcheck(Healthcheck::Cmd(c))) => c,
            other => panic!("{other:?}"),
        };
        assert_eq!(c.test, ShellOrExec::Exec(vec!["curl".into(), "-f".into()]));
    }

    #[test]
    fn all_options() {
        let c = hc(
            &[
                "--interval=1m30s",
                "--timeout=500ms",
                "--start-period=2s",
                "--start-interval=1ms",
                "--retries=3",
            ],
            &["CMD", "true"],
        );
        assert_eq!(c.interval, Duration::from_secs(90));
        assert_eq!(c.timeout, Duration::from_millis(500));
        assert_eq!(c.start_period, Duration::from_secs(2));
        assert_eq!(c.start_interval, Duration::from_millis(1));
        assert_eq!(c.retries, 3);
        let json = serde_json::to_value(Instruction::Healthcheck(Healthcheck::Cmd(c))).unwrap();
        assert_eq!(json["instruction"], "healthcheck");
        assert_eq!(json["type"], "cmd");
        assert_eq!(json["interval"], 90_000_000_000u64);
        let none = serde_json::to_value(Instruction::Healthcheck(Healthcheck::None)).unwrap();
        assert_eq!(none["type"], "none");
    }

    #[test]
    fn zero_means_unset() {
        let c = hc(
            &[
                "--interval=0",
                "--timeout=0s",
                "--retries=0",
                "--start-period=",
            ],
            &["CMD", "x"],
        );
        assert_eq!(c.interval, Duration::ZERO);
        assert_eq!(c.timeout, Duration::ZERO);
        assert_eq!(c.retries, 0);
    }

    #[test]
    fn errors() {
        let cases: &[(&[&str], &[&str], &str)] = &[
            (&[], &[], "HEALTHCHECK requires at least one argument"),
            (&[], &["CMD"], "Missing command after HEALTHCHECK CMD"),
            (
                &[],
                &["RUN", "x"],
                "Unknown type \"RUN\" in HEALTHCHECK (try CMD)",
            ),
            (
                &["--interval=50ns"],
                &["CMD", "x"],
                "Interval \"interval\" cannot be less than 1ms",
            ),
            (
                &["--timeout=-1s"],
                &["CMD", "x"],
                "Interval \"timeout\" cannot be less than 1ms",
            ),
            (
                &["--start-period=5"],
                &["CMD", "x"],
                "time: missing unit in duration \"5\"",
            ),
            (
                &["--start-interval=1d"],
                &["CMD", "x"],
                "time: unknown unit \"d\" in duration \"1d\"",
            ),
            (
                &["--retries=-1"],
                &["CMD", "x"],
                "--retries cannot be negative (-1)",
            ),
            (
                &["--retries=x"],
                &["CMD", "x"],
                "strconv.ParseInt: parsing \"x\": invalid syntax",
            ),
            (
                &["--retries=3000000000"],
                &["CMD", "x"],
                "strconv.ParseInt: parsing \"3000000000\": value out of range",
            ),
            (
                &["--interval"],
                &["CMD", "x"],
                "missing a value on flag: --interval",
            ),
            (&["--intervl=1s"], &["CMD", "x"], "unknown flag: --intervl"),
            (&["--bogus"], &["FOO"], "unknown flag: --bogus"),
        ];
        for (flags, words, want) in cases {
            assert_eq!(
                error(&node("healthcheck", flags, words)),
                *want,
                "{flags:?} {words:?}"
            );
        }
        let e = parse_node(&node(
            "healthcheck",
            &["--retries=1", "--timeout=1x"],
            &["CMD", "x"],
        ))
        .unwrap_err();
        assert_eq!(e.pos.map(|p| p.column), Some(25), "points at --timeout");
    }
}
