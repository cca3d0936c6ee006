//! A build cache shared between stores (`--cache-from`, `--cache-to`): CI runners that
//! start empty take the steps another runner built as `CACHED`.
//!
//! Import is lazy. At the start of the build only each cache's manifest and record list
//! are read ([`rbuild_store::registry::cache::open`]); a step whose key a cache records
//! costs one image config fetch and becomes a *pending* image: known by ID and config,
//! not yet in the store. Its layers are fetched, and it and its pending ancestors are
//! recorded as images, only when something needs its files ([`Imported::materialize`]):
//! the next step misses and runs on it, another stage copies or mounts from it, it is
//! the final image, or it is exported again. So a chain of hits fetches the layers of
//! the image the chain ends in, never those of a step in between that nothing uses.
//!
//! Export writes the records of this build's steps (hits and runs alike): `mode=min`
//! those of the final image's stage chain (the target and the stages it is built `FROM`),
//! `mode=max` those of every stage built, as BuildKit's modes mean.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rbuild_store::registry::Client;
use rbuild_store::registry::cache::{self, CacheSource};
pub use rbuild_store::registry::cache::{CacheLocation, CacheRecord};
use rbuild_store::{Digest, ImageConfig, NewImage, Store};

use super::RegistryAccess;
use super::progress::Progress;

/// Which steps `--cache-to` exports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CacheMode {
    /// The steps of the final image's stage chain (BuildKit's default).
    #[default]
    Min,
    /// The steps of every stage built.
    Max,
}

/// One `--cache-to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheTarget {
    pub location: CacheLocation,
    pub mode: CacheMode,
    /// `ignore-error=true`: a failed export is a warning, not a failed build.
    pub ignore_error: bool,
}

/// `--cache-from` and `--cache-to`.
#[derive(Debug, Clone, Default)]
pub struct CacheOptions {
    pub from: Vec<CacheLocation>,
    pub to: Vec<CacheTarget>,
}

/// An image a cache record names that is not in the store yet.
#[derive(Clone)]
struct Pending {
    source: usize,
    key: String,
    config: Vec<u8>,
    parent: Option<Digest>,
}

/// The caches a build imports, and the images taken from them so far.
pub(super) struct Imported<'a> {
    sources: Vec<CacheSource>,
    pending: Mutex<HashMap<Digest, Pending>>,
    registry: Option<&'a RegistryAccess<'a>>,
}

fn client_for(
    registry: Option<&RegistryAccess<'_>>,
    location: &CacheLocation,
) -> Result<Option<Arc<Client>>, String> {
    match location {
        CacheLocation::Local(_) => Ok(None),
        CacheLocation::Registry(_) => match registry {
            Some(make) => make().map(Some).map_err(|e| e.to_string()),
            None => Err("this build has no registry access".to_string()),
        },
    }
}

