//! The build driver: turns a Dockerfile and a context into images, one intermediate
//! image per step, with a content-based cache.
//!
//! [`build`] reads the Dockerfile and `.dockerignore`, plans the stages the target needs
//! ([`rbuild_parser::stages::plan`]), then builds each stage in plan order. Each step
//! computes its cache key ([`cache`]); a hit reuses the image the step made before, a
//! miss runs the step ([`step`]) and commits its result as an image whose parent is the
//! previous step's. The last image gets the tags.
//!
//! Stages run one after another for now. The plan's waves say which stages are
//! independent: the loop in [`build`] over `plan.waves` is where a wave could run its
//! stages concurrently (each stage only reads earlier waves' results).

pub mod cache;
pub mod context;
mod copy;
mod git;
pub mod interrupt;
mod link;
mod parents;
pub mod progress;
mod rootfs;
mod run;
mod run_mounts;
mod step;
mod untar;

use std::collections::BTreeMap;
use std::path::PathBuf;

use rbuild_parser::ParseError;
use rbuild_parser::dockerignore::{Matcher, read_ignore_file};
use rbuild_parser::instruction::{Mount, Run};
use rbuild_parser::stages::{self, Base, PlanOptions};
use rbuild_parser::syntax;
use rbuild_store::commit::CommittedLayer;
use rbuild_store::config::ContainerConfig;
use rbuild_store::{Digest, ImageConfig, ImageRef, Store, StoreError};

use crate::source::{self, SourceError};

pub use cache::MissReason;
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
    /// [`Store::layer_dir`]): the overlay lowerdirs.
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
    /// Where the command's output goes, as it comes (stdout and stderr alike).
    pub output: &'a mut dyn FnMut(&[u8]),
}

/// Runs RUN steps: the sandbox plus the snapshotter. `run` returns the layer the
/// command's changes make (stored with [`Store::add_layer`] or `add_layer_dir`), or
/// `None` when it changed nothing; an `Err` is the message the build fails with (exit
/// code and the last lines of output). It takes `&self` so stages may later run it
/// from several threads.
pub trait RunStep {
    fn run(&self, store: &Store, req: RunRequest<'_>) -> Result<Option<CommittedLayer>, String>;
}

/// What to build.
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
}

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
    /// A step failed: `Dockerfile:LINE: message`.
    #[error("{location}: {message}")]
    Step { location: String, message: String },
    #[error("build context {path}: {message}")]
    Context { path: PathBuf, message: String },
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
    events: &mut dyn FnMut(Event),
) -> Result<BuildOutcome, BuildError> {
    let mut progress = progress::Progress::new(events);
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
    let mut plan_opts = PlanOptions {
        build_args: opts.build_args.clone(),
        target: opts.target.clone(),
        ..PlanOptions::default()
    };
    let plan = stages::plan(&tree, src.text(), &plan_opts).map_err(|d| d.in_file(&src.name))?;
    // Base images' ENV changes what their stages' instructions expand to: plan again
    // with it (BuildKit also resolves bases before it converts the stages).
    let mut bases = BTreeMap::new();
    let mut mount_images = BTreeMap::new();
    for reference in &plan.images {
        let v = progress.start(format!(
            "[internal] load metadata for {}",
            full_name(reference)
        ));
        match store.resolve(reference) {
            Ok(img) => {
                let config = store.config(&img.id)?;
                let env = config
                    .config
                    .as_ref()
                    .and_then(|c| c.env.clone())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|kv| match kv.split_once('=') {
                        Some((k, v)) => (k.to_string(), v.to_string()),
                        None => (kv, String::new()),
                    })
                    .collect();
                plan_opts.base_image_env.insert(reference.clone(), env);
                bases.insert(reference.clone(), img.id);
                mount_images.insert(reference.clone(), config.rootfs.diff_ids.clone());
                progress.done(v);
            }
            Err(StoreError::NoSuchImage(_)) => {
                let message = format!(
                    "image not found locally: {} (pull, load or import it first)",
                    familiar(reference)
                );
                progress.failed(v, &message);
                let line = plan
                    .stages
                    .iter()
                    .filter(|s| s.needed)
                    .find_map(|s| {
                        if s.base == Base::Image(reference.clone()) {
                            return Some(s.line);
                        }
                        // `COPY --from=IMAGE` and `RUN --mount=from=IMAGE`.
                        s.deps
                            .iter()
                            .find(|d| d.on == stages::DependsOn::Image(reference.clone()))
                            .map(|d| d.line)
                    })
                    .unwrap_or(1);
                return Err(BuildError::Step {
                    location: format!("{}:{line}", src.name),
                    message,
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    let plan = stages::plan(&tree, src.text(), &plan_opts).map_err(|d| d.in_file(&src.name))?;

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
    let mut cx = step::Cx {
        store,
        opts,
        ctx: &ctx,
        file: src.name.clone(),
        note_scope: format!(
            "{}\0{}",
            context_root.display(),
            src.path
                .as_ref()
                .and_then(|p| p.canonicalize().ok())
                .map_or(src.name.clone(), |p| p.display().to_string())
        ),
        lines: src.text().lines().map(str::to_string).collect(),
        proxy: plan.proxy.clone(),
        context_loaded: false,
        mount_sources: mount_images,
        cached: 0,
        ran: 0,
        stages: vec![None; plan.stages.len()],
        images: bases.clone(),
    };

    let many = plan.stages.len() > 1;
    // Each wave's stages depend only on earlier waves: they could run concurrently here.
    for wave in &plan.waves {
        for &index in wave {
            let stage = &plan.stages[index];
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
                Base::Stage(j) => cx.stages[*j].clone().ok_or_else(|| BuildError::Step {
                    location: format!("{}:{}", src.name, stage.line),
                    message: format!("stage {j} was not built before stage {index}"),
                })?,
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
            let result = step::build_stage(&mut cx, &mut progress, stage, base, &label)?;
            // Later stages may `RUN --mount from=` this one, by name or index.
            let layers = result.config.rootfs.diff_ids.clone();
            if let Some(name) = &stage.name {
                cx.mount_sources.insert(name.to_lowercase(), layers.clone());
            }
            cx.mount_sources.insert(index.to_string(), layers);
            cx.stages[index] = Some(result);
        }
    }

    let v = progress.start("exporting to image");
    let last = cx.stages[plan.target]
        .clone()
        .expect("the target stage was built");
    let image_id = step::finish(store, last, &opts.labels)?;
    progress.log(&v, format!("writing image {image_id} done"));
    for tag in &opts.tags {
        store.tag(&image_id, tag)?;
        progress.log(&v, format!("naming to {tag} done"));
    }
    progress.done(v);
    Ok(BuildOutcome {
        image_id,
        tags: opts.tags.clone(),
        cached: cx.cached,
        ran: cx.ran,
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
