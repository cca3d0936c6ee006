//! The build context: finding COPY/ADD sources in it with `.dockerignore` applied, and
//! digesting them for the cache key.
//!
//! Paths are context-relative, `/`-separated and clean; `..` never leaves the context
//! (BuildKit cleans source paths against the context root the same way). A source that
//! `.dockerignore` excludes does not exist for the build.

use std::collections::BTreeMap;
use std::fs::{self, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rbuild_parser::dockerignore::{Matcher, Pattern};
use sha2::{Digest as _, Sha256};

use super::cache::hex;

/// Symlinks followed at most this often while resolving one source path (Linux's
/// `MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

/// A build context directory and its ignore rules.
pub struct Context {
    root: PathBuf,
    ignore: Matcher,
}

/// One file, directory or symlink to copy.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Context-relative path (`src/app.py`).
    pub rel: String,
    /// Where it is on the host.
    pub path: PathBuf,
    /// lstat of it.
    pub meta: Metadata,
}

/// What one source argument of a COPY selects.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The matched path itself (followed if it was a symlink named directly).
    pub top: Entry,
    /// For a directory, everything inside it (not ignored), parents before children.
    pub children: Vec<Entry>,
    /// Copied entries keep their own uid/gid (an archive ADD extracted, without
    /// `--chown`), instead of the copy's owner.
    pub keep_owner: bool,
    /// Downloaded by ADD from a URL: never unpacked.
    pub remote: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("\"/{0}\": not found")]
    NotFound(String),
    #[error("no source files were specified")]
    NoMatch(String),
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}: {1}")]
    BadPattern(String, String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ContextError + '_ {
    move |source| ContextError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Context {
    pub fn new(root: PathBuf, ignore: Matcher) -> Self {
        Context { root, ignore }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn excluded(&self, rel: &str) -> bool {
        !self.ignore.is_empty() && self.ignore.excluded(rel)
    }

    /// What one COPY source argument selects: one path, or every path a wildcard
    /// pattern matches (segment by segment, `*` not crossing `/`, like Go's
    /// `filepath.Match` that BuildKit uses).
    pub fn select(&self, src: &str) -> Result<Vec<Selection>, ContextError> {
        let rel = clean(src);
        let has_glob = rel.contains(['*', '?', '[']);
        let tops = if has_glob {
            let found = self.glob(&rel)?;
            if found.is_empty() {
                return Err(ContextError::NoMatch(rel));
            }
            found
        } else {
            vec![self.lookup(&rel)?]
        };
        tops.into_iter()
            .map(|top| {
                let mut children = Vec::new();
                if top.meta.is_dir() {
                    self.walk(&top.path, &top.rel, &mut children)?;
                }
                Ok(Selection {
                    top,
                    children,
                    keep_owner: false,
                    remote: false,
                })
            })
            .collect()
    }

    /// One path's own entry (no contents), as a literal source names it.
    pub fn entry(&self, src: &str) -> Result<Entry, ContextError> {
        self.lookup(&clean(src))
    }

    /// A path named literally, symlinks in it resolved inside the context.
    fn lookup(&self, rel: &str) -> Result<Entry, ContextError> {
        if self.excluded(rel) {
            return Err(ContextError::NotFound(rel.to_string()));
        }
        let resolved = self.resolve(rel)?;
        let path = self.root.join(&resolved);
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ContextError::NotFound(rel.to_string()));
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        Ok(Entry {
            rel: if rel.is_empty() {
                ".".into()
            } else {
                rel.to_string()
            },
            path,
            meta,
        })
    }

    /// Resolves symlinks in a context-relative path without leaving the context: an
    /// absolute link target is taken from the context root, `..` stops at it.
    fn resolve(&self, rel: &str) -> Result<String, ContextError> {
        let mut todo: Vec<String> = rel.split('/').rev().map(str::to_string).collect();
        let mut done: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(part) = todo.pop() {
            match part.as_str() {
                "" | "." => continue,
                ".." => {
                    done.pop();
                    continue;
                }
                _ => {}
            }
            let candidate = self.root.join(done.join("/")).join(&part);
            match fs::symlink_metadata(&candidate) {
                Ok(m) if m.file_type().is_symlink() => {
                    hops += 1;
                    if hops > MAX_SYMLINKS {
                        return Err(ContextError::NotFound(rel.to_string()));
                    }
                    let target = fs::read_link(&candidate).map_err(io_err(&candidate))?;
                    let target = target.to_string_lossy().into_owned();
                    if target.starts_with('/') {
                        done.clear();
                    }
                    todo.extend(target.split('/').rev().map(str::to_string));
                }
                _ => done.push(part),
            }
        }
        Ok(done.join("/"))
    }

    /// Paths matching a wildcard pattern, sorted, ignored ones left out.
    fn glob(&self, pattern: &str) -> Result<Vec<Entry>, ContextError> {
        let mut level: Vec<String> = vec![String::new()];
        for seg in pattern.split('/') {
            let mut next = Vec::new();
            let wild = seg.contains(['*', '?', '[']);
            let matcher = if wild {
                Some(
                    Pattern::parse(seg)
                        .map_err(|e| ContextError::BadPattern(pattern.into(), e.to_string()))?
                        .ok_or_else(|| ContextError::NoMatch(pattern.into()))?,
                )
            } else {
                None
            };
            for dir in &level {
                let join = |name: &str| {
                    if dir.is_empty() {
                        name.to_string()
                    } else {
                        format!("{dir}/{name}")
                    }
                };
                match &matcher {
                    None => {
                        if fs::symlink_metadata(self.root.join(join(seg))).is_ok() {
                            next.push(join(seg));
                        }
                    }
                    Some(m) => {
                        let Ok(rd) = fs::read_dir(self.root.join(dir)) else {
                            continue;
                        };
                        let mut names: Vec<String> = rd
                            .filter_map(|e| e.ok())
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .filter(|n| m.matches(n))
                            .collect();
                        names.sort();
                        next.extend(names.iter().map(|n| join(n)));
                    }
                }
            }
            level = next;
        }
        let mut out = Vec::new();
        for rel in level {
            if !self.excluded(&rel) {
                out.push(self.lookup(&rel)?);
            }
        }
        Ok(out)
    }

    /// Everything below directory `path` (context-relative `rel`), sorted by name,
    /// parents first, with `.dockerignore` applied.
    fn walk(&self, path: &Path, rel: &str, out: &mut Vec<Entry>) -> Result<(), ContextError> {
        let mut names: Vec<_> = fs::read_dir(path)
            .map_err(io_err(path))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(io_err(path))?;
        names.sort();
        for name in names {
            let child_rel = if rel.is_empty() || rel == "." {
                name.to_string_lossy().into_owned()
            } else {
                format!("{rel}/{}", name.to_string_lossy())
            };
            let child = path.join(&name);
            let meta = fs::symlink_metadata(&child).map_err(io_err(&child))?;
            let excluded = self.excluded(&child_rel);
            if meta.is_dir() {
                if excluded && !self.ignore.could_contain_included(&child_rel) {
                    continue;
                }
                let at = out.len();
                self.walk(&child, &child_rel, out)?;
                // An ignored directory is still created when something in it is kept.
                if !excluded || out.len() > at {
                    out.insert(
                        at,
                        Entry {
                            rel: child_rel,
                            path: child,
                            meta,
                        },
                    );
                }
            } else if !excluded {
                out.push(Entry {
                    rel: child_rel,
                    path: child,
                    meta,
                });
            }
        }
        Ok(())
    }
}

/// Digest of one entry for the cache key: type, permission bits, owner, and content or
/// link target. Not mtimes: touching a file does not invalidate the cache.
pub fn entry_digest(e: &Entry) -> Result<String, ContextError> {
    let m = &e.meta;
    let ft = m.file_type();
    let mut h = Sha256::new();
    let kind = if ft.is_dir() {
        "dir"
    } else if ft.is_symlink() {
        "symlink"
    } else if ft.is_file() {
        "file"
    } else if ft.is_fifo() {
        "fifo"
    } else {
        "other"
    };
    h.update(format!(
        "{kind} {:o} {}:{}\n",
        m.mode() & 0o7777,
        m.uid(),
        m.gid()
    ));
    if ft.is_symlink() {
        let target = fs::read_link(&e.path).map_err(io_err(&e.path))?;
        h.update(target.as_os_str().as_encoded_bytes());
    } else if ft.is_file() {
        let mut f = fs::File::open(&e.path).map_err(io_err(&e.path))?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = f.read(&mut buf).map_err(io_err(&e.path))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(hex(&h.finalize()))
}

/// Digests of every entry of some selections, by context-relative path.
pub fn digests(sel: &[Selection]) -> Result<BTreeMap<String, String>, ContextError> {
    digests_cached(sel, None)
}

/// [`digests`], reusing the digests of regular files whose stat has not changed since an
/// earlier build, remembered in the file `cache` (git's index and BuildKit's content hash
/// cache trust the same fields): a rebuild after one file changed reads that file only,
/// not the whole context. The key is (dev, ino, size, mtime, ctime, mode, uid, gid);
/// writing a file or changing its metadata moves its ctime. Files changed within the
/// last [`RACY_SECS`] are not remembered, so that a write in the same clock tick as the
/// hashing cannot hide behind an unchanged stat. The cache is best effort: a missing or
/// unreadable file just means hashing everything.
pub fn digests_cached(
    sel: &[Selection],
    cache: Option<&Path>,
) -> Result<BTreeMap<String, String>, ContextError> {
    digests_cached_before(sel, cache, racy_after())
}

/// Seconds since the epoch before which a file's mtime and ctime must be for a digest
/// read now to be trusted as its content's later on, as long as its stat stays the same
/// (a write in the same clock tick as the read would not move them).
pub fn racy_after() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64 - RACY_SECS)
        .unwrap_or(i64::MIN)
}

