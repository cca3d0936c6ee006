//! End-to-end tests: each runs the real `rbuild` binary.

mod fault_proxy;
mod http_wire;
mod imagetar;
mod registry_seed;
mod registry_util;
mod token_server;
mod util;

mod archive;
mod bad_input;
mod build;
mod build_copy;
mod build_copy_reuse;
mod build_git;
mod build_link;
mod build_mounts;
mod build_onbuild;
mod build_progress;
mod build_run;
mod build_stages;
mod crash;
mod deps;
mod history;
mod images;
mod import;
mod inspect;
mod interop;
mod login;
mod outline;
mod parse;
mod prune;
mod registry;
mod registry_transport;
mod rmi;
mod search;
mod system;
