//! The build cache: which image a build step with given inputs made, and a note per
//! step of what its inputs were last time.
//!
//! The store does not know what a key means (the builder hashes a step's inputs into
//! it); it only keeps the rows consistent with the images: a cache row is deleted with
//! its image (`ON DELETE CASCADE`), so GC keeps exactly what the images keep and a hit
//! always names an image that exists.

use rusqlite::{OptionalExtension, params};

use crate::digest::Digest;
use crate::error::StoreError;
use crate::store::Store;
use crate::unpack::now;

/// Unix milliseconds: the cache's clock for least-recently-used order.
pub(crate) fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Store {
    /// The image a step with this cache key made, if it is still here.
    pub fn cache_get(&self, key: &str) -> Result<Option<Digest>, StoreError> {
        let id: Option<String> = self
            .conn
            .query_row(
                "SELECT image_id FROM build_cache WHERE key = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()?;
        Ok(id.and_then(|i| i.parse().ok()))
    }

    /// Records that the step with this key made `image_id` (which must exist).
    pub fn cache_put(&self, key: &str, image_id: &Digest) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO build_cache (key, image_id, created_at, last_used)
             VALUES (?1, ?2, ?3, ?4)",
            params![key, image_id.to_string(), now(), now_millis()],
        )?;
        Ok(())
    }

    /// Marks as used now every cache entry of `images` and of their ancestors: what a
    /// build used, hits included. Done once at the end of a build, in one statement,
    /// rather than at each hit: a cached step then costs no database commit (an fsync),
    /// and every hit is an ancestor of its stage's last image anyway.
    pub fn touch_cache(&self, images: &[Digest]) -> Result<(), StoreError> {
        let ids: Vec<String> = images.iter().map(Digest::to_string).collect();
        let ids = serde_json::to_string(&ids).expect("strings serialize");
        self.conn.execute(
            "WITH RECURSIVE chain(id) AS (
                 SELECT value FROM json_each(?1)
                 UNION SELECT i.parent FROM images i JOIN chain c ON i.id = c.id
                 WHERE i.parent IS NOT NULL)
             UPDATE build_cache SET last_used = ?2 WHERE image_id IN (SELECT id FROM chain)",
            params![ids, now_millis()],
        )?;
        Ok(())
    }

    /// The note last stored for a step (the builder's record of its inputs).
    pub fn cache_note(&self, step: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT note FROM build_notes WHERE step = ?1",
                [step],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Replaces the note of a step.
    pub fn set_cache_note(&self, step: &str, note: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO build_notes (step, note, updated_at) VALUES (?1, ?2, ?3)",
            params![step, note, now()],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ImageConfig, RootFs};
    use crate::images::NewImage;
    use crate::store::Store;

    #[test]
    fn rows_go_with_their_image() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let config = ImageConfig {
            architecture: "amd64".into(),
            os: "linux".into(),
            rootfs: RootFs::default(),
            ..ImageConfig::default()
        };
        let id = store
            .create_image(&config.to_vec(), &NewImage::default())
            .unwrap();
        assert_eq!(store.cache_get("k").unwrap(), None);
        store.cache_put("k", &id).unwrap();
        assert_eq!(store.cache_get("k").unwrap(), Some(id.clone()));
        store.set_cache_note("s", "one").unwrap();
        store.set_cache_note("s", "two").unwrap();
        assert_eq!(store.cache_note("s").unwrap().as_deref(), Some("two"));
        store
            .conn
            .execute("DELETE FROM images WHERE id = ?1", [id.to_string()])
            .unwrap();
        assert_eq!(store.cache_get("k").unwrap(), None);
    }
}
