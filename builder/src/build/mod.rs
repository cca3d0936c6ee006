//! The build driver: turns a Dockerfile and a context into images, one intermediate
//! image per step, with a content-based cache.
//!
//! [`build`] reads the Dockerfile and `.dockerignore`, plans the stages the target needs
//! ([`rbuild_parser::stages::plan`]), then builds each stage in plan order. Each step
//! computes its cache key ([`cache`]); a hit reuses the image the step made before, a
//! miss runs the step ([`step`]) and commits its result as an image whose parent is the
//! previous step's. The last image gets the tags.
//!
//! Stages the target needs run concurrently, each as soon as the stages it uses are
//! built ([`schedule`]); stages it does not need are skipped.

mod bases;
pub mod cache;
pub mod context;
mod copy;
pub mod failure;
mod git;
mod inline;
pub mod interrupt;
mod link;
mod parents;
pub mod progress;
pub mod remote_cache;
pub mod repro;
mod rootfs;
mod run;
mod run_mounts;
mod schedule;
mod step;
mod untar;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rbuild_parser::ParseError;
use rbuild_parser::dockerignore::{Matcher, read_ignore_file};
use rbuild_parser::instruction::{Mount, Run};
use rbuild_parser::stages::{Base, DependsOn};
use rbuild_parser::syntax;
use rbuild_store::commit::CommittedLayer;
use rbuild_store::config::ContainerConfig;
use rbuild_store::registry::{Client, RegistryError};
use rbuild_store::{Digest, ImageConfig, ImageRef, Store, StoreError};

use crate::source::{self, SourceError};

pub use cache::MissReason;
pub use failure::StepFailure;
pub use progress::Event;
pub use run::SandboxRunner;

/// RUN's network: `--network` of the build (default `host`, like Docker's default for
/// builds, so RUN can reach package mirrors), overridden per step by `RUN --network`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NetworkMode {
    #[default]
    Host,
    None,
}

impl NetworkMode {
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkMode::Host => "host",
            NetworkMode::None => "none",
        }
    }
}

/// What a RUN step asks of the sandbox.
pub struct RunRequest<'a> {
    /// `Dockerfile:LINE` of the RUN, for messages.
    pub location: String,
    /// The parent image's layers by diff ID, bottom first (their trees are
    /// [`Store::layer_tree`]): the overlay lowerdirs.
    pub parent_layers: Vec<Digest>,
    /// The parent image's container config (ENV, USER, WORKDIR, SHELL, …).
    pub config: &'a ContainerConfig,
    /// The command, SHELL applied to the shell form (`["/bin/sh", "-c", "make"]`).
    pub cmd: Vec<String>,
    /// The environment: the config's ENV, then the stage's build arguments that ENV
    /// does not set, then the proxy arguments (`KEY=value`).
    pub env: Vec<String>,
    /// USER, as written (`app`, `1000:1000`); `None` for root.
    pub user: Option<String>,
    /// WORKDIR, absolute (`/` when unset).
    pub workdir: String,
    pub network: NetworkMode,
    /// `RUN --mount` flags (validated, expanded), for the sandbox to set up.
    pub mounts: Vec<Mount>,
    /// The build context's root (`RUN --mount=type=bind` without `from`).
    pub context: &'a std::path::Path,
    /// `--secret`s by id.
    pub secrets: &'a BTreeMap<String, Vec<u8>>,
    /// What `RUN --mount from=` can name: stages (lower-case name and index) and
    /// images, to their layers.
    pub mount_sources: &'a run_mounts::MountSources,
    /// The instruction itself (heredocs, `--security`).
    pub instruction: &'a Run,
    /// `SOURCE_DATE_EPOCH`: mtimes in the layer newer than this are set to it.
    pub clamp_mtime: Option<i64>,
    /// A `RUN <<EOF` script with a shebang, `(NAME, body)`: mounted read-only at
    /// `/dev/pipes/NAME` with mode 0755, which `cmd` executes.
    pub script_file: Option<(String, String)>,
    /// Where the command's output goes, as it comes (stdout and stderr alike).
    pub output: &'a mut dyn FnMut(&[u8]),
    /// Set when another stage of the build failed: the step should stop as on Ctrl-C.
    pub abort: &'a AtomicBool,
}

