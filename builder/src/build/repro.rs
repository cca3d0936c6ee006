//! `rbuild build --reproducible-check`: the build is made twice, each time in a store of
//! its own, and the two results compared; when their image IDs differ, the report names
//! the first layer and the first file in it (or the first config field) that differ.
//!
//! The two scratch stores live under the store's `tmp/` (`tmp/repro-*/{first,second}`),
//! so whatever a killed check leaves is swept by the next GC, and they are removed when
//! the check ends, however it ends (error, Ctrl-C: the build stops at its next step or
//! kills its RUN, then [`Scratch`] is dropped). The store's shared lock is held
//! throughout, so GC never sweeps them while they are in use.
//!
//! The base images are resolved (pulled if need be) in the store, as a build would, and
//! copied into each scratch store: a layer that came as a blob (pulled, loaded,
//! imported) from its blob, whose diff ID is that of the blob's tar and not necessarily
//! of a tar written from the tree; a layer built here as hard links to its tree
//! (immutable once committed, DESIGN.md builder step 5), hashed again as it is
//! committed. Each build starts from exactly the same files. Nothing else is shared: each build has its own cache,
//! context digests and layer trees. The second build starts in a later second than the
//! first ended and runs under another umask (077 instead of the caller's), so that a
//! timestamp or a mode that leaks from the environment into the image shows.
//!
//! When the two agree and the build has tags, the image is copied into the store the
//! same way (its layers linked from the first scratch store) and tagged; its steps'
//! intermediate images and cache entries stay behind in the scratch stores.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rbuild_parser::syntax;
use rbuild_store::layer::{self, EntryDifference, WriteOptions};
use rbuild_store::unpack::LayerSource;
use rbuild_store::{Digest, NewImage, Store, StoreError};

use super::progress::{Event, Progress, Sink};
use super::{BuildError, BuildOptions, BuildOutcome};
use crate::source;

/// What the check found.
#[derive(Debug, Clone)]
pub struct Check {
    /// The first build's image (the one tagged in the store when both agree).
    pub image_id: Digest,
    /// The second build's image.
    pub second: Digest,
    /// Where they differ; `None` when `image_id == second`.
    pub difference: Option<Difference>,
    pub tags: Vec<rbuild_store::ImageRef>,
}

/// Where two builds of the same inputs first differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// Layer `index` (0 is the bottom one) has another diff ID; `file` is its first
    /// differing entry (`None` if the trees give the same tar after all, which would mean
    /// a tree changed while it was read).
    Layer {
        index: usize,
        first: Digest,
        second: Digest,
        file: Option<EntryDifference>,
    },
    /// One build has more layers than the other; the common ones are equal.
    LayerCount { first: usize, second: usize },
    /// The layers are the same; the configs differ at `path` (`history[3].created`).
    Config {
        path: String,
        first: String,
        second: String,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::Layer {
                index,
                first,
                second,
                file,
            } => {
                write!(f, "layer {index} differs ({first} != {second})")?;
                match file {
                    Some(d) => write!(f, ": first difference at {d}"),
                    None => write!(f, ": its trees give the same tar when read again"),
                }
            }
            Difference::LayerCount { first, second } => {
                write!(
                    f,
                    "the first build made {first} layers, the second {second}"
                )
            }
            Difference::Config {
                path,
                first,
                second,
            } => write!(f, "the image config differs at {path}: {first} != {second}"),
        }
    }
}

/// A directory removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = rbuild_store::fsutil::remove_tree(&self.0);
    }
}

/// The umask for the second build, restored when dropped.
struct Umask(nix::sys::stat::Mode);

impl Umask {
    fn set(mode: u32) -> Umask {
        Umask(nix::sys::stat::umask(
            nix::sys::stat::Mode::from_bits_truncate(mode),
        ))
    }
}

impl Drop for Umask {
    fn drop(&mut self) {
        nix::sys::stat::umask(self.0);
    }
}

