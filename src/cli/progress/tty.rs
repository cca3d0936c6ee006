//! The live display on a terminal, after BuildKit's tty progress: a header with the time
//! so far and how many vertices finished, one line per vertex with its time, and under
//! each running step its last lines of output. Unlike BuildKit, a step that missed the
//! cache says why. When the build ends, the display is replaced by its final state in
//! full, then the failed step's last output and the warnings.
//!
//! The display keeps to the terminal's height: finished vertices at the top leave it
//! when running ones need the room (they come back in the final state).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use console::{Term, measure_text_width, style, truncate_str};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use rbuild_builder::build::Event;

/// Output lines shown under a running step.
const TAIL: usize = 6;
/// Output lines of a failed step shown after the display.
const ERROR_TAIL: usize = 10;
/// How often running times and spinners move.
const TICK: Duration = Duration::from_millis(100);
/// Columns of the time at the end of a vertex line (`   12.3s`).
const CLOCK: usize = 8;
/// Columns before a vertex's text: ` => ` or ` ⠋  `.
const LEAD: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Running,
    Cached(Duration),
    Done(Duration),
    Failed(Duration),
    Canceled(Duration),
}

struct Vertex {
    name: String,
    state: State,
    began: Instant,
    miss: Option<String>,
    /// Status lines (`writing image sha256:… done`), kept.
    logs: Vec<String>,
    /// The last lines of output, shared with the line's style, which draws them under
    /// it on each tick: a command printing thousands of lines costs no redraw per line.
    tail: Arc<Mutex<Tail>>,
    /// Its lines on the display, while it is there.
    bars: Option<Bars>,
}

impl Vertex {
    /// Lines it takes on the display.
    fn height(&self) -> usize {
        let Some(bars) = &self.bars else { return 0 };
        let tail = match self.state {
            State::Running => lock(&self.tail).lines.len().min(TAIL),
            _ => 0,
        };
        1 + bars.logs.len() + tail
    }
}

#[derive(Default)]
struct Tail {
    /// Lines and when each came, as printed.
    lines: VecDeque<(Duration, String)>,
    /// The terminal's width when the last came.
    width: usize,
}

fn lock(tail: &Mutex<Tail>) -> std::sync::MutexGuard<'_, Tail> {
    tail.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Bars {
    line: ProgressBar,
    logs: Vec<ProgressBar>,
}

pub struct Tty {
    mp: MultiProgress,
    header: ProgressBar,
    term: Term,
    began: Instant,
    /// By id: vertex `id` is `vertices[id - 1]`.
    vertices: Vec<Vertex>,
    warnings: Vec<String>,
}

