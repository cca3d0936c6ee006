//! `container prune`: removes every container that is not running, as docker does,
//! and says how much of their own files (their `upper/` dirs) went with them.

use std::path::Path;

use crate::containers::State;
use crate::error::StoreError;
use crate::store::Store;

/// What `prune_containers` removed.
#[derive(Debug, Default)]
pub struct PrunedContainers {
    /// Full IDs, in `ps` order.
    pub removed: Vec<String>,
    /// Bytes of the removed containers' own changes.
    pub reclaimed: u64,
}

impl Store {
    /// Removes the created and exited containers (a run whose owner died counts as
    /// exited; its stale mounts are detached by `remove_container`).
    pub fn prune_containers(&self) -> Result<PrunedContainers, StoreError> {
        let mut report = PrunedContainers::default();
        for c in self.containers()? {
            if c.state == State::Running {
                continue;
            }
            let size = tree_size(&self.container_upper_dir(&c.id).upper);
            self.remove_container(&c.id)?;
            report.removed.push(c.id);
            report.reclaimed += size;
        }
        Ok(report)
    }
}

/// Bytes of the regular files under `dir`, not following symbolic links (0 if absent).
fn tree_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}
