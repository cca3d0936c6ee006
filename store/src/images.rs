//! Images and the names that point at them: creating, naming, finding and listing.
//!
//! An image is its config blob (whose digest is the image ID, as in Docker), the
//! layers its config lists, an optional parent (the image it was built or committed
//! on: how `history` finds intermediate images) and any number of references
//! (`name:tag`, `name@digest`).

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};

use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::error::StoreError;
use crate::reference::ImageRef;
use crate::store::Store;
use crate::unpack::now;

/// One image as the store knows it.
#[derive(Debug, Clone)]
pub struct ImageRecord {
    pub id: Digest,
    pub parent: Option<Digest>,
    /// From the config's `created`, unix seconds (0 when the config has none).
    pub created: i64,
    /// When it entered this store, unix seconds.
    pub stored_at: i64,
    /// Sum of its layers' sizes.
    pub size: u64,
    /// Diff IDs, bottom first.
    pub layers: Vec<Digest>,
    /// `name:tag` references, sorted.
    pub tags: Vec<ImageRef>,
    /// `name@digest` references, sorted.
    pub digests: Vec<ImageRef>,
    /// A manifest blob recorded for it (from load or pull).
    pub manifest: Option<Digest>,
}

impl ImageRecord {
    pub fn is_tagged(&self) -> bool {
        !self.tags.is_empty()
    }
}

/// What to record with a new image besides its config.
#[derive(Debug, Default, Clone)]
pub struct NewImage {
    pub parent: Option<Digest>,
    pub manifest: Option<Digest>,
}

