//! The container commands: those docker spells both alone (`rbuild stop`) and under
//! `container` (`rbuild container stop`) are one [`ContainerVerb`], flattened into both
//! command lists; `container` adds `ls`, `inspect` of containers only, and `prune`.

use std::process::ExitCode;

use clap::Subcommand;

use super::{
    CliError, Global, container, container_commit, container_cp, container_fs, container_life,
    exec, inspect,
};

/// The container commands of both spellings.
#[derive(Debug, Subcommand)]
pub enum ContainerVerb {
    /// Create and run a new container from an image.
    Run(Box<container::RunArgs>),
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
    /// Copy files/folders between a container and the local filesystem.
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
    /// Create a new image from a container's changes.
    Commit(container_commit::CommitArgs),
    /// Inspect changes to files or directories on a container's filesystem.
    Diff(container_fs::DiffArgs),
    /// Export a container's filesystem as a tar archive.
    Export(container_fs::ExportArgs),
}

pub fn run_verb(global: &Global, verb: ContainerVerb) -> Result<ExitCode, CliError> {
    match verb {
        ContainerVerb::Run(a) => container::run(global, *a),
        ContainerVerb::Create(a) => container::create(global, *a),
        ContainerVerb::Start(a) => container_life::start(global, a),
        ContainerVerb::Stop(a) => container_life::stop(global, a),
        ContainerVerb::Restart(a) => container_life::restart(global, a),
        ContainerVerb::Wait(a) => container_life::wait(global, a),
        ContainerVerb::Cp(a) => container_cp::run(global, a),
        ContainerVerb::Rename(a) => container_life::rename(global, a),
        ContainerVerb::Top(a) => container_life::top(global, a),
        ContainerVerb::Pause(a) => container_life::pause(global, a),
        ContainerVerb::Unpause(a) => container_life::unpause(global, a),
        ContainerVerb::Kill(a) => container_life::kill(global, a),
        ContainerVerb::Logs(a) => container_life::logs(global, a),
        ContainerVerb::Exec(a) => exec::run(global, a),
        ContainerVerb::Commit(a) => container_commit::run(global, a),
        ContainerVerb::Diff(a) => container_fs::diff(global, a),
        ContainerVerb::Export(a) => container_fs::export(global, a),
    }
}

/// Manage containers.
#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// List containers.
    #[command(visible_aliases = ["ps", "list"])]
    Ls(container::PsArgs),
    /// Remove one or more containers.
    #[command(visible_alias = "remove")]
    Rm(container::RmArgs),
    /// Display detailed information on one or more containers.
    Inspect(inspect::InspectArgs),
    /// Remove all stopped containers.
    Prune(container_life::PruneArgs),
    #[command(flatten)]
    Verb(ContainerVerb),
}

pub fn run(global: &Global, cmd: ContainerCommand) -> Result<ExitCode, CliError> {
    match cmd {
        ContainerCommand::Ls(a) => container::ps(global, a),
        ContainerCommand::Rm(a) => container::rm(global, a),
        ContainerCommand::Inspect(a) => inspect::run_as(global, a, inspect::Kind::Container),
        ContainerCommand::Prune(a) => container_life::prune(global, a),
        ContainerCommand::Verb(v) => run_verb(global, v),
    }
}