impl Tty {
    pub fn new() -> Tty {
        let mp = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let header = mp.add(ProgressBar::new(0).with_style(style_of(
            "[+] Building {clock} ({pos}/{len})",
            |s, w| {
                let _ = write!(w, "{:.1}s", s.elapsed().as_secs_f64());
            },
        )));
        header.enable_steady_tick(TICK);
        Tty {
            mp,
            header,
            term: Term::stderr(),
            began: Instant::now(),
            vertices: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn width(&self) -> usize {
        self.term.size().1.into()
    }

    pub fn event(&mut self, e: Event) {
        let width = self.width();
        match e {
            // The library numbers vertices from 1 in the order they start.
            Event::Started { id, name } if id == self.vertices.len() + 1 => {
                let tail = Arc::new(Mutex::new(Tail::default()));
                let line = self
                    .mp
                    .add(ProgressBar::new_spinner().with_style(running_style(Arc::clone(&tail))));
                line.enable_steady_tick(TICK);
                let v = Vertex {
                    name,
                    state: State::Running,
                    began: Instant::now(),
                    miss: None,
                    logs: Vec::new(),
                    tail,
                    bars: Some(Bars {
                        line,
                        logs: Vec::new(),
                    }),
                };
                show_line(&v, width);
                self.vertices.push(v);
                self.header.set_length(self.vertices.len() as u64);
            }
            Event::Started { .. } => {}
            Event::Log { id, text } => {
                if let Some(v) = self.vertices.get_mut(id.wrapping_sub(1)) {
                    let text = visible(&text);
                    if let Some(bars) = &mut v.bars {
                        let after = bars.logs.last().unwrap_or(&bars.line).clone();
                        let bar = self.mp.insert_after(&after, plain_bar());
                        bar.set_message(fit(&format!(" => => {text}"), width));
                        bars.logs.push(bar);
                    }
                    v.logs.push(text);
                }
            }
            Event::Output { id, elapsed, line } => {
                if let Some(v) = self.vertices.get(id.wrapping_sub(1)) {
                    let mut tail = lock(&v.tail);
                    if tail.lines.len() == ERROR_TAIL {
                        tail.lines.pop_front();
                    }
                    tail.lines.push_back((elapsed, line));
                    tail.width = width;
                }
            }
            Event::Miss { id, reason } => {
                if let Some(v) = self.vertices.get_mut(id.wrapping_sub(1)) {
                    v.miss = Some(reason.to_string());
                    show_line(v, width);
                }
            }
            Event::Cached { id } => self.end(id, State::Cached),
            Event::Done { id, elapsed } => self.end(id, |_| State::Done(elapsed)),
            Event::Failed { id, elapsed, .. } => self.end(id, |_| State::Failed(elapsed)),
            Event::Warning { text } => self.warnings.push(text),
        }
        self.keep_to_height();
    }

    /// Vertex `id` finished: its line becomes final, its output lines go.
    fn end(&mut self, id: usize, state: impl FnOnce(Duration) -> State) {
        let width = self.width();
        let Some(v) = self.vertices.get_mut(id.wrapping_sub(1)) else {
            return;
        };
        v.state = state(v.began.elapsed());
        let text = format!(" => {}", vertex_text(v, width));
        // The finished style draws no output lines.
        if let Some(bars) = &v.bars {
            bars.line.disable_steady_tick();
            bars.line.set_style(plain_style());
            bars.line.finish_with_message(text);
        }
        let done = self
            .vertices
            .iter()
            .filter(|v| v.state != State::Running)
            .count();
        self.header.set_position(done as u64);
    }

    /// Takes finished vertices off the top while the display is taller than the
    /// terminal, so the running ones stay in sight.
    fn keep_to_height(&mut self) {
        let room = usize::from(self.term.size().0).saturating_sub(2).max(4);
        let mut used: usize = self.vertices.iter().map(Vertex::height).sum();
        for v in &mut self.vertices {
            if used <= room {
                break;
            }
            if v.state == State::Running {
                continue;
            }
            used -= v.height();
            if let Some(bars) = v.bars.take() {
                for bar in std::iter::once(&bars.line).chain(&bars.logs) {
                    self.mp.remove(bar);
                }
            }
        }
    }

    /// Replaces the live display by the final state, then prints what the failed step
    /// printed last and the warnings.
    pub fn finish(mut self, ok: bool) {
        let any_failed = self
            .vertices
            .iter()
            .any(|v| matches!(v.state, State::Failed(_)));
        for v in &mut self.vertices {
            if v.state == State::Running {
                let t = v.began.elapsed();
                // With a failed step, others still running were stopped because of it.
                v.state = match (ok, any_failed) {
                    (true, _) => State::Done(t),
                    (false, true) => State::Canceled(t),
                    (false, false) => State::Failed(t),
                };
            }
        }
        self.header.disable_steady_tick();
        for bars in self.vertices.iter().filter_map(|v| v.bars.as_ref()) {
            bars.line.disable_steady_tick();
        }
        let _ = self.mp.clear();
        self.mp.set_draw_target(ProgressDrawTarget::hidden());
        if self.vertices.is_empty() && self.warnings.is_empty() {
            return;
        }
        let summary = Summary {
            elapsed: self.began.elapsed(),
            ok,
            vertices: &self.vertices,
            warnings: &self.warnings,
            width: self.width(),
        };
        super::write_stderr(&summary.to_string());
    }
}

/// The final state, as text.
struct Summary<'a> {
    elapsed: Duration,
    ok: bool,
    vertices: &'a [Vertex],
    warnings: &'a [String],
    width: usize,
}

impl std::fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let done = self
            .vertices
            .iter()
            .filter(|v| matches!(v.state, State::Done(_) | State::Cached(_)))
            .count();
        write!(
            f,
            "[+] Building {:.1}s ({done}/{})",
            self.elapsed.as_secs_f64(),
            self.vertices.len()
        )?;
        writeln!(f, "{}", if self.ok { " FINISHED" } else { "" })?;
        for v in self.vertices {
            writeln!(f, " => {}", vertex_text(v, self.width))?;
            for log in &v.logs {
                writeln!(f, "{}", fit(&format!(" => => {log}"), self.width))?;
            }
        }
        // A failed step's last lines follow in the build's failure report (the CLI
        // prints it after this, for every progress mode).
        for w in self.warnings {
            writeln!(f, "WARNING: {w}")?;
        }
        Ok(())
    }
}

