//! docker's `--format` handling for list commands (docker/cli
//! `cli/command/formatter/formatter.go`): `table …` prints a header row and aligned
//! columns, `json` one compact object per item, any other template one line per item.

use std::collections::HashMap;
use std::fmt;

use gtmpl_value::Value;
use serde_json::Value as Json;

use super::template::{Template, TemplateError};

/// docker's `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`: columns at least 10 wide, and
/// 3 spaces after the widest cell.
const MIN_WIDTH: usize = 10;
const PADDING: usize = 3;

/// True for a `table …` format (docker's `Format.IsTable`).
pub fn is_table(format: &str) -> bool {
    format.starts_with("table")
}

/// Renders `items` as `format` asks, the way docker's formatter does:
/// - `json`: each item as compact JSON on its own line (`{{json .}}`);
/// - `table TEMPLATE`: the header row (TEMPLATE rendered over `headers`, field name to
///   column title, with the header functions), then one row per item, aligned;
/// - any other template: one rendered line per item, no header.
///
/// Literal `\t` and `\n` in the format become tab and newline, and surrounding spaces
/// are trimmed, as docker does. A bare `table` must be replaced by the command's default
/// table format before calling this. Nothing is returned unless every item renders.
pub fn render_items(
    format: &str,
    headers: &[(&str, &str)],
    items: &[Json],
) -> Result<String, TemplateError> {
    if format == "json" {
        return Ok(items.iter().map(|item| format!("{item}\n")).collect());
    }
    let text = template_text(format);
    let template = Template::parse(&text)?;
    let mut rows = String::new();
    for item in items {
        rows.push_str(&template.render(item)?);
        rows.push('\n');
    }
    if !is_table(format) {
        return Ok(rows);
    }
    let mut table = TableWriter::new();
    table.push_str(&header_row(&text, headers));
    table.push_str("\n");
    table.push_str(&rows);
    Ok(table.finish())
}

/// docker's `Format.templateString`.
fn template_text(format: &str) -> String {
    let text = format.strip_prefix("table").unwrap_or(format);
    text.trim_matches(' ')
        .replace("\\t", "\t")
        .replace("\\n", "\n")
}

/// The header row. A field with no title gives an empty cell, as Go's zero value for a
/// missing key of docker's `map[string]string` header; a header that fails to render is
/// left as far as it got, as docker ignores that error too.
fn header_row(text: &str, headers: &[(&str, &str)]) -> String {
    let map: HashMap<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    Template::parse_header(text)
        .and_then(|t| t.render_value(Value::Map(map)))
        .map(|s| s.replace("<no value>", ""))
        .unwrap_or_default()
}

/// Aligns tab-separated cells into columns like Go's `text/tabwriter` with docker's
/// settings (elastic tabstops): a column's width is set by the consecutive lines that
/// have a cell in it; the last cell of a line is not padded. Widths count characters,
/// as Go's tabwriter does (docker's fork counts East Asian wide characters twice).
#[derive(Debug, Default)]
pub struct TableWriter {
    text: String,
}

/// A line's cells. The last one ended with the newline, not a tab, and belongs to no
/// column.
type Line<'a> = Vec<&'a str>;

impl TableWriter {
    pub fn new() -> TableWriter {
        TableWriter::default()
    }

    /// Adds text: tabs end cells, newlines end lines.
    pub fn push_str(&mut self, s: &str) {
        self.text.push_str(s);
    }

    /// The aligned text.
    pub fn finish(&self) -> String {
        let mut lines: Vec<Line<'_>> = self
            .text
            .split('\n')
            .map(|l| l.split('\t').collect())
            .collect();
        // Text ending in a newline leaves an empty last line: it has no cells at all.
        if lines.last().is_some_and(|l| l == &[""]) {
            lines.last_mut().map(Vec::clear);
        }
        let mut out = String::with_capacity(self.text.len() * 2);
        let mut widths = Vec::new();
        format_block(&mut out, &lines, &mut widths, 0, lines.len());
        out
    }
}

impl fmt::Write for TableWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_str(s);
        Ok(())
    }
}

fn width(cell: &str) -> usize {
    cell.chars().count()
}

/// tabwriter's `format`: for column `widths.len()`, each run of consecutive lines that
/// have a cell there gets one width, and the columns right of it are formatted within
/// that run.
fn format_block(
    out: &mut String,
    lines: &[Line<'_>],
    widths: &mut Vec<usize>,
    mut line0: usize,
    line1: usize,
) {
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        write_lines(out, lines, widths, line0, this);
        line0 = this;
        let mut w = MIN_WIDTH;
        while this < line1 && column + 1 < lines[this].len() {
            w = w.max(width(lines[this][column]) + PADDING);
            this += 1;
        }
        widths.push(w);
        format_block(out, lines, widths, line0, this);
        widths.pop();
        line0 = this;
    }
    write_lines(out, lines, widths, line0, line1);
}

fn write_lines(out: &mut String, lines: &[Line<'_>], widths: &[usize], line0: usize, line1: usize) {
    for (i, line) in lines.iter().enumerate().take(line1).skip(line0) {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if let Some(&w) = widths.get(j)
                && j + 1 < line.len()
            {
                out.extend(std::iter::repeat_n(' ', w.saturating_sub(width(cell))));
            }
        }
        if i + 1 < lines.len() {
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests;
