//! `rbuild history [--no-trunc] [-q] [-H] [--format T] IMAGE` (also `image history`):
//! the steps an image was made of, newest first, as `docker history` shows them.

use std::io::{self, Write};
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{ArgAction, Args};
use rbuild_builder::store::history::HistoryEntry;
use serde_json::{Value, json};

use super::format::{table, units};
use super::images::show_id;
use super::{CliError, Global};

/// Show the history of an image.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format.
    #[arg(short = 'H', long, action = ArgAction::Set, num_args = 0..=1,
          default_value_t = true, default_missing_value = "true", value_name = "BOOL")]
    human: bool,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// `table`, `table TEMPLATE`, `json`, or a Go template.
    #[arg(long)]
    format: Option<String>,
    image: String,
}

const HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedBy", "CREATED BY"),
    ("Size", "SIZE"),
    ("Comment", "COMMENT"),
];

const DEFAULT: &str = r"table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";

/// docker's `historyCreatedByLimit`.
const CREATED_BY_LIMIT: usize = 45;

pub fn run(global: &Global, args: HistoryArgs) -> Result<ExitCode, CliError> {
    let store = global.store()?;
    let img = store.resolve(&args.image)?;
    let entries = store.history(&img.id)?;
    let now = Utc::now();
    let items: Vec<Value> = entries.iter().map(|e| item(e, &args, now)).collect();
    let format = match (args.quiet, args.format.as_deref()) {
        (true, _) => "{{.ID}}",
        (false, None | Some("table")) => DEFAULT,
        (false, Some(f)) => f,
    };
    let out =
        table::render_items(format, HEADERS, &items).map_err(|e| CliError::Usage(e.to_string()))?;
    io::stdout().lock().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn item(e: &HistoryEntry, args: &HistoryArgs, now: DateTime<Utc>) -> Value {
    let created = e.created.unwrap_or_default();
    // Go's time.RFC3339, in UTC.
    let rfc3339 = created.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let created_by = e.created_by.replace('\t', " ");
    json!({
        "ID": e.id.as_ref().map_or("<missing>".to_string(), |id| show_id(id, !args.no_trunc)),
        "CreatedSince": if args.human {
            units::human_duration_since(created, now)
        } else {
            rfc3339.clone()
        },
        "CreatedAt": rfc3339,
        "CreatedBy": if args.no_trunc { created_by } else { ellipsis(&created_by, CREATED_BY_LIMIT) },
        "Size": if args.human { units::human_size(e.size) } else { e.size.to_string() },
        "Comment": e.comment,
    })
}

/// docker's `formatter.Ellipsis`: at most `max` characters, the last one `…` when cut.
pub(super) fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn ellipsis_like_docker() {
        assert_eq!(super::ellipsis("abc", 3), "abc");
        assert_eq!(super::ellipsis("abcd", 3), "ab…");
    }
}
