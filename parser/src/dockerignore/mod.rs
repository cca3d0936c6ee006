//! `.dockerignore` matching with Docker's semantics (moby/patternmatcher, as used by
//! BuildKit and the docker CLI), so a context sends exactly the files Docker would send.
//!
//! * [`read_ignore_file`] / [`parse_ignore_file`] read a file's text: comments, blank
//!   lines, trimming, `!` exceptions, path cleaning, errors with line numbers.
//! * [`Matcher`] answers [`excluded`](Matcher::excluded) for a context path (the path or
//!   one of its parent directories matches, later `!` patterns re-include) and
//!   [`could_contain_included`](Matcher::could_contain_included) so a walk can skip
//!   excluded directories early.
//! * [`ignore_file_candidates`] says which ignore files to try for a Dockerfile.
//!
//! Pattern syntax: `*` (any run without `/`), `?` (one character but `/`), `[...]`
//! classes, `\` escapes, and `**` (any number of directories, including none).
//!
//! Known, deliberate differences from Docker, all in patterns no real file relies on
//! (Docker passes pattern text to Go's regexp package, so these come out as regexp syntax
//! there rather than as glob syntax):
//! * `\` followed by a letter is that letter (in Docker `\d` is a digit class, `\b` a
//!   word boundary, and `\y` an error when first used);
//! * `*`, `?` and `\` inside `[...]` are literal (Docker rewrites `*` into `[^/]*` even
//!   there);
//! * `^` outside a class is literal (in Docker it is an anchor that cannot match);
//! * a reversed range such as `[z-a]` is rejected when the file is parsed (Docker fails
//!   when the pattern is first used, which also fails the build).

mod class;
mod clean;
mod glob;
mod ignorefile;
mod matcher;
mod pattern;

pub use class::ClassError;
pub use ignorefile::{
    IgnoreFileError, IgnoreLine, MAX_LINE_BYTES, parse_ignore_file, read_ignore_file,
};
pub use matcher::Matcher;
pub use pattern::{Pattern, PatternError};

/// The name of the context-wide ignore file.
pub const DOCKERIGNORE: &str = ".dockerignore";

/// The ignore files to try, in order; the first that exists is used and the others are
/// not read (BuildKit's `dockerui` client: a Dockerfile-specific file takes precedence
/// over the context's, the two are never merged).
///
/// 1. `<dockerfile_path>.dockerignore`, next to the Dockerfile and resolved the same way
///    the Dockerfile path was (e.g. `build/app.Dockerfile.dockerignore`);
/// 2. `.dockerignore` at the root of the build context.
///
/// A Dockerfile read from standard input (`-`) or with no path has no file of its own.
/// Note that BuildKit keeps the name as given when it falls back from `Dockerfile` to
/// `dockerfile`, so the first candidate is still `Dockerfile.dockerignore`.
pub fn ignore_file_candidates(dockerfile_path: &str) -> Vec<String> {
    let mut candidates = Vec::with_capacity(2);
    if !dockerfile_path.is_empty() && dockerfile_path != "-" {
        candidates.push(format!("{dockerfile_path}{DOCKERIGNORE}"));
    }
    candidates.push(DOCKERIGNORE.to_string());
    candidates
}

#[cfg(test)]
mod tests {
    use super::ignore_file_candidates;

    #[test]
    fn dockerfile_specific_file_comes_first() {
        assert_eq!(
            ignore_file_candidates("build/app.Dockerfile"),
            ["build/app.Dockerfile.dockerignore", ".dockerignore"]
        );
        assert_eq!(
            ignore_file_candidates("Dockerfile"),
            ["Dockerfile.dockerignore", ".dockerignore"]
        );
        assert_eq!(ignore_file_candidates("-"), [".dockerignore"]);
        assert_eq!(ignore_file_candidates(""), [".dockerignore"]);
    }
}
