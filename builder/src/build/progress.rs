//! What a build reports while it runs. The library only emits these; the CLI decides how
//! they look (BuildKit's plain lines, nothing with `-q`).
//!
//! A *vertex* is one numbered unit of work, as BuildKit's progress calls them: loading
//! the Dockerfile, a FROM, each step, exporting the image. Its events come in order:
//! `Started`, then any of `Log`/`Cached`/`Miss`, then `Done` or `Failed`. Stages built
//! concurrently interleave their vertices' events, as BuildKit's do; each event is
//! delivered whole, one at a time.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// The receiver of a build's events; `Send` because stages run on their own threads.
pub type Sink<'a> = &'a mut (dyn FnMut(Event) + Send);

/// Numbers vertices and sends their events; shared by the threads of a build.
pub(crate) struct Progress<'a> {
    sink: Mutex<Sink<'a>>,
    next: AtomicUsize,
}

impl<'a> Progress<'a> {
    pub fn new(sink: Sink<'a>) -> Self {
        Progress {
            sink: Mutex::new(sink),
            next: AtomicUsize::new(1),
        }
    }

    fn send(&self, e: Event) {
        // A sink that panicked poisoned the lock; its later events still go to it.
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        (sink)(e);
    }

    /// Starts a vertex and returns its id.
    pub fn start(&self, name: impl Into<String>) -> Vertex {
        // Numbered and announced under one lock, so ids appear in order.
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        (sink)(Event::Started {
            id,
            name: name.into(),
        });
        drop(sink);
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

    pub fn cached(&self, v: &Vertex) {
        self.send(Event::Cached { id: v.id });
    }

    pub fn miss(&self, v: &Vertex, reason: MissReason) {
        self.send(Event::Miss { id: v.id, reason });
    }

    pub fn done(&self, v: Vertex) {
        self.send(Event::Done {
            id: v.id,
            elapsed: v.began.elapsed(),
        });
    }

    pub fn failed(&self, v: Vertex, message: &str) {
        self.send(Event::Failed {
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
