//! `system df`: how much the images take and how much removing the unused ones would
//! free.
//!
//! Sizes count each layer once however many images share it (Docker's `LayersSize`).
//! An image is active when it has a tag or a child that is active (so an intermediate
//! image a tagged image was built on counts as used); reclaimable is the size of the
//! layers no active image uses — what `image prune -a` would free.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::digest::Digest;
use crate::error::StoreError;
use crate::store::Store;

/// The totals of `system df`.
#[derive(Debug, Default, Clone)]
pub struct DiskUsage {
    pub images: usize,
    pub active_images: usize,
    /// Bytes of all layers, each counted once.
    pub size: u64,
    /// Bytes of the layers only inactive images use.
    pub reclaimable: u64,
    pub layers: usize,
    /// Layers some active image uses.
    pub active_layers: usize,
}

/// The containers' row of `system df`: their writable layers (upper dirs).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ContainerUsage {
    pub containers: usize,
    pub running: usize,
    /// Bytes of files in every container's upper dir (docker's `SizeRw`).
    pub size: u64,
    /// Bytes of the stopped ones: what `container prune` would free.
    pub reclaimable: u64,
}

/// The build cache's row of `system df`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CacheUsage {
    /// Build cache entries (one per cached step).
    pub entries: usize,
    /// Bytes of layers only the cache keeps: what `builder prune -a` would free.
    pub size: u64,
}

/// Bytes of the regular files under `dir`, never following a symlink.
fn tree_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.path().symlink_metadata() {
            Ok(m) if m.is_dir() => tree_bytes(&e.path()),
            Ok(m) if m.is_file() => m.len(),
            _ => 0,
        })
        .sum()
}

impl Store {
    pub fn container_usage(&self) -> Result<ContainerUsage, StoreError> {
        let mut u = ContainerUsage::default();
        for c in self.containers()? {
            let size = tree_bytes(&self.container_upper_dir(&c.id).upper);
            u.containers += 1;
            u.size += size;
            if c.state == crate::containers::State::Running {
                u.running += 1;
            } else {
                u.reclaimable += size;
            }
        }
        Ok(u)
    }

    pub fn cache_usage(&self) -> Result<CacheUsage, StoreError> {
        let entries: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM build_cache", [], |r| r.get(0))?;
        Ok(CacheUsage {
            entries: entries as usize,
            size: self.cache_size()?,
        })
    }

    pub fn disk_usage(&self) -> Result<DiskUsage, StoreError> {
        let images = self.images()?;
        let by_id: HashMap<&Digest, _> = images.iter().map(|i| (&i.id, i)).collect();
        // Active: tagged, and every ancestor of a tagged image.
        let mut active = BTreeSet::new();
        for img in images.iter().filter(|i| i.is_tagged()) {
            let mut cur = Some(img);
            while let Some(i) = cur {
                if !active.insert(i.id.clone()) {
                    break;
                }
                cur = i.parent.as_ref().and_then(|p| by_id.get(p).copied());
            }
        }
        let mut sizes: BTreeMap<&Digest, u64> = BTreeMap::new();
        for img in &images {
            for l in &img.layers {
                if !sizes.contains_key(l) {
                    sizes.insert(l, self.layer_size(l)?.unwrap_or(0));
                }
            }
        }
        let used: BTreeSet<&Digest> = images
            .iter()
            .filter(|i| active.contains(&i.id))
            .flat_map(|i| &i.layers)
            .collect();
        Ok(DiskUsage {
            images: images.len(),
            active_images: active.len(),
            size: sizes.values().sum(),
            reclaimable: sizes
                .iter()
                .filter(|(d, _)| !used.contains(*d))
                .map(|(_, s)| s)
                .sum(),
            layers: sizes.len(),
            active_layers: used.len(),
        })
    }
}
