//! The planning pass, in BuildKit's order so the same Dockerfile fails with the same
//! error first: stages and names; global ARGs; every FROM line; the target; every
//! dependency and cycle; then, for the stages the target needs only, references to
//! later stages and the expansion of each instruction.

use std::collections::{BTreeSet, HashMap};

use super::args::{self, Scope};
use super::expand::{self, Cx, StageVars};
use super::graph::{self, RawStage};
use super::render::render;
use super::triggers::{self, Triggers};
use super::{Base, DependsOn, Plan, PlanOptions, PlanWarning, Platform, Stage, Step, error, order};
use crate::error::Diagnostic;
use crate::instruction::{Instruction, Located};
use crate::shell::Lexer;

/// BuildKit's `system.DefaultPathEnv("linux")`, which it sets in every stage whose base
/// image does not set PATH.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub struct Planner<'a> {
    split: graph::Split<'a>,
    names: HashMap<String, usize>,
    src: &'a str,
    opts: &'a PlanOptions,
    lexer: Lexer,
}

impl<'a> Planner<'a> {
    pub fn new(
        instructions: &'a [Located<Instruction>],
        escape: char,
        src: &'a str,
        opts: &'a PlanOptions,
    ) -> Result<Self, Diagnostic> {
        let split = graph::split(instructions, src)?;
        let names = graph::stage_names(&split.stages, src)?;
        Ok(Planner {
            split,
            names,
            src,
            opts,
            lexer: Lexer::new(escape),
        })
    }

