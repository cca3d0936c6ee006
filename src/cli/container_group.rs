//! `rbuild container …`: docker's management-command spellings of the container
//! commands, and `container prune`, which has no short form.

use std::process::ExitCode;

use clap::Subcommand;

use super::{
    CliError, Global, container, container_commit, container_cp, container_fs, container_life,
    exec, inspect,
};

/// Manage containers.
#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// List containers.
    #[command(visible_aliases = ["ps", "list"])]
    Ls(container::PsArgs),
    /// Create and run a new container from an image.
    Run(Box<container::RunArgs>),
    /// Remove one or more containers.
    #[command(visible_alias = "remove")]
    Rm(container::RmArgs),
    /// Create a new container, not started.
    Create(Box<container::RunArgs>),
    /// Start one or more stopped containers.
    Start(container_life::StartArgs),
    /// Stop one or more running containers.
    Stop(container_life::StopArgs),
    /// Restart one or more containers.
    Restart(container_life::RestartArgs),
    /// Block until one or more containers stop, then print their exit codes.
    Wait(container_life::WaitArgs),
    /// Copy files/folders from a container to the local filesystem.
    Cp(container_cp::CpArgs),
    /// Rename a container.
    Rename(container_life::RenameArgs),
    /// Display the running processes of a container.
    Top(container_life::TopArgs),
    /// Pause all processes within one or more containers.
    Pause(container_life::PauseArgs),
    /// Unpause all processes within one or more containers.
    Unpause(container_life::PauseArgs),
    /// Kill one or more running containers.
    Kill(container_life::KillArgs),
    /// Fetch the logs of a container.
    Logs(container_life::LogsArgs),
    /// Execute a command in a running container.
    Exec(exec::ExecArgs),
    /// Display detailed information on one or more containers.
    Inspect(inspect::InspectArgs),
    /// Create a new image from a container's changes.
    Commit(container_commit::CommitArgs),
    /// Remove all stopped containers.
    Prune(container_life::PruneArgs),
    /// Inspect changes to files or directories on a container's filesystem.
    Diff(container_fs::DiffArgs),
    /// Export a container's filesystem as a tar archive.
    Export(container_fs::ExportArgs),
}

pub fn run(global: &Global, cmd: ContainerCommand) -> Result<ExitCode, CliError> {
    match cmd {
        ContainerCommand::Ls(a) => container::ps(global, a),
        ContainerCommand::Run(a) => container::run(global, *a),
        ContainerCommand::Rm(a) => container::rm(global, a),
        ContainerCommand::Create(a) => container::create(global, *a),
        ContainerCommand::Start(a) => container_life::start(global, a),
        ContainerCommand::Stop(a) => container_life::stop(global, a),
        ContainerCommand::Restart(a) => container_life::restart(global, a),
        ContainerCommand::Wait(a) => container_life::wait(global, a),
        ContainerCommand::Cp(a) => container_cp::run(global, a),
        ContainerCommand::Rename(a) => container_life::rename(global, a),
        ContainerCommand::Top(a) => container_life::top(global, a),
        ContainerCommand::Pause(a) => container_life::pause(global, a),
        ContainerCommand::Unpause(a) => container_life::unpause(global, a),
        ContainerCommand::Kill(a) => container_life::kill(global, a),
        ContainerCommand::Logs(a) => container_life::logs(global, a),
        ContainerCommand::Exec(a) => exec::run(global, a),
        ContainerCommand::Inspect(a) => inspect::run_as(global, a, inspect::Kind::Container),
        ContainerCommand::Commit(a) => container_commit::run(global, a),
        ContainerCommand::Prune(a) => container_life::prune(global, a),
        ContainerCommand::Diff(a) => container_fs::diff(global, a),
        ContainerCommand::Export(a) => container_fs::export(global, a),
    }
}
