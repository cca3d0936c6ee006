//! `rbuild build` (and `rbuild -t NAME CONTEXT`): flags into [`BuildOptions`], one call
//! to the builder, its progress shown by [`progress::Printer`].

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use rbuild_builder::build::{self, BuildOptions, NetworkMode};
use rbuild_builder::store::ImageRef;

use rbuild_builder::store::registry::RegistryError;

use super::{CliError, Global, build_output, progress, registry};

/// Build an image from a Dockerfile.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Name and optionally a tag (`name:tag`); repeatable.
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    tags: Vec<String>,
    /// The Dockerfile (default: CONTEXT/Dockerfile), `-` for standard input.
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// Set a build argument; `NAME` alone takes the value from the environment.
    #[arg(long = "build-arg", value_name = "NAME[=VALUE]")]
    build_args: Vec<String>,
    /// The stage to build (default: the last one).
    #[arg(long)]
    target: Option<String>,
    /// Do not use the cache (results are still recorded in it).
    #[arg(long)]
    no_cache: bool,
    /// Set a label on the image; repeatable.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// Print only the image ID.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Write the image ID to this file.
    #[arg(long, value_name = "FILE")]
    iidfile: Option<PathBuf>,
    /// How to show progress.
    #[arg(long, value_enum, default_value_t = progress::Mode::Auto)]
    progress: progress::Mode,
    /// A secret for `RUN --mount=type=secret`: `id=ID,src=FILE` or `id=ID,env=VAR`;
    /// repeatable.
    #[arg(long = "secret", value_name = "id=ID,src=FILE|env=VAR")]
    secrets: Vec<String>,
    /// The network of RUN steps.
    #[arg(long, value_enum, default_value_t = Network::Host)]
    network: Network,
    /// The platform to build for (`linux/amd64`): only the native one, as RUN steps are
    /// not emulated.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    /// Pull every image the build uses afresh (images missing from the store are
    /// pulled anyway).
    #[arg(long)]
    pull: bool,
    /// Output destination: `type=oci|docker|tar,dest=FILE`, `type=local,dest=DIR`,
    /// `DIR`, `-` (a tar of the file system to STDOUT); repeatable.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "PATH|-|type=TYPE[,KEY=VALUE]"
    )]
    outputs: Vec<String>,
    /// Push every `-t` tag to its registry once built.
    #[arg(long)]
    push: bool,
    /// Evict least recently used build cache down to this size after the build
    /// (`10GB`; default: `max-cache-size` in the store's config.json).
    #[arg(long, value_name = "SIZE")]
    max_cache_size: Option<String>,
    /// Import a build cache: `type=registry,ref=R` (or just `R`) or `type=local,src=DIR`;
    /// repeatable.
    #[arg(
        long = "cache-from",
        value_name = "type=registry,ref=R|type=local,src=DIR"
    )]
    cache_from: Vec<String>,
    /// Export the build cache: `type=registry,ref=R[,mode=min|max]` or
    /// `type=local,dest=DIR[,mode=min|max]`; repeatable.
    #[arg(
        long = "cache-to",
        value_name = "type=registry,ref=R|type=local,dest=DIR"
    )]
    cache_to: Vec<String>,
    /// Clamp every timestamp of the image (config and history `created`, mtimes in its
    /// layers) to this many seconds since 1970, for reproducible images; default: the
    /// SOURCE_DATE_EPOCH environment variable.
    #[arg(long, value_name = "SECONDS")]
    source_date_epoch: Option<String>,
    /// Build twice, in two scratch stores, and compare: print `reproducible: ID` when
    /// the images are identical, else name the first layer and file that differ and
    /// fail. Tags are given only to a reproducible image.
    #[arg(long)]
    reproducible_check: bool,
    /// The build context.
    context: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Network {
    Host,
    None,
}