/// Builds `opts` twice in scratch stores and compares the results; see the module docs.
/// `opts.tags` are given to the image in `store` only when both builds agree.
pub fn check(
    store: &Store,
    opts: &BuildOptions<'_>,
    events: Sink<'_>,
) -> Result<Check, BuildError> {
    let _lock = store.write_lock()?;
    let scratch = Scratch(store.scratch_dir("repro")?);
    let mut opts = opts.clone();
    // Standard input can be read once: both builds read a copy.
    if opts.dockerfile.as_deref() == Some(Path::new("-")) {
        let src = source::read_dockerfile(Path::new("-"))?;
        let path = scratch.0.join("Dockerfile");
        fs::write(&path, &src.bytes).map_err(|e| StoreError::Io {
            what: format!("writing {}", path.display()),
            source: e,
        })?;
        opts.dockerfile = Some(path);
    }

    // The images the build starts from, resolved (or pulled) here, as a build would.
    let mut numbering = Numbering::default();
    let images = numbering.phase(&mut *events, |events| {
        let progress = Progress::new(events);
        let df_path = source::dockerfile_path(opts.dockerfile.as_deref(), &opts.context);
        let mut src = source::read_dockerfile(&df_path)?;
        if opts.dockerfile.is_none() {
            src.name = "Dockerfile".to_string();
        }
        let tree = syntax::parse(&src.bytes, &src.name)?;
        Ok::<_, BuildError>(super::bases::resolve(store, &tree, &src, &opts, &progress)?.ids)
    })?;

    let tags = std::mem::take(&mut opts.tags);
    // The scratch stores have the images; the store was just brought up to date.
    opts.pull = false;
    // Two builds from nothing: no cache comes in or goes out.
    opts.cache = Default::default();
    let build_in = |name: &str, events: Sink<'_>| -> Result<(Store, BuildOutcome), BuildError> {
        let root = scratch.0.join(name);
        let s = Store::open(&root)?;
        for (reference, id) in &images {
            copy_image(store, &s, id)?;
            if let Ok(r) = rbuild_store::ImageRef::parse(reference) {
                s.tag(id, &r.with_default_tag())?;
            }
        }
        let outcome = super::build(&s, &opts, events)?;
        Ok((s, outcome))
    };
    numbering.note(
        &mut *events,
        format!(
            "[reproducible-check] first build, in {}",
            scratch.0.join("first").display()
        ),
    );
    let (first_store, first) = numbering.phase(&mut *events, |e| build_in("first", e))?;
    // A later second than anything the first build wrote, under another umask.
    let ended = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    std::thread::sleep(std::time::Duration::from_nanos(
        1_000_000_000 - u64::from(ended.subsec_nanos()) + 1_000_000,
    ));
    numbering.note(
        &mut *events,
        format!(
            "[reproducible-check] second build, in {}, under umask 077",
            scratch.0.join("second").display()
        ),
    );
    let (second_store, second) = {
        let _umask = Umask::set(0o077);
        numbering.phase(&mut *events, |e| build_in("second", e))?
    };

    let difference = if first.image_id == second.image_id {
        if !tags.is_empty() {
            copy_image(&first_store, store, &first.image_id)?;
            for tag in &tags {
                store.tag(&first.image_id, tag)?;
            }
        }
        None
    } else {
        Some(difference(
            &first_store,
            &first.image_id,
            &second_store,
            &second.image_id,
        )?)
    };
    drop((first_store, second_store));
    drop(scratch);
    Ok(Check {
        tags: if difference.is_some() {
            Vec::new()
        } else {
            tags
        },
        image_id: first.image_id,
        second: second.image_id,
        difference,
    })
}

/// Vertex numbers for the check's phases, each of which numbers its own from 1: they go
/// on from the phase before, so no two vertices the printer sees share one.
#[derive(Default)]
struct Numbering {
    last: usize,
}

impl Numbering {
    fn phase<R>(&mut self, events: Sink<'_>, f: impl FnOnce(Sink<'_>) -> R) -> R {
        let base = self.last;
        let mut last = base;
        let result = {
            let mut renumbered = |mut e: Event| {
                if let Some(id) = event_id(&mut e) {
                    *id += base;
                    last = last.max(*id);
                }
                events(e)
            };
            f(&mut renumbered)
        };
        self.last = last;
        result
    }

    /// A vertex of its own that says what comes next.
    fn note(&mut self, events: Sink<'_>, name: String) {
        self.last += 1;
        events(Event::Started {
            id: self.last,
            name,
        });
        events(Event::Done {
            id: self.last,
            elapsed: std::time::Duration::ZERO,
        });
    }
}

