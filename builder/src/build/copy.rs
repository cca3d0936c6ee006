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
//!
//! Reproducibility: with `SOURCE_DATE_EPOCH` ([`CopySpec::clamp`]) every mtime the copy
//! writes — files, symlinks, copied directories, parents taken from the lower layers — is
//! clamped to it here, as it is written, rather than by a pass over the tree afterwards,
//! which would write through the links to the previous layer. Directories the copy makes
//! itself (a missing destination, WORKDIR) have no source to take a time from: they get
//! the epoch, or the Unix epoch (0) without one, never the time of the build, so that the
//! layer of a COPY depends only on the files' contents and metadata (BuildKit gives them
//! the build time, which makes two builds of the same COPY differ). Modes never depend on
//! the umask: every entry's mode is set explicitly.
//!
//! Re-running a COPY mostly copies what the step's previous layer already holds: layer
//! trees are immutable once committed (DESIGN.md, builder step 5), so a regular file
//! whose source has the same digest as the one the previous layer's file was copied
//! from, and whose metadata there is exactly what this copy would give it, is hard-linked
//! from that layer instead ([`Previous`]). Nothing ever writes through such a link: the
//! metadata is compared first and left alone, and a later entry at the same path unlinks
//! it before writing. The layer tar is the same either way (a tar carries no link count;
//! each old inode is linked at one path only, so no hard-link entries appear).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
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
    /// Content digests ([`super::context::entry_digest`]) of the source files by host
    /// path, where known: what [`Copied::files`] records and [`Previous`] is matched on.
    pub digests: &'a HashMap<PathBuf, String>,
    /// The layer this step made last time, to hard-link unchanged files from.
    pub previous: Option<&'a Previous>,
    /// Seconds since the epoch, taken before the sources were digested: a source whose
    /// mtime or ctime is not older may have changed in the same clock tick as it was
    /// read, so its digest is not recorded for it.
    pub racy_after: i64,
    /// `SOURCE_DATE_EPOCH`: see the module docs.
    pub clamp: Option<i64>,
}

/// A committed layer tree and, for its regular files, the digest of the source each was
/// copied from ([`Copied::files`] of the copy that made it).
pub struct Previous {
    /// `layers/<id>/diff`: immutable, and kept while the build holds the store lock.
    pub tree: PathBuf,
    pub files: BTreeMap<String, String>,
}

/// What a copy wrote, beyond the files themselves.
#[derive(Debug, Default)]
pub struct Copied {
    /// Regular files of the new tree (path below the root, no leading `/`) → digest of
    /// the source whose content they have, for the next build's [`Previous`]. Files whose
    /// source changed while it was read are left out.
    pub files: BTreeMap<String, String>,
    /// (dev, ino) of the files hard-linked from [`Previous::tree`]: already durable, so
    /// the commit need not fsync them.
    pub linked: HashSet<(u64, u64)>,
}

struct Writer<'a> {
    upper: &'a Path,
    view: RootView,
    owner: (u32, u32),
    keep_owner: bool,
    chmod: Option<&'a Chmod>,
    /// Directories whose mtime is set last (adding entries changes it); the last time
    /// given for a path wins, as the last copy onto a directory gives it its metadata.
    dir_times: HashMap<PathBuf, SystemTime>,
    digests: Option<&'a HashMap<PathBuf, String>>,
    previous: Option<&'a Previous>,
    /// Directories of the previous tree known to be real directories (not symlinks).
    previous_dirs: HashSet<String>,
    racy_after: i64,
    clamp: Option<i64>,
    copied: Copied,
    /// Resolved parent directories by image path, valid while nothing is put at a path
    /// their resolution looked up (`looked_up`); cleared when something is.
    resolved: HashMap<String, Vec<String>>,
    looked_up: HashSet<Vec<String>>,
    /// Directories of the upper dir this copy made or found to be directories.
    made_dirs: HashSet<Vec<String>>,
}

/// Writes what `spec` copies into `upper`, an empty directory that becomes the layer;
/// `lower` are the image's layer directories, top first.
pub fn copy_into(upper: &Path, lower: &[PathBuf], spec: &CopySpec<'_>) -> Result<Copied, String> {
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
        dir_times: HashMap::new(),
        digests: Some(spec.digests),
        previous: spec.previous,
        previous_dirs: HashSet::new(),
        racy_after: spec.racy_after,
        clamp: spec.clamp,
        copied: Copied::default(),
        resolved: HashMap::new(),
        looked_up: HashSet::new(),
        made_dirs: HashSet::new(),
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
    for (path, time) in &w.dir_times {
        set_mtime(path, *time)?;
    }
    Ok(w.copied)
}

