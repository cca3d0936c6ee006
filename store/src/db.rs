//! The metadata database: SQLite in WAL mode, so readers never wait for a writer and a
//! crash loses at most the transaction under way. Files (blobs, layer trees) are
//! written before the rows that name them and deleted after, so a row always points at
//! something whole.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

/// Schema versions, applied in order; `PRAGMA user_version` records how far a store is.
const MIGRATIONS: &[&str] = &[
    // 1: images, tags, layers.
    "
    CREATE TABLE layers (
        diff_id    TEXT PRIMARY KEY,       -- sha256 of the uncompressed tar
        size       INTEGER NOT NULL,       -- bytes of regular files: Docker's layer size
        tar_size   INTEGER NOT NULL,       -- bytes of the uncompressed tar
        created_at INTEGER NOT NULL        -- unix seconds, when stored here
    );
    -- Blobs known to hold a layer: the compressed or plain tar as it was received or made.
    CREATE TABLE layer_blobs (
        diff_id    TEXT NOT NULL REFERENCES layers(diff_id) ON DELETE CASCADE,
        digest     TEXT NOT NULL,
        media_type TEXT NOT NULL,
        size       INTEGER NOT NULL,
        PRIMARY KEY (diff_id, digest)
    );
    CREATE TABLE images (
        id         TEXT PRIMARY KEY,       -- config digest: Docker's image ID
        parent     TEXT,                   -- image this one was built or committed on
        created    INTEGER NOT NULL,       -- unix seconds from the config (0 if none)
        stored_at  INTEGER NOT NULL,       -- unix seconds, when stored here
        size       INTEGER NOT NULL,       -- sum of its layers' sizes
        manifest   TEXT                    -- a manifest blob known for it, if any
    );
    CREATE INDEX images_parent ON images(parent);
    CREATE TABLE image_layers (
        image_id   TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        position   INTEGER NOT NULL,
        diff_id    TEXT NOT NULL REFERENCES layers(diff_id),
        PRIMARY KEY (image_id, position)
    );
    CREATE INDEX image_layers_diff ON image_layers(diff_id);
    -- name:tag (canonical, docker.io/library/x:latest) and name@digest references.
    CREATE TABLE refs (
        name       TEXT PRIMARY KEY,
        image_id   TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        is_digest  INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX refs_image ON refs(image_id);
    ",
    // 2: the build cache. A key (a digest over a build step's inputs) names the image
    // that step made; the row goes with the image. Notes remember, per step of a
    // Dockerfile, what its inputs were last time, so a miss can say what changed.
    "
    CREATE TABLE build_cache (
        key        TEXT PRIMARY KEY,
        image_id   TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX build_cache_image ON build_cache(image_id);
    CREATE TABLE build_notes (
        step       TEXT PRIMARY KEY,
        note       TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    );
    ",
    // 3: where blobs are known to live in registries (pulled from or pushed to), so a
    // push to another repository of the same registry can mount them instead of
    // uploading (docker's "v2 metadata" service).
    "
    CREATE TABLE blob_sources (
        digest     TEXT NOT NULL,
        registry   TEXT NOT NULL,
        repository TEXT NOT NULL,
        seen_at    INTEGER NOT NULL,
        PRIMARY KEY (digest, registry, repository)
    );
    ",
    // 4: pulled layers not yet extracted. A pulled blob is checked against its digest as
    // it arrives, but against the diff ID its image's config gives only when it is first
    // extracted (Store::layer_tree); until then that pairing is the registry's word. It
    // is kept here, apart from layer_blobs (pairings checked here), so that no other
    // image that shares the diff ID ever saves or pushes an unchecked blob. While a layer
    // is only packed, its layers.size is its blob's (compressed) size, as `ctr images
    // ls` shows for content not unpacked; extraction puts the content size there.
    "
    CREATE TABLE packed_layers (
        diff_id    TEXT NOT NULL REFERENCES layers(diff_id) ON DELETE CASCADE,
        digest     TEXT NOT NULL,
        media_type TEXT NOT NULL,
        size       INTEGER NOT NULL,
        PRIMARY KEY (diff_id, digest)
    );
    ",
    // 5: when each build cache entry was last used (unix milliseconds): made, or hit by
    // a build. Cache GC (`builder prune`, `max-cache-size`) evicts the least recently
    // used first; milliseconds so that the steps of one build still have an order.
    "
    ALTER TABLE build_cache ADD COLUMN last_used INTEGER NOT NULL DEFAULT 0;
    UPDATE build_cache SET last_used = created_at * 1000;
    ",
    // 6: containers (`rbuild run`). image_id is not ON DELETE CASCADE: an image a
    // container uses must not vanish under it, so deleting one fails until the
    // container goes (rmi checks first and says which container).
    "
    CREATE TABLE containers (
        id          TEXT PRIMARY KEY,      -- 64 hex, random
        name        TEXT NOT NULL UNIQUE,
        image_id    TEXT NOT NULL REFERENCES images(id),
        created     INTEGER NOT NULL,      -- unix seconds
        command     TEXT NOT NULL,         -- JSON array: entrypoint + cmd as run
        state       TEXT NOT NULL,         -- created | running | exited
        exit_code   INTEGER,
        pid         INTEGER,
        started_at  INTEGER,
        finished_at INTEGER
    );
    CREATE INDEX containers_image ON containers(image_id);
    ",
    // 7: the host PID of a running container's init (its PID 1), beside `pid`, the
    // process that owns it (a foreground rbuild or a detached monitor): `exec` enters
    // init's namespaces, `stop` and `kill` signal it.
    "
    ALTER TABLE containers ADD COLUMN init_pid INTEGER;
    ",
    // 8: exit codes of removed containers, for a while, so that `wait` on a `--rm`
    // container that is gone before it looks again still gives its code, as docker's.
    "
    CREATE TABLE container_exits (
        id TEXT PRIMARY KEY,
        exit_code INTEGER NOT NULL,
        removed_at INTEGER NOT NULL
    );
    ",
];

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("metadata database {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "metadata database {path} has schema version {found}, newer than this rbuild knows ({known}); upgrade rbuild"
    )]
    TooNew {
        path: String,
        found: i64,
        known: usize,
    },
}

