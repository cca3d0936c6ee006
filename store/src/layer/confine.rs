//! Keeping member paths inside the layer root.
//!
//! The destination directory is private to the extraction (the caller made it empty and
//! nobody else writes there), so checking each component with `lstat` and then using the
//! path cannot race with anyone: the only writer is us, and we never create a symlink and
//! then walk through it, because every walk refuses symlinks. That is why plain paths are
//! enough here and no `openat2(RESOLVE_IN_ROOT)` (which would need `unsafe` or a new
//! dependency) is used.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{LayerError, Refusal};

/// Why a walk failed: a rule, or the filesystem.
#[derive(Debug)]
pub(super) enum Fail {
    Refused(Refusal),
    Io(&'static str, io::Error),
}

impl Fail {
    pub(super) fn member(self, member: &str) -> LayerError {
        match self {
            Fail::Refused(reason) => LayerError::Refused {
                member: member.to_string(),
                reason,
            },
            Fail::Io(action, source) => LayerError::Member {
                member: member.to_string(),
                action,
                source,
            },
        }
    }
}

impl From<Refusal> for Fail {
    fn from(r: Refusal) -> Fail {
        Fail::Refused(r)
    }
}

/// Splits a member path into its components, relative to the layer root; no components
/// means the root itself. `.` components and repeated or trailing slashes are dropped (so a
/// leading `./`, which Docker writes, goes too); `..` anywhere is refused even where it
/// would stay inside, as Docker does, because no honest layer needs it.
pub(super) fn components(raw: &[u8]) -> Result<Vec<&OsStr>, Refusal> {
    if raw.is_empty() {
        return Err(Refusal::EmptyPath);
    }
    if raw.contains(&0) {
        return Err(Refusal::Nul);
    }
    if raw[0] == b'/' {
        return Err(Refusal::Absolute);
    }
    let mut parts = Vec::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(Refusal::Escapes),
            _ => parts.push(OsStr::from_bytes(part)),
        }
    }
    Ok(parts)
}

/// Joins components for messages.
pub(super) fn display(parts: &[&OsStr]) -> String {
    let joined: Vec<_> = parts.iter().map(|p| p.to_string_lossy()).collect();
    joined.join("/")
}

/// Walks `parts` below `root`, each one an existing real directory (never a symlink).
/// Missing ones are created 0755 when `create` is set, as Docker does for parents a layer
/// does not list; otherwise a missing one gives `Ok(None)`.
pub(super) fn walk_dirs(
    root: &Path,
    parts: &[&OsStr],
    create: bool,
) -> Result<Option<PathBuf>, Fail> {
    let mut path = root.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        path.push(part);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Refusal::ThroughSymlink {
                    parent: display(&parts[..=i]),
                }
                .into());
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Refusal::ParentNotDirectory {
                    parent: display(&parts[..=i]),
                }
                .into());
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                fs::DirBuilder::new()
                    .mode(0o755)
                    .create(&path)
                    .map_err(|e| Fail::Io("creating a parent directory", e))?;
                // The umask must not decide what a layer contains.
                fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
                    .map_err(|e| Fail::Io("setting a parent directory's mode", e))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Fail::Io("inspecting a parent directory", e)),
        }
    }
    Ok(Some(path))
}

/// `lstat` that says "absent" with `None` rather than an error.
pub(super) fn lstat(path: &Path) -> io::Result<Option<fs::Metadata>> {
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
