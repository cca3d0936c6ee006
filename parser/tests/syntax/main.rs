//! The syntax parser against rbuild's own golden files and hostile inputs.

mod goldens;
mod robustness;