    fn cx(&self) -> Cx<'a> {
        Cx {
            lexer: self.lexer,
            src: self.src,
            build_args: &self.opts.build_args,
        }
    }

    pub fn run(self) -> Result<Plan, Diagnostic> {
        let cx = self.cx();
        let stages = &self.split.stages;
        let target_name = self.target_name();
        let predefined = args::predefined(
            &self.opts.build_platform,
            &self.opts.target_platform,
            &target_name,
            &self.opts.build_args,
        );
        let (globals, global_args) = expand::global_scope(&self.split.globals, predefined, &cx)?;

        let mut warnings = Vec::new();
        let mut planned = Vec::with_capacity(stages.len());
        for (i, raw) in stages.iter().enumerate() {
            planned.push(self.stage_head(i, raw, &planned, &globals, &mut warnings)?);
        }

        let target = self.target()?;
        // Each stage's triggers, parsed now because their `--from`s are edges. A bad
        // trigger only matters if the stage is needed.
        let mut triggers: Vec<Result<Triggers, Diagnostic>> = planned
            .iter()
            .zip(stages)
            .map(|(stage, raw)| {
                let image = match &stage.base {
                    Base::Image(r) => self.opts.base_image_triggers.get(r),
                    _ => None,
                };
                let name = |j: usize| planned.get(j).map_or_else(String::new, Stage::display_name);
                triggers::of_stage(raw, &stage.base, stages, name, image, self.src)
            })
            .collect();
        let mut edges = Vec::with_capacity(stages.len());
        for ((stage, raw), trig) in planned.iter_mut().zip(stages).zip(&triggers) {
            let at = trig.as_ref().map_or(&[][..], |t| &t.at[..]);
            stage.deps =
                graph::dependencies(raw, at, &stage.base, &self.names, stages.len(), self.src)?;
            edges.push(graph::stage_edges(&stage.deps));
        }
        if let Some(cycle) = order::find_cycle(&edges) {
            return Err(self.cycle_error(&cycle, &planned));
        }
        let needed = order::reachable(target, &edges);
        for (i, stage) in planned.iter_mut().enumerate() {
            stage.needed = needed.get(i) == Some(&true);
            if stage.needed {
                if let Some(Err(e)) = triggers.get(i) {
                    return Err(e.clone());
                }
                let body = stages.get(i).map_or(&[][..], |s| s.body);
                graph::check_defined_before(i, &stage.display_name(), &stage.deps, body, self.src)?;
            }
        }
        let waves = order::waves(&needed, &edges).ok_or_else(|| self.cycle_fallback())?;

        let mut declared: BTreeSet<String> = global_args.iter().map(|a| a.name.clone()).collect();
        let mut triggers: Vec<Triggers> = triggers
            .iter_mut()
            .map(|t| t.as_mut().map(std::mem::take).unwrap_or_default())
            .collect();
        declared.extend(self.expand_needed(&mut planned, &mut triggers, &globals, &cx)?);

        let unused_build_args = args::unconsumed(&self.opts.build_args, &declared);
        if !unused_build_args.is_empty() {
            warnings.push(PlanWarning {
                line: None,
                message: args::unconsumed_warning(&unused_build_args),
            });
        }
        Ok(Plan {
            target,
            images: images(&planned),
            skipped: (0..planned.len())
                .filter(|&i| needed.get(i) != Some(&true))
                .collect(),
            stages: planned,
            waves,
            global_args,
            proxy: args::proxies(&self.opts.build_args),
            unused_build_args,
            warnings,
        })
    }

    /// Fills in the steps of every stage: expanded, in Dockerfile order (so a base
    /// stage is done before the stages built on it), its base's triggers first, for the
    /// needed ones; as written for the others. Returns the ARG names the needed stages
    /// declare.
    fn expand_needed(
        &self,
        planned: &mut [Stage],
        triggers: &mut [Triggers],
        globals: &Scope,
        cx: &Cx<'_>,
    ) -> Result<BTreeSet<String>, Diagnostic> {
        let mut declared = BTreeSet::new();
        let mut inherit = Inheritance::new(planned);
        for (i, raw) in self.split.stages.iter().enumerate() {
            let Some(stage) = planned.get_mut(i) else {
                continue;
            };
            if !stage.needed {
                stage.steps = raw.body.iter().map(unexpanded).collect();
                continue;
            }
            let mut vars = match stage.base {
                Base::Stage(j) => inherit.take(j),
                _ => None,
            }
            .unwrap_or_else(|| self.image_vars(&stage.base));
            vars.used_args.extend(stage.used_args.iter().cloned());
            let trig = triggers.get_mut(i).map(std::mem::take).unwrap_or_default();
            let mut steps = Vec::with_capacity(trig.at.len() + raw.body.len());
            for (at, info) in trig.at.iter().zip(trig.info) {
                let mut step =
                    expand::expand_body(std::slice::from_ref(at), &mut vars, globals, cx)
                        .map_err(|d| triggers::located_error(&info, d, raw.at, self.src))?;
                for s in &mut step {
                    s.trigger = Some(info.clone());
                }
                steps.extend(step);
            }
            steps.extend(expand::expand_body(raw.body, &mut vars, globals, cx)?);
            stage.steps = steps;
            stage.used_args = vars.used_args.clone();
            declared.extend(vars.args.iter().cloned());
            inherit.keep(i, vars);
        }
        Ok(declared)
    }

    /// What `TARGETSTAGE` holds: the target's name, `default` for an unnamed target.
    fn target_name(&self) -> String {
        match &self.opts.target {
            Some(t) => t.clone(),
            None => self
                .split
                .stages
                .last()
                .and_then(|s| s.from.alias.clone())
                .unwrap_or_else(|| "default".to_string()),
        }
    }

    /// The target stage's index: `--target` by name in any case, else the last stage.
    fn target(&self) -> Result<usize, Diagnostic> {
        let Some(wanted) = &self.opts.target else {
            return Ok(self.split.stages.len().saturating_sub(1));
        };
        if let Some(&i) = self.names.get(&wanted.to_lowercase()) {
            return Ok(i);
        }
        let names: Vec<&str> = self
            .split
            .stages
            .iter()
            .filter_map(|s| s.from.alias.as_deref())
            .collect();
        Err(error::unknown_target(wanted, &names))
    }

    /// A stage with its FROM line expanded; dependencies and steps come later.
    fn stage_head(
        &self,
        i: usize,
        raw: &RawStage<'_>,
        earlier: &[Stage],
        globals: &Scope,
        warnings: &mut Vec<PlanWarning>,
    ) -> Result<Stage, Diagnostic> {
        let expanded = expand::expand_from(raw.at, raw.from, globals, &self.cx())?;
        for name in &expanded.unset {
            let hint = expand::suggest_unset(&BTreeSet::from([name.clone()]), globals)
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            warnings.push(PlanWarning {
                line: Some(raw.at.start_line),
                message: format!("FROM argument '{name}' is not declared{hint}"),
            });
        }
        let base = graph::base_of(&expanded.from.image, i, &self.names);
        let flag = match &expanded.from.platform {
            None => None,
            Some(p) => Some(Platform::parse(p).map_err(|e| {
                let diag = Diagnostic::new(format!(
                    "failed to parse platform {}: {e}",
                    raw.from.platform.as_deref().unwrap_or(p)
                ))
                .at(self.src, raw.at.span.start);
                match expand::suggest_unset(&expanded.unset, globals) {
                    Some(h) => diag.with_help(h),
                    None => diag,
                }
            })?),
        };
        // A stage built on another keeps that stage's platform, flag or not: BuildKit's
        // `dispatchState.init` copies it from the base.
        let inherited = match base {
            Base::Stage(j) => earlier.get(j).map(|s| s.platform.clone()),
            _ => None,
        };
        let platform = inherited
            .or(flag)
            .unwrap_or_else(|| self.opts.target_platform.clone());
        Ok(Stage {
            index: i,
            name: raw.from.alias.clone(),
            doc: raw.from.doc.clone(),
            line: raw.at.start_line,
            from: render(&Instruction::From(expanded.from)),
            base,
            platform,
            needed: false,
            used_args: expanded.used,
            deps: Vec::new(),
            steps: Vec::new(),
        })
    }

    /// The variables a stage based on an image starts with: the image's ENV (as far as
    /// the options know it), with PATH defaulted.
    fn image_vars(&self, base: &Base) -> StageVars {
        let mut vars = StageVars::default();
        if let Base::Image(image) = base {
            for (k, v) in self.opts.base_image_env.get(image).into_iter().flatten() {
                vars.scope.set(k, v.clone());
            }
        }
        if vars.scope.get("PATH").is_none() {
            vars.scope.set("PATH", DEFAULT_PATH.to_string());
        }
        vars
    }

    fn cycle_error(&self, cycle: &[usize], planned: &[Stage]) -> Diagnostic {
        let names: Vec<String> = cycle
            .iter()
            .map(|&i| {
                planned
                    .get(i)
                    .map_or_else(|| format!("stage-{i}"), Stage::display_name)
            })
            .collect();
        let line = match (cycle.first(), cycle.get(1)) {
            (Some(&a), Some(&b)) => planned
                .get(a)
                .and_then(|s| s.deps.iter().find(|d| d.on == DependsOn::Stage(b)))
                .map_or(1, |d| d.line),
            _ => 1,
        };
        error::cycle(self.src, &names, line)
    }

    /// Unreachable: cycles are refused before waves are computed.
    fn cycle_fallback(&self) -> Diagnostic {
        Diagnostic::new("circular dependency detected between stages")
    }
}

