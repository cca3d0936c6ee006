//! The store lock: writers (import, load, build) hold it shared, GC holds it exclusive,
//! so GC never deletes a blob or layer that a writer has stored but not yet recorded.
//!
//! It is an `flock(2)` on `<root>/lock`: the kernel drops it when the process dies,
//! so a `kill -9` never leaves the store locked.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// A held lock; released on drop.
#[derive(Debug)]
pub struct StoreLock {
    file: File,
}

impl StoreLock {
    fn open(root: &Path) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(root.join("lock"))
    }

    /// Waits for and takes the lock shared.
    pub fn shared(root: &Path) -> io::Result<StoreLock> {
        let file = Self::open(root)?;
        file.lock_shared()?;
        Ok(StoreLock { file })
    }

    /// Waits for and takes the lock exclusively.
    pub fn exclusive(root: &Path) -> io::Result<StoreLock> {
        let file = Self::open(root)?;
        file.lock()?;
        Ok(StoreLock { file })
    }

    /// Takes the lock exclusively only if nobody holds it.
    pub fn try_exclusive(root: &Path) -> io::Result<Option<StoreLock>> {
        let file = Self::open(root)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(StoreLock { file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_waits_for_shared() {
        let dir = tempfile::tempdir().unwrap();
        let a = StoreLock::shared(dir.path()).unwrap();
        let b = StoreLock::shared(dir.path()).unwrap();
        assert!(StoreLock::try_exclusive(dir.path()).unwrap().is_none());
        drop(a);
        drop(b);
        let x = StoreLock::try_exclusive(dir.path()).unwrap();
        assert!(x.is_some());
        assert!(StoreLock::try_exclusive(dir.path()).unwrap().is_none());
    }
}
