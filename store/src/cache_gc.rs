//! Build cache GC: `builder prune` and the `max-cache-size` limit, least recently used
//! first, never touching what a named image needs.
//!
//! rbuild's build cache is its intermediate images (each with the `build_cache` rows
//! naming it) and the layers only they keep alive. An image is **needed** when it has a
//! name (tag or digest reference) or is an ancestor of one that has: its layers are the
//! named image's, and it cannot be deleted while it has children anyway. The images
//! the cache may take are the others that are, or descend from, a cache entry's image.
//!
//! Docker's semantics, mapped (docker/cli `builder prune`: "-a: Remove all unused build
//! cache, not just dangling ones"; buildx: "-a: Include internal/frontend images"):
//! - without `all`, only **dangling** cache goes: entries whose image no named image
//!   needs (left over from builds whose tag moved on), with those images and the
//!   layers only they held;
//! - with `all`, every cache entry goes: also the entries of the steps the named images
//!   were built from (rows only — their images and layers stay, as the named images
//!   need them), so the next build runs every step again, as after `docker builder
//!   prune -a`.
//!
//! Eviction order is least recently used first (an entry is used when made and when a
//! build hits it, [`Store::touch_cache`]); an image is only taken after every image
//! built on it, so a chain is trimmed from its newest end. `keep_storage` stops as soon
//! as the cache's own bytes (layers no needed image uses) fit; `until` spares what was
//! used more recently than that.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::params;

use crate::digest::Digest;
use crate::error::StoreError;
use crate::images::ImageRecord;
use crate::registry::settings::{RegistrySettings, SettingsError};
use crate::store::{Store, io_err};

/// The `config.json` key of the cache limit: bytes, or a size such as `"10GB"`.
pub const MAX_CACHE_SIZE_KEY: &str = "max-cache-size";

/// What a cache prune may take.
#[derive(Debug, Clone, Default)]
pub struct CachePrune {
    /// Every entry, not only dangling ones.
    pub all: bool,
    /// Stop once the cache's bytes are at most this (`--keep-storage`).
    pub keep_storage: Option<u64>,
    /// Only entries last used before this (`--filter until=`).
    pub until: Option<DateTime<Utc>>,
}

/// What a cache prune did.
#[derive(Debug, Default, Clone)]
pub struct CachePruneReport {
    /// Images deleted, in the order they went.
    pub images: Vec<Digest>,
    /// Cache entries (keys) deleted.
    pub entries: usize,
    /// Bytes freed on disk (layer trees and blobs), as GC counts them.
    pub reclaimed: u64,
}

impl Store {
    /// `builder prune`: waits for running builds, prunes, then collects garbage.
    pub fn prune_build_cache(&self, opts: &CachePrune) -> Result<CachePruneReport, StoreError> {
        let _lock = self.gc_lock()?;
        self.prune_cache_locked(opts)
    }

    /// The `max-cache-size` limit, after a build: evicts dangling cache, least recently
    /// used first, until the cache's bytes fit in `max`. `None` when another writer is
    /// running (a build in progress may be using the entries; the next one enforces it).
    pub fn enforce_cache_limit(&self, max: u64) -> Result<Option<CachePruneReport>, StoreError> {
        let Some(_lock) = crate::lock::StoreLock::try_exclusive(self.root())
            .map_err(io_err("locking the store"))?
        else {
            return Ok(None);
        };
        let opts = CachePrune {
            all: false,
            keep_storage: Some(max),
            until: None,
        };
        self.prune_cache_locked(&opts).map(Some)
    }

    /// Bytes of the layers only the cache keeps: what `prune_build_cache` with
    /// `keep_storage: Some(0)` would free of layer trees.
    pub fn cache_size(&self) -> Result<u64, StoreError> {
        Ok(CacheView::load(self)?.size)
    }

