//! Output formatting shared by the docker-like commands: sizes and ages as docker prints
//! them, Go templates for `--format`/`-f`, and aligned tables.

pub mod table;
pub mod template;
pub mod units;