impl Store {
    /// Records an image whose layers are all stored, returning its ID. Idempotent: the
    /// same config gives the same ID, and a second call only fills in what was missing.
    pub fn create_image(&self, config_bytes: &[u8], new: &NewImage) -> Result<Digest, StoreError> {
        let id = Digest::of(config_bytes);
        let config = ImageConfig::from_slice(config_bytes).map_err(|e| StoreError::BadConfig {
            digest: id.clone(),
            reason: e.to_string(),
        })?;
        let mut size = 0u64;
        for diff_id in &config.rootfs.diff_ids {
            size += self
                .layer_size(diff_id)?
                .ok_or_else(|| StoreError::MissingLayer {
                    diff_id: diff_id.clone(),
                })?;
        }
        self.blobs().put(config_bytes)?;
        let created = config.created_time().map_or(0, |t| t.timestamp());
        let parent = new
            .parent
            .as_ref()
            .filter(|p| *p != &id)
            .map(|p| p.to_string());
        let tx = self.conn.unchecked_transaction()?;
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO images (id, parent, created, stored_at, size, manifest) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                id.to_string(),
                parent,
                created,
                now(),
                size as i64,
                new.manifest.as_ref().map(|m| m.to_string())
            ],
        )?;
        if inserted == 1 {
            for (i, diff_id) in config.rootfs.diff_ids.iter().enumerate() {
                tx.execute(
                    "INSERT INTO image_layers (image_id, position, diff_id) VALUES (?1, ?2, ?3)",
                    params![id.to_string(), i as i64, diff_id.to_string()],
                )?;
            }
        } else {
            if let Some(m) = &new.manifest {
                tx.execute(
                    "UPDATE images SET manifest = ?2 WHERE id = ?1 AND manifest IS NULL",
                    params![id.to_string(), m.to_string()],
                )?;
            }
            if let Some(p) = &parent {
                tx.execute(
                    "UPDATE images SET parent = ?2 WHERE id = ?1 AND parent IS NULL",
                    params![id.to_string(), p],
                )?;
            }
        }
        tx.commit()?;
        Ok(id)
    }

    /// The image a reference (tag or digest, as stored) points at, if any.
    pub fn ref_target(&self, name: &ImageRef) -> Result<Option<Digest>, StoreError> {
        let id: Option<String> = self
            .conn
            .query_row(
                "SELECT image_id FROM refs WHERE name = ?1",
                [name.to_string()],
                |row| row.get(0),
            )
            .optional()?;
        Ok(id.and_then(|i| i.parse().ok()))
    }

    /// Records `manifest` (a stored blob) as the image's manifest, replacing any other:
    /// a push that had to build one keeps it, so the next push gives the same digest.
    pub fn set_manifest(&self, id: &Digest, manifest: &Digest) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE images SET manifest = ?2 WHERE id = ?1",
            params![id.to_string(), manifest.to_string()],
        )?;
        Ok(())
    }

    /// Points `name` (a tag or digest reference) at an image; returns the image it
    /// pointed at before, if that was another one.
    pub fn tag(&self, id: &Digest, name: &ImageRef) -> Result<Option<Digest>, StoreError> {
        let key = name.to_string();
        let tx = self.conn.unchecked_transaction()?;
        let exists: bool = tx
            .query_row(
                "SELECT 1 FROM images WHERE id = ?1",
                [id.to_string()],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if !exists {
            return Err(StoreError::NoSuchImage(id.to_string()));
        }
        let before: Option<String> = tx
            .query_row("SELECT image_id FROM refs WHERE name = ?1", [&key], |r| {
                r.get(0)
            })
            .optional()?;
        tx.execute(
            "INSERT OR REPLACE INTO refs (name, image_id, is_digest) VALUES (?1, ?2, ?3)",
            params![key, id.to_string(), name.digest().is_some() as i64],
        )?;
        tx.commit()?;
        Ok(before
            .and_then(|b| b.parse().ok())
            .filter(|b: &Digest| b != id))
    }

    /// Removes one reference; returns whether it existed.
    pub fn untag(&self, name: &ImageRef) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .execute("DELETE FROM refs WHERE name = ?1", [name.to_string()])?
            > 0)
    }

    /// Finds an image the way `docker` does: a reference (`busybox`, `x:1`,
    /// `x@sha256:…`), a full ID (`sha256:…`), or a unique ID prefix (`1a2b3c`).
    pub fn resolve(&self, s: &str) -> Result<ImageRecord, StoreError> {
        if let Ok(d) = s.parse::<Digest>() {
            return self
                .image(&d)?
                .ok_or_else(|| StoreError::NoSuchImage(s.to_string()));
        }
        if let Ok(r) = ImageRef::parse(s)
            && let Some(id) = self.ref_target(&r.with_default_tag())?
            && let Some(img) = self.image(&id)?
        {
            return Ok(img);
        }
        let prefix = s.strip_prefix("sha256:").unwrap_or(s);
        if !prefix.is_empty()
            && prefix.len() <= 64
            && prefix
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            let mut stmt = self
                .conn
                .prepare("SELECT id FROM images WHERE id >= ?1 AND id < ?2 LIMIT 2")?;
            let lo = format!("sha256:{prefix}");
            let hi = format!("sha256:{prefix}g");
            let ids: Vec<String> = stmt
                .query_map([lo, hi], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            match ids.as_slice() {
                [one] => {
                    if let Some(img) = self.image(
                        &one.parse()
                            .map_err(|_| StoreError::NoSuchImage(s.to_string()))?,
                    )? {
                        return Ok(img);
                    }
                }
                [_, _, ..] => {
                    return Err(StoreError::Ambiguous(format!(
                        "image ID prefix {s:?} is ambiguous: it matches more than one image"
                    )));
                }
                [] => {}
            }
        }
        let shown = match ImageRef::parse(s) {
            Ok(r) => r.with_default_tag().familiar(),
            Err(_) => s.to_string(),
        };
        Err(StoreError::NoSuchImage(shown))
    }

    /// One image by ID.
    pub fn image(&self, id: &Digest) -> Result<Option<ImageRecord>, StoreError> {
        let mut all = self.load_images(Some(id))?;
        Ok(all.pop())
    }

    /// Every image, newest first (as `docker images` lists them).
    pub fn images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        self.load_images(None)
    }

    fn load_images(&self, only: Option<&Digest>) -> Result<Vec<ImageRecord>, StoreError> {
        let filter = only.map(|d| d.to_string());
        let mut stmt = self.conn.prepare(
            "SELECT id, parent, created, stored_at, size, manifest FROM images
             WHERE ?1 IS NULL OR id = ?1 ORDER BY created DESC, stored_at DESC, rowid DESC",
        )?;
        let mut images: Vec<ImageRecord> = Vec::new();
        let mut index = BTreeMap::new();
        let rows = stmt.query_map([&filter], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, Option<String>>(5)?,
            ))
        })?;
        for row in rows {
            let (id, parent, created, stored_at, size, manifest) = row?;
            let Ok(id) = id.parse::<Digest>() else {
                continue;
            };
            index.insert(id.to_string(), images.len());
            images.push(ImageRecord {
                id,
                parent: parent.and_then(|p| p.parse().ok()),
                created,
                stored_at,
                size: size as u64,
                layers: Vec::new(),
                tags: Vec::new(),
                digests: Vec::new(),
                manifest: manifest.and_then(|m| m.parse().ok()),
            });
        }
        let mut stmt = self.conn.prepare(
            "SELECT image_id, diff_id FROM image_layers WHERE ?1 IS NULL OR image_id = ?1 ORDER BY image_id, position",
        )?;
        for row in stmt.query_map([&filter], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })? {
            let (image, diff) = row?;
            if let (Some(&i), Ok(d)) = (index.get(&image), diff.parse()) {
                images[i].layers.push(d);
            }
        }
        let mut stmt = self.conn.prepare(
            "SELECT image_id, name FROM refs WHERE ?1 IS NULL OR image_id = ?1 ORDER BY name",
        )?;
        for row in stmt.query_map([&filter], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })? {
            let (image, name) = row?;
            if let (Some(&i), Ok(r)) = (index.get(&image), ImageRef::parse(&name)) {
                if r.digest().is_some() {
                    images[i].digests.push(r);
                } else {
                    images[i].tags.push(r);
                }
            }
        }
        Ok(images)
    }

    /// IDs of the images whose parent is `id`.
    pub fn children(&self, id: &Digest) -> Result<Vec<Digest>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM images WHERE parent = ?1 ORDER BY id")?;
        let ids = stmt
            .query_map([id.to_string()], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ids.into_iter().filter_map(|i| i.parse().ok()).collect())
    }

    /// The raw config bytes of an image (verified against its ID).
    pub fn config_bytes(&self, id: &Digest) -> Result<Vec<u8>, StoreError> {
        Ok(self.blobs().read(id)?)
    }

    /// The parsed config of an image.
    pub fn config(&self, id: &Digest) -> Result<ImageConfig, StoreError> {
        let bytes = self.config_bytes(id)?;
        ImageConfig::from_slice(&bytes).map_err(|e| StoreError::BadConfig {
            digest: id.clone(),
            reason: e.to_string(),
        })
    }
}