/// Opens (creating and migrating) the database at `path`.
pub fn open(path: &Path) -> Result<Connection, DbError> {
    let err = |source| DbError::Open {
        path: path.display().to_string(),
        source,
    };
    let mut conn = Connection::open(path).map_err(err)?;
    // Concurrent rbuild processes wait for each other's short write transactions.
    conn.busy_timeout(Duration::from_secs(60)).map_err(err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(err)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(err)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(err)?;
    migrate(&mut conn).map_err(|e| match e {
        MigrateError::Sql(source) => err(source),
        MigrateError::TooNew(found) => DbError::TooNew {
            path: path.display().to_string(),
            found,
            known: MIGRATIONS.len(),
        },
    })?;
    Ok(conn)
}

enum MigrateError {
    Sql(rusqlite::Error),
    TooNew(i64),
}

fn migrate(conn: &mut Connection) -> Result<(), MigrateError> {
    // IMMEDIATE: two processes opening a new store at once must not both migrate.
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(MigrateError::Sql)?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(MigrateError::Sql)?;
    if version > MIGRATIONS.len() as i64 {
        return Err(MigrateError::TooNew(version));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql).map_err(MigrateError::Sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(MigrateError::Sql)?;
    }
    tx.commit().map_err(MigrateError::Sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_twice_and_migrates_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metadata.db");
        open(&p).unwrap();
        let c = open(&p).unwrap();
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
        let mode: String = c
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metadata.db");
        let c = open(&p).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        assert!(matches!(open(&p), Err(DbError::TooNew { found: 99, .. })));
    }
}
