//! `--progress json`: one JSON object per line, for tools and CI dashboards. The schema is
//! in the README (build section); fields are only ever added.

use chrono::{DateTime, SecondsFormat, Utc};
use rbuild_builder::build::{Event, MissReason};
use serde::Serialize;

#[derive(Serialize)]
struct Record<'a> {
    time: String,
    #[serde(flatten)]
    event: Kind<'a>,
}

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Kind<'a> {
    Started {
        vertex: usize,
        name: &'a str,
    },
    Log {
        vertex: usize,
        text: &'a str,
    },
    Cached {
        vertex: usize,
    },
    Miss {
        vertex: usize,
        reason: String,
        kind: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        arg: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<&'a str>,
    },
    Output {
        vertex: usize,
        /// Seconds since the command began.
        elapsed: f64,
        line: &'a str,
    },
    Done {
        vertex: usize,
        /// Seconds.
        duration: f64,
    },
    Failed {
        vertex: usize,
        duration: f64,
        error: &'a str,
    },
    Warning {
        message: &'a str,
    },
}

/// The line for one event at `time`, ending in a line break.
pub fn format(e: &Event, time: DateTime<Utc>) -> String {
    let event = match e {
        Event::Started { id, name } => Kind::Started { vertex: *id, name },
        Event::Log { id, text } => Kind::Log { vertex: *id, text },
        Event::Output { id, elapsed, line } => Kind::Output {
            vertex: *id,
            elapsed: seconds(*elapsed),
            line,
        },
        Event::Cached { id } => Kind::Cached { vertex: *id },
        Event::Miss { id, reason } => {
            let (arg, path) = match reason {
                MissReason::BuildArgChanged(a) => (Some(a.as_str()), None),
                MissReason::FileChanged(p) | MissReason::GitChanged(p) => (None, Some(p.as_str())),
                _ => (None, None),
            };
            Kind::Miss {
                vertex: *id,
                reason: reason.to_string(),
                kind: miss_kind(reason),
                arg,
                path,
            }
        }
        Event::Done { id, elapsed } => Kind::Done {
            vertex: *id,
            duration: seconds(*elapsed),
        },
        Event::Failed {
            id,
            elapsed,
            message,
        } => Kind::Failed {
            vertex: *id,
            duration: seconds(*elapsed),
            error: message,
        },
        Event::Warning { text } => Kind::Warning { message: text },
    };
    let record = Record {
        time: time.to_rfc3339_opts(SecondsFormat::Millis, true),
        event,
    };
    let mut line = serde_json::to_string(&record).expect("progress records serialize");
    line.push('\n');
    line
}

/// Seconds to the microsecond: `1.513857`, not `1.5138576129999999`.
fn seconds(d: std::time::Duration) -> f64 {
    d.as_micros() as f64 / 1e6
}

/// A stable name for each reason, for tools to match on (the `reason` text may change).
fn miss_kind(r: &MissReason) -> &'static str {
    match r {
        MissReason::NoCache => "no_cache",
        MissReason::FirstBuild => "first_build",
        MissReason::ParentChanged => "parent_changed",
        MissReason::BuildArgChanged(_) => "build_arg_changed",
        MissReason::FileChanged(_) => "file_changed",
        MissReason::GitChanged(_) => "git_changed",
        MissReason::InstructionChanged => "instruction_changed",
        MissReason::ResultRemoved => "result_removed",
        MissReason::EpochChanged => "epoch_changed",
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeZone;

    use super::*;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, 10, 0, 0).unwrap() + Duration::from_millis(123)
    }

    #[test]
    fn one_object_per_line() {
        let e = Event::Started {
            id: 3,
            name: "[2/5] RUN make \"all\"".into(),
        };
        assert_eq!(
            format(&e, at()),
            "{\"time\":\"2026-12-02T10:00:00.123Z\",\"event\":\"started\",\"vertex\":3,\"name\":\"[2/5] RUN make \\\"all\\\"\"}\n"
        );
        let e = Event::Output {
            id: 3,
            elapsed: Duration::from_millis(12),
            line: "hi".into(),
        };
        let v: serde_json::Value = serde_json::from_str(&format(&e, at())).unwrap();
        assert_eq!(v["event"], "output");
        assert_eq!(v["elapsed"], 0.012);
        assert_eq!(v["line"], "hi");
    }

    #[test]
    fn misses_say_why_in_words_and_as_a_kind() {
        let e = Event::Miss {
            id: 4,
            reason: MissReason::FileChanged("src/app.py".into()),
        };
        let v: serde_json::Value = serde_json::from_str(&format(&e, at())).unwrap();
        assert_eq!(v["reason"], "file src/app.py changed");
        assert_eq!(v["kind"], "file_changed");
        assert_eq!(v["path"], "src/app.py");
        assert!(v.get("arg").is_none());
        let e = Event::Miss {
            id: 4,
            reason: MissReason::BuildArgChanged("V".into()),
        };
        let v: serde_json::Value = serde_json::from_str(&format(&e, at())).unwrap();
        assert_eq!(v["kind"], "build_arg_changed");
        assert_eq!(v["arg"], "V");
    }

    #[test]
    fn failures_and_warnings() {
        let e = Event::Failed {
            id: 5,
            elapsed: Duration::from_millis(1500),
            message: "exit code: 1".into(),
        };
        let v: serde_json::Value = serde_json::from_str(&format(&e, at())).unwrap();
        assert_eq!(v["event"], "failed");
        assert_eq!(v["duration"], 1.5);
        assert_eq!(v["error"], "exit code: 1");
        let e = Event::Warning { text: "w".into() };
        let v: serde_json::Value = serde_json::from_str(&format(&e, at())).unwrap();
        assert_eq!(v["message"], "w");
        assert!(v.get("vertex").is_none());
    }
}