    fn prune_cache_locked(&self, opts: &CachePrune) -> Result<CachePruneReport, StoreError> {
        let mut view = CacheView::load(self)?;
        let until_ms = opts.until.map(|t| t.timestamp_millis());
        let mut report = CachePruneReport::default();
        let fits = |size: u64| opts.keep_storage.is_some_and(|k| size <= k);

        // Leaves first, least recently used first: a min-heap on (last use, id).
        let mut heap: BinaryHeap<Reverse<(i64, Digest)>> = view
            .candidates
            .iter()
            .filter(|id| view.children.get(*id).is_none_or(|c| c.is_empty()))
            .map(|id| Reverse((view.last_used[id], id.clone())))
            .collect();
        let mut doomed: Vec<Digest> = Vec::new();
        while let Some(Reverse((used, id))) = heap.pop() {
            if fits(view.size) || until_ms.is_some_and(|u| used >= u) {
                // An image's parent was used at least as recently: nothing left qualifies.
                break;
            }
            view.remove(&id);
            if let Some(parent) = view.parent.get(&id).cloned().flatten()
                && view.candidates.contains(&parent)
                && let Some(siblings) = view.children.get_mut(&parent)
            {
                siblings.remove(&id);
                if siblings.is_empty() {
                    heap.push(Reverse((view.last_used[&parent], parent)));
                }
            }
            doomed.push(id);
        }

        let tx = self.conn.unchecked_transaction()?;
        for id in &doomed {
            // The image's cache rows, layer list and references go with it (CASCADE).
            report.entries += tx.query_row(
                "SELECT count(*) FROM build_cache WHERE image_id = ?1",
                [id.to_string()],
                |r| r.get::<_, i64>(0),
            )? as usize;
            tx.execute("DELETE FROM images WHERE id = ?1", [id.to_string()])?;
        }
        if opts.all && opts.keep_storage.is_none() {
            // The rows of what named images need: no bytes, but every hit they give.
            report.entries += tx.execute(
                "DELETE FROM build_cache WHERE ?1 IS NULL OR last_used < ?1",
                params![until_ms],
            )?;
        }
        tx.commit()?;
        report.images = doomed;
        report.reclaimed = self.collect_locked()?.reclaimed;
        Ok(report)
    }
}

/// The images as cache GC sees them.
struct CacheView {
    /// Images the cache may take.
    candidates: HashSet<Digest>,
    /// Each candidate's children (all of them are candidates too).
    children: HashMap<Digest, HashSet<Digest>>,
    parent: HashMap<Digest, Option<Digest>>,
    /// Unix ms: the latest use of the image's entries or of any image built on it.
    last_used: HashMap<Digest, i64>,
    layers: HashMap<Digest, Vec<Digest>>,
    /// Per layer: candidates using it, and whether any other image does.
    cache_refs: HashMap<Digest, usize>,
    pinned: HashSet<Digest>,
    layer_size: HashMap<Digest, u64>,
    /// Bytes of the layers only candidates use.
    size: u64,
}

impl CacheView {
    fn load(store: &Store) -> Result<CacheView, StoreError> {
        let images = store.images()?;
        let by_id: HashMap<&Digest, &ImageRecord> = images.iter().map(|i| (&i.id, i)).collect();
        let mut needed: HashSet<Digest> = HashSet::new();
        for img in images
            .iter()
            .filter(|i| i.is_tagged() || !i.digests.is_empty())
        {
            let mut cur = Some(img);
            while let Some(i) = cur {
                if !needed.insert(i.id.clone()) {
                    break;
                }
                cur = i.parent.as_ref().and_then(|p| by_id.get(p).copied());
            }
        }
        let mut own_use: HashMap<Digest, i64> = HashMap::new();
        let mut stmt = store
            .conn
            .prepare("SELECT image_id, max(last_used) FROM build_cache GROUP BY image_id")?;
        for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (id, used) = row?;
            if let Ok(id) = id.parse() {
                own_use.insert(id, used);
            }
        }
        drop(stmt);

