//! What a build starts from: the platform it is for, the images its plan names, and
//! what those images tell the planner.
//!
//! The planner needs the base images' ENV (their instructions expand with it) and their
//! ONBUILD triggers (which run first in the stages built on them, and whose
//! `COPY --from` may name images of their own). So [`resolve`] plans, looks up every
//! image the plan uses, and plans again with what it learnt, until no new image turns
//! up: two passes usually, three when a trigger copies from an image.
//!
//! Images come from the store; one that is not there is pulled (as `docker build`
//! does), and with `--pull` every one is pulled again (an image that is up to date costs
//! a manifest request). [`load`] is where that happens, inside the image's
//! `[internal] load metadata for …` step, whose log shows the pull's lines.
//!
//! rbuild runs RUN steps natively and has no emulation, so it builds for the machine's
//! platform only: `--platform`, `FROM --platform=` and base images for another platform
//! are errors that say so. (Docker's classic builder only warns about a base image of
//! another architecture and then fails at the first RUN with `exec format error`;
//! BuildKit refuses to resolve an image with no manifest for the platform asked for.)

use std::collections::BTreeMap;

use rbuild_parser::stages::{self, Base, DependsOn, Plan, PlanOptions, Platform, Reason};
use rbuild_parser::syntax::Dockerfile;
use rbuild_store::registry::progress::Event;
use rbuild_store::registry::pull::{self, PullOptions};
use rbuild_store::registry::{self, RegistryError};
use rbuild_store::{Digest, ImageConfig, ImageRef, Store, StoreError, platform};

use super::progress::{Progress, Vertex};
use super::{BuildError, BuildOptions, RegistryAccess, familiar, full_name};
use crate::source::DockerfileSource;

/// The plan of a build and the images it uses, found in the store.
pub(super) struct Resolved {
    pub plan: Plan,
    /// Each image the plan uses, by reference as written, to its ID.
    pub ids: BTreeMap<String, Digest>,
    /// Each image's layers (diff IDs), for `RUN --mount from=IMAGE`.
    pub layers: BTreeMap<String, Vec<Digest>>,
}

/// Plans the build and resolves its images; see the module docs.
pub(super) fn resolve(
    store: &Store,
    tree: &Dockerfile,
    src: &DockerfileSource,
    opts: &BuildOptions<'_>,
    progress: &Progress<'_>,
) -> Result<Resolved, BuildError> {
    let native = native();
    if let Some(spec) = &opts.platform {
        check_flag(spec, &native)?;
    }
    let mut plan_opts = PlanOptions {
        build_args: opts.build_args.clone(),
        target: opts.target.clone(),
        build_platform: native.clone(),
        target_platform: native.clone(),
        ..PlanOptions::default()
    };
    let at = |line: usize| format!("{}:{line}", src.name);
    let mut plan = stages::plan(tree, src.text(), &plan_opts).map_err(|d| d.in_file(&src.name))?;
    for stage in plan.stages.iter().filter(|s| s.needed) {
        if !is_native(&stage.platform, &native) {
            return Err(BuildError::Step {
                location: at(stage.line),
                message: format!(
                    "{}: the stage is for {}, but rbuild builds for the native platform ({native}) only; it cannot emulate another",
                    stage.from, stage.platform
                ),
            });
        }
    }
    let mut ids = BTreeMap::new();
    let mut layers = BTreeMap::new();
    loop {
        let new: Vec<String> = plan
            .images
            .iter()
            .filter(|r| !ids.contains_key(*r))
            .cloned()
            .collect();
        if new.is_empty() {
            break;
        }
        for reference in new {
            let (id, config) = match load(store, &reference, opts, progress) {
                Ok(found) => found,
                Err(LoadError::Store(e)) => return Err(e.into()),
                Err(LoadError::Missing(message)) => {
                    let (line, trigger) = first_use(&plan, &reference);
                    return Err(BuildError::Step {
                        location: at(line),
                        message: match trigger {
                            Some(of) => format!("{message}; an ONBUILD trigger of {of} uses it"),
                            None => message,
                        },
                    });
                }
            };
            let cc = config.config.as_ref();
            let env = cc
                .and_then(|c| c.env.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (kv, String::new()),
                })
                .collect();
            plan_opts.base_image_env.insert(reference.clone(), env);
            if let Some(triggers) = cc.and_then(|c| c.on_build.clone()) {
                plan_opts
                    .base_image_triggers
                    .insert(reference.clone(), triggers);
            }
            check_base(&reference, &config, &native, &plan).map_err(|(line, message)| {
                BuildError::Step {
                    location: at(line),
                    message,
                }
            })?;
            ids.insert(reference.clone(), id);
            layers.insert(reference, config.rootfs.diff_ids);
        }
        plan = stages::plan(tree, src.text(), &plan_opts).map_err(|d| d.in_file(&src.name))?;
    }
    Ok(Resolved { plan, ids, layers })
}

