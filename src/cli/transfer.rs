//! Pull and push progress as docker shows it: on a terminal, a line per layer that turns
//! into a bar while bytes move (`a3ed95caeb02: Downloading [=====>    ] 1.2MB/3.4MB`);
//! otherwise each layer's status changes as plain lines, without byte counts.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Mutex, PoisonError};

use console::Term;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rbuild_builder::store::registry::progress::{Event, Progress};

/// Where the events go.
pub enum TransferDisplay {
    Tty(Mutex<Bars>),
    Plain,
    /// `-q`: nothing but what the command prints itself.
    Quiet,
}

/// The terminal display: one bar per layer, in the order layers appeared.
pub struct Bars {
    multi: MultiProgress,
    bars: HashMap<String, ProgressBar>,
    /// Messages shown below the bars, kept so they stay drawn.
    lines: Vec<ProgressBar>,
}

impl TransferDisplay {
    /// Bars on a terminal, plain lines otherwise, nothing when `quiet`.
    pub fn new(quiet: bool) -> TransferDisplay {
        if quiet {
            TransferDisplay::Quiet
        } else if Term::stdout().is_term() {
            TransferDisplay::Tty(Mutex::new(Bars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
                bars: HashMap::new(),
                lines: Vec::new(),
            }))
        } else {
            TransferDisplay::Plain
        }
    }

    /// Leaves every bar on screen in its last state; later output goes below them.
    pub fn finish(&self) {
        if let TransferDisplay::Tty(bars) = self {
            let bars = bars.lock().unwrap_or_else(PoisonError::into_inner);
            for b in bars.bars.values() {
                b.finish();
            }
        }
    }
}

fn status_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg}").expect("valid template")
}

fn bytes_style() -> ProgressStyle {
    // Decimal units, as docker's `1.2MB/3.4MB`.
    ProgressStyle::with_template("{prefix}: {msg} [{bar:50}] {decimal_bytes}/{decimal_total_bytes}")
        .expect("valid template")
        .progress_chars("=> ")
}

impl Bars {
    fn bar(&mut self, id: &str) -> &ProgressBar {
        let multi = &self.multi;
        self.bars.entry(id.to_string()).or_insert_with(|| {
            let b = multi.add(ProgressBar::new(0).with_style(status_style()));
            b.set_prefix(id.to_string());
            b
        })
    }
}

impl Progress for TransferDisplay {
    fn event(&self, e: Event) {
        match self {
            TransferDisplay::Quiet => {}
            TransferDisplay::Plain => {
                let line = match e {
                    Event::Message(m) => m,
                    Event::Status { id, status } => format!("{id}: {status}"),
                    Event::Bytes { .. } => return,
                };
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
            }
            TransferDisplay::Tty(bars) => {
                let mut bars = bars.lock().unwrap_or_else(PoisonError::into_inner);
                match e {
                    Event::Message(m) if bars.bars.is_empty() => {
                        let _ = bars.multi.println(m);
                    }
                    Event::Message(m) => {
                        // After the layer lines, a message goes below them, as docker
                        // prints a push's digest line and a pull's summary.
                        let line = bars.multi.add(ProgressBar::new(0).with_style(
                            ProgressStyle::with_template("{msg}").expect("valid template"),
                        ));
                        line.finish_with_message(m);
                        bars.lines.push(line);
                    }
                    Event::Status { id, status } => {
                        let b = bars.bar(&id);
                        b.set_style(status_style());
                        b.set_message(status);
                    }
                    Event::Bytes {
                        id,
                        action,
                        current,
                        total,
                    } => {
                        let b = bars.bar(&id);
                        if b.length() != Some(total) || b.message() != action {
                            b.set_style(bytes_style());
                            b.set_length(total);
                            b.set_message(action);
                        }
                        b.set_position(current);
                    }
                }
            }
        }
    }
}