        // Candidates: not needed, and a cache entry's image or built on one.
        let mut in_cache: HashMap<Digest, bool> = HashMap::new();
        fn descends(
            id: &Digest,
            by_id: &HashMap<&Digest, &ImageRecord>,
            own_use: &HashMap<Digest, i64>,
            memo: &mut HashMap<Digest, bool>,
        ) -> bool {
            // Iterative walk up the parent chain, memoised.
            let mut chain = Vec::new();
            let mut cur = Some(id.clone());
            let mut found = false;
            while let Some(c) = cur {
                if let Some(&m) = memo.get(&c) {
                    found = m;
                    break;
                }
                if own_use.contains_key(&c) {
                    found = true;
                    chain.push(c);
                    break;
                }
                cur = by_id.get(&c).and_then(|i| i.parent.clone());
                chain.push(c);
            }
            for c in chain {
                memo.insert(c, found);
            }
            found
        }
        let candidates: HashSet<Digest> = images
            .iter()
            .filter(|i| !needed.contains(&i.id))
            .filter(|i| descends(&i.id, &by_id, &own_use, &mut in_cache))
            .map(|i| i.id.clone())
            .collect();

        let mut children: HashMap<Digest, HashSet<Digest>> = HashMap::new();
        let mut parent = HashMap::new();
        for img in &images {
            parent.insert(img.id.clone(), img.parent.clone());
            if let Some(p) = &img.parent
                && candidates.contains(p)
            {
                children
                    .entry(p.clone())
                    .or_default()
                    .insert(img.id.clone());
            }
        }
        // Last use: an image's own entries', or any image's built on it (using a child
        // uses its parent's layers).
        let mut last_used: HashMap<Digest, i64> = HashMap::new();
        for id in &candidates {
            let own = own_use
                .get(id)
                .copied()
                .unwrap_or(by_id[id].stored_at.saturating_mul(1000));
            let mut cur = Some(id.clone());
            while let Some(c) = cur.filter(|c| candidates.contains(c)) {
                let slot = last_used.entry(c.clone()).or_insert(i64::MIN);
                *slot = (*slot).max(own);
                cur = by_id.get(&c).and_then(|i| i.parent.clone());
            }
        }

        let mut cache_refs: HashMap<Digest, usize> = HashMap::new();
        let mut pinned = HashSet::new();
        let mut layers = HashMap::new();
        let mut layer_size = HashMap::new();
        for img in &images {
            let distinct: HashSet<&Digest> = img.layers.iter().collect();
            for l in &distinct {
                if !layer_size.contains_key(*l) {
                    layer_size.insert((*l).clone(), store.layer_size(l)?.unwrap_or(0));
                }
                if candidates.contains(&img.id) {
                    *cache_refs.entry((*l).clone()).or_default() += 1;
                } else {
                    pinned.insert((*l).clone());
                }
            }
            if candidates.contains(&img.id) {
                layers.insert(img.id.clone(), distinct.into_iter().cloned().collect());
            }
        }
        let size = cache_refs
            .keys()
            .filter(|l| !pinned.contains(*l))
            .map(|l| layer_size[l])
            .sum();
        Ok(CacheView {
            candidates,
            children,
            parent,
            last_used,
            layers,
            cache_refs,
            pinned,
            layer_size,
            size,
        })
    }

    /// Accounts for `id` going: the layers only it held leave the cache's size.
    fn remove(&mut self, id: &Digest) {
        for l in self.layers.remove(id).unwrap_or_default() {
            let n = self.cache_refs.entry(l.clone()).or_default();
            *n = n.saturating_sub(1);
            if *n == 0 && !self.pinned.contains(&l) {
                self.size = self.size.saturating_sub(self.layer_size[&l]);
            }
        }
    }
}

/// The `max-cache-size` of the store's `config.json`, if set.
pub fn max_cache_size(store_root: &Path) -> Result<Option<u64>, SettingsError> {
    let settings = RegistrySettings::load(store_root)?;
    let bad = |reason: String| SettingsError::Bad {
        path: store_root
            .join(crate::registry::settings::CONFIG_FILE)
            .display()
            .to_string(),
        reason,
    };
    match settings.other.get(MAX_CACHE_SIZE_KEY) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| {
            bad(format!(
                "\"{MAX_CACHE_SIZE_KEY}\" must be a whole number of bytes or a size such as \"10GB\""
            ))
        }),
        Some(serde_json::Value::String(s)) => parse_size(s)
            .map(Some)
            .map_err(|e| bad(format!("\"{MAX_CACHE_SIZE_KEY}\": {e}"))),
        Some(_) => Err(bad(format!(
            "\"{MAX_CACHE_SIZE_KEY}\" must be a number of bytes or a size such as \"10GB\""
        ))),
    }
}

