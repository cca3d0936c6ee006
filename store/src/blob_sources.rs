//! Where blobs are known to live in registries: recorded on every pull and push, so a
//! push to another repository of the same registry can ask for a cross-repository mount
//! instead of uploading the bytes again.

use rusqlite::params;

use crate::digest::Digest;
use crate::error::StoreError;
use crate::store::Store;
use crate::unpack::now;

/// How many candidate repositories a push tries to mount from, newest first; docker
/// tries a few too, since each failed mount costs a round trip.
pub const MOUNT_CANDIDATES: usize = 3;

impl Store {
    /// Remembers that `registry/repository` holds the blob `digest`.
    pub fn record_blob_source(
        &self,
        digest: &Digest,
        registry: &str,
        repository: &str,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO blob_sources (digest, registry, repository, seen_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (digest, registry, repository) DO UPDATE SET seen_at = excluded.seen_at",
            params![digest.to_string(), registry, repository, now()],
        )?;
        Ok(())
    }

    /// Repositories of `registry` other than `except` known to hold `digest`, the most
    /// recently seen first.
    pub fn blob_sources(
        &self,
        digest: &Digest,
        registry: &str,
        except: &str,
    ) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT repository FROM blob_sources WHERE digest = ?1 AND registry = ?2 AND repository != ?3
             ORDER BY seen_at DESC, repository LIMIT ?4",
        )?;
        let rows = stmt.query_map(
            params![
                digest.to_string(),
                registry,
                except,
                MOUNT_CANDIDATES as i64
            ],
            |r| r.get::<_, String>(0),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;
    use crate::digest::Digest;

    #[test]
    fn sources_are_per_registry_and_exclude_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = Digest::of(b"x");
        store.record_blob_source(&d, "r:1", "a").unwrap();
        store.record_blob_source(&d, "r:1", "b").unwrap();
        store.record_blob_source(&d, "r:2", "c").unwrap();
        store.record_blob_source(&d, "r:1", "a").unwrap();
        let mut got = store.blob_sources(&d, "r:1", "b").unwrap();
        got.sort();
        assert_eq!(got, vec!["a".to_string()]);
        assert_eq!(
            store.blob_sources(&d, "r:2", "x").unwrap(),
            vec!["c".to_string()]
        );
        assert!(
            store
                .blob_sources(&Digest::of(b"y"), "r:1", "x")
                .unwrap()
                .is_empty()
        );
    }
}
