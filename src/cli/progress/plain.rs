//! BuildKit's plain progress: every event a line under its vertex number, nothing
//! clipped, so logs and scripts can read it.

use std::fmt::Write;

use rbuild_builder::build::Event;

/// The text for one event, ending in a line break (a blank line after a vertex ends).
pub fn format(e: &Event) -> String {
    let mut s = String::new();
    let _ = match e {
        Event::Started { id, name } => writeln!(s, "#{id} {name}"),
        Event::Log { id, text } => writeln!(s, "#{id} {text}"),
        Event::Output { id, elapsed, line } => {
            writeln!(s, "#{id} {:.3} {line}", elapsed.as_secs_f64())
        }
        Event::Cached { id } => writeln!(s, "#{id} CACHED\n"),
        Event::Miss { id, reason } => writeln!(s, "#{id} cache miss: {reason}"),
        Event::Done { id, elapsed } => {
            writeln!(s, "#{id} DONE {:.1}s\n", elapsed.as_secs_f64())
        }
        Event::Failed { id, message, .. } => writeln!(s, "#{id} ERROR: {message}\n"),
        Event::Warning { text } => writeln!(s, "WARNING: {text}"),
    };
    s
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rbuild_builder::build::MissReason;

    use super::*;

    #[test]
    fn lines_are_buildkits() {
        let started = Event::Started {
            id: 3,
            name: "[2/5] RUN make".into(),
        };
        assert_eq!(format(&started), "#3 [2/5] RUN make\n");
        let output = Event::Output {
            id: 3,
            elapsed: Duration::from_millis(12),
            line: "a line longer than any terminal ".repeat(10),
        };
        assert_eq!(
            format(&output),
            format!(
                "#3 0.012 {}\n",
                "a line longer than any terminal ".repeat(10)
            )
        );
        let miss = Event::Miss {
            id: 3,
            reason: MissReason::FileChanged("app.py".into()),
        };
        assert_eq!(format(&miss), "#3 cache miss: file app.py changed\n");
        assert_eq!(format(&Event::Cached { id: 4 }), "#4 CACHED\n\n");
        let done = Event::Done {
            id: 3,
            elapsed: Duration::from_millis(1234),
        };
        assert_eq!(format(&done), "#3 DONE 1.2s\n\n");
        let failed = Event::Failed {
            id: 5,
            elapsed: Duration::ZERO,
            message: "exit code: 1".into(),
        };
        assert_eq!(format(&failed), "#5 ERROR: exit code: 1\n\n");
    }
}
