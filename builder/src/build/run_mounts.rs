//! `RUN --mount` into sandbox mounts (BuildKit's semantics):
//!
//! - `type=cache`: a persistent directory per id (default: the target) at
//!   `<store>/cache-mounts/<sanitized id>/`, made with `uid`/`gid`/`mode` (default
//!   0:0, 0755) the first time. Never part of a layer; GC leaves it alone. `sharing=shared`
//!   (default) holds a shared flock on it for the step, `locked` an exclusive one
//!   (waiting for every other user), `private` an exclusive one if it can get it at once
//!   and otherwise a fresh empty directory that is thrown away after the step.
//!   With `from=` (a stage or image) the cache starts as a copy of its `source`
//!   directory, and is a separate cache per id *and* seed contents, as in BuildKit.
//! - `type=tmpfs`: an empty tmpfs, `size=` bytes at most.
//! - `type=bind`: `source` (default `/`) in the build context, or in the root of the
//!   `from=` stage or image (its layers in a read-only snapshot), resolved inside that
//!   root. Read-only unless `rw`; with `rw` the writes go to a throw-away overlay upper dir
//!   (a copy for a single file) and are discarded after the step.
//! - `type=secret`: the `--secret` with that id (default: the target's file name),
//!   mounted read-only at `target` (default `/run/secrets/ID`) from a private copy outside
//!   the rootfs (mode 0400 unless `mode=`, owner `uid`/`gid`), or given as the variable
//!   `env=` (and only then also a file when a target is given). A missing secret is an
//!   error with `required=true` and skipped otherwise, as in BuildKit.
//! - `type=ssh`: no agent is forwarded, so as in BuildKit without one: an error with
//!   `required=true`, left out otherwise.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};

use rbuild_parser::instruction::{Mount, MountType, Sharing};
use rbuild_store::{Digest, Store};

use crate::sandbox::extra::resolve_in_root;
use crate::sandbox::{MountKind, SandboxMount};
use crate::snapshot::Snapshot;

/// What a RUN's mounts need the sandbox to do, and what must live until it is done.
#[derive(Default)]
pub(super) struct Prepared {
    pub mounts: Vec<SandboxMount>,
    /// `env=` secrets, `KEY=value`.
    pub env: Vec<String>,
    /// Locks, temporary dirs and snapshots, released on drop.
    _keep: Vec<Keep>,
    /// The cache directories this step holds a lock on.
    locked: Vec<PathBuf>,
}

