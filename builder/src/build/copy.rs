//! COPY/ADD of context files into a fresh layer directory in overlay format: only what
//! the instruction adds, plus the parent directories it needs (taking their metadata
//! from the lower layers where they exist there).
//!
//! Docker's rules (BuildKit `dockerfile2llb` + fsutil `copy`): a directory source has
//! its *contents* copied; a file goes into `dest` when `dest` ends with `/`, is an
//! existing directory, or there are several sources; otherwise it *becomes* `dest`. A
//! relative `dest` is under WORKDIR. Copied entries keep their mode (or get `--chmod`)
//! and mtime, and are owned by `--chown` (default 0:0), as are the directories the copy
//! creates. Destination paths resolve symlinks inside the image root ([`RootView`]).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rbuild_parser::instruction::Chmod;

use super::context::{Entry, Selection};
use super::rootfs::RootView;

/// What to copy where.
pub struct CopySpec<'a> {
    pub selections: &'a [Selection],
    /// The destination as written (expanded).
    pub dest: &'a str,
    /// The stage's WORKDIR (`/` when unset).
    pub workdir: &'a str,
    pub owner: (u32, u32),
    /// Copied entries keep their own uid/gid instead of `owner` (`COPY --from` without
    /// `--chown`: BuildKit's copy keeps ownership; context files arrive as 0:0).
    pub keep_owner: bool,
    pub chmod: Option<&'a Chmod>,
    /// Several sources or a wildcard: `dest` must be a directory.
    pub multiple: bool,
}

struct Writer<'a> {
    upper: &'a Path,
    view: RootView,
    owner: (u32, u32),
    keep_owner: bool,
    chmod: Option<&'a Chmod>,
    /// Directories whose mtime is set last (adding entries changes it), in creation order.
    dir_times: Vec<(PathBuf, SystemTime)>,
}

/// Writes what `spec` copies into `upper`, an empty directory that becomes the layer;
/// `lower` are the image's layer directories, top first.
pub fn copy_into(upper: &Path, lower: &[PathBuf], spec: &CopySpec<'_>) -> Result<(), String> {
    let dest_abs = if spec.dest.starts_with('/') {
        spec.dest.to_string()
    } else {
        format!("{}/{}", spec.workdir.trim_end_matches('/'), spec.dest)
    };
    let dest_is_dir = spec.dest.ends_with('/')
        || spec.dest.ends_with("/.")
        || spec.dest == "."
        || spec.dest.is_empty();
    if spec.multiple && !dest_is_dir {
        return Err(
            "When using COPY with more than one source file, the destination must be a directory and end with a /"
                .into(),
        );
    }
    let mut layers = vec![upper.to_path_buf()];
    layers.extend(lower.iter().cloned());
    let mut w = Writer {
        upper,
        view: RootView { layers },
        owner: spec.owner,
        keep_owner: spec.keep_owner,
        chmod: spec.chmod,
        dir_times: Vec::new(),
    };
    for sel in spec.selections {
        w.keep_owner = spec.keep_owner || sel.keep_owner;
        if sel.top.meta.is_dir() {
            let target = w.view.resolve(&dest_abs, true)?;
            w.ensure_dirs(&target)?;
            for child in &sel.children {
                let inner = if sel.top.rel == "." {
                    child.rel.as_str()
                } else {
                    child
                        .rel
                        .strip_prefix(&sel.top.rel)
                        .and_then(|r| r.strip_prefix('/'))
                        .unwrap_or(&child.rel)
                };
                w.place(child, &format!("/{}/{inner}", target.join("/")))?;
            }
        } else {
            let into_dir = dest_is_dir
                || spec.multiple
                || w.view
                    .resolve(&dest_abs, true)
                    .ok()
                    .and_then(|p| w.view.lookup(&p))
                    .is_some_and(|f| f.meta.is_dir());
            let name = sel.top.rel.rsplit('/').next().unwrap_or(&sel.top.rel);
            let at = if into_dir {
                format!("{}/{name}", dest_abs.trim_end_matches('/'))
            } else {
                dest_abs.clone()
            };
            w.place(&sel.top, &at)?;
        }
    }
    for (path, time) in w.dir_times.iter().rev() {
        set_mtime(path, *time)?;
    }
    Ok(())
}

