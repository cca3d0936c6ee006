//! End-to-end tests: each runs the real `rbuild` binary.

mod util;

mod deps;
mod import;
mod outline;
mod parse;
