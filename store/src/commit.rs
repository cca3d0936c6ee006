//! Committing a layer built here: the directory a step wrote (an overlay upper dir, or the
//! diff dir the copy-and-compare snapshotter made) *becomes* the layer's tree, by rename.
//!
//! DESIGN.md, builder step 5: "the upper dir *is* the diff and becomes the layer's directory
//! as it is (no re-extraction)", and "the cost of a step depends on what it changed, never on
//! the size of the base". So committing reads only the new directory: once to stream it as
//! the deterministic layer tar into a hasher (the diff ID; nothing is written), once to add
//! up its file sizes; then two renames on the same file system move it under `layers/`.
//! The tar blob (and any compressed one) is made only when something needs bytes
//! ([`Store::make_layer_blob`]), as DESIGN.md's store section says.
//!
//! Lifecycle, as containerd's snapshotter documents its own (`core/snapshots/snapshotter.go`):
//!
//! 1. [`Store::new_upper_dir`] gives out `tmp/snap-*/{upper,work}` — under `tmp/` so that the
//!    final rename is atomic (same file system as `layers/`) and so that GC sweeps whatever a
//!    crashed build left. The caller keeps the store's write lock while it works, so GC does
//!    not sweep a snapshot that is still in use.
//! 2. The builder fills `upper` (overlay does, or the copy snapshotter).
//! 3. [`Store::add_layer_dir`] hashes `upper`, renames it to `layers/<hex>/diff` and records
//!    the `layers` row. The rest of the scratch (`work`, mount points) is the caller's to
//!    remove ([`UpperDir::remove`]).

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rusqlite::params;

use crate::digest::Digest;
use crate::error::StoreError;
use crate::fsutil;
use crate::layer;
use crate::store::{Store, io_err};
use crate::unpack::now;

/// A scratch directory given out for one snapshot: `root/upper` will become a layer,
/// `root/work` is overlay's work dir. Callers may add their own entries under `root`
/// (a mount point, an empty lower); everything under it goes when it is removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpperDir {
    pub root: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
}

impl UpperDir {
    /// Removes the whole scratch directory (after a commit, or to discard the snapshot).
    /// The caller must have unmounted anything mounted under it.
    pub fn remove(&self) -> io::Result<()> {
        fsutil::remove_tree(&self.root)
    }
}

/// A layer committed from a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedLayer {
    pub diff_id: Digest,
    /// Bytes of regular files, each inode once: Docker's layer size.
    pub size: u64,
    /// Bytes of the layer's (uncompressed) tar, which is not written until needed.
    pub tar_size: u64,
    /// The directory had no entries at all. Still a valid layer (the empty tar: 1024 zero
    /// bytes); Docker and BuildKit both record one for a RUN that changes nothing, but the
    /// builder may choose to mark the step `empty_layer` instead.
    pub empty: bool,
    /// The layer was already stored (same diff ID); the directory given was discarded.
    pub existed: bool,
}

impl Store {
    /// A fresh scratch pair (upper + work) for a snapshot, under `tmp/`.
    pub fn new_upper_dir(&self) -> Result<UpperDir, StoreError> {
        let root = self.scratch_dir("snap")?;
        let dirs = UpperDir {
            upper: root.join("upper"),
            work: root.join("work"),
            root,
        };
        for d in [&dirs.upper, &dirs.work] {
            // 0755 whatever the umask: the upper dir's root is the root of the merged
            // tree, which every user of the step must be able to walk.
            let made = fs::create_dir(d)
                .and_then(|()| fs::set_permissions(d, fs::Permissions::from_mode(0o755)));
            if let Err(e) = made {
                let _ = dirs.remove();
                return Err(io_err(format!("creating {}", d.display()))(e));
            }
        }
        Ok(dirs)
    }

    /// Stores `dir` — a directory in overlay format (0/0 character devices for deletions,
    /// `trusted.overlay.opaque=y` for opaque directories) that [`Store::new_upper_dir`]
    /// gave out — as a layer, by renaming it; nothing is copied. If the layer is already
    /// stored, `dir` is removed instead. Either way `dir` is gone afterwards.
    ///
    /// Nothing may be writing to `dir` (unmount the overlay first): the diff ID is the
    /// hash of the tar of what is there when it is read.
    ///
    /// The layer is recorded but no image uses it yet, so GC would remove it: keep
    /// holding [`Store::write_lock`] until the image that uses it is created.
    pub fn add_layer_dir(&self, dir: &Path) -> Result<CommittedLayer, StoreError> {
        self.add_layer_dir_sharing(dir, &HashSet::new())
    }