impl Writer<'_> {
    fn host(&self, comps: &[String]) -> PathBuf {
        comps
            .iter()
            .fold(self.upper.to_path_buf(), |p, c| p.join(c))
    }

    /// Makes every directory of `comps` exist in the upper dir: copied from the lower
    /// layers' metadata where they have it, else new (0755, owned by the copy's owner).
    fn ensure_dirs(&mut self, comps: &[String]) -> Result<(), String> {
        for i in 1..=comps.len() {
            let host = self.host(&comps[..i]);
            if let Ok(m) = fs::symlink_metadata(&host) {
                if m.is_dir() {
                    continue;
                }
                return Err(format!("/{}: not a directory", comps[..i].join("/")));
            }
            let lower = self.view.lookup(&comps[..i]);
            fs::create_dir(&host).map_err(|e| format!("creating {}: {e}", host.display()))?;
            let (mode, uid, gid, mtime) = match lower {
                Some(f) if f.meta.is_dir() => (
                    f.meta.mode() & 0o7777,
                    f.meta.uid(),
                    f.meta.gid(),
                    f.meta.modified().ok(),
                ),
                Some(_) => return Err(format!("/{}: not a directory", comps[..i].join("/"))),
                None => (0o755, self.owner.0, self.owner.1, None),
            };
            set_owner_mode(&host, uid, gid, Some(mode))?;
            if let Some(t) = mtime {
                self.dir_times.push((host, t));
            }
        }
        Ok(())
    }

    /// Copies one entry to `image_path` (absolute, possibly through symlinks).
    fn place(&mut self, e: &Entry, image_path: &str) -> Result<(), String> {
        let mut comps = self.view.resolve(image_path, false)?;
        let Some(name) = comps.pop() else {
            // Copying a directory's contents onto `/` itself.
            return Ok(());
        };
        let parent = self.view.resolve(&format!("/{}", comps.join("/")), true)?;
        self.ensure_dirs(&parent)?;
        let mut target = parent;
        target.push(name);
        let host = self.host(&target);
        let ft = e.meta.file_type();
        let existing = fs::symlink_metadata(&host).ok();
        if let Some(m) = &existing
            && !(m.is_dir() && ft.is_dir())
        {
            if m.is_dir() {
                fs::remove_dir_all(&host)
            } else {
                fs::remove_file(&host)
            }
            .map_err(|err| format!("replacing {}: {err}", host.display()))?;
        }
        let (uid, gid) = if self.keep_owner {
            (e.meta.uid(), e.meta.gid())
        } else {
            self.owner
        };
        let src_mode = e.meta.mode() & 0o7777;
        let mode = |is_dir: bool| match self.chmod {
            Some(c) => c.apply(src_mode, is_dir),
            None => src_mode,
        };
        let read_err = |err: std::io::Error| format!("copying {}: {err}", e.rel);
        if ft.is_dir() {
            if existing.is_none() {
                fs::create_dir(&host).map_err(read_err)?;
            }
            set_owner_mode(&host, uid, gid, Some(mode(true)))?;
            if let Ok(t) = e.meta.modified() {
                self.dir_times.push((host, t));
            }
        } else if ft.is_symlink() {
            let link = fs::read_link(&e.path).map_err(read_err)?;
            std::os::unix::fs::symlink(&link, &host).map_err(read_err)?;
            set_owner_mode(&host, uid, gid, None)?;
        } else if ft.is_file() {
            fs::copy(&e.path, &host).map_err(read_err)?;
            set_owner_mode(&host, uid, gid, Some(mode(false)))?;
            if let Ok(t) = e.meta.modified() {
                set_mtime(&host, t)?;
            }
        } else {
            return Err(format!(
                "copying {}: only files, directories and symlinks can be copied",
                e.rel
            ));
        }
        Ok(())
    }
}

/// chown (not following symlinks), then chmod: chown clears setuid bits, so the mode
/// is set after it.
fn set_owner_mode(path: &Path, uid: u32, gid: u32, mode: Option<u32>) -> Result<(), String> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .map_err(|e| format!("chown {}: {e}", path.display()))?;
    if let Some(mode) = mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| format!("chmod {}: {e}", path.display()))?;
    }
    Ok(())
}

fn set_mtime(path: &Path, t: SystemTime) -> Result<(), String> {
    // Opening read-only is enough for futimens as the owner or root; it works for
    // directories too.
    fs::File::open(path)
        .and_then(|f| f.set_modified(t))
        .map_err(|e| format!("setting mtime of {}: {e}", path.display()))
}

