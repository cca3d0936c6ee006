//! `RUN --mount`s as the sandbox sees them: extra binds, tmpfs and throw-away overlays
//! mounted after the rootfs set-up and before pivot_root(2).
//!
//! Targets are resolved inside the rootfs the way a symlink-following lookup would
//! resolve them if the rootfs were `/` (absolute links restart at the rootfs, `..`
//! stops there), so no target can point outside it. Missing components are created
//! (directories; the last one an empty file when the source is a file) and removed
//! again after the run when still empty, with their parents' times put back, so the
//! mount points never land in a layer (BuildKit's mount stub cleaner does the same).

use std::ffi::{CString, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::mount::MsFlags;

use super::mounts::{DEV_LINKS, MountOp, Need};
pub use super::stubs::Stubs;

/// One extra mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxMount {
    /// The host path to bind (or the lower dir of an overlay); `None` for tmpfs.
    pub source: Option<PathBuf>,
    /// Absolute path inside the rootfs.
    pub target: String,
    pub kind: MountKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    Bind {
        readonly: bool,
    },
    Tmpfs {
        size: Option<u64>,
    },
    /// `source` as the read-only lower dir of an overlay whose upper and work dirs
    /// (on one file system, empty, thrown away by the caller) take the writes.
    Overlay {
        upper: PathBuf,
        work: PathBuf,
    },
}

/// Resolves `target` (absolute or not, always taken from the rootfs's `/`) inside
/// `root`: the returned path is below `root`, its existing components are not symlinks.
pub fn resolve_in_root(root: &Path, target: &str) -> io::Result<PathBuf> {
    let mut pending: Vec<OsString> = Vec::new(); // reversed: pop gives the next one
    push_components(&mut pending, Path::new(target));
    let mut stack: Vec<OsString> = Vec::new();
    let mut links = 0;
    let mut missing = false;
    while let Some(c) = pending.pop() {
        if c == ".." {
            stack.pop();
            continue;
        }
        let mut cand = root.to_path_buf();
        cand.extend(&stack);
        cand.push(&c);
        if missing {
            stack.push(c);
            continue;
        }
        match fs::symlink_metadata(&cand) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > 40 {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let link = fs::read_link(&cand)?;
                if link.is_absolute() {
                    stack.clear();
                }
                push_components(&mut pending, &link);
            }
            Ok(_) => stack.push(c),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing = true;
                stack.push(c);
            }
            Err(e) => return Err(e),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&stack);
    Ok(out)
}

/// Pushes `p`'s components so that popping yields them in order.
fn push_components(pending: &mut Vec<OsString>, p: &Path) {
    let comps: Vec<OsString> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    pending.extend(comps.into_iter().rev());
}

