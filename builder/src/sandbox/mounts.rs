//! The sandbox's file system set-up as data: what to mount, create and link, in order,
//! computed by plain code and executed in one place (`sys::rootfs_mounts`). Every path
//! is absolute on the host side and below the rootfs, except bind sources.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::mount::MsFlags;

/// When a failing step stops the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Required,
    /// Skipped when the target or source does not exist (ENOENT), e.g. `/proc/acpi`.
    IfExists,
    /// Any error is ignored (a kernel without the file system, e.g. mqueue).
    BestEffort,
}

/// The symlinks of the sandbox's `/dev` (besides `ptmx`), as Docker makes them.
pub const DEV_LINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("core", "/proc/kcore"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOp {
    /// mount(2) with these exact arguments.
    Mount {
        source: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: MsFlags,
        data: Option<CString>,
        need: Need,
    },
    /// mkdir(2); EEXIST is fine.
    Mkdir { path: CString, mode: u32 },
    /// An empty file to bind-mount a device onto.
    Touch { path: CString },
    /// symlink(2): `link` pointing at `target`.
    Symlink { target: CString, link: CString },
}

impl std::fmt::Display for MountOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = |c: &CString| c.to_string_lossy().into_owned();
        match self {
            MountOp::Mount {
                source,
                target,
                fstype,
                flags,
                data,
                ..
            } => write!(
                f,
                "mount {} on {} type {} ({flags:?}{})",
                source.as_ref().map_or("none".into(), s),
                s(target),
                fstype.as_ref().map_or("none".into(), s),
                data.as_ref()
                    .map_or(String::new(), |d| format!(", {}", s(d)))
            ),
            MountOp::Mkdir { path, mode } => write!(f, "mkdir {} mode {mode:o}", s(path)),
            MountOp::Touch { path } => write!(f, "create {}", s(path)),
            MountOp::Symlink { target, link } => write!(f, "symlink {} -> {}", s(link), s(target)),
        }
    }
}

fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL in fixed mount strings")
}

fn under(root: &Path, rel: &str) -> CString {
    CString::new(root.join(rel).as_os_str().as_bytes()).expect("paths have no NUL")
}

fn mount(
    source: Option<CString>,
    target: CString,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
    need: Need,
) -> MountOp {
    MountOp::Mount {
        source,
        target,
        fstype: fstype.map(c),
        flags,
        data: data.map(c),
        need,
    }
}

/// A read-only bind of `source` on `target`: a bind, then a remount that sets the
/// flags, since mount(2) ignores MS_RDONLY on the first MS_BIND call (mount(2), "Creating
/// a bind mount").
fn ro_bind(out: &mut Vec<MountOp>, source: CString, target: CString, need: Need) {
    out.push(mount(
        Some(source),
        target.clone(),
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
        need,
    ));
    out.push(mount(
        None,
        target,
        None,
        MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC,
        None,
        need,
    ));
}

/// Device nodes bind-mounted from the host (as rootless runtimes do). Never mknod'ed:
/// `/dev` itself is `nodev`, so a node the command creates there cannot be opened,
/// while a bind keeps the flags of its host source mount.
pub const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Files in /proc that would reveal or change host state; Docker's masked paths.
const PROC_MASKED_FILES: [&str; 6] = [
    "kcore",
    "keys",
    "latency_stats",
    "timer_list",
    "timer_stats",
    "sched_debug",
];
const PROC_MASKED_DIRS: [&str; 2] = ["acpi", "scsi"];
/// Docker's read-only /proc paths: writing them as root would change the host kernel.
const PROC_READONLY: [&str; 5] = ["bus", "fs", "irq", "sys", "sysrq-trigger"];

/// The whole set-up, in order, for a rootfs and the generated `/etc` files
/// (`(host file, path in the rootfs such as "etc/hosts")`).
/// Remounts the root (already a bind mount of itself, `nodev`) read-only: last, after
/// every other mount point was made in it. Not recursive, so the mounts on it keep
/// their own flags.
pub fn readonly_root(rootfs: &Path) -> MountOp {
    let root = CString::new(rootfs.as_os_str().as_bytes()).expect("paths have no NUL");
    mount(
        None,
        root,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_NODEV | MsFlags::MS_RDONLY,
        None,
        Need::Required,
    )
}

