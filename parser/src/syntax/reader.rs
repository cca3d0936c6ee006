//! The main loop: physical lines in, instructions out (BuildKit's `Parse`).
//!
//! Each instruction starts on a non-empty, non-comment line and runs on while lines
//! end with the escape character; comment lines and blank lines inside such a
//! continuation are skipped (blank ones earn a warning). The joined line is split
//! by [`super::args`]; if it is a RUN/COPY/ADD (possibly under ONBUILD) in shell form
//! with `<<` markers, the heredoc bodies are read from the lines that follow.

use super::args::{self, ArgsError};
use super::directives::{DirectiveParser, Outcome};
use super::heredoc::{self, Marker};
use super::lines::{self, Lines, PhysLine};
use super::node::{Args, Dockerfile, Heredoc, Node, Span, Warning};
use crate::error::Diagnostic;

/// Instructions whose shell form may carry heredocs.
const HEREDOC_KEYWORDS: [&str; 3] = ["run", "copy", "add"];

/// Parses a UTF-8 Dockerfile.
pub(super) fn read(src: &str) -> Result<Dockerfile, Diagnostic> {
    Reader::new(src).run()
}

struct Reader<'a> {
    src: &'a str,
    lines: Lines<'a>,
    directives: DirectiveParser,
    escape: char,
    /// Comment lines seen since the last instruction (BuildKit's `PrevComment`).
    comments: Vec<String>,
    nodes: Vec<Node>,
    warnings: Vec<Warning>,
}

/// Where an instruction is in the source, grown as lines are consumed.
struct Extent {
    start_line: usize,
    start: usize,
    end_line: usize,
    end: usize,
}

impl Extent {
    fn extend_to(&mut self, line: &PhysLine<'_>) {
        self.end_line = line.number;
        self.end = line.content_end();
    }
}

