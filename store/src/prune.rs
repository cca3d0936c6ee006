//! `image prune --filter …`: which images a prune may take (moby
//! `daemon/images/image_prune.go`), on top of [`Store::prune_images`].

use chrono::{DateTime, Utc};

use crate::error::StoreError;
use crate::filters::{Filters, labels_match, parse_until};
use crate::list::config_labels;
use crate::remove::PruneReport;
use crate::store::Store;

/// The filter keys `image prune` accepts.
pub const PRUNE_FILTERS: [&str; 4] = ["dangling", "label", "label!", "until"];

impl Store {
    /// Prunes as the Docker API does: `dangling=true` (the default) removes untagged
    /// images without children, `dangling=false` every image nothing needs; `until`
    /// keeps images created after that time; `label` requires all of its labels,
    /// `label!` spares images with any of its labels.
    pub fn prune(&self, filters: &Filters, now: DateTime<Utc>) -> Result<PruneReport, StoreError> {
        filters.validate(&PRUNE_FILTERS)?;
        let all = !filters.bool("dangling")?.unwrap_or(true);
        let until = match filters.get("until") {
            [] => None,
            [one] => Some(parse_until(one, now)?),
            _ => {
                return Err(crate::filters::FilterError::Other(
                    "more than one until filter specified".into(),
                )
                .into());
            }
        };
        let want = filters.get("label");
        let not = filters.get("label!");
        let select = |img: &crate::ImageRecord| -> bool {
            if let Some(u) = until {
                let created = self
                    .config(&img.id)
                    .ok()
                    .and_then(|c| c.created_time())
                    .or_else(|| DateTime::from_timestamp(img.created, 0));
                if created.is_some_and(|c| c > u) {
                    return false;
                }
            }
            if want.is_empty() && not.is_empty() {
                return true;
            }
            let Ok(config) = self.config(&img.id) else {
                return false;
            };
            let labels = config_labels(&config);
            labels_match(want, &labels)
                && !not
                    .iter()
                    .any(|l| labels_match(std::slice::from_ref(l), &labels))
        };
        self.prune_images(all, &select)
    }
}