fn event_id(e: &mut Event) -> Option<&mut usize> {
    match e {
        Event::Started { id, .. }
        | Event::Log { id, .. }
        | Event::Output { id, .. }
        | Event::Cached { id }
        | Event::Miss { id, .. }
        | Event::Done { id, .. }
        | Event::Failed { id, .. } => Some(id),
        Event::Warning { .. } => None,
    }
}

/// Where the images `a` (in `sa`) and `b` (in `sb`) first differ.
fn difference(sa: &Store, a: &Digest, sb: &Store, b: &Digest) -> Result<Difference, BuildError> {
    let (ca, cb) = (sa.config(a)?, sb.config(b)?);
    let (la, lb) = (&ca.rootfs.diff_ids, &cb.rootfs.diff_ids);
    if let Some(index) = (0..la.len().min(lb.len())).find(|&i| la[i] != lb[i]) {
        let trees = (sa.layer_tree(&la[index])?, sb.layer_tree(&lb[index])?);
        let file = diff_trees(&trees.0, &trees.1).map_err(|e| StoreError::Io {
            what: format!("comparing layer {index} of the two builds"),
            source: e,
        })?;
        return Ok(Difference::Layer {
            index,
            first: la[index].clone(),
            second: lb[index].clone(),
            file,
        });
    }
    if la.len() != lb.len() {
        return Ok(Difference::LayerCount {
            first: la.len(),
            second: lb.len(),
        });
    }
    let json = |s: &Store, d: &Digest| -> Result<serde_json::Value, BuildError> {
        serde_json::from_slice(&s.config_bytes(d)?).map_err(|e| {
            BuildError::Store(StoreError::Io {
                what: format!("reading the config of {d}"),
                source: e.into(),
            })
        })
    };
    let (ja, jb) = (json(sa, a)?, json(sb, b)?);
    let (path, first, second) = first_json_difference(&ja, &jb, String::new()).unwrap_or_default();
    Ok(Difference::Config {
        path,
        first,
        second,
    })
}

/// The first entry where the layer tars of two trees differ, both streamed through pipes
/// (nothing is written to disk).
fn diff_trees(a: &Path, b: &Path) -> io::Result<Option<EntryDifference>> {
    let (ra, wa) = io::pipe()?;
    let (rb, wb) = io::pipe()?;
    std::thread::scope(|s| {
        // A writer stops with EPIPE once the comparison has its answer and drops the
        // readers.
        s.spawn(move || layer::write_tar(a, wa, &WriteOptions::default()));
        s.spawn(move || layer::write_tar(b, wb, &WriteOptions::default()));
        layer::first_difference(ra, rb)
    })
}

/// The first place (a JSON path such as `history[3].created`) where `a` and `b` differ,
/// with both values, keys in order.
fn first_json_difference(
    a: &serde_json::Value,
    b: &serde_json::Value,
    at: String,
) -> Option<(String, String, String)> {
    use serde_json::Value;
    if a == b {
        return None;
    }
    let child = |k: &str| {
        if at.is_empty() {
            k.to_string()
        } else {
            format!("{at}.{k}")
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let missing = Value::Null;
                let (vx, vy) = (x.get(k), y.get(k));
                if vx.is_none() || vy.is_none() {
                    return (vx != vy).then(|| {
                        (
                            child(k),
                            vx.unwrap_or(&missing).to_string(),
                            vy.unwrap_or(&missing).to_string(),
                        )
                    });
                }
                first_json_difference(vx?, vy?, child(k))
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (vx, vy))| first_json_difference(vx, vy, format!("{at}[{i}]"))),
        _ => Some((
            if at.is_empty() { "(root)".into() } else { at },
            a.to_string(),
            b.to_string(),
        )),
    }
}