impl<'a> Reader<'a> {
    fn new(src: &'a str) -> Self {
        Reader {
            src,
            lines: Lines::new(src),
            directives: DirectiveParser::default(),
            escape: '\\',
            comments: Vec::new(),
            nodes: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn run(mut self) -> Result<Dockerfile, Diagnostic> {
        let mut first = true;
        while let Some(mut line) = self.lines.next() {
            if first {
                first = false;
                // A byte-order mark is dropped from the first line only.
                if let Some(rest) = line.text.strip_prefix('\u{FEFF}') {
                    line.start += '\u{FEFF}'.len_utf8();
                    line.text = rest;
                }
            }
            self.instruction_from(line)?;
        }
        if self.nodes.is_empty() {
            return Err(Diagnostic::new("file with no instructions")
                .with_help("a Dockerfile needs at least one instruction, such as FROM <image>"));
        }
        Ok(Dockerfile {
            escape: self.escape,
            directives: self.directives.directives,
            nodes: self.nodes,
            warnings: self.warnings,
        })
    }

    /// Handles one physical line that is not inside an instruction: a comment, a
    /// directive, a blank line, or the first line of an instruction (which then reads
    /// its continuation lines and heredoc bodies too).
    fn instruction_from(&mut self, line: PhysLine<'a>) -> Result<(), Diagnostic> {
        let (token, start) = self.directive_or_comment(&line)?;
        let (first, continues) = lines::strip_continuation(token, self.escape);
        if !continues && first.is_empty() {
            return Ok(());
        }
        let mut extent = Extent {
            start_line: line.number,
            start,
            end_line: line.number,
            end: line.content_end(),
        };
        let logical = self.join_continuations(first, continues, &mut extent);
        let mut node = args::node_from_line(&logical, self.escape)
            .map_err(|e| self.args_error(e, extent.start))?;
        if can_contain_heredoc(&node) && logical.contains("<<") {
            node.heredocs = self.read_heredocs(&logical, &mut extent)?;
        }
        place(&mut node, &extent, std::mem::take(&mut self.comments));
        self.nodes.push(node);
        Ok(())
    }

    /// Records comments and directives; returns the line as an instruction would see
    /// it (newline and leading blanks trimmed, empty for a comment) and where it starts.
    fn directive_or_comment(
        &mut self,
        line: &PhysLine<'a>,
    ) -> Result<(&'a str, usize), Diagnostic> {
        if lines::is_comment(line.text) {
            let comment = lines::comment_text(line.text);
            if comment.is_empty() {
                self.comments.clear();
            } else {
                self.comments.push(comment);
            }
        }
        let untrimmed = lines::trim_newline(line.text);
        let token = untrimmed.trim_start();
        let start = line.start + (untrimmed.len() - token.len());
        match self.directives.feed(token) {
            Err(e) => return Err(Diagnostic::new(e.to_string()).at(self.src, start)),
            Ok(Outcome::Directive) => {
                // A directive is not a comment for the instruction below it.
                self.comments.pop();
                if let Some(escape) = self.directives.directives.escape {
                    self.escape = escape;
                }
            }
            Ok(Outcome::NotDirective) => {}
        }
        let token = if lines::is_comment(token) { "" } else { token };
        Ok((token, start))
    }

    /// Appends continuation lines to `first` while they end with the escape character,
    /// skipping comment and blank lines (and warning about the blank ones).
    fn join_continuations(
        &mut self,
        first: &str,
        mut continues: bool,
        extent: &mut Extent,
    ) -> String {
        let mut logical = first.to_string();
        let mut empty_continuation = false;
        while continues {
            let Some(next) = self.lines.next() else { break };
            extent.extend_to(&next);
            if lines::is_comment(next.text) {
                continue;
            }
            if lines::is_empty_continuation(next.text) {
                empty_continuation = true;
                continue;
            }
            let (part, more) =
                lines::strip_continuation(lines::trim_newline(next.text), self.escape);
            logical.push_str(part);
            continues = more;
        }
        if empty_continuation {
            self.warnings.push(Warning {
                line: extent.end_line,
                message: format!("Empty continuation line found in: {logical}"),
            });
        }
        logical
    }

    /// Reads the bodies of the heredocs marked on `logical`, one after the other.
    fn read_heredocs(
        &mut self,
        logical: &str,
        extent: &mut Extent,
    ) -> Result<Vec<Heredoc>, Diagnostic> {
        let markers = heredoc::markers_in_line(logical)
            .map_err(|e| Diagnostic::new(e.to_string()).at(self.src, extent.start))?;
        let line_end = extent.end;
        let mut docs = Vec::with_capacity(markers.len());
        for (index, marker) in markers.iter().enumerate() {
            match self.read_heredoc(marker, extent) {
                Some(doc) => docs.push(doc),
                None => {
                    let at = locate_marker(self.src, extent.start, line_end, &markers, index);
                    return Err(unterminated(self.src, marker, extent, at));
                }
            }
        }
        Ok(docs)
    }

    /// Reads a heredoc body up to its terminator line; `None` when the file ends first.
    fn read_heredoc(&mut self, marker: &Marker, extent: &mut Extent) -> Option<Heredoc> {
        let mut content = String::new();
        for line in self.lines.by_ref() {
            extent.extend_to(&line);
            if heredoc::is_terminator(line.text, marker) {
                if marker.chomp {
                    content = heredoc::chomp(&content);
                }
                return Some(Heredoc {
                    name: marker.name.clone(),
                    content,
                    expand: marker.expand,
                    chomp: marker.chomp,
                    file_descriptor: marker.fd,
                });
            }
            content.push_str(line.text);
        }
        None
    }

    fn args_error(&self, err: ArgsError, start: usize) -> Diagnostic {
        let help = match &err {
            ArgsError::NeedsTwoArguments(key) => Some(format!(
                "write {key} <key>=<value> (or the legacy {key} <key> <value>)"
            )),
            ArgsError::MissingEquals(_) => Some("write each pair as name=value".to_string()),
            ArgsError::NotStringArray => {
                Some("quote every element, e.g. [\"echo\", \"hello\"]".to_string())
            }
            ArgsError::OnbuildTooDeep => None,
        };
        let diagnostic = Diagnostic::new(err.to_string()).at(self.src, start);
        match help {
            Some(help) => diagnostic.with_help(help),
            None => diagnostic,
        }
    }
}

/// RUN, COPY and ADD in shell form (also as an ONBUILD trigger) may have heredocs.
fn can_contain_heredoc(node: &Node) -> bool {
    let target = match &node.args {
        Args::Nested(inner) if node.keyword == "onbuild" => inner,
        _ => node,
    };
    HEREDOC_KEYWORDS.contains(&target.keyword.as_str()) && !target.json
}

/// Records where the instruction is; an ONBUILD trigger shares its parent's place.
fn place(node: &mut Node, extent: &Extent, comments: Vec<String>) {
    let span = Span {
        start: extent.start,
        end: extent.end,
    };
    node.comments = comments;
    let mut current = Some(node);
    while let Some(n) = current {
        n.start_line = extent.start_line;
        n.end_line = extent.end_line;
        n.span = span;
        current = match &mut n.args {
            Args::Nested(inner) => Some(inner.as_mut()),
            _ => None,
        };
    }
}

/// The error for a heredoc whose terminator never came, pointing at its marker when
/// it can be found (`at`), else at the instruction.
fn unterminated(src: &str, marker: &Marker, extent: &Extent, at: Option<usize>) -> Diagnostic {
    Diagnostic::new(format!(
        "unterminated heredoc {} starting at line {}",
        marker.display(),
        extent.start_line
    ))
    .at(src, at.unwrap_or(extent.start))
    .with_help(format!(
        "end the heredoc with a line that holds only {}",
        marker.name
    ))
}

/// Finds where the marker `markers[index]` is written in `src[from..to]`, for
/// messages. Walks the `<<`s once, matching them to the markers in order: a `<<`
/// matches when its delimiter (after an optional `-`, blanks and quotes) starts like
/// the marker's name.
fn locate_marker(
    src: &str,
    from: usize,
    to: usize,
    markers: &[Marker],
    index: usize,
) -> Option<usize> {
    let text = src.get(from..to)?;
    let mut wanted = 0;
    for (i, _) in text.match_indices("<<") {
        let marker = markers.get(wanted)?;
        let first = marker.name.chars().next()?;
        let after = text.get(i + 2..)?;
        let after = after
            .strip_prefix('-')
            .filter(|_| marker.chomp)
            .unwrap_or(after);
        let after = after.trim_start_matches([' ', '\t', '"', '\'']);
        if after.starts_with(first) {
            if wanted == index {
                return Some(from + i);
            }
            wanted += 1;
        }
    }
    None
}
