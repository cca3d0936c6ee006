//! `rbuild search [--limit N] [--format T] [--list-tags] [--no-trunc] REGISTRY/TERM`: the
//! repositories of a registry whose names contain TERM, read from its catalog, in a table
//! shaped like `docker search`'s.
//!
//! A catalog has names and tags only. The table shows `NAME` (pullable: the registry
//! included) and, with `--list-tags`, `TAGS`. For templates written for docker, its other
//! fields render as docker renders a repository without them: `.Description` empty,
//! `.StarCount` `0`, `.IsOfficial` and `.IsAutomated` empty.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Args;
use rbuild_builder::store::registry::catalog::DEFAULT_PAGE_SIZE;
use rbuild_builder::store::registry::runtime;
use rbuild_builder::store::registry::search::{self, Found, SearchOptions, SearchTerm};
use serde_json::{Value, json};

use super::format::table;
use super::history::ellipsis;
use super::{CliError, Global, registry};

/// Search a registry's repositories by name.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Max number of search results.
    #[arg(long, default_value_t = DEFAULT_LIMIT, allow_negative_numbers = true)]
    limit: i64,
    /// `table`, `table TEMPLATE`, `json`, or a Go template (fields: .Name, .Tags).
    #[arg(long)]
    format: Option<String>,
    /// Also show each repository's tags.
    #[arg(long)]
    list_tags: bool,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Repositories asked for per catalog request.
    #[arg(long, hide = true, env = "RBUILD_CATALOG_PAGE_SIZE", default_value_t = DEFAULT_PAGE_SIZE as u16,
          value_parser = clap::value_parser!(u16).range(1..))]
    page_size: u16,
    /// `HOST[:PORT]/TERM`; an empty TERM lists every repository.
    #[arg(value_name = "REGISTRY/TERM")]
    term: String,
}

/// docker's `DefaultSearchLimit` and its range.
const DEFAULT_LIMIT: i64 = 25;
const MAX_LIMIT: i64 = 100;

/// docker's `Ellipsis` width for a search description, here for the tag list.
const TAGS_WIDTH: usize = 45;

const HEADERS: &[(&str, &str)] = &[
    ("Name", "NAME"),
    ("Tags", "TAGS"),
    ("Description", "DESCRIPTION"),
    ("StarCount", "STARS"),
    ("IsOfficial", "OFFICIAL"),
    ("IsAutomated", "AUTOMATED"),
];

const DEFAULT: &str = "table {{.Name}}";
const WITH_TAGS: &str = r"table {{.Name}}\t{{.Tags}}";

pub fn run(global: &Global, args: SearchArgs) -> Result<ExitCode, CliError> {
    // docker: 0 is the default, the rest must be in [1, 100].
    let limit = match args.limit {
        0 => DEFAULT_LIMIT,
        n if (1..=MAX_LIMIT).contains(&n) => n,
        n => {
            return Err(CliError::Usage(format!(
                "limit {n} is outside the range of [1, {MAX_LIMIT}]"
            )));
        }
    };
    let format = match args.format.as_deref() {
        None | Some("table") if args.list_tags => WITH_TAGS,
        None | Some("table") => DEFAULT,
        Some(f) => f,
    };
    let term = SearchTerm::parse(&args.term)?;
    let opts = SearchOptions {
        limit: limit as usize,
        page_size: usize::from(args.page_size),
        list_tags: args.list_tags,
    };
    let client = registry::client(global)?;
    let found = runtime()?.block_on(search::search(&client, &term, &opts))?;
    let items: Vec<Value> = found
        .iter()
        .map(|f| item(&term.registry, f, !args.no_trunc))
        .collect();
    let out =
        table::render_items(format, HEADERS, &items).map_err(|e| CliError::Usage(e.to_string()))?;
    io::stdout().lock().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn item(registry: &str, f: &Found, trunc: bool) -> Value {
    let tags = f.tags.as_deref().unwrap_or_default().join(", ");
    json!({
        "Name": format!("{registry}/{}", f.repository),
        "Tags": if trunc { ellipsis(&tags, TAGS_WIDTH) } else { tags },
        "Description": "",
        "StarCount": "0",
        "IsOfficial": "",
        "IsAutomated": "",
    })
}
