//! End-to-end tests: each runs the real `rbuild` binary.

mod util;

mod deps;
mod history;
mod images;
mod import;
mod inspect;
mod outline;
mod parse;
mod prune;
mod rmi;
mod system;