/// Resolves every target and creates the missing mount points; returns the resolved
/// host paths (in `mounts`' order) and what to remove afterwards.
pub fn prepare(root: &Path, mounts: &[SandboxMount]) -> io::Result<(Vec<PathBuf>, Stubs)> {
    let mut stubs = Stubs::default();
    let mut out = Vec::new();
    for m in mounts {
        if !m.target.starts_with('/') {
            return Err(io::Error::other(format!(
                "mount target {:?} is not an absolute path",
                m.target
            )));
        }
        // The sandbox's own /dev is a tmpfs mounted over the image's: a mount point in
        // it is made there, in the child (see `ops`), not in the rootfs.
        if let Some(rel) = under_sandbox_dev(&m.target) {
            // Its symlinks point out of the rootfs until pivot_root: not through them.
            let first = rel.components().next().map(|c| c.as_os_str());
            if first.is_some_and(|f| f == "ptmx" || DEV_LINKS.iter().any(|(l, _)| f == *l)) {
                return Err(io::Error::other(format!(
                    "mount target {:?} is under a symlink of the sandbox's /dev",
                    m.target
                )));
            }
            out.push(root.join("dev").join(rel));
            continue;
        }
        let resolved = resolve_in_root(root, &m.target)?;
        if resolved == root {
            return Err(io::Error::other(format!(
                "cannot mount on the root directory ({:?})",
                m.target
            )));
        }
        let file = match (&m.kind, &m.source) {
            (MountKind::Bind { .. }, Some(s)) => !fs::metadata(s)?.is_dir(),
            _ => false,
        };
        let rel = resolved.strip_prefix(root).expect("resolved below root");
        let mut at = root.to_path_buf();
        let n = rel.components().count();
        for (i, c) in rel.components().enumerate() {
            at.push(c);
            match fs::symlink_metadata(&at) {
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            if i + 1 == n && file {
                stubs.create_file(&at)?;
            } else {
                stubs.create_dir(&at)?;
            }
        }
        out.push(resolved);
    }
    Ok((out, stubs))
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("paths have no NUL")
}

/// `target` below `/dev` (made lexically clean: `..` stops at `/`), relative to it.
fn under_sandbox_dev(target: &str) -> Option<PathBuf> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in Path::new(target).components() {
        match c {
            Component::Normal(n) => parts.push(n),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    match parts.split_first() {
        Some((first, rest)) if *first == "dev" && !rest.is_empty() => Some(rest.iter().collect()),
        _ => None,
    }
}

/// The mount operations for `mounts` on their resolved targets in `root`.
pub fn ops(root: &Path, mounts: &[SandboxMount], targets: &[PathBuf]) -> Vec<MountOp> {
    use MsFlags as F;
    let mut out = Vec::new();
    let dev = root.join("dev");
    for (m, t) in mounts.iter().zip(targets) {
        let target = cpath(t);
        // A mount point in the sandbox's /dev tmpfs: made once that is mounted.
        if let Ok(rel) = t.strip_prefix(&dev) {
            let mut at = dev.clone();
            let n = rel.components().count();
            for (i, c) in rel.components().enumerate() {
                at.push(c);
                let file = i + 1 == n
                    && matches!(m.kind, MountKind::Bind { .. })
                    && m.source.as_deref().is_some_and(|s| !s.is_dir());
                out.push(if file {
                    MountOp::Touch { path: cpath(&at) }
                } else {
                    MountOp::Mkdir {
                        path: cpath(&at),
                        mode: 0o755,
                    }
                });
            }
        }
        match &m.kind {
            MountKind::Bind { readonly } => {
                out.push(MountOp::Mount {
                    source: m.source.as_deref().map(cpath),
                    target: target.clone(),
                    fstype: None,
                    flags: F::MS_BIND | F::MS_REC,
                    data: None,
                    need: Need::Required,
                });
                if *readonly {
                    out.push(MountOp::Mount {
                        source: None,
                        target,
                        fstype: None,
                        flags: F::MS_BIND | F::MS_REMOUNT | F::MS_RDONLY,
                        data: None,
                        need: Need::Required,
                    });
                }
            }
            MountKind::Tmpfs { size } => out.push(MountOp::Mount {
                source: Some(c"tmpfs".to_owned()),
                target,
                fstype: Some(c"tmpfs".to_owned()),
                flags: F::MS_NOSUID | F::MS_NODEV | F::MS_STRICTATIME,
                data: Some(
                    CString::new(match size {
                        Some(s) => format!("mode=1777,size={s}"),
                        None => "mode=1777".to_string(),
                    })
                    .expect("no NUL"),
                ),
                need: Need::Required,
            }),
            MountKind::Overlay { upper, work } => {
                let lower = m.source.as_deref().unwrap_or(Path::new("/"));
                let data = format!(
                    "lowerdir={},upperdir={},workdir={}",
                    escape(lower),
                    escape(upper),
                    escape(work)
                );
                out.push(MountOp::Mount {
                    source: Some(c"overlay".to_owned()),
                    target,
                    fstype: Some(c"overlay".to_owned()),
                    flags: F::empty(),
                    data: Some(CString::new(data).expect("paths have no NUL")),
                    need: Need::Required,
                });
            }
        }
    }
    out
}

/// Overlay option values escape `,` `:` and `\` with a backslash.
fn escape(p: &Path) -> String {
    let mut s = String::new();
    for ch in p.to_string_lossy().chars() {
        if matches!(ch, ',' | ':' | '\\') {
            s.push('\\');
        }
        s.push(ch);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn targets_resolve_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir_all(r.join("a/b")).unwrap();
        symlink("/etc", r.join("a/abs")).unwrap();
        symlink("../../..", r.join("a/b/up")).unwrap();
        assert_eq!(resolve_in_root(r, "/a/abs/x").unwrap(), r.join("etc/x"));
        assert_eq!(resolve_in_root(r, "/a/b/up/etc").unwrap(), r.join("etc"));
        assert_eq!(resolve_in_root(r, "/../../x").unwrap(), r.join("x"));
        assert_eq!(resolve_in_root(r, "/new/../a/b").unwrap(), r.join("a/b"));
        symlink("loop", r.join("loop")).unwrap();
        assert!(resolve_in_root(r, "/loop/x").is_err());
    }

    #[test]
    fn stubs_are_created_and_removed() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let src = tempfile::NamedTempFile::new().unwrap();
        symlink("/", r.join("escape")).unwrap();
        let mounts = vec![
            SandboxMount {
                source: None,
                target: "/escape/x/y".into(),
                kind: MountKind::Tmpfs { size: Some(1024) },
            },
            SandboxMount {
                source: Some(src.path().to_path_buf()),
                target: "/run/secrets/s".into(),
                kind: MountKind::Bind { readonly: true },
            },
            // In the sandbox's own /dev: made in the child, not in the rootfs.
            SandboxMount {
                source: Some(src.path().to_path_buf()),
                target: "/dev/../dev/pipes/EOF".into(),
                kind: MountKind::Bind { readonly: false },
            },
        ];
        let (targets, mut stubs) = prepare(r, &mounts).unwrap();
        assert_eq!(
            targets,
            [
                r.join("x/y"),
                r.join("run/secrets/s"),
                r.join("dev/pipes/EOF")
            ]
        );
        assert!(r.join("x/y").is_dir() && r.join("run/secrets/s").is_file());
        assert!(!r.join("dev").exists());
        for bad in ["/dev/fd/3", "/dev/stdout", "/dev/ptmx"] {
            let m = SandboxMount {
                source: Some(src.path().to_path_buf()),
                target: bad.into(),
                kind: MountKind::Bind { readonly: true },
            };
            let err = prepare(r, &[m]).map(|_| ()).unwrap_err();
            assert!(err.to_string().contains("symlink"), "{bad}: {err}");
        }
        let ops = ops(r, &mounts, &targets);
        assert_eq!(ops.len(), 3 + 3);
        let cs = |p: &Path| CString::new(p.as_os_str().as_bytes()).unwrap();
        assert_eq!(
            ops[3],
            MountOp::Mkdir {
                path: cs(&r.join("dev/pipes")),
                mode: 0o755
            }
        );
        assert_eq!(
            ops[4],
            MountOp::Touch {
                path: cs(&r.join("dev/pipes/EOF"))
            }
        );
        stubs.remove().unwrap();
        let left: Vec<_> = fs::read_dir(r)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["escape"]);
        assert!(
            prepare(
                r,
                &[SandboxMount {
                    source: None,
                    target: "/".into(),
                    kind: MountKind::Tmpfs { size: None }
                }]
            )
            .is_err()
        );
    }
}
