//! A container's own cgroup, for the freezer: `commit` pauses a running container while
//! it reads the container's changes, as docker does (`docker commit --pause`, default
//! true), so that no file is half-written in the new layer.
//!
//! Where it lives: `<freezer>/rbuild/<container id>`, `<freezer>` being the cgroup v1
//! freezer hierarchy (`/sys/fs/cgroup/freezer`, on hybrid and legacy systems) or the
//! unified hierarchy when `/sys/fs/cgroup` itself is cgroup2. Freezing is
//! `freezer.state` = FROZEN / THAWED in v1 (Documentation/admin-guide/cgroup-v1/
//! freezer-subsystem.rst) and `cgroup.freeze` = 1 / 0 in v2, where `cgroup.events` says
//! `frozen 1` once done (Documentation/admin-guide/cgroup-v2.rst, "Core Interface Files").
//!
//! The sandbox's monitor joins the cgroup before it forks the container's init
//! (`SandboxSpec::cgroup`), so every process of the container is in it. Build RUN steps
//! get none. The directory is removed when the container's process ends, and by `rm`
//! when a killed rbuild left it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The cgroup file system's mount point.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// The parent of every container's cgroup, in the hierarchy used.
const PARENT: &str = "rbuild";
/// How long freezing may take before `commit` gives up (thawing what it froze).
const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which freezer the machine offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// cgroup v1's freezer controller.
    V1,
    /// cgroup v2's core `cgroup.freeze`.
    V2,
}

/// Where containers' cgroups go on this machine, or `None` without a usable freezer.
pub fn hierarchy() -> Option<(Version, PathBuf)> {
    hierarchy_in(Path::new(CGROUP_ROOT))
}

fn hierarchy_in(root: &Path) -> Option<(Version, PathBuf)> {
    // cgroup2 mounted at the root: every cgroup has `cgroup.controllers`, and
    // `cgroup.freeze` exists in every non-root one.
    if root.join("cgroup.controllers").is_file() {
        return Some((Version::V2, root.to_path_buf()));
    }
    let freezer = root.join("freezer");
    freezer
        .join("cgroup.procs")
        .is_file()
        .then_some((Version::V1, freezer))
}

/// One container's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerCgroup {
    pub version: Version,
    /// The cgroup's directory.
    pub dir: PathBuf,
}

impl ContainerCgroup {
    /// Where container `id`'s cgroup is (whether or not it exists).
    pub fn of(id: &str) -> Option<ContainerCgroup> {
        let (version, root) = hierarchy()?;
        Some(ContainerCgroup {
            version,
            dir: root.join(PARENT).join(id),
        })
    }

    /// Container `id`'s cgroup if there is one (it runs, or a killed run left it).
    pub fn existing(id: &str) -> Option<ContainerCgroup> {
        ContainerCgroup::of(id).filter(ContainerCgroup::exists)
    }

    /// Makes container `id`'s cgroup. `Ok(None)` when the machine has no freezer the
    /// container could be put in (no hierarchy, or a read-only one, as inside some
    /// containers): it then runs without, and cannot be paused.
    pub fn create(id: &str) -> io::Result<Option<ContainerCgroup>> {
        let Some(cg) = ContainerCgroup::of(id) else {
            return Ok(None);
        };
        let parent = cg.dir.parent().unwrap_or(&cg.dir);
        for dir in [parent, cg.dir.as_path()] {
            match fs::create_dir(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EROFS | libc::EACCES | libc::EPERM)
                    ) =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Some(cg))
    }

    pub fn exists(&self) -> bool {
        self.dir.is_dir()
    }

    /// The processes in it, as the kernel lists them.
    pub fn pids(&self) -> io::Result<Vec<i32>> {
        Ok(fs::read_to_string(self.dir.join("cgroup.procs"))?
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect())
    }

    /// Freezes every process in it and waits until they are; thawed again when the
    /// returned guard goes (or by [`Frozen::thaw`], which reports errors).
    pub fn freeze(&self) -> io::Result<Frozen<'_>> {
        let frozen = Frozen {
            cg: self,
            live: true,
        };
        self.write_state(true)?;
        let deadline = Instant::now() + FREEZE_TIMEOUT;
        while !self.is_frozen()? {
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{} did not freeze within {FREEZE_TIMEOUT:?}",
                        self.dir.display()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(frozen)
    }

    /// Thaws it whoever froze it: a commit killed while the container was frozen
    /// leaves it so, and a frozen process takes no signal, SIGKILL included, until
    /// thawed (in the v1 freezer).
    pub fn thaw(&self) -> io::Result<()> {
        self.write_state(false)
    }

    /// Whether every process in it is frozen now.
    pub fn is_frozen(&self) -> io::Result<bool> {
        Ok(match self.version {
            // FREEZING while some task has not stopped yet.
            Version::V1 => fs::read_to_string(self.dir.join("freezer.state"))?.trim() == "FROZEN",
            Version::V2 => fs::read_to_string(self.dir.join("cgroup.events"))?
                .lines()
                .any(|l| l.trim() == "frozen 1"),
        })
    }

    fn write_state(&self, frozen: bool) -> io::Result<()> {
        let (file, value) = match (self.version, frozen) {
            (Version::V1, true) => ("freezer.state", "FROZEN"),
            (Version::V1, false) => ("freezer.state", "THAWED"),
            (Version::V2, true) => ("cgroup.freeze", "1"),
            (Version::V2, false) => ("cgroup.freeze", "0"),
        };
        fs::write(self.dir.join(file), value)
    }

    /// Removes the cgroup once its processes are gone; gone already is fine. A process
    /// killed a moment ago may still be listed while the kernel finishes it, so an
    /// EBUSY is retried for a while.
    pub fn remove(&self) -> io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match fs::remove_dir(&self.dir) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// A frozen cgroup; thawed on drop.
#[derive(Debug)]
pub struct Frozen<'a> {
    cg: &'a ContainerCgroup,
    live: bool,
}

impl Frozen<'_> {
    /// Leaves the cgroup frozen until someone thaws it (`pause`).
    pub fn keep(mut self) {
        self.live = false;
    }

    /// Thaws the cgroup, reporting an error `Drop` would swallow.
    pub fn thaw(mut self) -> io::Result<()> {
        self.live = false;
        self.cg.write_state(false)
    }
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        if self.live {
            let _ = self.cg.write_state(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_hierarchy_in_use() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(hierarchy_in(root.path()), None);
        fs::create_dir(root.path().join("freezer")).unwrap();
        fs::write(root.path().join("freezer/cgroup.procs"), "").unwrap();
        assert_eq!(
            hierarchy_in(root.path()),
            Some((Version::V1, root.path().join("freezer")))
        );
        // cgroup2 mounted at the root (a unified system) is the one used.
        fs::write(root.path().join("cgroup.controllers"), "").unwrap();
        assert_eq!(
            hierarchy_in(root.path()),
            Some((Version::V2, root.path().to_path_buf()))
        );
    }
}