impl<'a> Imported<'a> {
    /// Reads every `--cache-from`. A cache that does not exist or cannot be read is a
    /// warning and the build goes on without it, as BuildKit's import does.
    pub fn open(
        from: &[CacheLocation],
        registry: Option<&'a RegistryAccess<'a>>,
        progress: &Progress<'_>,
    ) -> Imported<'a> {
        let mut sources = Vec::new();
        for location in from {
            let v = progress.start(format!("importing cache manifest from {location}"));
            let opened = client_for(registry, location).and_then(|client| {
                cache::open(client.as_deref(), location).map_err(|e| e.to_string())
            });
            match opened {
                Ok(Some(source)) => {
                    progress.log(&v, format!("{} cached steps", source.config.records.len()));
                    sources.push(source);
                }
                Ok(None) => {
                    progress.log(&v, "not found");
                    progress.warning(format!("cache {location} not found: building without it"));
                }
                Err(e) => {
                    progress.log(&v, e.clone());
                    progress.warning(format!(
                        "cache {location} cannot be imported: {e}; building without it"
                    ));
                }
            }
            progress.done(v);
        }
        Imported {
            sources,
            pending: Mutex::new(HashMap::new()),
            registry,
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `id` was taken from an imported cache and is not in the store yet.
    pub fn is_pending(&self, id: &Digest) -> bool {
        self.pending().contains_key(id)
    }

    /// The image an imported cache records for `key` (on `parent`, the image the step
    /// builds on), with its config; the image is pending until materialized. An image
    /// config that cannot be fetched is an `Err` the caller shows as a warning before
    /// running the step.
    pub fn lookup(
        &self,
        store: &Store,
        key: &str,
        parent: Option<&Digest>,
    ) -> Result<Option<(Digest, ImageConfig)>, String> {
        for (i, source) in self.sources.iter().enumerate() {
            let Some(record) = source.record(key) else {
                continue;
            };
            let id = record.image.clone();
            if store.image(&id).map_err(|e| e.to_string())?.is_some() {
                store.cache_put(key, &id).map_err(|e| e.to_string())?;
                let config = store.config(&id).map_err(|e| e.to_string())?;
                return Ok(Some((id, config)));
            }
            if let Some(p) = self.pending().get(&id) {
                let config = ImageConfig::from_slice(&p.config).map_err(|e| e.to_string())?;
                return Ok(Some((id, config)));
            }
            let client = client_for(self.registry, &source.location)?;
            let bytes = source
                .image_config(client.as_deref(), &id)
                .map_err(|e| format!("cache {}: {e}", source.location))?;
            let config = ImageConfig::from_slice(&bytes)
                .map_err(|e| format!("cache {}: image config {id}: {e}", source.location))?;
            self.pending().insert(
                id.clone(),
                Pending {
                    source: i,
                    key: key.to_string(),
                    config: bytes,
                    parent: parent.cloned(),
                },
            );
            return Ok(Some((id, config)));
        }
        Ok(None)
    }

    /// Makes `id` a stored image if it is pending: fetches the layers the store lacks
    /// from the cache that recorded it, then records it (and its pending ancestors,
    /// whose layers are a subset) as images with their cache rows.
    pub fn materialize(&self, store: &Store, id: Option<&Digest>) -> Result<(), String> {
        let Some(id) = id else {
            return Ok(());
        };
        let Some(p) = self.pending().get(id).cloned() else {
            return Ok(());
        };
        let source = &self.sources[p.source];
        let fail = |e: String| format!("cache {}: {e}", source.location);
        let config = ImageConfig::from_slice(&p.config).map_err(|e| fail(e.to_string()))?;
        let mut missing = Vec::new();
        for diff_id in &config.rootfs.diff_ids {
            if store
                .layer_size(diff_id)
                .map_err(|e| e.to_string())?
                .is_none()
                && !missing
                    .iter()
                    .any(|l: &cache::CacheLayer| &l.diff_id == diff_id)
            {
                let layer = source
                    .layer(diff_id)
                    .ok_or_else(|| fail(format!("no blob for layer {diff_id} of image {id}")))?;
                missing.push(layer.clone());
            }
        }
        if !missing.is_empty() {
            let client = client_for(self.registry, &source.location)?;
            source
                .fetch_layers(store.root(), client.as_deref(), &missing)
                .map_err(|e| fail(e.to_string()))?;
        }
        self.materialize(store, p.parent.as_ref())?;
        let parent = match &p.parent {
            Some(d) if store.image(d).map_err(|e| e.to_string())?.is_some() => Some(d.clone()),
            _ => None,
        };
        let made = store
            .create_image(
                &p.config,
                &NewImage {
                    parent,
                    manifest: None,
                },
            )
            .map_err(|e| fail(e.to_string()))?;
        if &made != id {
            return Err(fail(format!("image config {id} hashes to {made}")));
        }
        store.cache_put(&p.key, id).map_err(|e| e.to_string())?;
        self.pending().remove(id);
        Ok(())
    }
}

/// Writes each `--cache-to` with the records of the stages its mode takes.
/// `records` are by stage index; `chain` lists the final image's stage chain.
pub(super) fn export(
    store: &Store,
    to: &[CacheTarget],
    records: &[(usize, CacheRecord)],
    chain: &[usize],
    imported: &Imported<'_>,
    progress: &Progress<'_>,
) -> Result<(), String> {
    for target in to {
        let location = &target.location;
        let v = progress.start(format!("exporting cache to {location}"));
        let chosen: Vec<CacheRecord> = records
            .iter()
            .filter(|(stage, _)| target.mode == CacheMode::Max || chain.contains(stage))
            .map(|(_, r)| r.clone())
            .collect();
        let done = (|| {
            // Steps taken from an imported cache are exported again: their layers
            // are needed here for that.
            for r in &chosen {
                imported.materialize(store, Some(&r.image))?;
            }
            let client = client_for(imported.registry, location)?;
            cache::export(store, client.as_deref(), location, chosen)
                .map_err(|e| format!("exporting cache to {location}: {e}"))
        })();
        match done {
            Ok(done) => {
                progress.log(
                    &v,
                    format!(
                        "writing cache manifest {} ({} steps, {} layers) done",
                        done.digest, done.records, done.layers
                    ),
                );
                progress.done(v);
            }
            Err(e) if target.ignore_error => {
                progress.failed(v, &e);
                progress.warning(format!("{e} (ignored: ignore-error=true)"));
            }
            Err(e) => {
                progress.failed(v, &e);
                return Err(e);
            }
        }
    }
    Ok(())
}
