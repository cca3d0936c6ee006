//! `history`: an image's config history, newest first, with the local image each step
//! left behind where there is one.
//!
//! Docker (moby `daemon/images/image_history.go`) gives the newest entry the image's
//! ID, the next its parent's, and so on up the parent chain — right for its legacy
//! builder, which committed one image per history entry, wrong otherwise. rbuild's
//! rule: an ancestor (found by following `parent`) is the image of entry `k` (oldest
//! first, counting from 1) when its config history is exactly the first `k` entries of
//! this image's history and its layers are the first layers of this image. Entries no
//! ancestor matches have no ID (`<missing>`).

use chrono::{DateTime, Utc};

use crate::digest::Digest;
use crate::error::StoreError;
use crate::reference::ImageRef;
use crate::store::Store;

/// One row of `history`.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    /// The local image this step produced, if one is known.
    pub id: Option<Digest>,
    /// That image's `name:tag` references.
    pub tags: Vec<ImageRef>,
    pub created: Option<DateTime<Utc>>,
    pub created_by: String,
    pub comment: String,
    /// Bytes of the layer this step added (0 for config-only steps).
    pub size: u64,
    pub empty_layer: bool,
}

impl Store {
    /// The history of image `id`, newest first.
    pub fn history(&self, id: &Digest) -> Result<Vec<HistoryEntry>, StoreError> {
        let config = self.config(id)?;
        let mut entries = Vec::with_capacity(config.history.len());
        let mut layer = 0;
        for h in &config.history {
            let mut size = 0;
            if !h.empty_layer {
                let diff_id =
                    config
                        .rootfs
                        .diff_ids
                        .get(layer)
                        .ok_or_else(|| StoreError::BadConfig {
                            digest: id.clone(),
                            reason: "more non-empty history entries than layers".into(),
                        })?;
                size = self.layer_size(diff_id)?.unwrap_or(0);
                layer += 1;
            }
            entries.push(HistoryEntry {
                id: None,
                tags: Vec::new(),
                created: h.created_time(),
                created_by: h.created_by.clone().unwrap_or_default(),
                comment: h.comment.clone().unwrap_or_default(),
                size,
                empty_layer: h.empty_layer,
            });
        }
        // Walk the parent chain, matching ancestors to history prefixes.
        let mut next = Some(id.clone());
        let mut seen = 0;
        while let Some(cur) = next.take() {
            let Some(img) = self.image(&cur)? else { break };
            let Ok(c) = self.config(&cur) else { break };
            let k = c.history.len();
            if k > 0
                && k <= config.history.len()
                && c.history[..] == config.history[..k]
                && config.rootfs.diff_ids.starts_with(&c.rootfs.diff_ids)
                && entries[k - 1].id.is_none()
            {
                entries[k - 1].id = Some(img.id.clone());
                entries[k - 1].tags = img.tags.clone();
            }
            next = img.parent;
            // A parent cycle cannot be recorded, but stay finite on a damaged store.
            seen += 1;
            if seen > 10_000 {
                break;
            }
        }
        entries.reverse();
        Ok(entries)
    }
}
