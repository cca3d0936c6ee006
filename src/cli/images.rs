//! `rbuild images` (also `image ls`/`image list`): the image table of `docker images`
//! (docker/cli `cli/command/image/list.go`, `formatter/image.go`).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Args;
use rbuild_builder::store::filters::Filters;
use rbuild_builder::store::list::ListOptions;
use rbuild_builder::store::{Digest, ImageRecord, StoreError};
use serde_json::{Value, json};

use super::format::{table, units};
use super::{CliError, Global};

/// List images.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Show all images (intermediate images are hidden by default).
    #[arg(short = 'a', long)]
    all: bool,
    /// Only show image IDs.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Show digests.
    #[arg(long)]
    digests: bool,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Filter output (dangling=true|false, reference=PATTERN, label=K[=V], before=IMAGE,
    /// since=IMAGE).
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    filters: Vec<String>,
    /// `table`, `table TEMPLATE`, `json`, or a Go template.
    #[arg(long)]
    format: Option<String>,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    reference: Option<String>,
}

/// Column titles of the fields a format can use.
const HEADERS: &[(&str, &str)] = &[
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Containers", "CONTAINERS"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("VirtualSize", "VIRTUAL SIZE"),
];

const DEFAULT: &str = r"table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const WITH_DIGESTS: &str =
    r"table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

pub fn run(global: &Global, args: ImagesArgs) -> Result<ExitCode, CliError> {
    let mut filters = Filters::parse(&args.filters).map_err(StoreError::from)?;
    if let Some(r) = &args.reference {
        filters.add("reference", r);
    }
    let store = global.store()?;
    let images = store.list_images(&ListOptions {
        all: args.all,
        filters,
    })?;
    let now = Utc::now();
    let rows: Vec<Value> = images
        .iter()
        .flat_map(|img| rows(img, args.digests, !args.no_trunc, now))
        .collect();
    let out = if args.quiet {
        // One line per image, not per name: docker repeats an ID for each of its tags,
        // which `rbuild rmi $(rbuild images -q)` would then trip over.
        let mut seen = std::collections::HashSet::new();
        rows.iter()
            .filter_map(|r| r["ID"].as_str())
            .filter(|id| seen.insert(id.to_string()))
            .map(|id| format!("{id}\n"))
            .collect()
    } else {
        let format = match args.format.as_deref() {
            None | Some("table") if args.digests => WITH_DIGESTS,
            None | Some("table") => DEFAULT,
            Some(f) => f,
        };
        table::render_items(format, HEADERS, &rows).map_err(|e| CliError::Usage(e.to_string()))?
    };
    io::stdout().lock().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// An image ID as docker shows it: 12 hex digits, or the whole `sha256:…`.
pub fn show_id(id: &Digest, trunc: bool) -> String {
    if trunc {
        id.hex()[..12].to_string()
    } else {
        id.to_string()
    }
}

/// One row per repository and tag (and per digest with `--digests`), as docker's
/// `imageFormatTaggedAndDigest`; `<none>` for what is missing. Rows of one image are
/// sorted by repository and tag (docker's order is Go's random map order).
fn rows(img: &ImageRecord, digests: bool, trunc: bool, now: DateTime<Utc>) -> Vec<Value> {
    let mut repo_tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut repo_digests: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &img.tags {
        if let Some(t) = r.tag() {
            repo_tags
                .entry(r.familiar_name())
                .or_default()
                .push(t.to_string());
        }
    }
    for r in &img.digests {
        if let Some(d) = r.digest() {
            repo_digests
                .entry(r.familiar_name())
                .or_default()
                .push(d.to_string());
        }
    }
    let mut out = Vec::new();
    let row = |repo: &str, tag: &str, digest: &str| item(img, repo, tag, digest, trunc, now);
    for (repo, tags) in &repo_tags {
        let ds = repo_digests.remove(repo).unwrap_or_default();
        for tag in tags {
            if !digests || ds.is_empty() {
                out.push(row(repo, tag, "<none>"));
            } else {
                out.extend(ds.iter().map(|d| row(repo, tag, d)));
            }
        }
    }
    for (repo, ds) in &repo_digests {
        if digests {
            out.extend(ds.iter().map(|d| row(repo, "<none>", d)));
        } else {
            out.push(row(repo, "<none>", "<none>"));
        }
    }
    if out.is_empty() {
        out.push(row("<none>", "<none>", "<none>"));
    }
    out
}

/// The fields docker's image formatter offers (its `--format json` keys).
fn item(
    img: &ImageRecord,
    repo: &str,
    tag: &str,
    digest: &str,
    trunc: bool,
    now: DateTime<Utc>,
) -> Value {
    let created = DateTime::from_timestamp(img.created, 0).unwrap_or_default();
    json!({
        "Containers": "N/A",
        "CreatedAt": created.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string(),
        "CreatedSince": units::human_duration_since(created, now),
        "Digest": digest,
        "ID": show_id(&img.id, trunc),
        "Repository": repo,
        "SharedSize": "N/A",
        "Size": units::human_size(img.size),
        "Tag": tag,
        "UniqueSize": "N/A",
        "VirtualSize": units::human_size_precise(img.size),
    })
}
