//! `rbuild outline`: what a build of a Dockerfile would do — the stages the target needs
//! in build order (stages of one wave can run concurrently), each instruction with its
//! variables expanded, the stages skipped, and warnings. Nothing is built.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use rbuild_builder::parser::stages::{self, Base, DependsOn, Plan, PlanOptions, Stage};
use rbuild_builder::parser::syntax;
use rbuild_builder::source;

use super::CliError;

/// Show the build plan of a Dockerfile: stages in build order with expanded instructions.
#[derive(Debug, Args)]
pub struct OutlineArgs {
    /// The Dockerfile (default: CONTEXT/Dockerfile), `-` for standard input.
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// Set a build argument; `NAME` alone takes the value from the environment (and is
    /// left out when the environment does not set it).
    #[arg(long = "build-arg", value_name = "NAME[=VALUE]", value_parser = build_arg)]
    build_args: Vec<(String, Option<String>)>,
    /// The stage to build (default: the last one).
    #[arg(long)]
    target: Option<String>,
    /// Print the plan as JSON.
    #[arg(long)]
    json: bool,
    /// The build context.
    #[arg(default_value = ".")]
    context: PathBuf,
}

pub fn run(args: OutlineArgs) -> Result<ExitCode, CliError> {
    let opts = PlanOptions {
        build_args: args
            .build_args
            .into_iter()
            .filter_map(|(name, value)| Some((name, value?)))
            .collect(),
        target: args.target,
        ..PlanOptions::default()
    };
    let path = source::dockerfile_path(args.file.as_deref(), &args.context);
    let src = source::read_dockerfile(&path)?;
    let tree = syntax::parse(&src.bytes, &src.name)?;
    let plan = stages::plan(&tree, src.text(), &opts).map_err(|d| d.in_file(&src.name))?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &plan).map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else {
        print_plan(&mut out, &plan)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `NAME=VALUE`, or `NAME` with its value from the environment as docker does (`None`
/// when the environment does not set it).
fn build_arg(spec: &str) -> Result<(String, Option<String>), String> {
    let (name, value) = match spec.split_once('=') {
        Some((name, value)) => (name, Some(value.to_string())),
        None => (spec, std::env::var(spec).ok()),
    };
    if name.is_empty() {
        return Err("the name is empty (use NAME=VALUE)".to_string());
    }
    Ok((name.to_string(), value))
}

fn print_plan(out: &mut impl Write, plan: &Plan) -> std::io::Result<()> {
    let target = plan.stages.get(plan.target);
    let target_label = target.map(label).unwrap_or_default();
    let platform = target.map(|s| s.platform.to_string()).unwrap_or_default();
    writeln!(out, "target: {target_label} ({platform})")?;
    if !plan.images.is_empty() {
        writeln!(out, "images: {}", plan.images.join(", "))?;
    }
    let last_line = plan
        .stages
        .iter()
        .map(|s| s.steps.last().map_or(s.line, |st| st.start_line))
        .max()
        .unwrap_or(1);
    let width = last_line.to_string().len();
    for (n, wave) in plan.waves.iter().enumerate() {
        let together = if wave.len() > 1 {
            format!(": {} stages, can run concurrently", wave.len())
        } else {
            String::new()
        };
        writeln!(out, "\nwave {} of {}{together}", n + 1, plan.waves.len())?;
        for stage in wave.iter().filter_map(|&i| plan.stages.get(i)) {
            print_stage(out, plan, stage, width)?;
        }
    }
    if !plan.skipped.is_empty() {
        let names: Vec<String> = plan
            .skipped
            .iter()
            .filter_map(|&i| plan.stages.get(i))
            .map(label)
            .collect();
        writeln!(
            out,
            "\nskipped (not needed for {target_label}): {}",
            names.join(", ")
        )?;
    }
    if !plan.warnings.is_empty() {
        writeln!(out, "\nwarnings:")?;
        for w in &plan.warnings {
            match w.line {
                Some(line) => writeln!(out, "  line {line}: {}", w.message)?,
                None => writeln!(out, "  {}", w.message)?,
            }
        }
    }
    Ok(())
}

fn print_stage(
    out: &mut impl Write,
    plan: &Plan,
    stage: &Stage,
    width: usize,
) -> std::io::Result<()> {
    let base = match &stage.base {
        Base::Scratch => "scratch".to_string(),
        Base::Image(image) => format!("image {image}"),
        Base::Stage(j) => plan.stages.get(*j).map(label).unwrap_or_default(),
    };
    writeln!(out, "  {} — from {base}, {}", label(stage), stage.platform)?;
    for d in &stage.deps {
        let on = match &d.on {
            DependsOn::Stage(j) => plan.stages.get(*j).map(label).unwrap_or_default(),
            DependsOn::Image(image) => format!("image {image}"),
        };
        writeln!(
            out,
            "    needs {on} ({}, line {})",
            d.reason.describe(),
            d.line
        )?;
    }
    if !stage.used_args.is_empty() {
        let names: Vec<&str> = stage.used_args.iter().map(String::as_str).collect();
        writeln!(out, "    build args: {}", names.join(", "))?;
    }
    writeln!(out, "    {:>width$} | {}", stage.line, stage.from)?;
    for step in &stage.steps {
        writeln!(out, "    {:>width$} | {}", step.start_line, step.text)?;
    }
    Ok(())
}

/// `stage 1 "build"`, or `stage 1` for an unnamed stage.
fn label(stage: &Stage) -> String {
    match &stage.name {
        Some(name) => format!("stage {} {name:?}", stage.index),
        None => format!("stage {}", stage.index),
    }
}
