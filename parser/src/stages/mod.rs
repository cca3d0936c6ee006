//! Stage 4: the stage graph, i.e. what a build of a Dockerfile will do and in what order.
//!
//! [`plan`] takes the typed instructions and the build's options (build arguments,
//! target, platforms) and returns a [`Plan`]: every stage with its base, platform and
//! dependencies; for the stages the target needs, every instruction with its variables
//! expanded the way BuildKit expands them at that point; and an order in [waves](Plan::waves)
//! of stages that can be built concurrently.
//!
//! The rules are BuildKit's (`frontend/dockerfile/dockerfile2llb/convert.go`):
//!
//! - ARG scoping and predefined arguments: see [`args`](self::args) (module docs).
//! - A stage's base is an earlier stage when the expanded FROM text equals its name,
//!   `scratch` (nothing), or else an image. `FROM <index>` is an image name, not a stage.
//! - `COPY --from=` names a stage (any case) or an index; an unknown name is an image.
//!   `RUN --mount=from=` names a stage or is an image; an index is an image there.
//!   Both may name a *later* stage, which BuildKit accepts in its graph (so cycles are
//!   possible and reported) but refuses when it builds the stage.
//! - The default target is the last stage; a stage is built when the target needs it.
//! - A stage's ONBUILD instructions are not run in it: they are stored in its image. A
//!   stage whose base has triggers (an image's `OnBuild`, or an earlier stage's ONBUILD
//!   instructions) runs them first, before its own instructions; see [`triggers`](self::triggers).
//!
//! Where we are stricter than BuildKit: duplicate stage names and the reserved names
//! `scratch` and `context` are errors here; BuildKit only warns about them (lint rules
//! `DuplicateStageName`, `ReservedStageName`) and then resolves references to the last
//! stage of that name.

mod args;
mod build;
mod error;
mod expand;
mod graph;
mod order;
mod platform;
mod render;
mod triggers;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_graph;
#[cfg(test)]
mod tests_triggers;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::error::Diagnostic;
use crate::instruction::{self, Instruction, Located};
use crate::syntax::Dockerfile;

pub use args::{ArgValue, PREDEFINED_ARGS, PROXY_ARGS};
pub use platform::{Platform, PlatformError};
pub use render::render;
pub use triggers::Trigger;

/// What a build is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    /// `--build-arg NAME=value`.
    pub build_args: BTreeMap<String, String>,
    /// `--target`; the last stage when `None`.
    pub target: Option<String>,
    /// The platform the build runs on (`BUILDPLATFORM`).
    pub build_platform: Platform,
    /// The platform the image is for (`TARGETPLATFORM`), the default for stages
    /// without `FROM --platform`.
    pub target_platform: Platform,
    /// The `ENV` of base images' configs, keyed by the reference as the expanded FROM
    /// line writes it. A builder fills it once it has the images; an image missing here
    /// is taken to set only `PATH`, which BuildKit adds to every image lacking it.
    pub base_image_env: BTreeMap<String, Vec<(String, String)>>,
    /// The `OnBuild` triggers of base images' configs, keyed like `base_image_env`. A
    /// stage on such an image runs them first; their `COPY --from` and
    /// `RUN --mount from=` join the plan's dependencies and images, so a builder that
    /// learns of new images here plans again until the image list is stable.
    pub base_image_triggers: BTreeMap<String, Vec<String>>,
}

impl Default for PlanOptions {
    /// No build arguments, the last stage, and the host as build and target platform.
    fn default() -> Self {
        PlanOptions {
            build_args: BTreeMap::new(),
            target: None,
            build_platform: Platform::host(),
            target_platform: Platform::host(),
            base_image_env: BTreeMap::new(),
            base_image_triggers: BTreeMap::new(),
        }
    }
}

/// The result of planning a build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Index of the stage the build produces.
    pub target: usize,
    /// Every stage of the Dockerfile, in order (`stages[i].index == i`).
    pub stages: Vec<Stage>,
    /// The stages the target needs, in build order: each wave depends only on earlier
    /// waves, so the stages of a wave can be built concurrently.
    pub waves: Vec<Vec<usize>>,
    /// The stages the target does not need, in order.
    pub skipped: Vec<usize>,
    /// The ARGs before the first FROM with their values for this build.
    pub global_args: Vec<ArgValue>,
    /// Images the needed stages use (FROM, `COPY --from`, `RUN --mount from=`), each
    /// once, in order of first use.
    pub images: Vec<String>,
    /// Proxy build arguments by lower-case name: given to every RUN, not part of any
    /// cache key.
    pub proxy: BTreeMap<String, String>,
    /// Build arguments that no ARG of the build declared.
    pub unused_build_args: Vec<String>,
    /// Things worth telling the user that do not stop the build.
    pub warnings: Vec<PlanWarning>,
}

