//! Output formatting shared by the docker-like commands: sizes and ages as docker prints
//! them ([`units`]), Go templates for `--format`/`-f` ([`template`]), and docker's
//! `table`/`json`/template list output ([`table`]).
//!
//! serde_json's `preserve_order` feature is deliberately left off (so `Map` is sorted):
//! docker's `--format json` for list commands prints keys sorted (its formatter marshals a
//! Go map); templates cannot keep an order anyway, gtmpl's objects being hash maps (the
//! `json` function sorts keys itself, so the output is the same either way); and typed
//! values such as the image config serialise in declaration order with or without it.
//! Turning it on would change `Value` for every crate in the build for no gain here.

pub mod table;
pub mod template;
pub mod units;
