//! `images`: which images to list, with moby's rules (`daemon/images/images.go`).
//!
//! - Intermediate images (no name, but children) are left out unless `all`.
//! - `dangling=true`: images without a tag and without children; `dangling=false`:
//!   everything else that would be listed.
//! - `reference=PATTERN`: images with a name matching the `path.Match` glob against
//!   the familiar name (`busybox`) or the familiar reference (`busybox:latest`); only
//!   the matching names are kept on the record, unnamed images are left out.
//! - `label=K` / `label=K=V`: all must match the config's labels.
//! - `before=IMAGE` / `since=IMAGE`: created strictly before / after that image.

use std::collections::{BTreeMap, HashSet};

use crate::config::ImageConfig;
use crate::error::StoreError;
use crate::filters::{FilterError, Filters, labels_match, path_match};
use crate::images::ImageRecord;
use crate::reference::ImageRef;
use crate::store::Store;

/// The filter keys `images` accepts.
pub const IMAGE_FILTERS: [&str; 5] = ["before", "dangling", "label", "reference", "since"];

/// What `images` asks for.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// `-a`: include intermediate images.
    pub all: bool,
    pub filters: Filters,
}

impl Store {
    /// The images `opts` selects, newest first.
    pub fn list_images(&self, opts: &ListOptions) -> Result<Vec<ImageRecord>, StoreError> {
        let f = &opts.filters;
        f.validate(&IMAGE_FILTERS)?;
        let dangling = f.bool("dangling")?;
        let patterns = f.get("reference");
        for p in patterns {
            path_match(p, "")?;
        }
        let before = self.created_of_filter(f.get("before"))?;
        let since = self.created_of_filter(f.get("since"))?;
        let labels = f.get("label");

        let images = self.images()?;
        let parents: HashSet<_> = images.iter().filter_map(|i| i.parent.clone()).collect();
        let mut out = Vec::new();
        for mut img in images {
            let has_children = parents.contains(&img.id);
            if dangling == Some(true) && has_children {
                continue;
            }
            if before.is_some() || since.is_some() {
                let created = self.precise_created(&img)?;
                if before.is_some_and(|b| created >= b) || since.is_some_and(|s| created <= s) {
                    continue;
                }
            }
            if !labels.is_empty() {
                let config = self.config(&img.id)?;
                if !labels_match(labels, &config_labels(&config)) {
                    continue;
                }
            }
            if !patterns.is_empty() {
                let keep = |r: &ImageRef| patterns.iter().any(|p| reference_matches(p, r));
                img.tags.retain(keep);
                img.digests.retain(keep);
            }
            if img.tags.is_empty() && img.digests.is_empty() {
                if has_children && !opts.all {
                    continue;
                }
                if dangling == Some(false) || !patterns.is_empty() {
                    continue;
                }
            } else if dangling == Some(true) && !img.tags.is_empty() {
                continue;
            }
            out.push(img);
        }
        Ok(out)
    }

    /// The creation time of the image named by a `before`/`since` filter, to the
    /// nanosecond when the config has it.
    fn created_of_filter(&self, values: &[String]) -> Result<Option<(i64, u32)>, StoreError> {
        match values {
            [] => Ok(None),
            [one] => {
                let img = self.resolve(one)?;
                Ok(Some(self.precise_created(&img)?))
            }
            _ => {
                Err(FilterError::Other("only one image may be given to before/since".into()).into())
            }
        }
    }

    fn precise_created(&self, img: &ImageRecord) -> Result<(i64, u32), StoreError> {
        Ok(self
            .config(&img.id)?
            .created_time()
            .map_or((img.created, 0), |t| {
                (t.timestamp(), t.timestamp_subsec_nanos())
            }))
    }
}

/// The config's labels (`config.Labels`), empty when there are none.
pub fn config_labels(config: &ImageConfig) -> BTreeMap<String, String> {
    config
        .config
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default()
}

/// distribution/reference's `FamiliarMatch`: the pattern against the familiar string,
/// then against the familiar name.
pub fn reference_matches(pattern: &str, r: &ImageRef) -> bool {
    path_match(pattern, &r.familiar()).unwrap_or(false)
        || path_match(pattern, &r.familiar_name()).unwrap_or(false)
}