/// A non-fatal finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanWarning {
    /// The line it is about, when it is about one.
    pub line: Option<usize>,
    pub message: String,
}

/// One build stage: a FROM and the instructions up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    pub index: usize,
    /// `AS <name>`, lower-cased.
    pub name: Option<String>,
    /// The `# <name> <text>` comment above the FROM.
    pub doc: Option<String>,
    /// Line of the FROM.
    pub line: usize,
    /// The FROM instruction with its base and platform expanded.
    pub from: String,
    pub base: Base,
    /// The base stage's platform, else `FROM --platform=`, else the target platform.
    pub platform: Platform,
    /// Whether the target needs this stage. Only needed stages have their
    /// instructions expanded and their build arguments resolved.
    pub needed: bool,
    /// The build arguments this stage uses: ARGs it (or its base stage) declares and
    /// global ARGs its FROM line reads.
    pub used_args: BTreeSet<String>,
    /// What must exist before this stage can be built, in order of appearance.
    pub deps: Vec<Dependency>,
    /// The instructions after FROM. Expanded for needed stages, as written otherwise.
    pub steps: Vec<Step>,
}

impl Stage {
    /// The name people see: the stage's name, or `stage-N` as BuildKit calls unnamed
    /// stages.
    pub fn display_name(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => format!("stage-{}", self.index),
        }
    }
}

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Base {
    /// `FROM scratch`: an empty file system.
    Scratch,
    /// An image reference, as written after expansion.
    Image(String),
    /// An earlier stage, by index.
    Stage(usize),
}

/// Why a stage needs something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// `FROM <stage>`.
    From,
    /// `COPY --from=<stage|index|image>`.
    CopyFrom,
    /// `RUN --mount=...,from=<stage|image>`.
    RunMount,
}

impl Reason {
    /// How the Dockerfile spells it.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::From => "FROM",
            Reason::CopyFrom => "COPY --from",
            Reason::RunMount => "RUN --mount from",
        }
    }
}

/// What a dependency points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum DependsOn {
    Stage(usize),
    Image(String),
}

/// One edge of the graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dependency {
    pub reason: Reason,
    /// Line of the instruction that creates it.
    pub line: usize,
    /// The reference as written (`build`, `1`, `alpine:3`).
    pub written: String,
    pub on: DependsOn,
}

/// One instruction of a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub start_line: usize,
    pub end_line: usize,
    /// The instruction with the fields BuildKit expands expanded (RUN, CMD and
    /// ENTRYPOINT commands are left to the shell). For ARG, each default is replaced
    /// by the value the argument got (`None` when unset).
    pub instruction: Instruction,
    /// The instruction as one line of text, after expansion.
    pub text: String,
    /// Variables the expansion read that were set; with the expanded text they make
    /// the step's cache key.
    pub used: BTreeSet<String>,
    /// For RUN: the stage's ARGs and their values at this point, in declaration order.
    /// BuildKit gives them to the command as environment variables and records them
    /// in the history (`|2 A=1 B=2 cmd`), so they belong in the cache key. Empty for
    /// other instructions.
    pub args: Vec<ArgValue>,
    /// Set when the step is an ONBUILD trigger of the stage's base rather than an
    /// instruction of the Dockerfile; its lines are then the stage's FROM line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
}

/// Plans a build of a parsed Dockerfile: types its instructions, then [`plan_typed`].
pub fn plan(df: &Dockerfile, src: &str, opts: &PlanOptions) -> Result<Plan, Diagnostic> {
    let typed = instruction::from_dockerfile(df, src)?;
    plan_typed(&typed, df.escape, src, opts)
}

/// Plans a build from already typed instructions. `escape` is the Dockerfile's escape
/// character; `src` its text, to locate errors.
pub fn plan_typed(
    instructions: &[Located<Instruction>],
    escape: char,
    src: &str,
    opts: &PlanOptions,
) -> Result<Plan, Diagnostic> {
    build::Planner::new(instructions, escape, src, opts)?.run()
}