/// Hands each expanded stage's final variables to the needed stages based on it: kept
/// only until its last such child takes them (moved, not copied), so a long chain of
/// stages never holds or copies more than one scope.
struct Inheritance {
    children: Vec<usize>,
    kept: Vec<Option<StageVars>>,
}

impl Inheritance {
    fn new(stages: &[Stage]) -> Self {
        let mut children = vec![0; stages.len()];
        for s in stages.iter().filter(|s| s.needed) {
            if let Some(n) = match s.base {
                Base::Stage(j) => children.get_mut(j),
                _ => None,
            } {
                *n += 1;
            }
        }
        Inheritance {
            kept: vec![None; stages.len()],
            children,
        }
    }

    fn keep(&mut self, stage: usize, vars: StageVars) {
        if self.children.get(stage).is_some_and(|&n| n > 0)
            && let Some(slot) = self.kept.get_mut(stage)
        {
            *slot = Some(vars);
        }
    }

    /// The variables of `parent` for one of its children.
    fn take(&mut self, parent: usize) -> Option<StageVars> {
        let left = self.children.get_mut(parent)?;
        *left = left.saturating_sub(1);
        let slot = self.kept.get_mut(parent)?;
        if *left == 0 {
            slot.take()
        } else {
            slot.clone()
        }
    }
}

/// A step of a stage that is not built: the instruction as written.
fn unexpanded(at: &Located<Instruction>) -> Step {
    Step {
        start_line: at.start_line,
        end_line: at.end_line,
        instruction: at.inner.clone(),
        text: render(&at.inner),
        used: BTreeSet::new(),
        args: Vec::new(),
        trigger: None,
    }
}

/// Images the needed stages use, each once, in order of first use.
fn images(stages: &[Stage]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut add = |image: &str| {
        if seen.insert(image.to_string()) {
            out.push(image.to_string());
        }
    };
    for stage in stages.iter().filter(|s| s.needed) {
        if let Base::Image(image) = &stage.base {
            add(image);
        }
        for d in &stage.deps {
            if let DependsOn::Image(image) = &d.on {
                add(image);
            }
        }
    }
    out
}