/// [`digests_cached`], remembering only files with mtime and ctime before `racy_after`
/// (seconds since the epoch).
fn digests_cached_before(
    sel: &[Selection],
    cache: Option<&Path>,
    racy_after: i64,
) -> Result<BTreeMap<String, String>, ContextError> {
    let mut known = cache.map(load_digest_cache).unwrap_or_default();
    let mut added = false;
    let mut out = BTreeMap::new();
    for s in sel {
        for e in std::iter::once(&s.top).chain(&s.children) {
            let key = e.meta.is_file().then(|| stat_key(&e.meta));
            let digest = match key.as_ref().and_then(|k| known.get(k)) {
                Some(d) => d.clone(),
                None => {
                    let d = entry_digest(e)?;
                    if let Some(k) = key
                        && cache.is_some()
                        && e.meta.ctime() < racy_after
                        && e.meta.mtime() < racy_after
                    {
                        known.insert(k, d.clone());
                        added = true;
                    }
                    d
                }
            };
            out.insert(e.rel.clone(), digest);
        }
    }
    if added && let Some(path) = cache {
        save_digest_cache(path, &known);
    }
    Ok(out)
}

/// Seconds before now within which a changed file's digest is not remembered.
const RACY_SECS: i64 = 2;
/// At most this many digests are remembered; past it the file starts afresh.
const MAX_CACHED_DIGESTS: usize = 1_000_000;