/// Runs RUN steps: the sandbox plus the snapshotter. `run` returns the layer the
/// command's changes make (stored with [`Store::add_layer`] or `add_layer_dir`), or
/// `None` when it changed nothing; an `Err` is the message the build fails with (exit
/// code and the last lines of output). Stages built concurrently call it from several
/// threads at once.
pub trait RunStep: Sync {
    fn run(&self, store: &Store, req: RunRequest<'_>) -> Result<Option<CommittedLayer>, String>;
}

/// What to build.
#[derive(Clone)]
pub struct BuildOptions<'a> {
    pub context: PathBuf,
    /// `-f`: `None` for `CONTEXT/Dockerfile`, `-` for standard input.
    pub dockerfile: Option<PathBuf>,
    /// `--build-arg` (those without a value already taken from the environment).
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    /// `--label`: set on the final image (no history entry), as BuildKit does.
    pub labels: BTreeMap<String, String>,
    /// `-t`.
    pub tags: Vec<ImageRef>,
    pub network: NetworkMode,
    /// `--secret id=…`: the secrets' contents by id (never in a layer, history or key).
    pub secrets: BTreeMap<String, Vec<u8>>,
    /// Runs RUN steps; `None` makes a RUN a clear error.
    pub runner: Option<&'a dyn RunStep>,
    /// `--platform`, as given: the native platform in any spelling; anything else is
    /// refused (RUN has no emulation).
    pub platform: Option<String>,
    /// `--pull`: fetch every image the build uses afresh (an image that is up to date
    /// costs one manifest request).
    pub pull: bool,
    /// Makes the registry client that pulls base images missing from the store (and
    /// all of them with `--pull`); `None` builds from the store alone. A maker rather
    /// than a client: a build whose images are all here never pays for one.
    pub registry: Option<&'a RegistryAccess<'a>>,
    /// `--cache-from` and `--cache-to`: caches shared between stores.
    pub cache: remote_cache::CacheOptions,
    /// `SOURCE_DATE_EPOCH` (seconds): the `created` of the config and of every history
    /// entry, and every mtime in the layers the build makes, are clamped to it, so the
    /// same inputs give the same image ID on any machine at any time
    /// (reproducible-builds.org). Part of every step's cache key: the intermediate images
    /// carry it.
    pub source_date_epoch: Option<i64>,
}

/// How a build gets a registry client, when it needs one.
pub type RegistryAccess<'a> = dyn Fn() -> Result<Arc<Client>, RegistryError> + Sync + 'a;

/// What a build made.
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    pub image_id: Digest,
    pub tags: Vec<ImageRef>,
    /// Steps taken from the cache and steps run.
    pub cached: usize,
    pub ran: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Already formatted with the file, line and a caret.
    #[error("{0}")]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A step could not start: `Dockerfile:LINE: message`.
    #[error("{location}: {message}")]
    Step { location: String, message: String },
    /// A step failed while it ran; [`StepFailure::report`] says more than the message.
    #[error("{0}")]
    Failed(Box<StepFailure>),
    #[error("build context {path}: {message}")]
    Context { path: PathBuf, message: String },
    /// `--platform` names a platform this machine cannot build for.
    #[error("{0}")]
    Platform(String),
    /// An imported cache's image could not be fetched, or `--cache-to` failed.
    #[error("{0}")]
    Cache(String),
}

/// A stage's result: its last image (or none for an empty `FROM scratch`) and config.
#[derive(Clone)]
struct StageResult {
    image: Option<Digest>,
    config: ImageConfig,
}