impl Writer<'_> {
    /// The mtime an entry copied from one with metadata `m` gets: its own, clamped.
    fn mtime_of(&self, m: &fs::Metadata) -> Option<SystemTime> {
        match self.clamp {
            Some(c) if m.mtime() > c => Some(made_time(Some(c))),
            _ => m.modified().ok(),
        }
    }

    fn host(&self, comps: &[String]) -> PathBuf {
        comps
            .iter()
            .fold(self.upper.to_path_buf(), |p, c| p.join(c))
    }

    /// Makes every directory of `comps` exist in the upper dir: copied from the lower
    /// layers' metadata where they have it, else new (0755, owned by the copy's owner).
    fn ensure_dirs(&mut self, comps: &[String]) -> Result<(), String> {
        if self.made_dirs.contains(comps) {
            return Ok(());
        }
        for i in 1..=comps.len() {
            if self.made_dirs.contains(&comps[..i]) {
                continue;
            }
            let host = self.host(&comps[..i]);
            if let Ok(m) = fs::symlink_metadata(&host) {
                if m.is_dir() {
                    self.made_dirs.insert(comps[..i].to_vec());
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
                    self.mtime_of(&f.meta),
                ),
                Some(_) => return Err(format!("/{}: not a directory", comps[..i].join("/"))),
                None => (
                    0o755,
                    self.owner.0,
                    self.owner.1,
                    Some(made_time(self.clamp)),
                ),
            };
            set_owner_mode(&host, uid, gid, Some(mode))?;
            if let Some(t) = mtime {
                self.dir_times.insert(host, t);
            }
            self.made_dirs.insert(comps[..i].to_vec());
        }
        Ok(())
    }

    /// The components of `image_path` with every symlink but the last resolved (as
    /// [`RootView::resolve`] with `follow_last` false), the parent's resolution reused
    /// from earlier entries of this copy where nothing it depends on has changed since.
    fn resolve_target(&mut self, image_path: &str) -> Result<Vec<String>, String> {
        let Some((parent, name)) = image_path.rsplit_once('/') else {
            return self.view.resolve(image_path, false);
        };
        if matches!(name, "" | "." | "..") {
            return self.view.resolve(image_path, false);
        }
        let mut comps = match self.resolved.get(parent) {
            Some(c) => c.clone(),
            None => {
                let mut seen = Vec::new();
                let c = self.view.resolve_noting(
                    if parent.is_empty() { "/" } else { parent },
                    true,
                    &mut |p| seen.push(p.to_vec()),
                )?;
                self.looked_up.extend(seen);
                self.resolved.insert(parent.to_string(), c.clone());
                c
            }
        };
        comps.push(name.to_string());
        Ok(comps)
    }

    /// Something was put at or removed from `target`: resolutions that looked it up no
    /// longer hold, nor does what is known of the upper dir's directories below it.
    fn changed(&mut self, target: &[String], removed: bool) {
        if self.looked_up.contains(target) {
            self.resolved.clear();
            self.looked_up.clear();
        }
        if removed {
            self.made_dirs.retain(|d| !d.starts_with(target));
        }
    }

    /// Copies one entry to `image_path` (absolute, possibly through symlinks).
    fn place(&mut self, e: &Entry, image_path: &str) -> Result<(), String> {
        let target = self.resolve_target(image_path)?;
        let Some((_, parent)) = target.split_last() else {
            // Copying a directory's contents onto `/` itself.
            return Ok(());
        };
        self.ensure_dirs(parent)?;
        let host = self.host(&target);
        let ft = e.meta.file_type();
        self.changed(&target, false);
        // A regular file is created exclusively and the path cleared only if that finds
        // something there (one syscall less per file than looking first).
        let existing = if ft.is_file() {
            None
        } else {
            fs::symlink_metadata(&host).ok()
        };
        if let Some(m) = &existing
            && !(m.is_dir() && ft.is_dir())
        {
            self.clear(&target, &host, m)?;
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
        let key = target.join("/");
        if !ft.is_file() {
            self.copied.files.remove(&key);
        }
        if ft.is_dir() {
            if existing.is_none() {
                fs::create_dir(&host).map_err(read_err)?;
            }
            set_owner_mode(&host, uid, gid, Some(mode(true)))?;
            if let Some(t) = self.mtime_of(&e.meta) {
                self.dir_times.insert(host, t);
            }
        } else if ft.is_symlink() {
            let link = fs::read_link(&e.path).map_err(read_err)?;
            std::os::unix::fs::symlink(&link, &host).map_err(read_err)?;
            set_owner_mode(&host, uid, gid, None)?;
            // The link's own time, as BuildKit's copy keeps it (lutimes): one made now
            // would put the build time into the layer.
            if let Some(t) = self.mtime_of(&e.meta) {
                set_link_mtime(&host, t)?;
            }
        } else if ft.is_file() {
            let mode = mode(false);
            let mtime = self.mtime_of(&e.meta);
            let digest = self.digests.and_then(|d| d.get(&e.path));
            if let Some(digest) = digest
                && self.link_previous(e, &target, digest, (uid, gid, mode, mtime), &host)?
            {
                self.copied.files.insert(key, digest.clone());
                return Ok(());
            }
            let stable = match copy_file(e, &host, uid, gid, mode, mtime) {
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                    self.clear_any(&target, &host)?;
                    copy_file(e, &host, uid, gid, mode, mtime)
                }
                other => other,
            }
            .map_err(read_err)?;
            match digest {
                Some(d) if stable && !self.is_racy(&e.meta) => {
                    self.copied.files.insert(key, d.clone());
                }
                _ => {
                    self.copied.files.remove(&key);
                }
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

impl Writer<'_> {
    /// Whether `m` changed too recently for its digest to be trusted as its content's.
    fn is_racy(&self, m: &fs::Metadata) -> bool {
        m.mtime() >= self.racy_after || m.ctime() >= self.racy_after
    }

    /// Removes what is at `target` in the upper dir (`host`), whose lstat is `m`.
    fn clear(&mut self, target: &[String], host: &Path, m: &fs::Metadata) -> Result<(), String> {
        if m.is_dir() {
            fs::remove_dir_all(host)
        } else {
            fs::remove_file(host)
        }
        .map_err(|err| format!("replacing {}: {err}", host.display()))?;
        self.changed(target, true);
        // Directories that are gone get no mtime at the end: their path may now name a
        // file, perhaps one linked from the previous layer.
        self.dir_times.retain(|p, _| !p.starts_with(host));
        Ok(())
    }

    fn clear_any(&mut self, target: &[String], host: &Path) -> Result<(), String> {
        match fs::symlink_metadata(host) {
            Ok(m) => self.clear(target, host, &m),
            Err(_) => Ok(()),
        }
    }

    /// Hard-links `target` (components below the root) from the previous tree into
    /// `host` when the file there was copied from a source with `digest` and already has
    /// the size, mode, owner and mtime this copy would give it, and no xattrs. False (and
    /// nothing done) otherwise, or when linking fails.
    fn link_previous(
        &mut self,
        e: &Entry,
        target: &[String],
        digest: &str,
        (uid, gid, mode, mtime): (u32, u32, u32, Option<SystemTime>),
        host: &Path,
    ) -> Result<bool, String> {
        let Some(prev) = self.previous else {
            return Ok(false);
        };
        let key = target.join("/");
        if prev.files.get(&key).map(String::as_str) != Some(digest) {
            return Ok(false);
        }
        // Every parent in the previous tree must be a real directory: the path is read
        // there as it is in the new tree, never through a symlink.
        let mut old = prev.tree.clone();
        for i in 1..target.len() {
            old.push(&target[i - 1]);
            let dir = target[..i].join("/");
            if self.previous_dirs.contains(&dir) {
                continue;
            }
            if !fs::symlink_metadata(&old).is_ok_and(|m| m.is_dir()) {
                return Ok(false);
            }
            self.previous_dirs.insert(dir);
        }
        old.push(&target[target.len() - 1]);
        let Ok(m) = fs::symlink_metadata(&old) else {
            return Ok(false);
        };
        let same = m.is_file()
            && m.len() == e.meta.len()
            && m.mode() & 0o7777 == mode
            && (m.uid(), m.gid()) == (uid, gid)
            && mtime.is_some_and(|t| m.modified().is_ok_and(|old| old == t))
            && !self.copied.linked.contains(&(m.dev(), m.ino()))
            && xattr::list(&old).is_ok_and(|mut names| names.next().is_none());
        if !same {
            return Ok(false);
        }
        let linked = match fs::hard_link(&old, host) {
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                self.clear_any(target, host)?;
                fs::hard_link(&old, host)
            }
            other => other,
        };
        if linked.is_err() {
            // EMLINK and the like: a copy will do.
            return Ok(false);
        }
        self.copied.linked.insert((m.dev(), m.ino()));
        Ok(true)
    }
}

/// Copies the regular file `e` to the new path `host` with the given owner, mode and
/// mtime, all through the open descriptors. Returns whether the source's
/// stat after the copy is the one `e` was selected (and digested) with, i.e. the copy
/// has the content that digest describes.
fn copy_file(
    e: &Entry,
    host: &Path,
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: Option<SystemTime>,
) -> io::Result<bool> {
    let mut src = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&e.path)?;
    let mut dst = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(host)?;
    // copy_file_range(2) underneath (std's File-to-File specialisation): in-kernel, or
    // a reflink where the file system can.
    io::copy(&mut src, &mut dst)?;
    // fchown before fchmod: chown clears setuid/setgid.
    std::os::unix::fs::fchown(&dst, Some(uid), Some(gid))?;
    dst.set_permissions(fs::Permissions::from_mode(mode))?;
    if let Some(t) = mtime {
        dst.set_modified(t)?;
    }
    let after = src.metadata()?;
    let before = &e.meta;
    Ok(
        (after.dev(), after.ino(), after.len()) == (before.dev(), before.ino(), before.len())
            && (after.mtime(), after.mtime_nsec()) == (before.mtime(), before.mtime_nsec())
            && (after.ctime(), after.ctime_nsec()) == (before.ctime(), before.ctime_nsec()),
    )
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

/// The time of what the build makes rather than copies: `SOURCE_DATE_EPOCH`, else the
/// Unix epoch (see the module docs).
pub(crate) fn made_time(epoch: Option<i64>) -> SystemTime {
    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(epoch.unwrap_or(0).max(0) as u64)
}

/// Sets a symlink's own mtime (and atime), not its target's.
fn set_link_mtime(path: &Path, t: SystemTime) -> Result<(), String> {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let ts = nix::sys::time::TimeSpec::new(d.as_secs() as i64, i64::from(d.subsec_nanos()));
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &ts,
        &ts,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| format!("setting mtime of {}: {e}", path.display()))
}

