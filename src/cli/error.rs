//! The one error type the binary prints.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Already formatted for people (`Dockerfile:3:1: …` with the line and a caret).
    #[error("{0}")]
    Parse(#[from] rbuild_builder::parser::ParseError),
    #[error(transparent)]
    Source(#[from] rbuild_builder::source::SourceError),
    #[error(transparent)]
    ConfigEdit(#[from] rbuild_builder::config_edit::ConfigEditError),
    #[error(transparent)]
    Build(#[from] rbuild_builder::build::BuildError),
    #[error(transparent)]
    Store(#[from] rbuild_builder::store::StoreError),
    #[error(transparent)]
    Archive(#[from] rbuild_builder::store::archive::ArchiveError),
    #[error(transparent)]
    Registry(#[from] rbuild_builder::store::registry::RegistryError),
    #[error(transparent)]
    Creds(#[from] rbuild_builder::store::registry::creds::CredsError),
    #[error(transparent)]
    Settings(#[from] rbuild_builder::store::registry::settings::SettingsError),
    /// A usage mistake caught after clap (a bad filter, a bad reference), said plainly.
    #[error("{0}")]
    Usage(String),
    #[error("writing output: {0}")]
    Io(#[from] io::Error),
}

impl CliError {
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Io(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}
