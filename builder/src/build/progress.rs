//! What a build reports while it runs. The library only emits these; the CLI decides how
//! they look (BuildKit's plain lines, nothing with `-q`).
//!
//! A *vertex* is one numbered unit of work, as BuildKit's progress calls them: loading
//! the Dockerfile, a FROM, each step, exporting the image. Its events come in order:
//! `Started`, then any of `Log`/`Cached`/`Miss`/`Output`, then `Done` or `Failed`.
//! Stages built concurrently interleave their vertices' events, as BuildKit's do; each
//! event is delivered whole, one at a time.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::cache::MissReason;
use super::failure::Tail;

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

/// The receiver of a build's events; `Send` because stages run on their own threads.
pub type Sink<'a> = &'a mut (dyn FnMut(Event) + Send);

/// Numbers vertices and sends their events; shared by the threads of a build.
pub(crate) struct Progress<'a>(Mutex<Inner<'a>>);

struct Inner<'a> {
    sink: Sink<'a>,
    next: usize,
    /// Output not yet ended by a line break, per vertex, and when it came.
    partial: Vec<(usize, Duration, Vec<u8>)>,
    /// The last lines of output of each running vertex, for a failure's report.
    tails: Vec<(usize, Tail)>,
}

impl Inner<'_> {
    /// Sends one line of output (a trailing `\r` of a CRLF dropped) and remembers it in
    /// the vertex's tail.
    fn send_line(&mut self, id: usize, elapsed: Duration, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = String::from_utf8_lossy(line).into_owned();
        let shown = format!("{:.3} {line}", elapsed.as_secs_f64());
        match self.tails.iter_mut().find(|t| t.0 == id) {
            Some((_, tail)) => tail.push(shown),
            None => {
                let mut tail = Tail::default();
                tail.push(shown);
                self.tails.push((id, tail));
            }
        }
        (self.sink)(Event::Output { id, elapsed, line });
    }

    /// Sends what is left of a vertex's last line.
    fn flush_output(&mut self, id: usize) {
        if let Some(i) = self.partial.iter().position(|p| p.0 == id) {
            let (_, when, buf) = self.partial.swap_remove(i);
            if !buf.is_empty() {
                self.send_line(id, when, &buf);
            }
        }
    }
}

impl<'a> Progress<'a> {
    pub fn new(sink: Sink<'a>) -> Self {
        Progress(Mutex::new(Inner {
            sink,
            next: 1,
            partial: Vec::new(),
            tails: Vec::new(),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Inner<'a>> {
        // A sink that panicked poisoned the lock; its later events still go to it.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn send(&self, e: Event) {
        (self.lock().sink)(e);
    }

    /// Starts a vertex and returns its id.
    pub fn start(&self, name: impl Into<String>) -> Vertex {
        // Numbered and announced under one lock, so ids appear in order.
        let mut inner = self.lock();
        let id = inner.next;
        inner.next += 1;
        (inner.sink)(Event::Started {
            id,
            name: name.into(),
        });
        Vertex {
            id,
            began: std::time::Instant::now(),
        }
    }

    pub fn log(&self, v: &Vertex, text: impl Into<String>) {
        self.send(Event::Log {
            id: v.id,
            text: text.into(),
        });
    }

    /// A chunk of a command's output, `elapsed` after it began. Chunks split lines
    /// anywhere; only whole lines are sent, the rest when the vertex ends.
    pub fn output(&self, v: &Vertex, elapsed: Duration, bytes: &[u8]) {
        let mut inner = self.lock();
        let i = match inner.partial.iter().position(|p| p.0 == v.id) {
            Some(i) => i,
            None => {
                inner.partial.push((v.id, elapsed, Vec::new()));
                inner.partial.len() - 1
            }
        };
        let mut buf = std::mem::take(&mut inner.partial[i].2);
        inner.partial[i].1 = elapsed;
        buf.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(n) = buf[start..].iter().position(|&b| b == b'\n') {
            inner.send_line(v.id, elapsed, &buf[start..start + n]);
            start += n + 1;
        }
        buf.drain(..start);
        if buf.len() >= MAX_LINE {
            inner.send_line(v.id, elapsed, &buf);
            buf.clear();
        }
        inner.partial[i].2 = buf;
    }

    /// The last lines of the vertex's output (`0.012 line`), with what is left of an
    /// unfinished one; for the report of a failed step.
    pub fn tail(&self, v: &Vertex) -> Vec<String> {
        let mut inner = self.lock();
        inner.flush_output(v.id);
        match inner.tails.iter().position(|t| t.0 == v.id) {
            Some(i) => inner.tails.swap_remove(i).1.into_lines(),
            None => Vec::new(),
        }
    }

    pub fn cached(&self, v: &Vertex) {
        self.send(Event::Cached { id: v.id });
    }

    pub fn miss(&self, v: &Vertex, reason: MissReason) {
        self.send(Event::Miss { id: v.id, reason });
    }

    pub fn done(&self, v: Vertex) {
        let mut inner = self.lock();
        inner.flush_output(v.id);
        inner.tails.retain(|t| t.0 != v.id);
        (inner.sink)(Event::Done {
            id: v.id,
            elapsed: v.began.elapsed(),
        });
    }

    pub fn failed(&self, v: Vertex, message: &str) {
        let mut inner = self.lock();
        inner.flush_output(v.id);
        inner.tails.retain(|t| t.0 != v.id);
        (inner.sink)(Event::Failed {
            id: v.id,
            elapsed: v.began.elapsed(),
            message: message.to_string(),
        });
    }

    pub fn warning(&self, text: impl Into<String>) {
        self.send(Event::Warning { text: text.into() });
    }
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
        let p = Progress::new(&mut sink);
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
        let p = Progress::new(&mut sink);
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
