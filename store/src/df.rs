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

impl Store {
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