pub fn run(global: &Global, args: BuildArgs) -> Result<ExitCode, CliError> {
    let mut build_args = BTreeMap::new();
    for spec in &args.build_args {
        match spec.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                build_args.insert(k.to_string(), v.to_string());
            }
            Some(_) => {
                return Err(CliError::Usage(format!(
                    "--build-arg {spec}: the name is empty"
                )));
            }
            // docker: a name alone takes the environment's value, and is left out if unset.
            None => {
                if let Ok(v) = std::env::var(spec) {
                    build_args.insert(spec.clone(), v);
                }
            }
        }
    }
    let mut labels = BTreeMap::new();
    for spec in &args.labels {
        let (k, v) = spec.split_once('=').unwrap_or((spec, ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let mut secrets = BTreeMap::new();
    for spec in &args.secrets {
        let (id, value) = parse_secret(spec).map_err(CliError::Usage)?;
        secrets.insert(id, value);
    }
    let tags = args
        .tags
        .iter()
        .map(|t| {
            ImageRef::parse(t)
                .map(|r| r.with_default_tag())
                .map_err(|e| CliError::Usage(format!("invalid tag {t:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut outputs = args
        .outputs
        .iter()
        .map(|o| build_output::Output::parse(o))
        .collect::<Result<Vec<_>, _>>()?;
    if args.push {
        outputs.push(build_output::Output::Push);
    }
    build_output::check(&outputs, &tags, args.quiet)?;
    let cache =
        super::build_cache::options(&args.cache_from, &args.cache_to).map_err(CliError::Usage)?;
    if args.reproducible_check
        && (!outputs.is_empty() || !cache.from.is_empty() || !cache.to.is_empty())
    {
        // The check's builds are independent scratch builds whose image is kept only
        // when both agree: an imported cache would make them less than independent.
        return Err(CliError::Usage(
            "--reproducible-check cannot be combined with --output, --push, --cache-from or --cache-to"
                .into(),
        ));
    }
    build::interrupt::install()?;
    // Made on first use: most builds find every image in the store.
    let client = std::sync::OnceLock::new();
    let registry_access = || {
        if let Some(c) = client.get() {
            return Ok(std::sync::Arc::clone(c));
        }
        let c = registry::client(global).map_err(|e| match e {
            CliError::Registry(r) => r,
            other => RegistryError::Protocol(other.to_string()),
        })?;
        Ok(std::sync::Arc::clone(client.get_or_init(|| c)))
    };
    let runner = build::SandboxRunner {
        cancel: &build::interrupt::CANCEL,
    };
    let source_date_epoch = source_date_epoch(args.source_date_epoch.as_deref())?;
    let opts = BuildOptions {
        context: args.context.clone(),
        dockerfile: args.file.clone(),
        build_args,
        target: args.target.clone(),
        no_cache: args.no_cache,
        labels,
        tags,
        network: match args.network {
            Network::Host => NetworkMode::Host,
            Network::None => NetworkMode::None,
        },
        secrets,
        runner: Some(&runner),
        platform: args.platform.clone(),
        pull: args.pull,
        registry: Some(&registry_access),
        cache,
        source_date_epoch,
    };
    let store = global.store()?;
    let cache_limit = build_output::cache_limit(&store, args.max_cache_size.as_deref())?;
    let mode = if args.quiet {
        progress::Mode::Quiet
    } else {
        args.progress
    };
    let mut printer = progress::Printer::new(mode).map_err(CliError::Usage)?;
    if args.reproducible_check {
        let checked = build::repro::check(&store, &opts, &mut |e| printer.event(e));
        printer.finish(checked.as_ref().is_ok_and(|c| c.difference.is_none()));
        let checked = checked?;
        let mut out = std::io::stdout().lock();
        if let Some(d) = &checked.difference {
            out.flush()?;
            eprintln!(
                "not reproducible: {} != {}\n{d}",
                checked.image_id, checked.second
            );
            return Ok(ExitCode::FAILURE);
        }
        if let Some(path) = &args.iidfile {
            std::fs::write(path, checked.image_id.to_string())?;
        }
        if args.quiet {
            writeln!(out, "{}", checked.image_id)?;
        } else {
            writeln!(out, "reproducible: {}", checked.image_id)?;
        }
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let outcome = build::build(&store, &opts, &mut |e| printer.event(e));
    printer.finish(outcome.is_ok());
    if let Err(build::BuildError::Failed(f)) = &outcome
        && mode != progress::Mode::Json
    {
        // The step's last output, its Dockerfile lines and the image it ran on, above
        // the error line, as BuildKit prints them (JSON has them in its events).
        eprint!("\n{}", f.report());
    }
    let outcome = outcome?;
    build_output::export(global, &store, &outcome.image_id, &outcome.tags, &outputs)?;
    build_output::enforce_cache_limit(&store, cache_limit)?;
    if let Some(path) = &args.iidfile {
        std::fs::write(path, outcome.image_id.to_string())?;
    }
    if args.quiet {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", outcome.image_id)?;
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The epoch from `--source-date-epoch`, else from `SOURCE_DATE_EPOCH` (an empty one is
/// unset). A malformed value is an error, as reproducible-builds.org's specification
/// asks, not a build with the current time.
fn source_date_epoch(flag: Option<&str>) -> Result<Option<i64>, CliError> {
    let (value, from) = match flag {
        Some(v) => (v.to_string(), "--source-date-epoch"),
        None => match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) if !v.is_empty() => (v, "SOURCE_DATE_EPOCH"),
            _ => return Ok(None),
        },
    };
    match value.trim().parse::<i64>() {
        Ok(n) if n >= 0 => Ok(Some(n)),
        _ => Err(CliError::Usage(format!(
            "{from}={value:?}: expected a number of seconds since 1970-01-01 (0 or more)"
        ))),
    }
}

/// `rbuild -t NAME CONTEXT` is short for `rbuild build -t NAME CONTEXT`: when the first
/// argument after the global options is not a command but a build flag or a path, insert
/// `build`.
pub fn rewrite_shorthand(mut argv: Vec<String>, commands: &[&str]) -> Vec<String> {
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].as_str();
        if a == "--root" {
            i += 2;
            continue;
        }
        if a.starts_with("--root=") {
            i += 1;
            continue;
        }
        break;
    }
    let Some(first) = argv.get(i) else {
        return argv;
    };
    let build_flag = [
        "-t",
        "--tag",
        "-f",
        "--file",
        "-q",
        "--build-arg",
        "--target",
        "--no-cache",
        "--label",
        "--iidfile",
        "--progress",
        "--network",
        "--platform",
        "--pull",
        "-o",
        "--output",
        "--push",
        "--max-cache-size",
        "--cache-from",
        "--cache-to",
        "--source-date-epoch",
        "--reproducible-check",
    ]
    .iter()
    .any(|f| {
        first == f || first.starts_with(&format!("{f}=")) || (f.len() == 2 && first.starts_with(f))
    });
    let is_path = !first.starts_with('-')
        && !commands.contains(&first.as_str())
        && (first == "." || first.contains('/') || std::path::Path::new(first).is_dir());
    if build_flag || is_path {
        argv.insert(i, "build".to_string());
    }
    argv
}

/// `--secret id=ID,src=FILE|env=VAR` (also `type=file|env`, `source=`), as buildx reads
/// it: without `src` or `env`, the variable `ID` if set, else the file `ID`.
fn parse_secret(spec: &str) -> Result<(String, Vec<u8>), String> {
    let (mut id, mut kind, mut src, mut env) = (None, None, None, None);
    for field in spec.split(',') {
        let (k, v) = field.split_once('=').ok_or_else(|| {
            format!("--secret {spec}: invalid field {field:?}, expected key=value")
        })?;
        match k.trim().to_lowercase().as_str() {
            "id" => id = Some(v.to_string()),
            "type" => kind = Some(v.to_string()),
            "src" | "source" => src = Some(v.to_string()),
            "env" => env = Some(v.to_string()),
            other => return Err(format!("--secret {spec}: unexpected key {other:?}")),
        }
    }
    let id = id
        .or_else(|| src.clone())
        .or_else(|| env.clone())
        .filter(|i| !i.is_empty())
        .ok_or_else(|| format!("--secret {spec}: id is required"))?;
    let from_env = |var: &str| {
        std::env::var_os(var)
            .map(|v| std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()).to_vec())
            .ok_or_else(|| format!("--secret {spec}: environment variable {var} is not set"))
    };
    let from_file = |file: &str| {
        std::fs::read(file).map_err(|e| format!("--secret {spec}: reading {file}: {e}"))
    };
    let value = match (kind.as_deref(), src, env) {
        (Some("env"), s, e) => from_env(&e.or(s).unwrap_or_else(|| id.clone()))?,
        (Some("file") | None, Some(s), None) => from_file(&s)?,
        (None, None, Some(e)) => from_env(&e)?,
        (None, None, None) if std::env::var_os(&id).is_some() => from_env(&id)?,
        (Some("file") | None, None, None) => from_file(&id)?,
        (Some(t), ..) if t != "file" => {
            return Err(format!(
                "--secret {spec}: unsupported type {t:?} (file or env)"
            ));
        }
        _ => return Err(format!("--secret {spec}: give either src or env, not both")),
    };
    Ok((id, value))
}

#[cfg(test)]
mod tests {
    use super::rewrite_shorthand;

    fn rw(args: &[&str]) -> Vec<String> {
        let v = args.iter().map(|s| s.to_string()).collect();
        rewrite_shorthand(v, &["build", "images"])
    }

    #[test]
    fn shorthand_inserts_build() {
        assert_eq!(
            rw(&["rbuild", "-t", "x", "."]),
            ["rbuild", "build", "-t", "x", "."]
        );
        assert_eq!(
            rw(&["rbuild", "--root", "/s", "-tx", "ctx/"]),
            ["rbuild", "--root", "/s", "build", "-tx", "ctx/"]
        );
        assert_eq!(rw(&["rbuild", "."]), ["rbuild", "build", "."]);
        assert_eq!(
            rw(&["rbuild", "--pull", "--platform=linux/amd64", "."]),
            ["rbuild", "build", "--pull", "--platform=linux/amd64", "."]
        );
        assert_eq!(
            rw(&["rbuild", "--platform", "linux/amd64", "."]),
            ["rbuild", "build", "--platform", "linux/amd64", "."]
        );
        assert_eq!(rw(&["rbuild", "images", "-a"]), ["rbuild", "images", "-a"]);
        assert_eq!(rw(&["rbuild", "--help"]), ["rbuild", "--help"]);
        assert_eq!(rw(&["rbuild"]), ["rbuild"]);
    }

    #[test]
    fn secrets_from_files_and_variables() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s");
        std::fs::write(&f, "v1").unwrap();
        let spec = format!("id=a,src={}", f.display());
        assert_eq!(
            super::parse_secret(&spec).unwrap(),
            ("a".into(), b"v1".to_vec())
        );
        // SAFETY: this test alone uses this variable.
        unsafe { std::env::set_var("RBUILD_TEST_SECRET_VAR", "v2") };
        assert_eq!(
            super::parse_secret("id=b,env=RBUILD_TEST_SECRET_VAR").unwrap(),
            ("b".into(), b"v2".to_vec())
        );
        assert!(super::parse_secret("id=c,env=RBUILD_TEST_NO_SUCH_VAR").is_err());
        assert!(super::parse_secret("src=/nonexistent/x").is_err());
        assert!(super::parse_secret("id=d,bogus=1").is_err());
    }
}