    /// [`Store::add_layer_dir`] for a directory some of whose files are hard links to
    /// files of committed layers (a COPY reusing its previous layer's unchanged files;
    /// layer trees are immutable, DESIGN.md builder step 5): those, named by (dev, ino)
    /// in `shared`, are durable already and are not fsynced again — only the new
    /// directory entries pointing at them need to be, and the directories are. A file
    /// with a single link is fsynced whatever `shared` says.
    pub fn add_layer_dir_sharing(
        &self,
        dir: &Path,
        shared: &HashSet<(u64, u64)>,
    ) -> Result<CommittedLayer, StoreError> {
        let _lock = self.write_lock()?;
        self.check_given_out(dir)?;
        // The diff ID: the tar the layer would be, streamed into the hasher only.
        let written = layer::write_tar(dir, io::sink(), &layer::WriteOptions::default()).map_err(
            |source| StoreError::LayerIn {
                what: format!("layer directory {}", dir.display()),
                source,
            },
        )?;
        let diff_id = written.diff_id;
        // Data written through overlay (or copied) may sit in the page cache; a crash
        // after the row is recorded must not leave a recorded layer with holes. Each
        // file (but those `shared` with committed layers) and dir of the new tree is
        // fsynced, many at once — not syncfs(2), whose cost is every dirty page of the
        // file system, other builds' included.
        let (size, empty) = measure_and_sync(dir, shared)?;
        let committed = |existed| CommittedLayer {
            diff_id: diff_id.clone(),
            size,
            tar_size: written.size,
            empty,
            existed,
        };
        if self.layer_size(&diff_id)?.is_some() {
            fsutil::remove_tree(dir).map_err(io_err(format!("removing {}", dir.display())))?;
            return Ok(committed(true));
        }
        // Two renames, both atomic and on the same file system: dir → tmp/layer-*/diff (so
        // the tree gets the shape layers/ holds), then that → layers/<hex>.
        let stage = self.scratch_dir("layer")?;
        if let Err(e) = fs::rename(dir, stage.join("diff")) {
            let _ = fsutil::remove_tree(&stage);
            return Err(io_err(format!("moving {}", dir.display()))(e));
        }
        let dest = self.layers_dir().join(diff_id.hex());
        let mut existed = false;
        if let Err(e) = fs::rename(&stage, &dest) {
            // Another writer stored the same layer first: keep theirs.
            let _ = fsutil::remove_tree(&stage);
            if !dest.join("diff").is_dir() {
                return Err(io_err(format!("storing layer {diff_id}"))(e));
            }
            existed = true;
        }
        fsutil::sync_dir(&self.layers_dir()).map_err(io_err("syncing layers/"))?;
        self.conn.execute(
            "INSERT OR IGNORE INTO layers (diff_id, size, tar_size, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![diff_id.to_string(), size as i64, written.size as i64, now()],
        )?;
        Ok(committed(existed))
    }

    /// Refuses a directory the store did not give out: renaming an arbitrary directory
    /// into `layers/` would move the caller's files away (or fail across file systems).
    fn check_given_out(&self, dir: &Path) -> Result<(), StoreError> {
        let tmp = self.tmp_dir();
        let ok = dir
            .canonicalize()
            .ok()
            .and_then(|d| {
                d.strip_prefix(&tmp)
                    .ok()
                    .map(|rel| rel.components().count() >= 2)
            })
            .unwrap_or(false);
        if ok && fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
            Ok(())
        } else {
            Err(StoreError::Io {
                what: format!("committing {}", dir.display()),
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a directory the store gave out (Store::new_upper_dir)",
                ),
            })
        }
    }
}

/// Sum of regular file sizes, each inode once (hard links are one file), and whether the
/// directory is empty; fsyncs every file and directory of it but the files in `shared`
/// (linked from committed layers: their data and inode are on disk already; the new
/// names for them are made durable by syncing the directories that hold them).
///
/// The fsyncs run on [`SYNC_THREADS`] threads at once: one after another, each would wait
/// for its own journal commit (20,000 small files took tens of seconds), while concurrent
/// ones share commits (ext4's jbd2 and XFS batch them), and a file whose changes an
/// earlier commit already carried returns at once. Still per file, so unlike syncfs(2) it
/// never waits for other builds' dirty pages.
fn measure_and_sync(dir: &Path, shared: &HashSet<(u64, u64)>) -> Result<(u64, bool), StoreError> {
    fn walk(
        dir: &Path,
        shared: &HashSet<(u64, u64)>,
        seen: &mut HashSet<(u64, u64)>,
        total: &mut u64,
        to_sync: &mut Vec<PathBuf>,
    ) -> io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let m = entry.metadata()?;
            if m.is_dir() {
                walk(&entry.path(), shared, seen, total, to_sync)?;
            } else if m.is_file() && (m.nlink() == 1 || seen.insert((m.dev(), m.ino()))) {
                *total += m.len();
                if m.nlink() == 1 || !shared.contains(&(m.dev(), m.ino())) {
                    to_sync.push(entry.path());
                }
            }
        }
        // Children first: a directory is synced after the files in it (in the same batch
        // order, though threads may finish them in any order; all are done on return).
        to_sync.push(dir.to_path_buf());
        Ok(())
    }
    let empty = fs::read_dir(dir)
        .map_err(io_err(format!("reading {}", dir.display())))?
        .next()
        .is_none();
    let mut total = 0;
    let mut to_sync = Vec::new();
    walk(dir, shared, &mut HashSet::new(), &mut total, &mut to_sync)
        .map_err(io_err(format!("reading {}", dir.display())))?;
    sync_all_parallel(&to_sync).map_err(io_err(format!("syncing {}", dir.display())))?;
    Ok((total, empty))
}

