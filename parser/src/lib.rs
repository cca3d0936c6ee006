//! rbuild's Dockerfile front end.
//!
//! Pure: text in, values out, no I/O. The stages mirror BuildKit's so that every
//! result can be checked against BuildKit's own test data:
//!
//! 1. [`syntax`] turns bytes into a syntax tree of raw instructions with line ranges
//!    (directives, escapes, continuations, heredocs, JSON vs shell form, flags).
//! 2. [`instruction`] types each raw instruction and validates its flags.
//! 3. [`shell`] expands `$VAR` words the way BuildKit's lexer does, reporting which
//!    variables it read (cache keys and warnings need them).
//! 4. [`stages`] builds the stage graph: ARG scoping, dependencies, `--target` pruning,
//!    cycle detection and a concurrent build order.
//! 5. [`dockerignore`] matches context paths the way Docker does.
#![forbid(unsafe_code)]

pub mod dockerignore;
pub mod error;
pub mod instruction;
pub mod shell;
pub mod stages;
pub mod suggest;
pub mod syntax;

pub use error::{Diagnostic, ParseError};