fn stat_key(m: &Metadata) -> String {
    format!(
        "{} {} {} {}.{} {}.{} {:o} {} {}",
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
        m.mode(),
        m.uid(),
        m.gid()
    )
}

/// Lines of `KEY\tDIGEST`.
fn load_digest_cache(path: &Path) -> std::collections::HashMap<String, String> {
    let Ok(text) = fs::read_to_string(path) else {
        return Default::default();
    };
    text.lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(_, d)| d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|(k, d)| (k.to_string(), d.to_string()))
        .collect()
}

/// Written beside and renamed over, so readers see a whole file; failures are ignored
/// (the cache only saves time).
fn save_digest_cache(path: &Path, known: &std::collections::HashMap<String, String>) {
    if known.len() > MAX_CACHED_DIGESTS {
        let _ = fs::remove_file(path);
        return;
    }
    let mut text = String::with_capacity(known.len() * 120);
    for (k, d) in known {
        text.push_str(k);
        text.push('\t');
        text.push_str(d);
        text.push('\n');
    }
    // Unique per writer: stages on several threads may save at once.
    let tmp = path.with_file_name(rbuild_store::fsutil::unique_name(".context-digests"));
    if fs::write(&tmp, text).is_err() || fs::rename(&tmp, path).is_err() {
        let _ = fs::remove_file(&tmp);
    }
}

