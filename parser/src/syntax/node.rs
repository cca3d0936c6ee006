//! The syntax tree: what a Dockerfile says, before any meaning is given to it.
//!
//! Mirrors BuildKit's `parser.Node` closely enough that [`super::dump`] can print
//! BuildKit's test format byte for byte, while staying idiomatic Rust (an `Args`
//! enum instead of a linked list of `Next` nodes).

use serde::Serialize;

/// A byte range in the (UTF-8) Dockerfile source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dockerfile {
    /// Parser directives found at the top (`# syntax=`, `# escape=`, `# check=`).
    pub directives: Directives,
    /// The escape character in force (`\` unless `# escape=` said otherwise).
    pub escape: char,
    /// The instructions in order.
    pub nodes: Vec<Node>,
    /// Non-fatal findings (e.g. empty continuation lines), as BuildKit reports them.
    pub warnings: Vec<Warning>,
}

/// Parser directives: only valid before the first instruction or non-directive comment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Directives {
    pub syntax: Option<String>,
    pub escape: Option<char>,
    pub check: Option<String>,
}

/// One instruction as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// The instruction keyword, lower-cased (`"run"`, `"copy"`, …). For an unknown
    /// instruction this is still set; the typing pass rejects it with a location.
    pub keyword: String,
    /// The logical line as written, continuations joined (BuildKit's `Original`).
    pub original: String,
    /// `--flag` words in the order written, as written (`"--chown=1:1"`).
    pub flags: Vec<String>,
    /// The instruction's arguments, split by that instruction's rule.
    pub args: Args,
    /// True when the arguments were a JSON array (exec form).
    pub json: bool,
    /// Heredoc bodies introduced on this instruction's line(s), in order.
    pub heredocs: Vec<Heredoc>,
    /// 1-based first and last source line of the instruction, heredoc bodies included.
    pub start_line: usize,
    pub end_line: usize,
    /// Byte range of the instruction in the source, heredoc bodies included.
    pub span: Span,
    /// Comment lines directly above the instruction (without the `#`), as BuildKit keeps
    /// them for `PrevComment`; used for descriptions of ARGs and stages.
    pub comments: Vec<String>,
}

/// The arguments of an instruction, in the shape its parse rule gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Args {
    /// A list of words. Shell form of RUN/CMD/ENTRYPOINT/SHELL… is one word holding the
    /// rest of the line; JSON form is the decoded array; FROM/COPY/… are split on whitespace.
    Words(Vec<String>),
    /// ENV and LABEL: key/value pairs with the separator that was written (`"="`, or `""`
    /// for the legacy `ENV key value` form). Values keep their quotes, like BuildKit.
    Pairs(Vec<KeyValue>),
    /// ONBUILD: the trigger instruction.
    Nested(Box<Node>),
}

/// One `key=value` of ENV or LABEL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    /// `"="` or `""` (legacy `ENV key value`).
    pub sep: String,
}

/// A heredoc attached to an instruction (`RUN <<EOF`, `COPY <<-"EOT" /dst`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The delimiter word (without quotes or `<<`/`<<-`).
    pub name: String,
    /// The body, up to but excluding the terminator line; tabs stripped when `chomp`.
    pub content: String,
    /// False when the delimiter was quoted: the body is then taken literally.
    pub expand: bool,
    /// True for `<<-`: leading tabs were stripped from each body line.
    pub chomp: bool,
    /// The file descriptor written before `<<` (`3<<EOF`), 0 when none.
    pub file_descriptor: u32,
}

/// A non-fatal finding about the Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub line: usize,
    pub message: String,
}

impl Node {
    /// The plain words of the instruction (empty for `Pairs`/`Nested`).
    pub fn words(&self) -> &[String] {
        match &self.args {
            Args::Words(w) => w,
            _ => &[],
        }
    }
}
