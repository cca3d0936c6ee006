//! A read-only view of an image's file system through its layer directories (overlay
//! format, top layer first), for what COPY needs before it writes: whether a path
//! exists and with what metadata, symlinks resolved **inside the image root**, and
//! `/etc/passwd`/`/etc/group` for `--chown` names.
//!
//! Overlay rules (kernel `Documentation/filesystems/overlayfs.rst`): a 0/0 character
//! device is a whiteout hiding the path below; a directory with the
//! `trusted.overlay.opaque=y` xattr hides everything below it in lower layers; a
//! non-directory hides everything below its path.

use std::fs::{self, Metadata};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;

use rbuild_parser::dockerignore::Pattern;

use super::context::{Entry, Selection};

/// Symlinks followed at most this often while resolving one path (Linux `MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

/// The layers of an image, top first.
pub struct RootView {
    pub layers: Vec<PathBuf>,
}

/// A path found in the view.
pub struct Found {
    /// Where it is on the host (in the layer that has it).
    pub host: PathBuf,
    pub meta: Metadata,
}

fn is_whiteout(m: &Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(p: &std::path::Path) -> bool {
    matches!(xattr_get(p), Some(v) if v == b"y")
}

fn xattr_get(p: &std::path::Path) -> Option<Vec<u8>> {
    // The store extracts `.wh..wh..opq` markers as this xattr (store `layer` module).
    xattr::get(p, "trusted.overlay.opaque").ok().flatten()
}

impl RootView {
    /// The entry at `path` (absolute in the image, components already free of symlinks
    /// except possibly the last, which is not followed).
    pub fn lookup(&self, path: &[String]) -> Option<Found> {
        'layers: for layer in &self.layers {
            let host = path.iter().fold(layer.clone(), |p, c| p.join(c));
            match fs::symlink_metadata(&host) {
                Ok(meta) if is_whiteout(&meta) => return None,
                Ok(meta) => return Some(Found { host, meta }),
                Err(_) => {
                    // Does something in this layer hide the path in the layers below?
                    let mut p = layer.clone();
                    for c in &path[..path.len().saturating_sub(1)] {
                        p.push(c);
                        match fs::symlink_metadata(&p) {
                            Ok(m) if !m.is_dir() => return None,
                            Ok(_) if is_opaque(&p) => return None,
                            Ok(_) => {}
                            Err(_) => continue 'layers,
                        }
                    }
                }
            }
        }
        None
    }

    /// Resolves `path` (absolute, `/`-separated) to components with no symlinks, within
    /// the image root: `..` stops at `/` and an absolute link target starts again at the
    /// image root, never the host's. The last component is followed when `follow_last`.
    pub fn resolve(&self, path: &str, follow_last: bool) -> Result<Vec<String>, String> {
        self.resolve_noting(path, follow_last, &mut |_| {})
    }

    /// [`RootView::resolve`], telling `looked_up` every path (components) it looked up:
    /// the result stays right as long as nothing is put at any of them.
    pub fn resolve_noting(
        &self,
        path: &str,
        follow_last: bool,
        looked_up: &mut dyn FnMut(&[String]),
    ) -> Result<Vec<String>, String> {
        let mut todo: Vec<String> = path.split('/').rev().map(str::to_string).collect();
        let mut done: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(part) = todo.pop() {
            match part.as_str() {
                "" | "." => continue,
                ".." => {
                    done.pop();
                    continue;
                }
                _ => {}
            }
            let last = todo.iter().all(|p| p.is_empty() || p == ".");
            done.push(part);
            if last && !follow_last {
                break;
            }
            looked_up(&done);
            let Some(found) = self.lookup(&done) else {
                continue;
            };
            if found.meta.file_type().is_symlink() {
                hops += 1;
                if hops > MAX_SYMLINKS {
                    return Err(format!("{path}: too many levels of symbolic links"));
                }
                let target = fs::read_link(&found.host)
                    .map_err(|e| format!("{}: {e}", found.host.display()))?;
                done.pop();
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    done.clear();
                }
                todo.extend(target.split('/').rev().map(str::to_string));
            }
        }
        Ok(done)
    }

    /// The names in directory `dir` (components free of symlinks), merged over the
    /// layers with whiteouts and opaque directories applied, sorted.
    pub fn read_dir(&self, dir: &[String]) -> Vec<String> {
        let mut names = std::collections::BTreeSet::new();
        for layer in &self.layers {
            let host = dir.iter().fold(layer.clone(), |p, c| p.join(c));
            if let Ok(rd) = fs::read_dir(&host) {
                names.extend(
                    rd.filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned()),
                );
            }
        }
        names
            .into_iter()
            .filter(|n| {
                let mut p = dir.to_vec();
                p.push(n.clone());
                self.lookup(&p).is_some()
            })
            .collect()
    }

    /// What one `COPY --from` source selects in this root: a path (symlinks resolved
    /// inside the root, the last one followed) or every path a wildcard matches, with
    /// a directory's contents, as [`Context::select`](super::context::Context::select)
    /// does for the build context. Entries' `rel` is their path without the leading `/`.
    pub fn select(&self, src: &str) -> Result<Vec<Selection>, String> {
        let rel = super::context::clean(src);
        let tops: Vec<String> = if rel.contains(['*', '?', '[']) {
            let mut level = vec![String::new()];
            for seg in rel.split('/') {
                let matcher = if seg.contains(['*', '?', '[']) {
                    Some(
                        Pattern::parse(seg)
                            .map_err(|e| format!("{src}: {e}"))?
                            .ok_or_else(|| "no source files were specified".to_string())?,
                    )
                } else {
                    None
                };
                let mut next = Vec::new();
                for dir in &level {
                    let join = |n: &str| {
                        if dir.is_empty() {
                            n.to_string()
                        } else {
                            format!("{dir}/{n}")
                        }
                    };
                    let Ok(comps) = self.resolve(&format!("/{dir}"), true) else {
                        continue;
                    };
                    match &matcher {
                        None => {
                            let mut p = comps.clone();
                            p.push(seg.to_string());
                            if self.lookup(&p).is_some() {
                                next.push(join(seg));
                            }
                        }
                        Some(m) => next.extend(
                            self.read_dir(&comps)
                                .iter()
                                .filter(|n| m.matches(n))
                                .map(|n| join(n)),
                        ),
                    }
                }
                level = next;
            }
            if level.is_empty() {
                return Err("no source files were specified".to_string());
            }
            level
        } else {
            vec![rel]
        };
        let mut out = Vec::new();
        for rel in tops {
            let comps = self.resolve(&format!("/{rel}"), true)?;
            let found = self
                .lookup(&comps)
                .ok_or_else(|| format!("\"/{rel}\": not found"))?;
            let top = Entry {
                rel: if rel.is_empty() {
                    ".".into()
                } else {
                    rel.clone()
                },
                path: found.host,
                meta: found.meta,
            };
            let mut children = Vec::new();
            if top.meta.is_dir() {
                self.walk(&comps, &rel, &mut children);
            }
            out.push(Selection {
                top,
                children,
                keep_owner: false,
                remote: false,
            });
        }
        Ok(out)
    }

    /// One path's own entry (no contents), symlinks resolved inside the root.
    pub fn entry(&self, src: &str) -> Result<Entry, String> {
        let rel = super::context::clean(src);
        let comps = self.resolve(&format!("/{rel}"), true)?;
        let found = self
            .lookup(&comps)
            .ok_or_else(|| format!("\"/{rel}\": not found"))?;
        Ok(Entry {
            rel: if rel.is_empty() { ".".into() } else { rel },
            path: found.host,
            meta: found.meta,
        })
    }

    /// Everything below directory `comps` (shown as `rel`), sorted, parents first.
    fn walk(&self, comps: &[String], rel: &str, out: &mut Vec<Entry>) {
        for name in self.read_dir(comps) {
            let mut p = comps.to_vec();
            p.push(name.clone());
            let Some(found) = self.lookup(&p) else {
                continue;
            };
            let child_rel = if rel.is_empty() || rel == "." {
                name
            } else {
                format!("{rel}/{name}")
            };
            let is_dir = found.meta.is_dir();
            out.push(Entry {
                rel: child_rel.clone(),
                path: found.host,
                meta: found.meta,
            });
            if is_dir {
                self.walk(&p, &child_rel, out);
            }
        }
    }

    /// A file's text, read through the view (symlinks resolved in the image).
    pub fn read_to_string(&self, path: &str) -> Option<String> {
        let resolved = self.resolve(path, true).ok()?;
        let found = self.lookup(&resolved)?;
        if !found.meta.is_file() {
            return None;
        }
        fs::read_to_string(found.host).ok()
    }

    /// `--chown` as uid and gid: numbers, or names from the image's `/etc/passwd` and
    /// `/etc/group`. A user without a group gets the user's primary group from passwd,
    /// or the same number as the uid when the user was given as a number (BuildKit).
    pub fn chown_ids(&self, spec: &str) -> Result<(u32, u32), String> {
        let (user, group) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        let (uid, primary) = match user.parse::<u32>() {
            Ok(n) => (n, n),
            Err(_) => {
                let passwd = self.read_to_string("/etc/passwd").unwrap_or_default();
                find_entry(&passwd, user)
                    .and_then(|f| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))
                    .ok_or_else(|| {
                        format!("unable to find user {user}: no matching entries in passwd file")
                    })?
            }
        };
        let gid = match group {
            None => primary,
            Some(g) => match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => {
                    let groups = self.read_to_string("/etc/group").unwrap_or_default();
                    find_entry(&groups, g)
                        .and_then(|f| f.get(2)?.parse().ok())
                        .ok_or_else(|| {
                            format!("unable to find group {g}: no matching entries in group file")
                        })?
                }
            },
        };
        Ok((uid, gid))
    }
}

