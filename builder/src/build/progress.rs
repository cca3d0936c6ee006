//! What a build reports while it runs. The library only emits these; the CLI decides how
//! they look (BuildKit's plain lines, nothing with `-q`).
//!
//! A *vertex* is one numbered unit of work, as BuildKit's progress calls them: loading
//! the Dockerfile, a FROM, each step, exporting the image. Its events come in order:
//! `Started`, then any of `Log`/`Cached`/`Miss`, then `Done` or `Failed`.

use std::time::Duration;

use super::cache::MissReason;

/// One progress event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Vertex `id` (from 1) began: `#3 [2/5] COPY app /app`.
    Started { id: usize, name: String },
    /// A line of detail: `#7 writing image sha256:… done`.
    Log { id: usize, text: String },
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

/// Numbers vertices and sends their events.
pub(crate) struct Progress<'a> {
    sink: &'a mut dyn FnMut(Event),
    next: usize,
}

impl<'a> Progress<'a> {
    pub fn new(sink: &'a mut dyn FnMut(Event)) -> Self {
        Progress { sink, next: 1 }
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

    pub fn cached(&mut self, v: &Vertex) {
        (self.sink)(Event::Cached { id: v.id });
    }

    pub fn miss(&mut self, v: &Vertex, reason: MissReason) {
        (self.sink)(Event::Miss { id: v.id, reason });
    }

    pub fn done(&mut self, v: Vertex) {
        (self.sink)(Event::Done {
            id: v.id,
            elapsed: v.began.elapsed(),
        });
    }

    pub fn failed(&mut self, v: Vertex, message: &str) {
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

/// A started vertex.
pub(crate) struct Vertex {
    pub id: usize,
    began: std::time::Instant,
}