/// Sets a vertex's line to its state: while it runs the time ticks on its own.
fn show_line(v: &Vertex, width: usize) {
    if let Some(bars) = &v.bars {
        match v.state {
            State::Running => {
                bars.line
                    .set_message(step_text(&label(v), v.miss.as_deref(), text_columns(width)))
            }
            _ => bars
                .line
                .set_message(format!(" => {}", vertex_text(v, width))),
        }
    }
}

/// A finished vertex's line after ` => `: its text and its time.
fn vertex_text(v: &Vertex, width: usize) -> String {
    let t = match v.state {
        State::Running => v.began.elapsed(),
        State::Cached(t) | State::Done(t) | State::Failed(t) | State::Canceled(t) => t,
    };
    let text = step_text(&label(v), v.miss.as_deref(), text_columns(width));
    format!("{text}{}", clock(t))
}

/// BuildKit's words before the name: `CACHED [2/5] COPY …`, `ERROR [4/5] RUN false`.
fn label(v: &Vertex) -> String {
    let word = match v.state {
        State::Running | State::Done(_) => "",
        State::Cached(_) => "CACHED ",
        State::Failed(_) => "ERROR ",
        State::Canceled(_) => "CANCELED ",
    };
    format!("{word}{}", v.name)
}

fn text_columns(width: usize) -> usize {
    width.saturating_sub(LEAD + CLOCK).max(20)
}

/// The name and, dimmed, why the cache missed, in exactly `cols` columns: a long name
/// is cut before the reason is.
fn step_text(label: &str, miss: Option<&str>, cols: usize) -> String {
    let suffix = miss
        .map(|m| format!(" (cache miss: {m})"))
        .unwrap_or_default();
    let (name_w, suffix_w) = (measure_text_width(label), measure_text_width(&suffix));
    let (name, suffix) = if name_w + suffix_w <= cols {
        (label.to_string(), suffix)
    } else if cols >= suffix_w + 20.min(name_w) {
        (
            truncate_str(label, cols - suffix_w, "…").into_owned(),
            suffix,
        )
    } else {
        let name = truncate_str(label, cols, "…").into_owned();
        let left = cols - measure_text_width(&name);
        (name, truncate_str(&suffix, left, "…").into_owned())
    };
    let pad = cols.saturating_sub(measure_text_width(&name) + measure_text_width(&suffix));
    let suffix = if suffix.is_empty() {
        suffix
    } else {
        style(suffix).dim().for_stderr().to_string()
    };
    format!("{name}{suffix}{}", " ".repeat(pad))
}

/// A time right-aligned in [`CLOCK`] columns.
fn clock(t: Duration) -> String {
    format!("{:>CLOCK$}", format!("{:.1}s", t.as_secs_f64()))
}

/// A line cut to the terminal's width.
fn fit(line: &str, width: usize) -> String {
    truncate_str(line, width.max(LEAD + 20), "…").into_owned()
}

