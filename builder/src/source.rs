//! Finding and reading the Dockerfile of a build, with docker's rules: `-f` is relative to
//! the working directory, `-f -` is standard input, and without `-f` it is
//! `CONTEXT/Dockerfile`.

use std::io::Read;
use std::path::{Path, PathBuf};

use rbuild_parser::dockerignore::{DOCKERIGNORE, ignore_file_candidates};

/// Dockerfiles larger than this are refused before parsing: no real Dockerfile comes
/// near it, and reading an endless stream (`-f /dev/zero`) must not exhaust memory.
pub const MAX_DOCKERFILE_BYTES: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read Dockerfile {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Dockerfile {path} is larger than {MAX_DOCKERFILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("cannot read ignore file {path}: {source}")]
    ReadIgnore {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A Dockerfile's bytes and the name errors should call it by.
#[derive(Debug, Clone)]
pub struct DockerfileSource {
    /// What errors print before `:LINE` — the path as the user gave it, `Dockerfile`
    /// for the default one, or `<stdin>`.
    pub name: String,
    /// Where it was read from; `None` for standard input.
    pub path: Option<PathBuf>,
    pub bytes: Vec<u8>,
}

impl DockerfileSource {
    /// The text for locating diagnostics. The syntax parser has already rejected invalid
    /// UTF-8 with a located error, so a lossy view is only ever hit by callers that skip it.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.bytes).unwrap_or_default()
    }
}

/// Reads the Dockerfile named by `-f` (`-` for standard input).
pub fn read_dockerfile(file: &Path) -> Result<DockerfileSource, SourceError> {
    if file == Path::new("-") {
        let bytes = read_capped(std::io::stdin().lock(), file)?;
        return Ok(DockerfileSource {
            name: "<stdin>".into(),
            path: None,
            bytes,
        });
    }
    let f = std::fs::File::open(file).map_err(|source| SourceError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    let bytes = read_capped(f, file)?;
    Ok(DockerfileSource {
        name: file.display().to_string(),
        path: Some(file.to_path_buf()),
        bytes,
    })
}

/// The Dockerfile a build uses: `-f FILE` if given, else `CONTEXT/Dockerfile`.
pub fn dockerfile_path(file: Option<&Path>, context: &Path) -> PathBuf {
    match file {
        Some(f) => f.to_path_buf(),
        None => context.join("Dockerfile"),
    }
}

/// Reads the `.dockerignore` that applies to a build: `<Dockerfile>.dockerignore` beside
/// the Dockerfile wins over `CONTEXT/.dockerignore`, as in BuildKit. Returns the text and
/// where it came from, or `None` when neither exists.
pub fn read_ignore_file(
    dockerfile: Option<&Path>,
    context: &Path,
) -> Result<Option<(PathBuf, String)>, SourceError> {
    let df = dockerfile.map(|p| p.to_string_lossy().into_owned());
    let candidates = ignore_file_candidates(df.as_deref().unwrap_or(""))
        .into_iter()
        .map(|c| {
            // The Dockerfile's own ignore file sits beside it; the generic one in the context.
            if c == DOCKERIGNORE {
                context.join(c)
            } else {
                PathBuf::from(c)
            }
        });
    for path in candidates {
        match std::fs::read_to_string(&path) {
            Ok(text) => return Ok(Some((path, text))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(SourceError::ReadIgnore { path, source }),
        }
    }
    Ok(None)
}

fn read_capped(r: impl Read, path: &Path) -> Result<Vec<u8>, SourceError> {
    let mut bytes = Vec::new();
    r.take(MAX_DOCKERFILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| SourceError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > MAX_DOCKERFILE_BYTES {
        return Err(SourceError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_dockerfile_is_in_context() {
        assert_eq!(
            dockerfile_path(None, Path::new("ctx")),
            Path::new("ctx/Dockerfile")
        );
        assert_eq!(
            dockerfile_path(Some(Path::new("x/app.Dockerfile")), Path::new("ctx")),
            Path::new("x/app.Dockerfile")
        );
    }

    #[test]
    fn dockerfile_specific_ignore_file_wins() {
        let dir = std::env::temp_dir().join(format!("rbuild-src-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(".dockerignore"), "ctx").unwrap();
        let df = dir.join("app.Dockerfile");
        assert_eq!(read_ignore_file(Some(&df), &dir).unwrap().unwrap().1, "ctx");
        std::fs::write(dir.join("app.Dockerfile.dockerignore"), "own").unwrap();
        assert_eq!(read_ignore_file(Some(&df), &dir).unwrap().unwrap().1, "own");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_file_names_path() {
        let err = read_dockerfile(Path::new("/nonexistent/Dockerfile")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/Dockerfile"), "{err}");
    }
}
