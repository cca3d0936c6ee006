//! Runs the published test vectors in `../shared/conformance/` (relative to the project
//! root) against the parser crate. The data is read in place and never edited.

use std::path::PathBuf;

mod dockerignore;
mod shell;
mod syntax;

/// The shared conformance folder; a missing folder is a failure, never a skip.
pub fn conformance_dir(sub: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance")
        .join(sub);
    assert!(
        dir.is_dir(),
        "conformance data not found at {} (the project expects ../shared/ beside its root)",
        dir.display()
    );
    dir
}