/// A size as docker's `--keep-storage` takes it (go-units `RAMInBytes`): a number with
/// an optional binary unit, `512`, `100k`, `1.5MB`, `10GiB`, `2 g` (k = 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(num_end);
    let value: f64 = num.parse().map_err(|_| format!("invalid size: {s:?}"))?;
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return Err(format!("invalid size: {s:?}")),
    };
    let bytes = value * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("invalid size: {s:?}"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{History, ImageConfig, RootFs};
    use crate::images::NewImage;
    use crate::reference::ImageRef;

    /// An image on `parent`, told apart by `step`; with a cache row `step` if `cached`.
    fn image(store: &Store, parent: Option<&Digest>, step: &str, cached: bool) -> Digest {
        let config = ImageConfig {
            architecture: "amd64".into(),
            os: "linux".into(),
            rootfs: RootFs::default(),
            history: vec![History {
                created_by: Some(step.into()),
                empty_layer: true,
                ..History::default()
            }],
            ..ImageConfig::default()
        };
        let id = store
            .create_image(
                &config.to_vec(),
                &NewImage {
                    parent: parent.cloned(),
                    manifest: None,
                },
            )
            .unwrap();
        if cached {
            store.cache_put(step, &id).unwrap();
        }
        id
    }

    #[test]
    fn dangling_chains_go_newest_end_first_and_all_takes_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // base (named, no cache row) <- a <- b: an old build's steps, now dangling;
        // base <- c, named: what a tagged image needs.
        let base = image(&store, None, "base", false);
        store
            .tag(&base, &ImageRef::parse("base").unwrap().with_default_tag())
            .unwrap();
        let a = image(&store, Some(&base), "a", true);
        let b = image(&store, Some(&a), "b", true);
        let c = image(&store, Some(&base), "c", true);
        store
            .tag(&c, &ImageRef::parse("app").unwrap().with_default_tag())
            .unwrap();

        // Everything was used after an hour ago: `until=1h` takes nothing.
        let hour_ago = Utc::now() - chrono::TimeDelta::hours(1);
        let report = store
            .prune_build_cache(&CachePrune {
                until: Some(hour_ago),
                ..CachePrune::default()
            })
            .unwrap();
        assert!(report.images.is_empty());

        let report = store.prune_build_cache(&CachePrune::default()).unwrap();
        assert_eq!(report.images, [b.clone(), a.clone()]);
        assert_eq!(report.entries, 2);
        assert!(store.image(&a).unwrap().is_none());
        assert_eq!(store.cache_get("c").unwrap(), Some(c.clone()));
        assert!(store.image(&base).unwrap().is_some());

        let report = store
            .prune_build_cache(&CachePrune {
                all: true,
                ..CachePrune::default()
            })
            .unwrap();
        assert!(report.images.is_empty());
        assert_eq!(report.entries, 1);
        assert_eq!(store.cache_get("c").unwrap(), None);
        assert!(store.image(&c).unwrap().is_some());
        assert!(store.check().unwrap().is_clean());
    }

    #[test]
    fn sizes_parse_like_docker() {
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("100k").unwrap(), 100 << 10);
        assert_eq!(parse_size("1.5MB").unwrap(), 3 << 19);
        assert_eq!(parse_size("10GiB").unwrap(), 10 << 30);
        assert_eq!(parse_size("2 g").unwrap(), 2 << 30);
        assert_eq!(parse_size("1b").unwrap(), 1);
        assert!(parse_size("ten").is_err());
        assert!(parse_size("1x").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn max_cache_size_from_config() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(max_cache_size(dir.path()).unwrap(), None);
        let f = dir.path().join("config.json");
        std::fs::write(&f, r#"{"max-cache-size": "2MB"}"#).unwrap();
        assert_eq!(max_cache_size(dir.path()).unwrap(), Some(2 << 20));
        std::fs::write(&f, r#"{"max-cache-size": 4096}"#).unwrap();
        assert_eq!(max_cache_size(dir.path()).unwrap(), Some(4096));
        std::fs::write(&f, r#"{"max-cache-size": "lots"}"#).unwrap();
        assert!(max_cache_size(dir.path()).is_err());
    }
}