/// Why an image could not be had.
enum LoadError {
    /// Not in the store: the message to fail with.
    Missing(String),
    Store(StoreError),
}

/// One image from the store, pulled first when it is missing or `--pull` asks, with a
/// progress step as BuildKit shows it.
fn load(
    store: &Store,
    reference: &str,
    opts: &BuildOptions<'_>,
    progress: &Progress<'_>,
) -> Result<(Digest, ImageConfig), LoadError> {
    let v = progress.start(format!(
        "[internal] load metadata for {}",
        full_name(reference)
    ));
    let local = match store.resolve(reference) {
        Ok(img) => Some(img.id),
        Err(StoreError::NoSuchImage(_)) => None,
        Err(e) => return Err(LoadError::Store(e)),
    };
    let id = match (&local, opts.pull, opts.registry) {
        (Some(id), false, _) => id.clone(),
        (None, _, None) => {
            let message = format!(
                "image not found locally: {} (pull, load or import it first)",
                familiar(reference)
            );
            progress.failed(v, &message);
            return Err(LoadError::Missing(message));
        }
        (Some(_), true, None) => {
            let message = format!(
                "--pull: cannot pull {}: this build has no registry access",
                familiar(reference)
            );
            progress.failed(v, &message);
            return Err(LoadError::Missing(message));
        }
        (_, _, Some(access)) => match pull(store, reference, access, &v, progress) {
            Ok(id) => id,
            Err(e) => {
                let message = match local {
                    None => format!(
                        "image not found locally: {}, and pulling it failed: {e}",
                        familiar(reference)
                    ),
                    Some(_) => format!("--pull: pulling {} failed: {e}", familiar(reference)),
                };
                progress.failed(v, &message);
                return Err(LoadError::Missing(message));
            }
        },
    };
    let config = store.config(&id).map_err(LoadError::Store)?;
    progress.done(v);
    Ok((id, config))
}

/// Pulls `reference` for this machine, logging docker's lines under the vertex.
fn pull(
    store: &Store,
    reference: &str,
    access: &RegistryAccess<'_>,
    v: &Vertex,
    progress: &Progress<'_>,
) -> Result<Digest, RegistryError> {
    let r = ImageRef::parse(reference)
        .map_err(|e| RegistryError::Unsupported(format!("invalid reference {reference}: {e}")))?;
    let client = access()?;
    let log = VertexLog { progress, v };
    pull::pull(store.root(), &client, &r, &PullOptions::default(), &log).map(|o| o.id)
}

/// A pull's events as log lines of a build step; byte counts are left out.
struct VertexLog<'p, 'a> {
    progress: &'p Progress<'a>,
    v: &'p Vertex,
}

impl registry::progress::Progress for VertexLog<'_, '_> {
    fn event(&self, e: Event) {
        match e {
            Event::Message(m) => self.progress.log(self.v, m),
            Event::Status { id, status } => self.progress.log(self.v, format!("{id}: {status}")),
            Event::Bytes { .. } => {}
        }
    }
}

/// The line of the first needed stage that uses `reference`: as its base, or in
/// `COPY --from` / `RUN --mount from=`; with, when a trigger of the stage's base is what
/// uses it, where that trigger came from.
fn first_use(plan: &Plan, reference: &str) -> (usize, Option<String>) {
    plan.stages
        .iter()
        .filter(|s| s.needed)
        .find_map(|s| {
            if s.base == Base::Image(reference.to_string()) {
                return Some((s.line, None));
            }
            let d = s
                .deps
                .iter()
                .find(|d| d.on == DependsOn::Image(reference.to_string()))?;
            // Only triggers sit on the FROM line without being the FROM.
            let trigger = s
                .steps
                .iter()
                .find_map(|step| step.trigger.as_ref())
                .filter(|_| d.line == s.line && d.reason != Reason::From)
                .map(|t| t.of.clone());
            Some((d.line, trigger))
        })
        .unwrap_or((1, None))
}

