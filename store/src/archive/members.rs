//! An index of a tar archive's members, so that an image archive can be read in the
//! order its manifest asks for rather than the order it was written in.
//!
//! The archive must be a seekable plain tar file; anything else (a pipe, a gzip
//! stream) is first spooled into the store's scratch space by the caller.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

use super::ArchiveError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    /// A symlink or hardlink, with its target as a cleaned archive path.
    Link(String),
    Other,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub offset: u64,
    pub size: u64,
    pub kind: Kind,
}

/// The members of an archive by cleaned path; a later member of the same name wins, as
/// when the archive is extracted.
pub struct Members {
    file: File,
    by_name: HashMap<String, Member>,
}

/// `./a//b/` → `a/b`; `None` for paths that leave the archive (absolute) or use `..`:
/// a manifest has no reason to step up and back, so it may not.
pub fn clean(path: &str) -> Option<String> {
    if path.split('/').any(|p| p == "..") {
        return None;
    }
    resolve(path)
}

/// Like [`clean`], but `..` steps back up as a path lookup would (`a/../b` → `b`), so
/// long as it never climbs above the archive's root. For link targets only: skopeo
/// writes `ID/layer.tar` as a symlink to `../DIGEST.tar`.
pub fn resolve(path: &str) -> Option<String> {
    if path.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

impl Members {
    pub fn read(file: File, what: &str) -> Result<Members, ArchiveError> {
        let bad = |e: io::Error| {
            ArchiveError::Malformed(format!("{what}: not a readable tar archive: {e}"))
        };
        let mut archive = tar::Archive::new(file.try_clone().map_err(bad)?);
        let mut by_name = HashMap::new();
        for entry in archive.entries_with_seek().map_err(bad)? {
            let entry = entry.map_err(bad)?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let name = clean(&raw).ok_or_else(|| {
                ArchiveError::Malformed(format!(
                    "{what}: member {raw:?} points outside the archive"
                ))
            })?;
            let ty = entry.header().entry_type();
            let kind = if ty.is_file() || ty == tar::EntryType::Continuous {
                Kind::File
            } else if ty.is_dir() {
                Kind::Dir
            } else if ty.is_symlink() || ty.is_hard_link() {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                // Symlinks are relative to the member's folder, hardlinks to the root.
                let joined = if ty.is_symlink() && !target.starts_with('/') {
                    match name.rsplit_once('/') {
                        Some((dir, _)) => format!("{dir}/{target}"),
                        None => target.clone(),
                    }
                } else {
                    target.clone()
                };
                let target = resolve(&joined).ok_or_else(|| {
                    ArchiveError::Malformed(format!(
                        "{what}: member {raw:?} links to {target:?}, outside the archive"
                    ))
                })?;
                Kind::Link(target)
            } else {
                Kind::Other
            };
            by_name.insert(
                name,
                Member {
                    offset: entry.raw_file_position(),
                    size: entry.size(),
                    kind,
                },
            );
        }
        // tar readers take a short read where a header belongs for the end of the
        // archive, so a cut-off archive reads as a shorter one: say which member is cut.
        let len = file.metadata().map_err(bad)?.len();
        if let Some((name, m)) = by_name
            .iter()
            .filter(|(_, m)| m.offset + m.size > len)
            .min_by_key(|(_, m)| m.offset)
        {
            return Err(ArchiveError::Malformed(format!(
                "{what}: the archive is truncated: member {name} needs {} bytes, the file ends after {}",
                m.size,
                len.saturating_sub(m.offset)
            )));
        }
        Ok(Members { file, by_name })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// The regular file a path names, following links within the archive.
    pub fn get(&self, name: &str) -> Result<(&str, &Member), ArchiveError> {
        let mut name = clean(name).ok_or_else(|| {
            ArchiveError::Malformed(format!("{name:?} points outside the archive"))
        })?;
        for _ in 0..16 {
            let (key, m) = self
                .by_name
                .get_key_value(&name)
                .ok_or_else(|| ArchiveError::MissingMember(name.clone()))?;
            match &m.kind {
                Kind::File => return Ok((key.as_str(), m)),
                Kind::Link(t) => name = t.clone(),
                _ => {
                    return Err(ArchiveError::Malformed(format!(
                        "archive member {name} is not a regular file"
                    )));
                }
            }
        }
        Err(ArchiveError::Malformed(format!(
            "archive member {name}: too many links"
        )))
    }

    /// A reader over one member's bytes; several may be open at once.
    pub fn open(&self, name: &str) -> Result<Section<'_>, ArchiveError> {
        let (_, m) = self.get(name)?;
        Ok(Section {
            file: &self.file,
            pos: m.offset,
            end: m.offset + m.size,
        })
    }

    /// A JSON member read whole, refusing sizes no image metadata has.
    pub fn read_json(&self, name: &str) -> Result<Vec<u8>, ArchiveError> {
        let (key, m) = self.get(name)?;
        if m.size > MAX_JSON {
            return Err(ArchiveError::Malformed(format!(
                "archive member {key} is {} bytes; metadata files are limited to {} MiB",
                m.size,
                MAX_JSON >> 20
            )));
        }
        let mut buf = Vec::with_capacity(m.size as usize);
        self.open(name)?
            .read_to_end(&mut buf)
            .map_err(|e| ArchiveError::Malformed(format!("archive member {key}: {e}")))?;
        if buf.len() as u64 != m.size {
            return Err(ArchiveError::Malformed(format!(
                "archive member {key} is truncated"
            )));
        }
        Ok(buf)
    }
}

/// The largest JSON member (manifest, index, config) accepted.
pub const MAX_JSON: u64 = 64 << 20;

/// One member's bytes.
pub struct Section<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for Section<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end.saturating_sub(self.pos);
        if left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(left as usize);
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive is truncated",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_paths() {
        assert_eq!(clean("./a//b/").as_deref(), Some("a/b"));
        assert_eq!(clean("a/./b").as_deref(), Some("a/b"));
        assert_eq!(clean("../a"), None);
        assert_eq!(clean("a/../../b"), None);
        assert_eq!(clean("/etc/passwd"), None);
    }

    #[test]
    fn resolves_link_targets_inside_the_archive() {
        assert_eq!(resolve("id/../abc.tar").as_deref(), Some("abc.tar"));
        assert_eq!(resolve("a/b/../../c").as_deref(), Some("c"));
        assert_eq!(resolve("id/../../etc/passwd"), None);
        assert_eq!(resolve("../x"), None);
        assert_eq!(resolve("/etc/passwd"), None);
    }
}