/// A source argument as a clean context-relative path: leading `/` and `./` dropped,
/// `..` stopping at the root (`""` is the context itself).
pub fn clean(src: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in src.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            x => parts.push(x),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(ignore: &[&str]) -> (tempfile::TempDir, Context) {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        fs::create_dir_all(r.join("src/sub")).unwrap();
        fs::write(r.join("src/a.py"), "a").unwrap();
        fs::write(r.join("src/b.txt"), "b").unwrap();
        fs::write(r.join("src/sub/c.py"), "c").unwrap();
        fs::write(r.join("top.py"), "t").unwrap();
        std::os::unix::fs::symlink("/src", r.join("link")).unwrap();
        let c = Context::new(
            r.to_path_buf(),
            Matcher::new(ignore.iter().copied()).unwrap(),
        );
        (dir, c)
    }

    fn rels(sel: &[Selection]) -> Vec<String> {
        sel.iter()
            .flat_map(|s| std::iter::once(&s.top).chain(&s.children))
            .map(|e| e.rel.clone())
            .collect()
    }

    #[test]
    fn selects_paths_dirs_and_globs() {
        let (_d, c) = ctx(&["**/*.txt"]);
        assert_eq!(rels(&c.select("/src/../top.py").unwrap()), ["top.py"]);
        assert_eq!(
            rels(&c.select("src").unwrap()),
            ["src", "src/a.py", "src/sub", "src/sub/c.py"]
        );
        assert_eq!(rels(&c.select("src/*.py").unwrap()), ["src/a.py"]);
        assert_eq!(rels(&c.select("*/*/*.py").unwrap()), ["src/sub/c.py"]);
        assert!(matches!(
            c.select("src/b.txt"),
            Err(ContextError::NotFound(_))
        ));
        assert!(matches!(c.select("*.rs"), Err(ContextError::NoMatch(_))));
        // A symlink named directly is followed, inside the context.
        let sel = c.select("link").unwrap();
        assert!(sel[0].top.meta.is_dir());
        assert_eq!(sel[0].children.len(), 3);
    }

    #[test]
    fn digest_cache_is_used_until_the_stat_changes() {
        let (d, c) = ctx(&[]);
        let cache = d.path().join("digests");
        let sel = c.select("src").unwrap();
        let plain = digests(&sel).unwrap();
        // Fresh files are racy: nothing is remembered.
        assert_eq!(digests_cached(&sel, Some(&cache)).unwrap(), plain);
        assert!(!cache.exists());
        assert_eq!(
            digests_cached_before(&sel, Some(&cache), i64::MAX).unwrap(),
            plain
        );
        // The remembered digest is what is used (proved by faking it).
        let fake = "f".repeat(64);
        let text = fs::read_to_string(&cache).unwrap();
        assert_eq!(text.lines().count(), 3, "the three regular files");
        let real = &plain["src/a.py"];
        fs::write(&cache, text.replace(real.as_str(), &fake)).unwrap();
        assert_eq!(
            digests_cached_before(&sel, Some(&cache), i64::MAX).unwrap()["src/a.py"],
            fake
        );
        // Rewriting the file (same size) changes its ctime: hashed again.
        fs::write(d.path().join("src/a.py"), "z").unwrap();
        let sel = c.select("src").unwrap();
        let again = digests_cached_before(&sel, Some(&cache), i64::MAX).unwrap();
        assert_eq!(again, digests(&sel).unwrap());
        assert_ne!(again["src/a.py"], fake);
        // A garbled cache file is ignored.
        fs::write(&cache, "nonsense\tzz\n\0").unwrap();
        assert_eq!(
            digests_cached(&sel, Some(&cache)).unwrap(),
            digests(&sel).unwrap()
        );
    }

    #[test]
    fn digests_follow_content_not_mtime() {
        let (d, c) = ctx(&[]);
        let one = digests(&c.select("src").unwrap()).unwrap();
        let f = fs::File::options()
            .write(true)
            .open(d.path().join("src/a.py"))
            .unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(one, digests(&c.select("src").unwrap()).unwrap());
        fs::write(d.path().join("src/a.py"), "changed").unwrap();
        let two = digests(&c.select("src").unwrap()).unwrap();
        assert_ne!(one["src/a.py"], two["src/a.py"]);
        assert_eq!(one["src/sub/c.py"], two["src/sub/c.py"]);
    }
}
