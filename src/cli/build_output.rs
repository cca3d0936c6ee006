//! What `rbuild build` does with its image besides storing it: `--output` (buildx's
//! exporters `oci`, `docker`, `tar`, `local`), `--push`, and the `max-cache-size`
//! limit enforced afterwards.
//!
//! `--output` takes buildx's syntax (docs.docker.com `buildx build --output`, "Exporters
//! overview"): `type=TYPE[,dest=PATH][,name=REF]`, a bare `PATH` for
//! `type=local,dest=PATH`, and `-` for `type=tar,dest=-` (standard output).
//! `type=registry` is `--push`.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

use rbuild_builder::export;
use rbuild_builder::store::archive::{self, ArchiveFormat, SaveRequest};
use rbuild_builder::store::cache_gc;
use rbuild_builder::store::registry::push::{self, PushOptions};
use rbuild_builder::store::{Digest, ImageRecord, ImageRef, Store};

use super::transfer::TransferDisplay;
use super::{CliError, Global, registry};

/// One `--output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// An image archive: `type=oci` or `type=docker`.
    Archive {
        format: ArchiveFormat,
        dest: Dest,
        /// `name=`: the names recorded in it (default: the `-t` tags).
        names: Vec<ImageRef>,
    },
    /// `type=tar`: the flattened file system as one tar.
    Tar(Dest),
    /// `type=local`: the flattened file system written into a directory.
    Local(PathBuf),
    /// `type=registry` (or `type=image,push=true`): push every tag.
    Push,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    File(PathBuf),
    Stdout,
}

impl Output {
    /// Parses one `--output` value; errors name it.
    pub fn parse(spec: &str) -> Result<Output, CliError> {
        let bad = |why: &str| CliError::Usage(format!("--output {spec}: {why}"));
        if spec.is_empty() {
            return Err(bad("empty value"));
        }
        if spec == "-" {
            return Ok(Output::Tar(Dest::Stdout));
        }
        if !spec.contains('=') {
            return Ok(Output::Local(PathBuf::from(spec)));
        }
        let (mut kind, mut dest, mut names, mut push) = (None, None, Vec::new(), None);
        for field in spec.split(',') {
            let (k, v) = field
                .split_once('=')
                .ok_or_else(|| bad(&format!("invalid field {field:?}, expected key=value")))?;
            match k.trim() {
                "type" => kind = Some(v.to_string()),
                "dest" => dest = Some(v.to_string()),
                "name" => {
                    let r = ImageRef::parse(v)
                        .map_err(|e| bad(&format!("invalid name {v:?}: {e}")))?
                        .with_default_tag();
                    names.push(r);
                }
                "push" => {
                    push = Some(match v {
                        "true" => true,
                        "false" => false,
                        _ => return Err(bad(&format!("push={v}: expected true or false"))),
                    })
                }
                other => return Err(bad(&format!("unsupported attribute {other:?}"))),
            }
        }
        let kind =
            kind.ok_or_else(|| bad("type is required (oci, docker, tar, local, registry)"))?;
        let file_dest = |dest: Option<String>| -> Result<Dest, CliError> {
            match dest.as_deref() {
                None | Some("-") => Ok(Dest::Stdout),
                Some("") => Err(bad("dest is empty")),
                Some(p) => Ok(Dest::File(PathBuf::from(p))),
            }
        };
        let only_dest = |names: &[ImageRef], push: Option<bool>| -> Result<(), CliError> {
            if !names.is_empty() || push.is_some() {
                return Err(bad(&format!("type={kind} takes only dest")));
            }
            Ok(())
        };
        match kind.as_str() {
            "oci" | "docker" => {
                if push.is_some() {
                    return Err(bad("push applies to type=image and type=registry"));
                }
                Ok(Output::Archive {
                    format: if kind == "oci" {
                        ArchiveFormat::Oci
                    } else {
                        ArchiveFormat::Docker
                    },
                    dest: file_dest(dest)?,
                    names,
                })
            }
            "tar" => {
                only_dest(&names, push)?;
                Ok(Output::Tar(file_dest(dest)?))
            }
            "local" => {
                only_dest(&names, push)?;
                match dest {
                    Some(d) if !d.is_empty() && d != "-" => Ok(Output::Local(PathBuf::from(d))),
                    _ => Err(bad("type=local needs dest=DIR")),
                }
            }
            "registry" | "image" => {
                if dest.is_some() || !names.is_empty() {
                    return Err(bad(&format!(
                        "type={kind}: give the names with -t (name= and dest= are not supported)"
                    )));
                }
                match (kind.as_str(), push) {
                    ("registry", None | Some(true)) | ("image", Some(true)) => Ok(Output::Push),
                    ("image", _) => Err(bad(
                        "type=image without push=true is what a build does anyway; drop --output",
                    )),
                    _ => Err(bad("type=registry always pushes")),
                }
            }
            other => Err(bad(&format!(
                "unknown type {other:?} (oci, docker, tar, local, registry)"
            ))),
        }
    }

