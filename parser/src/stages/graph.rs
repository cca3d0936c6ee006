//! The shape of the graph: which instructions make up which stage, what each stage's
//! name resolves to, and the edges `FROM <stage>`, `COPY --from` and
//! `RUN --mount=from=` create.

use std::collections::HashMap;

use super::error;
use super::{Base, Dependency, DependsOn, Reason};
use crate::error::Diagnostic;
use crate::instruction::{Arg, From, Instruction, Located};

/// The names BuildKit gives a meaning of its own in FROM and `--from`.
pub const RESERVED_NAMES: [&str; 2] = ["scratch", "context"];

/// A stage as written: its FROM and the instructions after it.
pub struct RawStage<'a> {
    pub at: &'a Located<Instruction>,
    pub from: &'a From,
    pub body: &'a [Located<Instruction>],
}

/// A Dockerfile cut into its global ARGs and its stages.
pub struct Split<'a> {
    pub globals: Vec<(&'a Located<Instruction>, &'a Arg)>,
    pub stages: Vec<RawStage<'a>>,
}

/// Cuts the instructions at each FROM. Before the first FROM only ARG is allowed.
pub fn split<'a>(instrs: &'a [Located<Instruction>], src: &str) -> Result<Split<'a>, Diagnostic> {
    let mut globals = Vec::new();
    let mut starts = Vec::new();
    for (i, located) in instrs.iter().enumerate() {
        match &located.inner {
            Instruction::From(f) => starts.push((i, f)),
            Instruction::Arg(a) if starts.is_empty() => globals.push((located, a)),
            _ if starts.is_empty() => return Err(error::no_stage_yet(src, located)),
            _ => {}
        }
    }
    if starts.is_empty() {
        return Err(error::no_stages());
    }
    let mut stages = Vec::with_capacity(starts.len());
    for (k, &(i, from)) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(instrs.len(), |&(next, _)| next);
        let (Some(at), Some(body)) = (instrs.get(i), instrs.get(i + 1..end)) else {
            continue;
        };
        stages.push(RawStage { at, from, body });
    }
    Ok(Split { globals, stages })
}

/// Maps each stage name to its index, refusing reserved and duplicate names.
pub fn stage_names(
    stages: &[RawStage<'_>],
    src: &str,
) -> Result<HashMap<String, usize>, Diagnostic> {
    let mut names: HashMap<String, usize> = HashMap::with_capacity(stages.len());
    for (i, stage) in stages.iter().enumerate() {
        let Some(name) = &stage.from.alias else {
            continue;
        };
        if RESERVED_NAMES.contains(&name.as_str()) {
            return Err(error::reserved_name(src, stage.at, name));
        }
        if let Some(&first) = names.get(name) {
            let first_line = stages.get(first).map_or(0, |s| s.at.start_line);
            return Err(error::duplicate_name(src, stage.at, name, first_line));
        }
        names.insert(name.clone(), i);
    }
    Ok(names)
}

/// What stage `index`'s expanded FROM text refers to. Like BuildKit, only stages
/// defined before it count, and the text must equal the (lower-case) name exactly.
pub fn base_of(image: &str, index: usize, names: &HashMap<String, usize>) -> Base {
    match names.get(image) {
        Some(&j) if j < index => Base::Stage(j),
        _ if image == "scratch" => Base::Scratch,
        _ => Base::Image(image.to_string()),
    }
}

/// The edges out of one stage, in order: its base stage, then each `COPY --from` and
/// `RUN --mount=from=` of the base's ONBUILD `triggers` and of its own instructions.
/// References to `scratch` need nothing and make no edge.
pub fn dependencies(
    stage: &RawStage<'_>,
    triggers: &[Located<Instruction>],
    base: &Base,
    names: &HashMap<String, usize>,
    stage_count: usize,
    src: &str,
) -> Result<Vec<Dependency>, Diagnostic> {
    let mut deps = Vec::new();
    if let Base::Stage(j) = base {
        deps.push(Dependency {
            reason: Reason::From,
            line: stage.at.start_line,
            written: stage.from.image.clone(),
            on: DependsOn::Stage(*j),
        });
    }
    for located in triggers.iter().chain(stage.body) {
        match &located.inner {
            Instruction::Copy(c) => {
                let Some(from) = &c.from else { continue };
                let on = match from.parse::<i64>() {
                    // Go's Atoi, as BuildKit uses: an optional sign and digits.
                    Ok(n) => match usize::try_from(n) {
                        Ok(i) if i < stage_count => Some(DependsOn::Stage(i)),
                        _ => return Err(error::invalid_index(src, located, n, stage_count)),
                    },
                    Err(_) => by_name(from, names),
                };
                if let Some(on) = on {
                    deps.push(Dependency {
                        reason: Reason::CopyFrom,
                        line: located.start_line,
                        written: from.clone(),
                        on,
                    });
                }
            }
            Instruction::Run(r) => {
                for from in r.mounts.iter().filter_map(|m| m.from()) {
                    if let Some(on) = by_name(&from, names) {
                        deps.push(Dependency {
                            reason: Reason::RunMount,
                            line: located.start_line,
                            written: from,
                            on,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    Ok(deps)
}

/// A `--from` name: a stage in any letter case, nothing for `scratch`, else an image.
fn by_name(from: &str, names: &HashMap<String, usize>) -> Option<DependsOn> {
    match names.get(&from.to_lowercase()) {
        Some(&i) => Some(DependsOn::Stage(i)),
        None if from == "scratch" => None,
        None => Some(DependsOn::Image(from.to_string())),
    }
}

/// The stages a stage depends on, each once.
pub fn stage_edges(deps: &[Dependency]) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    for d in deps {
        if let DependsOn::Stage(j) = d.on
            && !out.contains(&j)
        {
            out.push(j);
        }
    }
    out
}

/// BuildKit builds stages in Dockerfile order and refuses to copy or mount from a stage
/// not built yet.
pub fn check_defined_before(
    index: usize,
    stage_name: &str,
    deps: &[Dependency],
    body: &[Located<Instruction>],
    src: &str,
) -> Result<(), Diagnostic> {
    for d in deps {
        let DependsOn::Stage(j) = d.on else { continue };
        if j < index {
            continue;
        }
        return Err(match d.reason {
            Reason::RunMount => {
                let target = body
                    .iter()
                    .find(|l| l.start_line == d.line)
                    .and_then(|l| mount_target(&l.inner, &d.written));
                error::mount_from_later(src, d.line, &d.written, target.as_deref())
            }
            _ => error::copy_from_later(src, d.line, &d.written, stage_name),
        });
    }
    Ok(())
}

/// The target of the RUN mount that reads `from`, when known before expansion.
fn mount_target(instr: &Instruction, from: &str) -> Option<String> {
    let Instruction::Run(r) = instr else {
        return None;
    };
    r.mounts
        .iter()
        .find(|m| m.from().as_deref() == Some(from))
        .and_then(|m| m.get())
        .and_then(|m| m.target.clone())
}
