//! rbuild's build engine: turns a Dockerfile's stage graph into images.
//!
//! It depends on `rbuild-parser` for what to build and on `rbuild-store` for where
//! results live; the CLI depends on it and on nothing below it directly.

pub mod build;
pub mod cgroup;
pub mod config_edit;
pub mod container;
pub mod container_commit;
pub mod container_cp;
pub mod container_exec;
pub mod container_life;
pub mod export;
pub mod sandbox;
pub mod snapshot;
pub mod source;
mod sys;
pub mod upper_copy;

pub use rbuild_parser as parser;
pub use rbuild_store as store;