/// Builds the Dockerfile in `opts`, reporting progress to `events`.
pub fn build(
    store: &Store,
    opts: &BuildOptions<'_>,
    events: progress::Sink<'_>,
) -> Result<BuildOutcome, BuildError> {
    let progress = progress::Progress::new(events);
    let df_path = source::dockerfile_path(opts.dockerfile.as_deref(), &opts.context);
    let shown = opts
        .dockerfile
        .as_ref()
        .map_or("Dockerfile".to_string(), |p| p.display().to_string());
    let v = progress.start(format!("[internal] load build definition from {shown}"));
    let mut src = source::read_dockerfile(&df_path)?;
    if opts.dockerfile.is_none() {
        // Errors say `Dockerfile:LINE`, as BuildKit's do, not the context's path.
        src.name = "Dockerfile".to_string();
    }
    progress.log(
        &v,
        format!("transferring dockerfile: {}B done", src.bytes.len()),
    );
    let tree = syntax::parse(&src.bytes, &src.name)?;
    progress.done(v);

    let v = progress.start("[internal] load .dockerignore");
    let df_for_ignore = src.path.as_deref();
    let ignore = match source::read_ignore_file(df_for_ignore, &opts.context)? {
        Some((path, text)) => {
            let lines = read_ignore_file(&text)
                .map_err(|e| e.to_diagnostic(&text).in_file(path.display().to_string()))?;
            progress.log(&v, format!("transferring context: {}B done", text.len()));
            Matcher::new(lines.iter().map(|l| l.pattern.as_str())).map_err(|e| {
                BuildError::Context {
                    path: path.clone(),
                    message: e.to_string(),
                }
            })?
        }
        None => Matcher::new(std::iter::empty::<&str>()).expect("no patterns"),
    };
    progress.done(v);

    let _lock = store.write_lock()?;
    // Plans with the base images' ENV and ONBUILD triggers; checks platforms and --pull.
    let bases::Resolved {
        plan,
        ids: bases,
        layers: mount_images,
    } = bases::resolve(store, &tree, &src, opts, &progress)?;

    // The plan's warnings include build arguments no ARG consumed.
    for w in &plan.warnings {
        let message = w.message.strip_prefix("[Warning] ").unwrap_or(&w.message);
        match w.line {
            Some(line) => progress.warning(format!("{}:{line}: {message}", src.name)),
            None => progress.warning(message),
        }
    }
    let context_root = opts
        .context
        .canonicalize()
        .map_err(|e| BuildError::Context {
            path: opts.context.clone(),
            message: e.to_string(),
        })?;
    let ctx = context::Context::new(context_root.clone(), ignore);
    let context_loaded = AtomicBool::new(false);
    let abort = AtomicBool::new(false);
    let lines: Vec<String> = src.text().lines().map(str::to_string).collect();
    let note_scope = format!(
        "{}\0{}",
        context_root.display(),
        src.path
            .as_ref()
            .and_then(|p| p.canonicalize().ok())
            .map_or(src.name.clone(), |p| p.display().to_string())
    );
    let cached = AtomicUsize::new(0);
    let ran = AtomicUsize::new(0);
    // `--no-cache` ignores imported caches too, as BuildKit does.
    let from: &[_] = if opts.no_cache { &[] } else { &opts.cache.from };
    let imported = remote_cache::Imported::open(from, opts.registry, &progress);
    let records = std::sync::Mutex::new(Vec::new());

    // The stages the target needs, dependencies first, and what each waits for.
    let order: Vec<usize> = plan.waves.iter().flatten().copied().collect();
    let deps: Vec<Vec<usize>> = plan
        .stages
        .iter()
        .map(|stage| {
            let mut d: Vec<usize> = stage
                .deps
                .iter()
                .filter_map(|d| match d.on {
                    DependsOn::Stage(j) => Some(j),
                    _ => None,
                })
                .collect();
            if let Base::Stage(j) = stage.base {
                d.push(j);
            }
            d
        })
        .collect();
    let many = plan.stages.len() > 1;
    let root = store.root().to_path_buf();
    let built = schedule::run(&order, &deps, &abort, plan.stages.len(), |index, done| {
        let stage = &plan.stages[index];
        // Each stage has its own connection to the metadata database, which is used by
        // one thread at a time.
        let store = &Store::open(&root)?;
        let base = match &stage.base {
            Base::Scratch => StageResult {
                image: None,
                config: step::scratch_config(),
            },
            Base::Image(r) => {
                let id = bases[r].clone();
                StageResult {
                    config: store.config(&id)?,
                    image: Some(id),
                }
            }
            Base::Stage(j) => done[*j].clone().ok_or_else(|| BuildError::Step {
                location: format!("{}:{}", src.name, stage.line),
                message: format!("stage {j} was not built before stage {index}"),
            })?,
        };
        // Stages this one mounts from are read from disk: an imported result is
        // fetched now. Its base stage is not (its steps may all be hits), nor those
        // `COPY --from` reads (the step fetches them if its key needs their files).
        for d in &stage.deps {
            if let DependsOn::Stage(j) = d.on
                && d.reason == rbuild_parser::stages::Reason::RunMount
                && let Some(Some(result)) = done.get(j)
            {
                imported
                    .materialize(store, result.image.as_ref())
                    .map_err(BuildError::Cache)?;
            }
        }
        // What `RUN --mount from=` can name: images, and the stages built so far by
        // name and index.
        let mut mount_sources = mount_images.clone();
        for (j, result) in done.iter().enumerate() {
            if let Some(result) = result {
                let layers = result.config.rootfs.diff_ids.clone();
                if let Some(name) = &plan.stages[j].name {
                    mount_sources.insert(name.to_lowercase(), layers.clone());
                }
                mount_sources.insert(j.to_string(), layers);
            }
        }
        let mut cx = step::Cx {
            store,
            opts,
            ctx: &ctx,
            file: src.name.clone(),
            note_scope: note_scope.clone(),
            lines: &lines,
            proxy: plan.proxy.clone(),
            context_loaded: &context_loaded,
            abort: &abort,
            mount_sources,
            cached: 0,
            ran: 0,
            stages: done.to_vec(),
            images: bases.clone(),
            imported: &imported,
            records: Vec::new(),
        };
        let label = if many {
            format!("{} ", stage.display_name())
        } else {
            String::new()
        };
        let total = stage.steps.len() + 1;
        let from = match &stage.base {
            Base::Image(r) => format!("FROM {}", full_name(r)),
            _ => stage.from.clone(),
        };
        let v = progress.start(format!("[{label}1/{total}] {from}"));
        progress.done(v);
        let result = step::build_stage(&mut cx, &progress, stage, base, &label);
        cached.fetch_add(cx.cached, Ordering::Relaxed);
        ran.fetch_add(cx.ran, Ordering::Relaxed);
        records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(cx.records.drain(..).map(|r| (index, r)));
        result
    })?;

    let v = progress.start("exporting to image");
    let last = built[plan.target]
        .clone()
        .expect("the target stage was built");
    imported
        .materialize(store, last.image.as_ref())
        .map_err(BuildError::Cache)?;
    let image_id = step::finish(store, last, &opts.labels, opts.source_date_epoch)?;
    progress.log(&v, format!("writing image {image_id} done"));
    for tag in &opts.tags {
        store.tag(&image_id, tag)?;
        progress.log(&v, format!("naming to {tag} done"));
    }
    progress.done(v);
    // Every cache hit is an ancestor of its stage's last image: marking those chains
    // used keeps what this build needed last in line for cache eviction.
    let used: Vec<Digest> = built
        .iter()
        .flatten()
        .filter_map(|r| r.image.clone())
        .collect();
    store.touch_cache(&used)?;
    if !opts.cache.to.is_empty() {
        // The final image's stage chain: the target and the stages it is built FROM.
        let mut chain = vec![plan.target];
        while let Base::Stage(j) = plan.stages[*chain.last().expect("not empty")].base {
            chain.push(j);
        }
        let records = records.into_inner().unwrap_or_else(|p| p.into_inner());
        remote_cache::export(
            store,
            &opts.cache.to,
            &records,
            &chain,
            &imported,
            &progress,
        )
        .map_err(BuildError::Cache)?;
    }
    Ok(BuildOutcome {
        image_id,
        tags: opts.tags.clone(),
        cached: cached.into_inner(),
        ran: ran.into_inner(),
    })
}

/// `docker.io/library/busybox:latest` for `busybox`, as BuildKit's progress names it.
fn full_name(reference: &str) -> String {
    ImageRef::parse(reference)
        .map(|r| r.with_default_tag().to_string())
        .unwrap_or_else(|_| reference.to_string())
}

/// `busybox:latest` for `busybox`.
fn familiar(reference: &str) -> String {
    ImageRef::parse(reference)
        .map(|r| r.with_default_tag().familiar())
        .unwrap_or_else(|_| reference.to_string())
}