/// The `:`-separated fields of the line whose first field is `name`.
fn find_entry<'a>(file: &'a str, name: &str) -> Option<Vec<&'a str>> {
    file.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_resolve_inside_the_root_and_names_resolve() {
        let lower = tempfile::tempdir().unwrap();
        let upper = tempfile::tempdir().unwrap();
        let l = lower.path();
        fs::create_dir_all(l.join("usr/bin")).unwrap();
        fs::create_dir_all(l.join("etc")).unwrap();
        std::os::unix::fs::symlink("usr/bin", l.join("bin")).unwrap();
        std::os::unix::fs::symlink("../../../../..", l.join("usr/up")).unwrap();
        std::os::unix::fs::symlink("/etc", l.join("usr/abs")).unwrap();
        fs::write(
            l.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:100:101::/:/bin/sh\n",
        )
        .unwrap();
        fs::write(l.join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let view = RootView {
            layers: vec![upper.path().to_path_buf(), l.to_path_buf()],
        };
        assert_eq!(view.resolve("/bin/x", true).unwrap(), ["usr", "bin", "x"]);
        assert_eq!(view.resolve("/usr/up/etc", true).unwrap(), ["etc"]);
        assert_eq!(
            view.resolve("/usr/abs/passwd", true).unwrap(),
            ["etc", "passwd"]
        );
        assert_eq!(view.resolve("/bin", false).unwrap(), ["bin"]);
        assert_eq!(view.chown_ids("app").unwrap(), (100, 101));
        assert_eq!(view.chown_ids("app:staff").unwrap(), (100, 50));
        assert_eq!(view.chown_ids("7").unwrap(), (7, 7));
        assert_eq!(view.chown_ids("7:0").unwrap(), (7, 0));
        assert!(view.chown_ids("nobody").unwrap_err().contains("nobody"));
    }
}