pub fn plan(rootfs: &Path, etc_files: &[(&Path, &str)]) -> Vec<MountOp> {
    use MsFlags as F;
    let mut out = Vec::new();
    let root = CString::new(rootfs.as_os_str().as_bytes()).expect("paths have no NUL");

    // Nothing we mount may propagate back to the host's namespace (mount_namespaces(7),
    // "MS_PRIVATE"); pivot_root(2) also requires the old root not to be shared.
    out.push(mount(
        None,
        c("/"),
        None,
        F::MS_REC | F::MS_PRIVATE,
        None,
        Need::Required,
    ));
    // pivot_root(2) needs new_root to be a mount point. `nodev` on it: device nodes the
    // command creates (CAP_MKNOD is in the default set) can be recorded but not opened,
    // which is what the device cgroup gives Docker.
    out.push(mount(
        Some(root.clone()),
        root.clone(),
        None,
        F::MS_BIND | F::MS_REC,
        None,
        Need::Required,
    ));
    out.push(mount(
        None,
        root.clone(),
        None,
        F::MS_BIND | F::MS_REMOUNT | F::MS_NODEV,
        None,
        Need::Required,
    ));

    // A fresh procfs shows the new PID namespace (proc(5)).
    let nsn = F::MS_NOSUID | F::MS_NODEV | F::MS_NOEXEC;
    out.push(mount(
        Some(c("proc")),
        under(rootfs, "proc"),
        Some("proc"),
        nsn,
        None,
        Need::Required,
    ));
    for p in PROC_READONLY {
        let t = under(rootfs, &format!("proc/{p}"));
        ro_bind(&mut out, t.clone(), t, Need::IfExists);
    }
    for p in PROC_MASKED_FILES {
        out.push(mount(
            Some(c("/dev/null")),
            under(rootfs, &format!("proc/{p}")),
            None,
            F::MS_BIND,
            None,
            Need::IfExists,
        ));
    }
    for p in PROC_MASKED_DIRS {
        out.push(mount(
            Some(c("tmpfs")),
            under(rootfs, &format!("proc/{p}")),
            Some("tmpfs"),
            F::MS_RDONLY | nsn,
            None,
            Need::IfExists,
        ));
    }
    // sysfs read-only, only where the image has /sys (it shows the sandbox's network
    // namespace, sysfs(5)).
    out.push(mount(
        Some(c("sysfs")),
        under(rootfs, "sys"),
        Some("sysfs"),
        F::MS_RDONLY | nsn,
        None,
        Need::IfExists,
    ));

    // A minimal /dev, as Docker's: tmpfs, devices, devpts, shm, mqueue, symlinks.
    out.push(mount(
        Some(c("tmpfs")),
        under(rootfs, "dev"),
        Some("tmpfs"),
        F::MS_NOSUID | F::MS_NODEV | F::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
        Need::Required,
    ));
    for d in DEVICES {
        let target = under(rootfs, &format!("dev/{d}"));
        out.push(MountOp::Touch {
            path: target.clone(),
        });
        out.push(mount(
            Some(c(&format!("/dev/{d}"))),
            target,
            None,
            F::MS_BIND,
            None,
            Need::IfExists,
        ));
    }
    out.push(MountOp::Mkdir {
        path: under(rootfs, "dev/pts"),
        mode: 0o755,
    });
    // newinstance: a private pts instance, not the host's ptys (devpts in mount(8)).
    out.push(mount(
        Some(c("devpts")),
        under(rootfs, "dev/pts"),
        Some("devpts"),
        F::MS_NOSUID | F::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
        Need::Required,
    ));
    out.push(MountOp::Symlink {
        target: c("pts/ptmx"),
        link: under(rootfs, "dev/ptmx"),
    });
    out.push(MountOp::Mkdir {
        path: under(rootfs, "dev/shm"),
        mode: 0o1777,
    });
    out.push(mount(
        Some(c("shm")),
        under(rootfs, "dev/shm"),
        Some("tmpfs"),
        nsn,
        Some("mode=1777,size=65536k"),
        Need::Required,
    ));
    out.push(MountOp::Mkdir {
        path: under(rootfs, "dev/mqueue"),
        mode: 0o755,
    });
    out.push(mount(
        Some(c("mqueue")),
        under(rootfs, "dev/mqueue"),
        Some("mqueue"),
        nsn,
        None,
        Need::BestEffort,
    ));
    for (link, target) in DEV_LINKS {
        out.push(MountOp::Symlink {
            target: c(target),
            link: under(rootfs, &format!("dev/{link}")),
        });
    }

    // Generated /etc files, read-only (the caller made the mount points).
    for (host, rel) in etc_files {
        let src = CString::new(host.as_os_str().as_bytes()).expect("paths have no NUL");
        ro_bind(&mut out, src, under(rootfs, rel), Need::Required);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(ops: &[MountOp]) -> Vec<String> {
        ops.iter()
            .filter_map(|op| match op {
                MountOp::Mount { target, .. } => Some(target.to_str().unwrap().to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn everything_lands_under_the_rootfs_after_making_root_private() {
        let ops = plan(Path::new("/r"), &[(Path::new("/tmp/x/hosts"), "etc/hosts")]);
        let t = targets(&ops);
        assert_eq!(t[0], "/");
        assert!(
            matches!(&ops[0], MountOp::Mount { flags, .. } if flags.contains(MsFlags::MS_PRIVATE | MsFlags::MS_REC))
        );
        assert!(
            t[1..].iter().all(|t| t == "/r" || t.starts_with("/r/")),
            "{t:?}"
        );
        for op in &ops {
            match op {
                MountOp::Mkdir { path, .. } | MountOp::Touch { path } => {
                    assert!(path.to_str().unwrap().starts_with("/r/dev/"))
                }
                MountOp::Symlink { link, .. } => {
                    assert!(link.to_str().unwrap().starts_with("/r/dev/"))
                }
                MountOp::Mount { .. } => {}
            }
        }
    }

    #[test]
    fn etc_files_are_bound_then_remounted_read_only() {
        let ops = plan(Path::new("/r"), &[(Path::new("/tmp/x/hosts"), "etc/hosts")]);
        let n = ops.len();
        assert_eq!(
            ops[n - 2],
            mount(
                Some(c("/tmp/x/hosts")),
                c("/r/etc/hosts"),
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
                Need::Required
            )
        );
        assert!(matches!(&ops[n - 1], MountOp::Mount { target, flags, .. }
            if target.to_str() == Ok("/r/etc/hosts") && flags.contains(MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY)));
    }

    #[test]
    fn dev_is_nodev_tmpfs_with_devices_bound_not_created() {
        let ops = plan(Path::new("/r"), &[]);
        let dev = ops
            .iter()
            .position(
                |op| matches!(op, MountOp::Mount { target, .. } if target.to_str() == Ok("/r/dev")),
            )
            .unwrap();
        assert!(
            matches!(&ops[dev], MountOp::Mount { flags, fstype: Some(f), .. } if flags.contains(MsFlags::MS_NODEV) && f.to_str() == Ok("tmpfs"))
        );
        for d in DEVICES {
            let at = ops.iter().position(|op| matches!(op, MountOp::Mount { source: Some(s), target, flags, .. }
                if s.to_str() == Ok(&format!("/dev/{d}")) && target.to_str() == Ok(&format!("/r/dev/{d}"))
                    && *flags == MsFlags::MS_BIND)).unwrap();
            assert!(at > dev);
        }
        let pts = ops
            .iter()
            .position(|op| {
                matches!(op, MountOp::Mount { fstype: Some(f), data: Some(d), .. }
            if f.to_str() == Ok("devpts") && d.to_str().unwrap().contains("newinstance"))
            })
            .unwrap();
        let ptmx = ops.iter().position(|op| matches!(op, MountOp::Symlink { link, .. } if link.to_str() == Ok("/r/dev/ptmx"))).unwrap();
        assert!(dev < pts && pts < ptmx);
    }

    #[test]
    fn proc_comes_before_its_masks() {
        let t = targets(&plan(Path::new("/r"), &[]));
        let proc_at = t.iter().position(|t| t == "/r/proc").unwrap();
        let kcore = t.iter().position(|t| t == "/r/proc/kcore").unwrap();
        let sys = t.iter().position(|t| t == "/r/proc/sys").unwrap();
        assert!(proc_at < kcore && proc_at < sys);
    }
}