/// fsyncs at most this many files at once.
const SYNC_THREADS: usize = 32;

/// fsyncs every path (files or directories), several at once; the first error wins.
fn sync_all_parallel(paths: &[PathBuf]) -> io::Result<()> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let sync = |p: &PathBuf| fs::File::open(p).and_then(|f| f.sync_all());
    if paths.len() <= 4 {
        return paths.iter().try_for_each(sync);
    }
    let next = AtomicUsize::new(0);
    let failed: Mutex<Option<io::Error>> = Mutex::new(None);
    let threads = SYNC_THREADS.min(paths.len().div_ceil(4));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(p) = paths.get(i) else { break };
                    if let Err(e) = sync(p) {
                        failed
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_or_insert(e);
                        next.store(paths.len(), Ordering::Relaxed);
                        break;
                    }
                }
            });
        }
    });
    match failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_directory_it_did_not_give_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let outside = dir.path().join("mine");
        fs::create_dir(&outside).unwrap();
        let err = store.add_layer_dir(&outside).unwrap_err().to_string();
        assert!(err.contains("not a directory the store gave out"), "{err}");
        assert!(outside.is_dir(), "left alone");
        // tmp/ itself is not a given-out directory either.
        assert!(store.add_layer_dir(&store.tmp_dir()).is_err());
    }

    #[test]
    fn commits_by_rename_and_dedupes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let commit = |content: &[u8]| {
            let u = store.new_upper_dir().unwrap();
            fs::create_dir(u.upper.join("etc")).unwrap();
            fs::write(u.upper.join("etc/hello"), content).unwrap();
            fs::hard_link(u.upper.join("etc/hello"), u.upper.join("etc/again")).unwrap();
            // Fixed mtimes, so that both commits make the same tar.
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
            for p in ["etc/hello", "etc"] {
                fs::File::open(u.upper.join(p))
                    .unwrap()
                    .set_modified(t)
                    .unwrap();
            }
            let ino = fs::metadata(u.upper.join("etc/hello")).unwrap().ino();
            let got = store.add_layer_dir(&u.upper).unwrap();
            assert!(!u.upper.exists(), "the upper dir was moved or removed");
            u.remove().unwrap();
            (got, ino)
        };
        let (a, ino) = commit(b"hello\n");
        assert_eq!(a.size, 6, "a hard-linked file counts once");
        assert!(!a.empty && !a.existed);
        let tree = store.layer_dir(&a.diff_id);
        assert_eq!(
            fs::metadata(tree.join("etc/hello")).unwrap().ino(),
            ino,
            "renamed, not copied"
        );
        assert_eq!(store.layer_size(&a.diff_id).unwrap(), Some(6));
        // The lazily made blob has the same diff ID and the recorded tar size.
        let (_, _, blob_size) = store.make_layer_blob(&a.diff_id).unwrap();
        assert_eq!(blob_size, a.tar_size);

        let (b, _) = commit(b"hello\n");
        assert_eq!(b.diff_id, a.diff_id);
        assert!(b.existed);
        // The tree stored first is kept.
        assert_eq!(fs::metadata(tree.join("etc/hello")).unwrap().ino(), ino);
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn an_empty_dir_is_an_empty_layer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let u = store.new_upper_dir().unwrap();
        let got = store.add_layer_dir(&u.upper).unwrap();
        assert!(got.empty);
        assert_eq!(got.size, 0);
        assert_eq!(got.tar_size, 1024, "the end-of-archive marker only");
        assert_eq!(
            got.diff_id.to_string(),
            "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef",
            "Docker's well-known empty layer"
        );
        u.remove().unwrap();
    }
}
