//! What a failed step tells the user, after the progress has scrolled by: the step and
//! the last lines of its output, the Dockerfile lines around it (BuildKit's layout, so
//! people and scripts used to `docker build` read it at a glance), and the image the
//! step ran on, to look inside with `rbuild run -it`.

use std::collections::VecDeque;
use std::fmt::Write as _;

use rbuild_store::Digest;

/// How many lines of a failed step's output the report repeats.
pub const TAIL_LINES: usize = 10;

/// A step that failed while it ran (RUN, COPY, …), with what the report needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    /// `Dockerfile:LINE`.
    pub location: String,
    /// Why: `process "/bin/sh -c make" did not complete successfully: exit code: 2`.
    pub message: String,
    /// The step as progress named it: `[stage-1 3/5] RUN make`.
    pub step: String,
    /// The last lines of its output, each with its time (`0.412 cc: error …`).
    pub tail: Vec<String>,
    /// The Dockerfile lines around the step: (number, part of the step, text).
    pub source: Vec<(usize, bool, String)>,
    /// The image the step ran on (`None` for a step on `FROM scratch`).
    pub parent: Option<Digest>,
}

impl std::fmt::Display for StepFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

impl StepFailure {
    /// The report printed above the error line.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "------\n > {}:", self.step);
        for line in &self.tail {
            let _ = writeln!(out, "{line}");
        }
        out.push_str("------\n");
        if let Some((first, ..)) = self.source.iter().find(|(_, hit, _)| *hit) {
            let file = self.location.rsplit_once(':').map_or("", |(f, _)| f);
            let _ = writeln!(out, "{file}:{first}\n--------------------");
            for (n, hit, text) in &self.source {
                let mark = if *hit { ">>>" } else { "   " };
                let _ = writeln!(out, " {n:>3} | {mark} {text}");
            }
            out.push_str("--------------------\n");
        }
        if let Some(id) = &self.parent {
            let short = &id.hex()[..12];
            let _ = writeln!(
                out,
                "The step ran on image {short}; open a shell in it with: rbuild run -it --rm {short} sh"
            );
        }
        out
    }
}

/// The lines `start..=end` (from 1) of `lines` with context around them, as BuildKit
/// pads them: two lines each side of a one-line step, one each side of a longer one.
pub fn source_excerpt(lines: &[String], start: usize, end: usize) -> Vec<(usize, bool, String)> {
    if start == 0 || start > lines.len() {
        return Vec::new();
    }
    let end = end.clamp(start, lines.len());
    let pad = if start == end { 2 } else { 1 };
    let from = start.saturating_sub(pad).max(1);
    let to = (end + pad).min(lines.len());
    (from..=to)
        .map(|n| (n, (start..=end).contains(&n), lines[n - 1].clone()))
        .collect()
}

/// Keeps the last [`TAIL_LINES`] lines given to it.
#[derive(Debug, Default)]
pub struct Tail(VecDeque<String>);

impl Tail {
    pub fn push(&mut self, line: String) {
        if self.0.len() == TAIL_LINES {
            self.0.pop_front();
        }
        self.0.push_back(line);
    }

    pub fn into_lines(self) -> Vec<String> {
        self.0.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("L{i}")).collect()
    }

    #[test]
    fn excerpts_pad_like_buildkit() {
        let got: Vec<usize> = source_excerpt(&lines(9), 5, 5)
            .iter()
            .map(|l| l.0)
            .collect();
        assert_eq!(got, [3, 4, 5, 6, 7]);
        let got = source_excerpt(&lines(9), 4, 6);
        assert_eq!(
            got.iter().map(|l| (l.0, l.1)).collect::<Vec<_>>(),
            [(3, false), (4, true), (5, true), (6, true), (7, false)]
        );
        // At the edges of the file.
        let got: Vec<usize> = source_excerpt(&lines(2), 1, 1)
            .iter()
            .map(|l| l.0)
            .collect();
        assert_eq!(got, [1, 2]);
        assert!(source_excerpt(&lines(2), 3, 3).is_empty());
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let mut t = Tail::default();
        for i in 0..25 {
            t.push(i.to_string());
        }
        let got = t.into_lines();
        assert_eq!(got.len(), TAIL_LINES);
        assert_eq!(got.first().map(String::as_str), Some("15"));
        assert_eq!(got.last().map(String::as_str), Some("24"));
    }

    #[test]
    fn report_shows_output_source_and_parent() {
        let parent: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        let f = StepFailure {
            location: "Dockerfile:2".into(),
            message: "exit code: 3".into(),
            step: "[2/2] RUN false".into(),
            tail: vec!["0.010 oops".into()],
            source: source_excerpt(&["FROM busybox".into(), "RUN false".into()], 2, 2),
            parent: Some(parent),
        };
        assert_eq!(
            f.report(),
            "------\n > [2/2] RUN false:\n0.010 oops\n------\nDockerfile:2\n\
             --------------------\n   1 |     FROM busybox\n   2 | >>> RUN false\n\
             --------------------\nThe step ran on image abababababab; open a shell in it \
             with: rbuild run -it --rm abababababab sh\n"
        );
        assert_eq!(f.to_string(), "Dockerfile:2: exit code: 3");
    }
}