/// Sets a directory's mtime (files get theirs through the descriptor they are written
/// with). Never through a symlink, never on anything but a directory.
fn set_mtime(path: &Path, t: SystemTime) -> Result<(), String> {
    // Opening read-only is enough for futimens as the owner or root.
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW)
        .open(path)
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
    clamp: Option<i64>,
) -> Result<bool, String> {
    let mut layers = vec![upper.to_path_buf()];
    layers.extend(lower.iter().cloned());
    let mut w = Writer {
        upper,
        view: RootView { layers },
        owner,
        keep_owner: false,
        chmod: None,
        dir_times: HashMap::new(),
        digests: None,
        previous: None,
        previous_dirs: HashSet::new(),
        racy_after: i64::MIN,
        clamp,
        copied: Copied::default(),
        resolved: HashMap::new(),
        looked_up: HashSet::new(),
        made_dirs: HashSet::new(),
    };
    let comps = w.view.resolve(path, true)?;
    match w.view.lookup(&comps) {
        Some(f) if f.meta.is_dir() => return Ok(false),
        Some(_) => return Err(format!("{path}: not a directory")),
        None => {}
    }
    w.ensure_dirs(&comps)?;
    for (path, time) in &w.dir_times {
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
        copy_reusing(fx, srcs, dest, workdir, None).map(|_| ())
    }

    fn copy_reusing(
        fx: &Fixture,
        srcs: &[&str],
        dest: &str,
        workdir: &str,
        previous: Option<&Previous>,
    ) -> Result<Copied, String> {
        let mut sel = Vec::new();
        for s in srcs {
            sel.extend(fx.ctx.select(s).unwrap());
        }
        let digests: HashMap<PathBuf, String> = sel
            .iter()
            .flat_map(|s| std::iter::once(&s.top).chain(&s.children))
            .filter(|e| e.meta.is_file())
            .map(|e| {
                (
                    e.path.clone(),
                    super::super::context::entry_digest(e).unwrap(),
                )
            })
            .collect();
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
                digests: &digests,
                previous,
                // Nothing is too recent to be noted.
                racy_after: i64::MAX,
                clamp: None,
            },
        )
    }

    #[test]
    fn links_from_the_previous_tree_only_what_matches_exactly() {
        let fx = fixture();
        let ctx = fx.ctx.root().to_path_buf();
        fs::write(ctx.join("d/same"), "same").unwrap();
        fs::write(ctx.join("d/mode"), "mode").unwrap();
        fs::write(ctx.join("d/content"), "new").unwrap();
        // A first copy notes what each file came from.
        let first = copy_reusing(&fx, &["d"], "/p/", "/", None).unwrap();
        assert_eq!(first.files.len(), 4, "{:?}", first.files);
        assert!(first.linked.is_empty());
        let prev_dir = tempfile::tempdir().unwrap();
        let tree = prev_dir.path().join("diff");
        fs::rename(&fx.upper, &tree).unwrap();
        fs::create_dir(&fx.upper).unwrap();
        // The previous tree's `mode` differs from what this copy gives it; its
        // `content` was noted from another source.
        fs::set_permissions(tree.join("p/mode"), fs::Permissions::from_mode(0o600)).unwrap();
        let mut files = first.files.clone();
        files.insert("p/content".into(), "0".repeat(64));
        let prev = Previous {
            tree: tree.clone(),
            files,
        };
        let again = copy_reusing(&fx, &["d"], "/p/", "/", Some(&prev)).unwrap();
        let ino = |p: PathBuf| fs::symlink_metadata(p).unwrap().ino();
        assert_eq!(ino(fx.upper.join("p/same")), ino(tree.join("p/same")));
        assert_eq!(ino(fx.upper.join("p/e/g")), ino(tree.join("p/e/g")));
        assert_ne!(ino(fx.upper.join("p/mode")), ino(tree.join("p/mode")));
        assert_ne!(ino(fx.upper.join("p/content")), ino(tree.join("p/content")));
        assert_eq!(again.linked.len(), 2);
        assert_eq!(again.files, first.files, "what each path came from");
        assert_eq!(
            fs::metadata(tree.join("p/mode")).unwrap().mode() & 0o7777,
            0o600,
            "the previous tree was not touched"
        );

        // A previous tree whose parent is a symlink is not read through.
        fs::remove_dir_all(&fx.upper).unwrap();
        fs::create_dir(&fx.upper).unwrap();
        let moved = prev_dir.path().join("elsewhere");
        fs::rename(tree.join("p"), &moved).unwrap();
        std::os::unix::fs::symlink(&moved, tree.join("p")).unwrap();
        let third = copy_reusing(&fx, &["d"], "/p/", "/", Some(&prev)).unwrap();
        assert!(third.linked.is_empty());
        assert_ne!(ino(fx.upper.join("p/same")), ino(moved.join("same")));
    }

    #[test]
    fn times_are_clamped_and_made_directories_dated_by_the_epoch() {
        let fx = fixture();
        let ctx = fx.ctx.root().to_path_buf();
        let at = |secs: u64| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        let old = ctx.join("d/old");
        fs::write(&old, "old").unwrap();
        fs::File::open(&old)
            .unwrap()
            .set_modified(at(1_000))
            .unwrap();
        std::os::unix::fs::symlink("old", ctx.join("d/link")).unwrap();
        let sel = fx.ctx.select("d").unwrap();
        let copy = |upper: &Path, clamp: Option<i64>| {
            copy_into(
                upper,
                std::slice::from_ref(&fx.lower),
                &CopySpec {
                    selections: &sel,
                    dest: "/opt/new/",
                    workdir: "/",
                    owner: fx.me,
                    keep_owner: false,
                    chmod: None,
                    multiple: false,
                    digests: &HashMap::new(),
                    previous: None,
                    racy_after: i64::MAX,
                    clamp,
                },
            )
            .unwrap();
        };
        let mtime = |p: &Path| fs::symlink_metadata(p).unwrap().mtime();
        copy(&fx.upper, Some(5_000));
        // Newer than the epoch: clamped (files, links, copied and lower directories);
        // older: kept; made by the copy: the epoch.
        for p in ["opt/new/e/g", "opt/new/link", "opt/new/e", "opt"] {
            assert_eq!(mtime(&fx.upper.join(p)), 5_000, "{p}");
        }
        assert_eq!(mtime(&fx.upper.join("opt/new/old")), 1_000);
        assert_eq!(mtime(&fx.upper.join("opt/new")), 5_000);
        // Without an epoch, times are the sources' and what the copy made is dated 0,
        // never the time of the build.
        let plain = tempfile::tempdir().unwrap();
        copy(plain.path(), None);
        assert_eq!(mtime(&plain.path().join("opt/new")), 0);
        assert_eq!(
            mtime(&plain.path().join("opt/new/link")),
            mtime(&ctx.join("d/link"))
        );
        assert_eq!(
            fs::metadata(plain.path().join("opt/new")).unwrap().mode() & 0o7777,
            0o755
        );
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
                fx.me,
                None
            )
            .unwrap()
        );
        assert!(
            mkdir_into(
                &fx.upper,
                std::slice::from_ref(&fx.lower),
                "/opt/new/deep",
                fx.me,
                None
            )
            .unwrap()
        );
        assert!(fx.upper.join("opt/new/deep").is_dir());
        assert!(!fx.upper.join("opt/existing").exists());
    }
}