    fn to_stdout(&self) -> bool {
        matches!(
            self,
            Output::Tar(Dest::Stdout)
                | Output::Archive {
                    dest: Dest::Stdout,
                    ..
                }
        )
    }
}

/// Checks what can be checked before building: `--push` needs a tag, at most one
/// output goes to standard output, and never to a terminal.
pub fn check(outputs: &[Output], tags: &[ImageRef], quiet: bool) -> Result<(), CliError> {
    if outputs.contains(&Output::Push) && tags.is_empty() {
        // buildx: "tag is needed when pushing to registry".
        return Err(CliError::Usage(
            "tag is needed when pushing to registry (--push needs at least one -t)".into(),
        ));
    }
    let to_stdout = outputs.iter().filter(|o| o.to_stdout()).count();
    if to_stdout > 1 || (to_stdout == 1 && quiet) {
        return Err(CliError::Usage(
            "only one of --output dest=- and -q can write to standard output".into(),
        ));
    }
    if to_stdout == 1 && io::stdout().is_terminal() {
        return Err(CliError::Usage(
            "cowardly refusing to write a tar to a terminal: give dest=FILE or redirect".into(),
        ));
    }
    Ok(())
}

/// Writes every output of the image `id`, then pushes if asked.
pub fn export(
    global: &Global,
    store: &Store,
    id: &Digest,
    tags: &[ImageRef],
    outputs: &[Output],
) -> Result<(), CliError> {
    let image = store
        .image(id)?
        .ok_or_else(|| CliError::Usage(format!("the built image {id} is gone")))?;
    for out in outputs {
        write_output(store, &image, tags, out)
            .map_err(|e| CliError::Usage(format!("--output {}: {e}", describe(out))))?;
    }
    if outputs.contains(&Output::Push) {
        push_tags(global, store, tags)?;
    }
    Ok(())
}

/// Writes one output (not `Push`); the caller names it in the error.
fn write_output(
    store: &Store,
    image: &ImageRecord,
    tags: &[ImageRef],
    out: &Output,
) -> Result<(), Box<dyn std::error::Error>> {
    match out {
        Output::Archive {
            format,
            dest,
            names,
        } => {
            let names = if names.is_empty() { tags } else { names };
            let request = [SaveRequest {
                image: image.clone(),
                names: names.to_vec(),
            }];
            match dest {
                Dest::File(path) => archive::save_to_path_as(store, &request, *format, path)?,
                Dest::Stdout => {
                    let mut w = io::BufWriter::with_capacity(1 << 20, io::stdout().lock());
                    archive::save_as(store, &request, *format, &mut w)?;
                    w.flush()?;
                }
            }
        }
        Output::Tar(Dest::File(path)) => {
            // Into a temp file beside it, renamed when complete: a failed export leaves
            // no partial tar under the name.
            let name = path.file_name().ok_or("not a file name")?;
            let tmp = path.with_file_name(format!(".{}.rbuild-tmp", name.to_string_lossy()));
            let written = (|| -> Result<(), Box<dyn std::error::Error>> {
                let file = std::fs::File::create(&tmp)
                    .map_err(|e| format!("creating {}: {e}", tmp.display()))?;
                let mut w = io::BufWriter::with_capacity(1 << 20, file);
                export::write_rootfs_tar(store, image, &mut w)?;
                w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                std::fs::rename(&tmp, path)?;
                Ok(())
            })();
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            written?;
        }
        Output::Tar(Dest::Stdout) => {
            let mut w = io::BufWriter::with_capacity(1 << 20, io::stdout().lock());
            export::write_rootfs_tar(store, image, &mut w)?;
            w.flush()?;
        }
        Output::Local(dir) => export::write_rootfs_dir(store, image, dir)?,
        Output::Push => {}
    }
    Ok(())
}

