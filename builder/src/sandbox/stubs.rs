//! Mount points a run had to create in the rootfs (for `/proc`, `/etc/hosts`, a `RUN
//! --mount` target…), removed after the run with their parents' times put back, so
//! they never land in a layer (BuildKit's mount stub cleaner does the same).

use std::fs::{self, File, FileTimes, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// What a run created, in creation order; undone by `remove` (or on drop).
#[derive(Debug, Default)]
pub struct Stubs {
    /// Each path, and whether it is a directory.
    created: Vec<(PathBuf, bool)>,
    times: Vec<(PathBuf, FileTimes)>,
}

impl Stubs {
    /// Creates the directory `path`, whose parent exists.
    pub fn create_dir(&mut self, path: &Path) -> io::Result<()> {
        self.remember_parent(path)?;
        fs::create_dir(path)?;
        self.created.push((path.to_path_buf(), true));
        // 0755 whatever rbuild's umask: a stub the command wrote into stays, in the layer.
        fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        Ok(())
    }

    /// Creates the empty file `path` (never through a symlink), whose parent exists.
    pub fn create_file(&mut self, path: &Path) -> io::Result<()> {
        self.remember_parent(path)?;
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o644)
            .open(path)?;
        self.created.push((path.to_path_buf(), false));
        Ok(())
    }

    fn remember_parent(&mut self, path: &Path) -> io::Result<()> {
        let Some(dir) = path.parent() else {
            return Ok(());
        };
        if self.times.iter().all(|(d, _)| d != dir) {
            let m = fs::metadata(dir)?;
            let t = FileTimes::new()
                .set_accessed(m.accessed()?)
                .set_modified(m.modified()?);
            self.times.push((dir.to_path_buf(), t));
        }
        Ok(())
    }

    /// Removes what was created, deepest first, where it is still an empty directory
    /// or empty file (the command may have put something in a directory: then it
    /// stays), then puts the parents' times back. Runs after the sandbox's mount
    /// namespace is gone, when the mount points are plain again.
    pub fn remove(&mut self) -> io::Result<()> {
        let mut first_err = None;
        for (p, dir) in self.created.drain(..).rev() {
            if dir {
                let _ = fs::remove_dir(&p);
            } else if fs::symlink_metadata(&p).is_ok_and(|m| m.is_file() && m.len() == 0)
                && let Err(e) = fs::remove_file(&p)
                && e.kind() != io::ErrorKind::NotFound
            {
                first_err.get_or_insert(e);
            }
        }
        for (dir, times) in self.times.drain(..).rev() {
            if let Err(e) = File::open(&dir).and_then(|d| d.set_times(times))
                && e.kind() != io::ErrorKind::NotFound
            {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl Drop for Stubs {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}