/// What a terminal would show of an output line, safe to put in the display: its own
/// escape sequences and control characters out, only the part after the last carriage
/// return (a progress meter's last state), tabs as spaces.
fn visible(line: &str) -> String {
    let line = console::strip_ansi_codes(line);
    let line = line.rsplit('\r').next().unwrap_or_default();
    line.chars()
        .filter_map(|c| match c {
            '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

fn style_of(template: &str, clock: fn(&ProgressState, &mut dyn std::fmt::Write)) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("a valid template")
        .with_key("clock", clock)
}

/// A running vertex: spinner, text, the time so far, and under it its last lines of
/// output, dimmed.
fn running_style(tail: Arc<Mutex<Tail>>) -> ProgressStyle {
    style_of(" {spinner:.cyan}  {msg}{clock}{tail}", |s, w| {
        let _ = w.write_str(&clock(s.elapsed()));
    })
    .with_key(
        "tail",
        move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
            let tail = lock(&tail);
            for (_, line) in tail
                .lines
                .iter()
                .skip(tail.lines.len().saturating_sub(TAIL))
            {
                let text = fit(&format!(" => => # {}", visible(line)), tail.width);
                let _ = write!(w, "\n{}", style(text).dim().for_stderr());
            }
        },
    )
}

fn plain_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg}").expect("a valid template")
}

fn plain_bar() -> ProgressBar {
    ProgressBar::new(0).with_style(plain_style())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vertex(name: &str, state: State, miss: Option<&str>) -> Vertex {
        Vertex {
            name: name.into(),
            state,
            began: Instant::now(),
            miss: miss.map(str::to_string),
            logs: Vec::new(),
            tail: Arc::default(),
            bars: None,
        }
    }

    #[test]
    fn vertex_lines_say_cached_error_and_the_time() {
        console::set_colors_enabled_stderr(false);
        let v = vertex("[3/5] COPY a /a", State::Cached(Duration::ZERO), None);
        assert_eq!(
            vertex_text(&v, 40),
            format!("CACHED [3/5] COPY a /a{}    0.0s", " ".repeat(6))
        );
        let v = vertex(
            "[4/5] RUN false",
            State::Failed(Duration::from_millis(1234)),
            None,
        );
        assert!(vertex_text(&v, 80).starts_with("ERROR [4/5] RUN false "));
        assert!(vertex_text(&v, 80).ends_with("    1.2s"));
        assert_eq!(measure_text_width(&vertex_text(&v, 80)), 80 - LEAD);
    }

    #[test]
    fn a_long_name_is_cut_before_the_miss_reason() {
        console::set_colors_enabled_stderr(false);
        let text = step_text(
            &format!("[2/5] RUN {}", "x".repeat(100)),
            Some("file app.py changed"),
            60,
        );
        assert_eq!(measure_text_width(&text), 60);
        assert!(
            text.ends_with("… (cache miss: file app.py changed)"),
            "{text}"
        );
        let text = step_text("[2/5] RUN make", Some("first build"), 60);
        assert!(text.starts_with("[2/5] RUN make (cache miss: first build)  "));
        // No room even for the reason: the whole is cut.
        let text = step_text("[2/5] RUN make", Some(&"y".repeat(50)), 20);
        assert_eq!(measure_text_width(&text), 20);
        assert_eq!(text, "[2/5] RUN make (cac…");
    }

    #[test]
    fn output_is_made_safe_for_the_display() {
        assert_eq!(visible("\x1b[31mred\x1b[0m\tok"), "red ok");
        assert_eq!(visible(" 10%\r 50%\r100%"), "100%");
        assert_eq!(visible("bell\x07"), "bell");
    }

    #[test]
    fn summary_lists_every_vertex_then_the_error_and_warnings() {
        console::set_colors_enabled_stderr(false);
        let failed = vertex(
            "[2/2] RUN false",
            State::Failed(Duration::from_millis(300)),
            Some("first build"),
        );
        let mut first = vertex("[1/2] FROM busybox", State::Done(Duration::ZERO), None);
        first.logs.push("resolve done".into());
        let vertices = [first, failed];
        let s = Summary {
            elapsed: Duration::from_millis(2300),
            ok: false,
            vertices: &vertices,
            warnings: &["unused arg".into()],
            width: 80,
        }
        .to_string();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "[+] Building 2.3s (1/2)");
        assert!(lines[1].starts_with(" => [1/2] FROM busybox "));
        assert_eq!(lines[2], " => => resolve done");
        assert!(lines[3].starts_with(" => ERROR [2/2] RUN false (cache miss: first build) "));
        assert_eq!(&lines[4..], ["WARNING: unused arg"]);
    }
}
