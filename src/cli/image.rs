//! `rbuild image …`: docker's management-command spellings of the image commands.

use std::process::ExitCode;

use clap::Subcommand;

use super::{CliError, Global, archive, history, images, import, inspect, prune, push, rmi, tag};

/// Manage images.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images.
    #[command(visible_alias = "list")]
    Ls(images::ImagesArgs),
    Tag(tag::TagArgs),
    /// Remove one or more images.
    #[command(visible_alias = "remove")]
    Rm(rmi::RmiArgs),
    Prune(prune::PruneArgs),
    Inspect(inspect::InspectArgs),
    History(history::HistoryArgs),
    Import(import::ImportArgs),
    Save(archive::SaveArgs),
    Load(archive::LoadArgs),
    /// Upload an image to a registry.
    Push(push::PushArgs),
}

pub fn run(global: &Global, cmd: ImageCommand) -> Result<ExitCode, CliError> {
    match cmd {
        ImageCommand::Ls(a) => images::run(global, a),
        ImageCommand::Tag(a) => tag::run(global, a),
        ImageCommand::Rm(a) => rmi::run(global, a),
        ImageCommand::Prune(a) => prune::run(global, a),
        ImageCommand::Inspect(a) => inspect::run_as(global, a, inspect::Kind::Image),
        ImageCommand::History(a) => history::run(global, a),
        ImageCommand::Import(a) => import::run(global, a),
        ImageCommand::Save(a) => archive::save(global, a),
        ImageCommand::Load(a) => archive::load(global, a),
        ImageCommand::Push(a) => push::run(global, a),
    }
}