/// Copies the image `id` from `from` into `to`: its layers as trees of hard links to
/// `from`'s (checked against their diff IDs as `to` commits them), then its config.
/// Both stores must be on one file system (a scratch store under `from`'s `tmp/`, or
/// the reverse).
fn copy_image(from: &Store, to: &Store, id: &Digest) -> Result<(), BuildError> {
    let _lock = to.write_lock()?;
    if to.image(id)?.is_some() {
        return Ok(());
    }
    let config = from.config(id)?;
    let diff_ids = &config.rootfs.diff_ids;
    let trees = from.layer_trees(diff_ids)?;
    for (diff_id, tree) in diff_ids.iter().zip(trees) {
        if to.layer_size(diff_id)?.is_some() {
            continue;
        }
        // A layer that came as a blob (pulled, loaded, imported) has the blob's diff
        // ID, which a tar written from its tree need not have: the blob is stored again.
        let blob = from
            .layer_blobs(diff_id)?
            .into_iter()
            .find(|(d, _, _)| from.blobs().contains(d));
        if let Some((digest, media_type, size)) = blob {
            let what = format!("layer {diff_id}");
            let f = from.blobs().open(&digest).map_err(StoreError::from)?;
            to.add_layer(
                io::BufReader::with_capacity(1 << 20, f),
                &LayerSource {
                    what: &what,
                    digest: Some(&digest),
                    size: Some(size),
                    diff_id: Some(diff_id),
                    media_type: Some(&media_type),
                },
            )?;
            continue;
        }
        // A layer built here is its tree: linked, and hashed again as it is committed.
        let dirs = to.new_upper_dir()?;
        let mut linked = HashSet::new();
        let result = link_tree(&tree, &dirs.upper, &mut linked)
            .map_err(|e| {
                BuildError::Store(StoreError::Io {
                    what: format!("linking layer {diff_id} into {}", to.root().display()),
                    source: e,
                })
            })
            .and_then(|()| Ok(to.add_layer_dir_sharing(&dirs.upper, &linked)?));
        let _ = dirs.remove();
        let got = result?;
        if &got.diff_id != diff_id {
            let why = match diff_trees(&tree, &to.layer_dir(&got.diff_id)) {
                Ok(Some(d)) => format!(" (first difference at {d})"),
                Ok(None) => String::new(),
                Err(e) => format!(" (comparing them: {e})"),
            };
            return Err(BuildError::Store(StoreError::Io {
                what: format!("copying layer {diff_id}"),
                source: io::Error::other(format!("its copy has diff ID {}{why}", got.diff_id)),
            }));
        }
    }
    to.create_image(
        &from.config_bytes(id)?,
        &NewImage {
            parent: None,
            manifest: None,
        },
    )?;
    Ok(())
}

/// Fills the empty directory `dst` with `src`'s tree: directories made anew with the
/// owner, mode, xattrs (overlay's opaque marker included) and mtime of `src`'s, every
/// other entry (files, symlinks, whiteouts) a hard link. Notes the linked inodes.
fn link_tree(src: &Path, dst: &Path, linked: &mut HashSet<(u64, u64)>) -> io::Result<()> {
    let mut dirs: BTreeMap<PathBuf, fs::Metadata> = BTreeMap::new();
    let mut stack = vec![(src.to_path_buf(), dst.to_path_buf())];
    while let Some((s, d)) = stack.pop() {
        for entry in fs::read_dir(&s)? {
            let entry = entry?;
            let (from, to) = (entry.path(), d.join(entry.file_name()));
            let m = fs::symlink_metadata(&from)?;
            if m.is_dir() {
                fs::create_dir(&to)?;
                std::os::unix::fs::lchown(&to, Some(m.uid()), Some(m.gid()))?;
                fs::set_permissions(&to, fs::Permissions::from_mode(m.mode() & 0o7777))?;
                for name in xattr::list(&from)? {
                    if let Some(v) = xattr::get(&from, &name)? {
                        xattr::set(&to, &name, &v)?;
                    }
                }
                stack.push((from, to.clone()));
                dirs.insert(to, m);
            } else {
                fs::hard_link(&from, &to)?;
                linked.insert((m.dev(), m.ino()));
            }
        }
    }
    // After every entry is in place: adding one changes a directory's mtime.
    for (dir, m) in &dirs {
        fs::File::open(dir)?.set_modified(m.modified()?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_difference_names_the_first_path() {
        let a = json!({"created": "1", "history": [{"created": "1"}, {"created": "2"}]});
        let b = json!({"created": "1", "history": [{"created": "1"}, {"created": "3"}]});
        assert_eq!(
            first_json_difference(&a, &b, String::new()),
            Some(("history[1].created".into(), "\"2\"".into(), "\"3\"".into()))
        );
        assert_eq!(first_json_difference(&a, &a, String::new()), None);
        let c = json!({"created": "1"});
        assert_eq!(
            first_json_difference(&a, &c, String::new()).map(|d| d.0),
            Some("history".into())
        );
        let d = json!({"created": "1", "history": [{"created": "1"}]});
        assert_eq!(
            first_json_difference(&a, &d, String::new()).map(|d| d.0),
            Some("history".into())
        );
    }
}