/// WORKDIR's directory: creates `path` (absolute, symlinks resolved in the image) and
/// any missing parents in `upper`, 0755 and owned by `owner` (BuildKit makes them as
/// the stage's USER). Returns false when it already exists, so no layer is needed.
pub fn mkdir_into(
    upper: &Path,
    lower: &[PathBuf],
    path: &str,
    owner: (u32, u32),
) -> Result<bool, String> {
    let mut layers = vec![upper.to_path_buf()];
    layers.extend(lower.iter().cloned());
    let mut w = Writer {
        upper,
        view: RootView { layers },
        owner,
        keep_owner: false,
        chmod: None,
        dir_times: Vec::new(),
    };
    let comps = w.view.resolve(path, true)?;
    match w.view.lookup(&comps) {
        Some(f) if f.meta.is_dir() => return Ok(false),
        Some(_) => return Err(format!("{path}: not a directory")),
        None => {}
    }
    w.ensure_dirs(&comps)?;
    for (path, time) in w.dir_times.iter().rev() {
        set_mtime(path, *time)?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::context::Context;
    use rbuild_parser::dockerignore::Matcher;

    struct Fixture {
        _dirs: Vec<tempfile::TempDir>,
        ctx: Context,
        lower: PathBuf,
        upper: PathBuf,
        me: (u32, u32),
    }

    fn fixture() -> Fixture {
        let (c, l, u) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        fs::create_dir_all(c.path().join("d/e")).unwrap();
        fs::write(c.path().join("f"), "f").unwrap();
        fs::write(c.path().join("d/e/g"), "g").unwrap();
        fs::create_dir_all(l.path().join("opt/existing")).unwrap();
        fs::set_permissions(l.path().join("opt"), fs::Permissions::from_mode(0o750)).unwrap();
        let m = fs::metadata(c.path()).unwrap();
        Fixture {
            ctx: Context::new(
                c.path().to_path_buf(),
                Matcher::new(std::iter::empty::<&str>()).unwrap(),
            ),
            lower: l.path().to_path_buf(),
            upper: u.path().to_path_buf(),
            me: (m.uid(), m.gid()),
            _dirs: vec![c, l, u],
        }
    }

    fn copy(fx: &Fixture, srcs: &[&str], dest: &str, workdir: &str) -> Result<(), String> {
        let mut sel = Vec::new();
        for s in srcs {
            sel.extend(fx.ctx.select(s).unwrap());
        }
        copy_into(
            &fx.upper,
            std::slice::from_ref(&fx.lower),
            &CopySpec {
                selections: &sel,
                dest,
                workdir,
                owner: fx.me,
                keep_owner: false,
                chmod: None,
                multiple: srcs.len() > 1,
            },
        )
    }

    #[test]
    fn destination_rules() {
        let fx = fixture();
        // A file becomes the destination...
        copy(&fx, &["f"], "/new/name", "/").unwrap();
        assert_eq!(fs::read_to_string(fx.upper.join("new/name")).unwrap(), "f");
        // ...or goes into it when it is an existing directory, with the parent's
        // metadata taken from the lower layer.
        copy(&fx, &["f"], "/opt/existing", "/").unwrap();
        assert!(fx.upper.join("opt/existing/f").is_file());
        let m = fs::metadata(fx.upper.join("opt")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o750);
        // A directory's contents, relative to WORKDIR.
        copy(&fx, &["d"], "sub", "/w").unwrap();
        assert_eq!(fs::read_to_string(fx.upper.join("w/sub/e/g")).unwrap(), "g");
        assert!(!fx.upper.join("w/sub/d").exists());
        // Several sources need a directory destination.
        let err = copy(&fx, &["f", "d"], "/x", "/").unwrap_err();
        assert!(
            err.contains("must be a directory and end with a /"),
            "{err}"
        );
        copy(&fx, &["f", "d"], "/x/", "/").unwrap();
        assert!(fx.upper.join("x/f").is_file() && fx.upper.join("x/e/g").is_file());
    }

    #[test]
    fn workdir_is_made_only_when_missing() {
        let fx = fixture();
        assert!(
            !mkdir_into(
                &fx.upper,
                std::slice::from_ref(&fx.lower),
                "/opt/existing",
                fx.me
            )
            .unwrap()
        );
        assert!(
            mkdir_into(
                &fx.upper,
                std::slice::from_ref(&fx.lower),
                "/opt/new/deep",
                fx.me
            )
            .unwrap()
        );
        assert!(fx.upper.join("opt/new/deep").is_dir());
        assert!(!fx.upper.join("opt/existing").exists());
    }
}
