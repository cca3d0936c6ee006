//! End-to-end tests: each runs the real `rbuild` binary.

mod imagetar;
mod util;

mod archive;
mod bad_input;
mod build;
mod build_copy;
mod build_copy_reuse;
mod build_mounts;
mod build_run;
mod crash;
mod deps;
mod history;
mod images;
mod import;
mod inspect;
mod interop;
mod outline;
mod parse;
mod prune;
mod rmi;
mod system;
