//! What a build reports while it runs. The library only emits these; the CLI decides how
//! they look (BuildKit's plain lines, nothing with `-q`).
//!
//! A *vertex* is one numbered unit of work, as BuildKit's progress calls them: loading
//! the Dockerfile, a FROM, each step, exporting the image. Its events come in order:
//! `Started`, then any of `Log`/`Cached`/`Miss`/`Output`, then `Done` or `Failed`.

use std::time::Duration;

use super::cache::MissReason;

/// One progress event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Vertex `id` (from 1) began: `#3 [2/5] COPY app /app`.
    Started { id: usize, name: String },
    /// A line of detail: `#7 writing image sha256:… done`.
    Log { id: usize, text: String },
    /// A whole line a RUN command printed (stdout and stderr alike), without its line
    /// break, and when: renderers show it under the step (`#7 0.012 hello`).
    Output {
        id: usize,
        /// Since the command began.
        elapsed: Duration,
        line: String,
    },
    /// The step's result came from the cache.
    Cached { id: usize },
    /// The step is run because the cache had nothing for it, and why.
    Miss { id: usize, reason: MissReason },
    /// The vertex finished (not sent for cached steps, which finish at once).
    Done { id: usize, elapsed: Duration },
    /// The vertex failed, and why (the build's error says it again with the location).
    Failed {
        id: usize,
        elapsed: Duration,
        message: String,
    },
    /// Something worth telling that does not stop the build (an unused build argument).
    Warning { text: String },
}

/// A line longer than this is sent in pieces: a command that never prints a line break
/// (a `\r` progress meter) must not grow the buffer without bound.
const MAX_LINE: usize = 16 * 1024;

/// Numbers vertices and sends their events.
pub(crate) struct Progress<'a> {
    sink: &'a mut dyn FnMut(Event),
    next: usize,
    /// Output not yet ended by a line break, per vertex, and when it came.
    partial: Vec<(usize, Duration, Vec<u8>)>,
}

impl<'a> Progress<'a> {
    pub fn new(sink: &'a mut dyn FnMut(Event)) -> Self {
        Progress {
            sink,
            next: 1,
            partial: Vec::new(),
        }
    }

    /// Starts a vertex and returns its id.
    pub fn start(&mut self, name: impl Into<String>) -> Vertex {
        let id = self.next;
        self.next += 1;
        (self.sink)(Event::Started {
            id,
            name: name.into(),
        });
        Vertex {
            id,
            began: std::time::Instant::now(),
        }
    }

    pub fn log(&mut self, v: &Vertex, text: impl Into<String>) {
        (self.sink)(Event::Log {
            id: v.id,
            text: text.into(),
        });
    }

    /// A chunk of a command's output, `elapsed` after it began. Chunks split lines
    /// anywhere; only whole lines are sent, the rest when the vertex ends.
    pub fn output(&mut self, v: &Vertex, elapsed: Duration, bytes: &[u8]) {
        let i = match self.partial.iter().position(|p| p.0 == v.id) {
            Some(i) => i,
            None => {
                self.partial.push((v.id, elapsed, Vec::new()));
                self.partial.len() - 1
            }
        };
        let (_, when, buf) = &mut self.partial[i];
        *when = elapsed;
        buf.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(n) = buf[start..].iter().position(|&b| b == b'\n') {
            send_line(self.sink, v.id, elapsed, &buf[start..start + n]);
            start += n + 1;
        }
        buf.drain(..start);
        if buf.len() >= MAX_LINE {
            send_line(self.sink, v.id, elapsed, buf);
            buf.clear();
        }
    }

    /// Sends what is left of a vertex's last line.
    fn flush_output(&mut self, id: usize) {
        if let Some(i) = self.partial.iter().position(|p| p.0 == id) {
            let (_, when, buf) = self.partial.swap_remove(i);
            if !buf.is_empty() {
                send_line(self.sink, id, when, &buf);
            }
        }
    }

    pub fn cached(&mut self, v: &Vertex) {
        (self.sink)(Event::Cached { id: v.id });
    }

    pub fn miss(&mut self, v: &Vertex, reason: MissReason) {
        (self.sink)(Event::Miss { id: v.id, reason });
    }

    pub fn done(&mut self, v: Vertex) {
        self.flush_output(v.id);
        (self.sink)(Event::Done {
            id: v.id,
            elapsed: v.began.elapsed(),
        });
    }

    pub fn failed(&mut self, v: Vertex, message: &str) {
        self.flush_output(v.id);
        (self.sink)(Event::Failed {
            id: v.id,
            elapsed: v.began.elapsed(),
            message: message.to_string(),
        });
    }

    pub fn warning(&mut self, text: impl Into<String>) {
        (self.sink)(Event::Warning { text: text.into() });
    }
}

/// One line of output, as text (a trailing `\r` of a CRLF dropped).
fn send_line(sink: &mut dyn FnMut(Event), id: usize, elapsed: Duration, line: &[u8]) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    sink(Event::Output {
        id,
        elapsed,
        line: String::from_utf8_lossy(line).into_owned(),
    });
}

/// A started vertex.
pub(crate) struct Vertex {
    pub id: usize,
    began: std::time::Instant,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(chunks: &[&[u8]]) -> Vec<String> {
        let mut events = Vec::new();
        let mut sink = |e: Event| events.push(e);
        let mut p = Progress::new(&mut sink);
        let v = p.start("[1/1] RUN x");
        for (i, c) in chunks.iter().enumerate() {
            p.output(&v, Duration::from_millis(i as u64), c);
        }
        p.done(v);
        events
            .into_iter()
            .filter_map(|e| match e {
                Event::Output { line, .. } => Some(line),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn output_is_sent_in_whole_lines() {
        assert_eq!(
            lines_of(&[b"hel", b"lo\nwor", b"ld\r\n\nend"]),
            ["hello", "world", "", "end"]
        );
        assert_eq!(lines_of(&[b"a\n"]), ["a"]);
        assert!(lines_of(&[b""]).is_empty());
        // A line without breaks is sent once the buffer is full, not kept growing.
        let long = vec![b'x'; MAX_LINE - 1];
        let got = lines_of(&[&long, b"yy", b"z\n"]);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].len(), MAX_LINE + 1);
        assert_eq!(got[1], "z");
    }

    #[test]
    fn output_ends_before_the_vertex_does() {
        let mut events = Vec::new();
        let mut sink = |e: Event| events.push(e);
        let mut p = Progress::new(&mut sink);
        let v = p.start("[1/1] RUN x");
        p.output(&v, Duration::from_millis(5), b"no newline");
        p.failed(v, "boom");
        assert!(matches!(
            &events[1],
            Event::Output { id: 1, elapsed, line } if line == "no newline" && elapsed.as_millis() == 5
        ));
        assert!(matches!(&events[2], Event::Failed { id: 1, .. }));
    }
}
