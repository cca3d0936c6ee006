//! `rbuild inspect [-f TEMPLATE] [--type container|image] NAME...` (also `image inspect`
//! and `container inspect`): the JSON docker shows for each container or image, or a Go
//! template over each. Without `--type` a name is looked up as docker does: a container
//! first, then an image.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Args;
use rbuild_builder::store::container_inspect::ContainerInspect;
use rbuild_builder::store::inspect::ImageInspect;
use rbuild_builder::store::{Store, StoreError};

use super::format::template;
use super::{CliError, Global};

/// Display detailed information on one or more containers or images.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format the output using the given Go template.
    #[arg(short = 'f', long)]
    format: Option<String>,
    /// Only search for objects of this type: container or image.
    #[arg(long = "type", value_name = "TYPE")]
    kind: Option<String>,
    #[arg(value_name = "NAME", required = true)]
    names: Vec<String>,
}

/// What a name may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Any,
    Container,
    Image,
}

/// `inspect`, the kind given by `--type` (or any).
pub fn run(global: &Global, args: InspectArgs) -> Result<ExitCode, CliError> {
    let kind = match args.kind.as_deref() {
        None | Some("") => Kind::Any,
        Some("container") => Kind::Container,
        Some("image") => Kind::Image,
        Some(k) => {
            return Err(CliError::Usage(format!(
                "{k:?} is not a valid value for --type"
            )));
        }
    };
    run_as(global, args, kind)
}

/// `image inspect` and `container inspect`: one kind whatever `--type` says.
pub fn run_as(global: &Global, args: InspectArgs, kind: Kind) -> Result<ExitCode, CliError> {
    let store = global.store()?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &args.names {
        match lookup(&store, name, kind) {
            Ok(v) => found.push(v),
            Err(e) => errors.push(e),
        }
    }
    let mut out = io::stdout().lock();
    match &args.format {
        None => {
            // As docker: the array of what was found (possibly `[]`), 4-space indented.
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            serde::Serialize::serialize(&found, &mut ser)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            buf.push(b'\n');
            out.write_all(&buf)?;
        }
        Some(t) => {
            let t = template::Template::parse(t).map_err(|e| CliError::Usage(e.to_string()))?;
            for item in &found {
                let value =
                    serde_json::to_value(item).map_err(|e| CliError::Usage(e.to_string()))?;
                let text = t
                    .render(&value)
                    .map_err(|e| CliError::Usage(e.to_string()))?;
                writeln!(out, "{text}")?;
            }
        }
    }
    out.flush()?;
    for e in &errors {
        eprintln!("Error: {e}");
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One thing found, serialized in docker's field order.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Found {
    Container(Box<ContainerInspect>),
    Image(Box<ImageInspect>),
}

/// What `name` names, or docker's message for nothing found.
fn lookup(store: &Store, name: &str, kind: Kind) -> Result<Found, String> {
    if kind != Kind::Image {
        match store.container(name) {
            Ok(c) => {
                let paused = rbuild_builder::container_life::is_paused(&c);
                let i = store
                    .inspect_container(&c, paused)
                    .map_err(|e| e.to_string())?;
                return Ok(Found::Container(Box::new(i)));
            }
            Err(StoreError::NoSuchContainer(_)) if kind == Kind::Any => {}
            Err(StoreError::NoSuchContainer(_)) => {
                return Err(format!("No such container: {name}"));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    match store
        .resolve(name)
        .and_then(|img| store.inspect_image(&img.id))
    {
        Ok(i) => Ok(Found::Image(Box::new(i))),
        Err(StoreError::NoSuchImage(_)) if kind == Kind::Any => {
            Err(format!("No such object: {name}"))
        }
        Err(StoreError::NoSuchImage(_)) => Err(format!("No such image: {name}")),
        Err(e) => Err(e.to_string()),
    }
}