/// The platform images are built for here, from the store's view of the machine.
fn native() -> Platform {
    let spec = format!("{}/{}", platform::native_os(), platform::native_arch());
    Platform::parse(&spec).unwrap_or_else(|_| Platform::host())
}

/// Whether `p` runs here as it is: same OS and architecture, and no variant beyond the
/// one the architecture implies (`arm64/v8` is `arm64`; `amd64/v3` needs CPU features
/// that are not checked, so it is refused).
fn is_native(p: &Platform, native: &Platform) -> bool {
    let default_variant = |p: &Platform| match p.architecture.as_str() {
        "arm64" => p.variant.is_empty() || p.variant == "v8",
        "arm" => p.variant.is_empty() || p.variant == "v7",
        _ => p.variant.is_empty(),
    };
    p.os == native.os
        && p.architecture == native.architecture
        && (p.variant == native.variant || (default_variant(p) && default_variant(native)))
}

/// `--platform`: the native platform in any spelling containerd accepts, else an
/// error; a list (`linux/amd64,linux/arm64`) only when every entry is native.
fn check_flag(spec: &str, native: &Platform) -> Result<(), BuildError> {
    for part in spec.split(',').map(str::trim) {
        let p = Platform::parse(part)
            .map_err(|e| BuildError::Platform(format!("--platform {spec}: {e}")))?;
        if !is_native(&p, native) {
            return Err(BuildError::Platform(format!(
                "--platform {spec}: rbuild builds for the native platform ({native}) only; it cannot emulate {p}"
            )));
        }
    }
    Ok(())
}

/// A base image must be for this platform: its programs could not run in RUN, and the
/// image built on it would claim a platform it is not for. Images whose config names
/// no platform are taken as they are. Returns the FROM line and the message.
fn check_base(
    reference: &str,
    config: &ImageConfig,
    native: &Platform,
    plan: &Plan,
) -> Result<(), (usize, String)> {
    let Some(stage) = plan
        .stages
        .iter()
        .find(|s| s.needed && s.base == Base::Image(reference.to_string()))
    else {
        return Ok(());
    };
    if config.architecture.is_empty() && config.os.is_empty() {
        return Ok(());
    }
    let os = if config.os.is_empty() {
        native.os.as_str()
    } else {
        config.os.as_str()
    };
    let arch = if config.architecture.is_empty() {
        native.architecture.as_str()
    } else {
        config.architecture.as_str()
    };
    let spec = match config.variant.as_deref().filter(|v| !v.is_empty()) {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    };
    let ok = match Platform::parse(&spec) {
        Ok(p) => {
            // The variant of a base image is informational here (`arm64/v8`, or an
            // amd64 level Docker may record): only OS and architecture must match.
            p.os == native.os && p.architecture == native.architecture
        }
        Err(_) => false,
    };
    if ok {
        return Ok(());
    }
    Err((
        stage.line,
        format!(
            "image {} is for {spec}, but rbuild builds for the native platform ({native}) only; it cannot emulate another",
            familiar(reference)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn native_in_any_spelling() {
        let amd = p("linux/amd64");
        for ok in ["linux/amd64", "linux/x86_64", "linux/amd64/v1"] {
            assert!(is_native(&p(ok), &amd), "{ok}");
        }
        for bad in [
            "linux/arm64",
            "linux/amd64/v3",
            "windows/amd64",
            "linux/386",
        ] {
            assert!(!is_native(&p(bad), &amd), "{bad}");
        }
        let arm = p("linux/arm64");
        assert!(is_native(&p("linux/arm64/v8"), &arm));
        assert!(is_native(&p("linux/aarch64"), &arm));
    }

    #[test]
    fn the_flag_names_what_it_refuses() {
        let amd = p("linux/amd64");
        assert!(check_flag("linux/amd64", &amd).is_ok());
        assert!(check_flag("linux/amd64,linux/x86_64", &amd).is_ok());
        let e = check_flag("linux/amd64,linux/arm64", &amd)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "--platform linux/amd64,linux/arm64: rbuild builds for the native platform (linux/amd64) only; it cannot emulate linux/arm64"
        );
        let e = check_flag("bogus", &amd).unwrap_err().to_string();
        assert!(
            e.contains("unknown operating system or architecture"),
            "{e}"
        );
    }
}