fn describe(out: &Output) -> String {
    let dest = |d: &Dest| match d {
        Dest::File(p) => p.display().to_string(),
        Dest::Stdout => "-".into(),
    };
    match out {
        Output::Archive {
            format, dest: d, ..
        } => {
            let t = if *format == ArchiveFormat::Oci {
                "oci"
            } else {
                "docker"
            };
            format!("type={t},dest={}", dest(d))
        }
        Output::Tar(d) => format!("type=tar,dest={}", dest(d)),
        Output::Local(p) => format!("type=local,dest={}", p.display()),
        Output::Push => "type=registry".into(),
    }
}

/// Pushes each tag, with progress on standard error (standard output may be carrying
/// an `--output` tar or the `-q` image ID).
fn push_tags(global: &Global, store: &Store, tags: &[ImageRef]) -> Result<(), CliError> {
    let opts = PushOptions {
        max_concurrent: global.registry_settings()?.max_concurrent_uploads,
        ..PushOptions::default()
    };
    let client = registry::client(global)?;
    for tag in tags {
        let pushed = push::push(store.root(), &client, tag, &opts, &TransferDisplay::Quiet)?;
        eprintln!(
            "pushed {}: digest: {} size: {}",
            tag.familiar(),
            pushed.digest,
            pushed.size
        );
    }
    Ok(())
}

/// The `max-cache-size` limit: `--max-cache-size`, else the store's `config.json`.
/// Read before the build, so that a bad value fails it before it starts.
pub fn cache_limit(store: &Store, flag: Option<&str>) -> Result<Option<u64>, CliError> {
    match flag {
        Some(s) => cache_gc::parse_size(s)
            .map(Some)
            .map_err(|e| CliError::Usage(format!("--max-cache-size: {e}"))),
        None => Ok(cache_gc::max_cache_size(store.root())?),
    }
}

/// Evicts least recently used cache down to `limit` after a build. Skipped when
/// another build is running; that one enforces it when it ends.
pub fn enforce_cache_limit(store: &Store, limit: Option<u64>) -> Result<(), CliError> {
    if let Some(max) = limit {
        store.enforce_cache_limit(max)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_parse_like_buildx() {
        assert_eq!(
            Output::parse("out").unwrap(),
            Output::Local(PathBuf::from("out"))
        );
        assert_eq!(Output::parse("-").unwrap(), Output::Tar(Dest::Stdout));
        assert_eq!(
            Output::parse("type=tar,dest=fs.tar").unwrap(),
            Output::Tar(Dest::File("fs.tar".into()))
        );
        assert_eq!(
            Output::parse("type=local,dest=d").unwrap(),
            Output::Local("d".into())
        );
        assert!(matches!(
            Output::parse("type=oci,dest=a.tar").unwrap(),
            Output::Archive {
                format: ArchiveFormat::Oci,
                ..
            }
        ));
        assert!(matches!(
            Output::parse("type=docker,dest=-,name=x:1").unwrap(),
            Output::Archive {
                format: ArchiveFormat::Docker,
                dest: Dest::Stdout,
                ..
            }
        ));
        assert_eq!(Output::parse("type=registry").unwrap(), Output::Push);
        assert_eq!(Output::parse("type=image,push=true").unwrap(), Output::Push);
        for bad in [
            "type=nope,dest=x",
            "type=local",
            "dest=x",
            "type=tar,dest=x,compression=gzip",
            "type=oci,dest=x,name=UPPER",
            "type=registry,dest=x",
            "",
        ] {
            let e = Output::parse(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("--output {bad}")), "{bad}: {e}");
        }
    }
}