enum Keep {
    Lock(#[allow(dead_code)] File),
    Temp(#[allow(dead_code)] tempfile::TempDir),
    Snapshot(#[allow(dead_code)] Snapshot),
}

/// Where `RUN --mount from=` names lead: stage names (lower case), stage indexes and
/// image references, to their layers (bottom first).
pub type MountSources = BTreeMap<String, Vec<Digest>>;

pub(super) struct Inputs<'a> {
    pub store: &'a Store,
    pub context: &'a Path,
    pub secrets: &'a BTreeMap<String, Vec<u8>>,
    pub sources: &'a MountSources,
    pub workdir: &'a str,
    /// Whether to stop waiting for a cache lock (Ctrl-C, or another stage failed).
    pub cancel: &'a (dyn Fn() -> bool + Sync),
}

/// The directory name of a cache id: readable characters kept, the rest `_`, plus a
/// short hash so that different ids never share a directory.
pub fn cache_dir_name(id: &str) -> String {
    cache_dir_name_seeded(id, "")
}

/// As [`cache_dir_name`], for a cache seeded from `seed` (what `from=` gave it): the
/// hash covers both, so each seed has its own cache.
fn cache_dir_name_seeded(id: &str, seed: &str) -> String {
    use sha2::{Digest as _, Sha256};
    let readable: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let mut h = Sha256::new();
    h.update(id.as_bytes());
    if !seed.is_empty() {
        h.update(b"\0");
        h.update(seed.as_bytes());
    }
    let hash = h.finalize();
    let hex: String = hash[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{hex}", readable.trim_start_matches('.'))
}

fn absolute(workdir: &str, target: &str) -> String {
    if target.starts_with('/') {
        target.to_string()
    } else {
        format!("{}/{target}", workdir.trim_end_matches('/'))
    }
}

fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> String {
    move |e| format!("{what}: {e}")
}

fn flock(f: &File, op: libc::c_int) -> std::io::Result<()> {
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// flock(2) `op` on `f`, waiting for it as long as `cancel` says to; polled, so a
/// cache another build holds for long never makes the step deaf to Ctrl-C.
fn wait_lock(f: &File, op: libc::c_int, cancel: &dyn Fn() -> bool) -> Result<(), String> {
    loop {
        match flock(f, op | libc::LOCK_NB) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => {
                if cancel() {
                    return Err("interrupted while waiting for a cache mount's lock".into());
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => return Err(format!("locking the cache mount: {e}")),
        }
    }
}

fn private_temp(parent: &Path, prefix: &str) -> Result<tempfile::TempDir, String> {
    fs::create_dir_all(parent).map_err(io(format!("creating {}", parent.display())))?;
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(parent)
        .map_err(io("creating a temporary directory"))
}

pub(super) fn prepare(inp: &Inputs<'_>, mounts: &[Mount]) -> Result<Prepared, String> {
    let mut p = Prepared::default();
    for m in mounts {
        match m.kind {
            MountType::Cache => cache(inp, m, &mut p)?,
            MountType::Tmpfs => {
                let target = m.target.as_deref().ok_or("tmpfs mount needs a target")?;
                p.mounts.push(SandboxMount {
                    source: None,
                    target: absolute(inp.workdir, target),
                    kind: MountKind::Tmpfs { size: m.size },
                });
            }
            MountType::Bind => bind(inp, m, &mut p)?,
            MountType::Secret => secret(inp, m, &mut p)?,
            // rbuild forwards no SSH agent (it has no `--ssh`): like BuildKit with none
            // forwarded, a required mount fails and an optional one is left out.
            MountType::Ssh if m.required => {
                return Err(format!(
                    "no SSH key {:?} forwarded from the client (rbuild does not forward SSH agents)",
                    m.id.as_deref().unwrap_or("default")
                ));
            }
            MountType::Ssh => {}
        }
    }
    Ok(p)
}

fn cache(inp: &Inputs<'_>, m: &Mount, p: &mut Prepared) -> Result<(), String> {
    let target = m.target.as_deref().ok_or("cache mount needs a target")?;
    let target = absolute(inp.workdir, target);
    let id = m.id.clone().unwrap_or_else(|| target.clone());
    // With `from=`, the cache starts as a copy of that stage's or image's `source`, and
    // is a different cache for different contents there (BuildKit keys the cache
    // directory on the id and the base ref).
    let seed = match &m.from {
        None => None,
        Some(from) => {
            let layers = from_layers(inp, from)?;
            let src = m.source.as_deref().unwrap_or("/");
            Some((layers, src))
        }
    };
    let name = match &seed {
        None => cache_dir_name(&id),
        Some((layers, src)) => {
            let layers: Vec<String> = layers.iter().map(|d| d.to_string()).collect();
            cache_dir_name_seeded(&id, &format!("{}:{src}", layers.join(",")))
        }
    };
    let base = inp.store.root().join("cache-mounts");
    fs::create_dir_all(&base).map_err(io(format!("creating {}", base.display())))?;
    let dir = base.join(name);
    let make = |dir: &Path| -> Result<(), String> {
        if let Some((layers, src)) = &seed {
            let snap = Snapshot::prepare(inp.store, layers).map_err(|e| e.to_string())?;
            let from = resolve_in_root(snap.merged(), src)
                .map_err(io(format!("cache mount source {src:?}")))?;
            if !fs::metadata(&from).is_ok_and(|m| m.is_dir()) {
                return Err(format!(
                    "cache mount source {src:?}: not a directory in {}",
                    m.from.as_deref().unwrap_or_default()
                ));
            }
            fs::remove_dir(dir).map_err(io("setting up the cache directory"))?;
            crate::snapshot::copy_tree(&from, dir).map_err(|e| e.to_string())?;
        }
        // A seeded cache keeps its source's owner and mode unless the flags say otherwise.
        let (uid, gid, mode) = match seed {
            None => (m.uid.or(Some(0)), m.gid.or(Some(0)), m.mode.or(Some(0o755))),
            Some(_) => (m.uid, m.gid, m.mode),
        };
        let set = || -> std::io::Result<()> {
            chown(dir, uid, gid)?;
            match mode {
                Some(mode) => fs::set_permissions(dir, fs::Permissions::from_mode(mode)),
                None => Ok(()),
            }
        };
        set().map_err(io("setting up the cache directory"))
    };
    if !dir.exists() {
        // Made aside and renamed, so a concurrent build never sees it half set up.
        let tmp = private_temp(&base, ".new-")?;
        make(tmp.path())?;
        let made = tmp.keep();
        if fs::rename(&made, &dir).is_err() {
            let _ = fs::remove_dir_all(&made);
        }
    }
    // A step that mounts one cache twice holds its lock once (a second flock on
    // another descriptor would wait for the first forever).
    if p.locked.contains(&dir) {
        p.mounts.push(SandboxMount {
            source: Some(dir),
            target,
            kind: MountKind::Bind {
                readonly: m.readonly,
            },
        });
        return Ok(());
    }
    let lock = File::open(&dir).map_err(io(format!("opening {}", dir.display())))?;
    let sharing = m.sharing.unwrap_or(Sharing::Shared);
    let source = match sharing {
        Sharing::Shared => {
            wait_lock(&lock, libc::LOCK_SH, inp.cancel)?;
            dir
        }
        Sharing::Locked => {
            wait_lock(&lock, libc::LOCK_EX, inp.cancel)?;
            dir
        }
        Sharing::Private => match flock(&lock, libc::LOCK_EX | libc::LOCK_NB) {
            Ok(()) => dir,
            Err(_) => {
                let tmp = private_temp(&base, ".private-")?;
                make(tmp.path())?;
                let path = tmp.path().to_path_buf();
                p._keep.push(Keep::Temp(tmp));
                path
            }
        },
    };
    p.locked.push(source.clone());
    p._keep.push(Keep::Lock(lock));
    p.mounts.push(SandboxMount {
        source: Some(source),
        target,
        kind: MountKind::Bind {
            readonly: m.readonly,
        },
    });
    Ok(())
}

/// The layers of the stage or image a mount's `from=` names.
fn from_layers<'a>(inp: &Inputs<'a>, from: &str) -> Result<&'a [Digest], String> {
    inp.sources
        .get(&from.to_lowercase())
        .or_else(|| inp.sources.get(from))
        .map(Vec::as_slice)
        .ok_or_else(|| format!("mount from {from:?}: no such stage or image"))
}

fn bind(inp: &Inputs<'_>, m: &Mount, p: &mut Prepared) -> Result<(), String> {
    let target = m.target.as_deref().ok_or("bind mount needs a target")?;
    let root: PathBuf = match &m.from {
        None => inp.context.to_path_buf(),
        Some(from) if from == "scratch" => {
            let t = private_temp(&inp.store.root().join("tmp"), "bind-scratch-")?;
            let r = t.path().to_path_buf();
            p._keep.push(Keep::Temp(t));
            r
        }
        Some(from) => {
            let layers = from_layers(inp, from)?;
            let snap = Snapshot::prepare(inp.store, layers).map_err(|e| e.to_string())?;
            let r = snap.merged().to_path_buf();
            p._keep.push(Keep::Snapshot(snap));
            r
        }
    };
    let src = m.source.as_deref().unwrap_or("/");
    let resolved = resolve_in_root(&root, src).map_err(io(format!("mount source {src:?}")))?;
    let meta = fs::metadata(&resolved).map_err(|_| {
        format!(
            "failed to calculate checksum of ref: \"/{}\": not found",
            src.trim_start_matches('/')
        )
    })?;
    let target = absolute(inp.workdir, target);
    if m.readonly {
        p.mounts.push(SandboxMount {
            source: Some(resolved),
            target,
            kind: MountKind::Bind { readonly: true },
        });
        return Ok(());
    }
    // rw: writes are discarded after the step.
    let scratch = private_temp(&inp.store.root().join("tmp"), "bind-rw-")?;
    let mount = if meta.is_dir() {
        let (upper, work) = (scratch.path().join("upper"), scratch.path().join("work"));
        for d in [&upper, &work] {
            fs::create_dir(d).map_err(io("creating overlay dirs"))?;
        }
        SandboxMount {
            source: Some(resolved),
            target,
            kind: MountKind::Overlay { upper, work },
        }
    } else {
        let copy = scratch.path().join("file");
        fs::copy(&resolved, &copy).map_err(io(format!("copying {src}")))?;
        SandboxMount {
            source: Some(copy),
            target,
            kind: MountKind::Bind { readonly: false },
        }
    };
    p._keep.push(Keep::Temp(scratch));
    p.mounts.push(mount);
    Ok(())
}

fn secret(inp: &Inputs<'_>, m: &Mount, p: &mut Prepared) -> Result<(), String> {
    let id = match (&m.id, &m.target) {
        (Some(id), _) => id.clone(),
        (None, Some(t)) => Path::new(t)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        (None, None) => return Err("secret mount needs an id or a target".into()),
    };
    let Some(value) = inp.secrets.get(&id) else {
        if m.required {
            return Err(format!(
                "secret {id}: not found (pass it with --secret id={id},src=FILE or env=VAR)"
            ));
        }
        return Ok(());
    };
    if let Some(var) = &m.env {
        p.env
            .push(format!("{var}={}", String::from_utf8_lossy(value)));
        if m.target.is_none() {
            return Ok(());
        }
    }
    let target = match &m.target {
        Some(t) => absolute(inp.workdir, t),
        None => format!("/run/secrets/{id}"),
    };
    // A private directory outside the rootfs (0700 from tempfile), the file 0400.
    let dir = tempfile::Builder::new()
        .prefix("rbuild-secret-")
        .tempdir()
        .map_err(io("creating the secret's directory"))?;
    let file = dir.path().join("secret");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o400)
            .open(&file)
            .map_err(io("writing the secret"))?;
        f.write_all(value).map_err(io("writing the secret"))?;
    }
    chown(&file, Some(m.uid.unwrap_or(0)), Some(m.gid.unwrap_or(0)))
        .map_err(io("setting the secret's owner"))?;
    fs::set_permissions(&file, fs::Permissions::from_mode(m.mode.unwrap_or(0o400)))
        .map_err(io("setting the secret's mode"))?;
    p._keep.push(Keep::Temp(dir));
    p.mounts.push(SandboxMount {
        source: Some(file),
        target,
        kind: MountKind::Bind { readonly: true },
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_dir_names_are_safe_and_distinct() {
        let a = cache_dir_name("/root/.cache");
        assert!(a.starts_with("_root_.cache-"), "{a}");
        assert_ne!(cache_dir_name("a/b"), cache_dir_name("a_b"));
        assert!(!cache_dir_name("../..").contains('/'));
        assert!(!cache_dir_name("..").starts_with('.'));
    }
}
