//! `COPY --parents`: sources keep their parent directories below the context root (or
//! the `--from` root), like `cp --parents` and `rsync --relative`, and a `/./` in a
//! source is the pivot: only what comes after it is kept.
//!
//! BuildKit (`dockerfile2llb/convert_copy.go`) turns each source into a copy of the
//! *contents* of the directory before the pivot (the root when there is none) with the
//! part after it as an include pattern. So here: the pivot directory (a wildcard there
//! may match several, or none) is the selection's top, and its children are the paths
//! the pattern includes — a path is included when the pattern (`**` crossing
//! directories, as in `.dockerignore`) matches it or one of its parents — plus the
//! directories that lead to them, with their own metadata. A pattern without wildcards
//! must exist (`"/path": not found`); one with wildcards may match nothing.

use std::collections::BTreeMap;

use rbuild_parser::dockerignore::Matcher;

use super::context::{self, Context, ContextError, Entry, Selection};
use super::rootfs::RootView;

/// What `--parents` needs of the tree it copies from.
pub(super) trait Tree {
    /// One path (symlinks in it resolved, the last one followed) with, for a
    /// directory, its contents.
    fn select(&self, src: &str) -> Result<Vec<Selection>, String>;
    /// Whether `select` failed because nothing is there (rather than unreadable).
    fn missing(err: &str) -> bool {
        err.ends_with(": not found") || err == "no source files were specified"
    }
    /// One path's own entry, without its contents.
    fn entry(&self, rel: &str) -> Result<Entry, String>;
}

impl Tree for Context {
    fn select(&self, src: &str) -> Result<Vec<Selection>, String> {
        Context::select(self, src).map_err(|e| e.to_string())
    }
    fn entry(&self, rel: &str) -> Result<Entry, String> {
        Context::entry(self, rel).map_err(|e: ContextError| e.to_string())
    }
}

impl Tree for RootView {
    fn select(&self, src: &str) -> Result<Vec<Selection>, String> {
        RootView::select(self, src)
    }
    fn entry(&self, rel: &str) -> Result<Entry, String> {
        RootView::entry(self, rel)
    }
}

fn wild(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn join(a: &str, b: &str) -> String {
    match (a, b) {
        ("" | ".", b) => b.to_string(),
        (a, "") => a.to_string(),
        (a, b) => format!("{a}/{b}"),
    }
}

/// The selections of every source of a `COPY --parents`, in order.
pub(super) fn select<T: Tree>(tree: &T, srcs: &[String]) -> Result<Vec<Selection>, String> {
    let mut out = Vec::new();
    for src in srcs {
        out.extend(select_one(tree, src)?);
    }
    Ok(out)
}

fn select_one<T: Tree>(tree: &T, src: &str) -> Result<Vec<Selection>, String> {
    let (base, pattern) = match src.split_once("/./") {
        Some((b, p)) => (context::clean(b), context::clean(p)),
        None => (String::new(), context::clean(src)),
    };
    let bases: Vec<Entry> = if wild(&base) {
        match tree.select(&base) {
            Ok(sels) => sels.into_iter().map(|s| s.top).collect(),
            Err(e) if T::missing(&e) => Vec::new(),
            Err(e) => return Err(e),
        }
    } else {
        vec![tree.entry(&base)?]
    };
    let mut out = Vec::new();
    for b in bases.into_iter().filter(|b| b.meta.is_dir()) {
        let base_rel = if b.rel == "." { "" } else { b.rel.as_str() };
        let mut kept: BTreeMap<String, Entry> = BTreeMap::new();
        if !wild(&pattern) {
            let at = join(base_rel, &pattern);
            for sel in tree.select(&at)? {
                add_parents(tree, base_rel, &sel.top.rel, &mut kept)?;
                if sel.top.rel != b.rel {
                    kept.insert(sel.top.rel.clone(), sel.top);
                }
                for c in sel.children {
                    kept.insert(c.rel.clone(), c);
                }
            }
        } else {
            let segs: Vec<&str> = pattern.split('/').collect();
            let literal = segs.iter().take_while(|s| !wild(s)).count();
            let start = join(base_rel, &segs[..literal].join("/"));
            let matcher = Matcher::new([pattern.as_str()]).map_err(|e| format!("{src}: {e}"))?;
            let sels = match tree.select(&start) {
                Ok(s) => s,
                Err(e) if T::missing(&e) => Vec::new(),
                Err(e) => return Err(e),
            };
            for sel in sels {
                let below = |rel: &str| -> String {
                    rel.strip_prefix(base_rel)
                        .map(|r| r.trim_start_matches('/'))
                        .unwrap_or(rel)
                        .to_string()
                };
                let candidates = std::iter::once(sel.top)
                    .filter(|t| t.rel != b.rel)
                    .chain(sel.children);
                let mut dirs: BTreeMap<String, Entry> = BTreeMap::new();
                for e in candidates {
                    if matcher.excluded(&below(&e.rel)) {
                        // Its parents inside the walk, then the ones above it.
                        let mut p = e.rel.as_str();
                        while let Some((parent, _)) = p.rsplit_once('/') {
                            if let Some(d) = dirs.get(parent) {
                                kept.insert(parent.to_string(), d.clone());
                            }
                            p = parent;
                        }
                        add_parents(tree, base_rel, &e.rel, &mut kept)?;
                        kept.insert(e.rel.clone(), e);
                    } else if e.meta.is_dir() {
                        dirs.insert(e.rel.clone(), e);
                    }
                }
            }
        }
        out.push(Selection {
            top: b,
            children: kept.into_values().collect(),
            keep_owner: false,
            remote: false,
        });
    }
    Ok(out)
}

/// The directories between `base` (exclusive) and `rel` (exclusive), by their own
/// entries.
fn add_parents<T: Tree>(
    tree: &T,
    base: &str,
    rel: &str,
    kept: &mut BTreeMap<String, Entry>,
) -> Result<(), String> {
    let inner = rel
        .strip_prefix(base)
        .map(|r| r.trim_start_matches('/'))
        .unwrap_or(rel);
    let comps: Vec<&str> = inner.split('/').collect();
    for i in 1..comps.len() {
        let p = join(base, &comps[..i].join("/"));
        if let std::collections::btree_map::Entry::Vacant(slot) = kept.entry(p) {
            let e = tree.entry(slot.key())?;
            slot.insert(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn tree() -> (tempfile::TempDir, Context) {
        let d = tempfile::tempdir().unwrap();
        for f in [
            "test/a/b/c/d/foo",
            "test/a/b/c/d/e/bay",
            "test/a/b2/c/d/e/bar",
            "test/a/b/c2/d/e/baz",
            "test/a/b/c2/d/e2/baz",
        ] {
            let p = d.path().join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, f).unwrap();
        }
        let ctx = Context::new(
            d.path().to_path_buf(),
            Matcher::new(std::iter::empty::<&str>()).unwrap(),
        );
        (d, ctx)
    }

    /// The paths a source copies, as they land under the destination.
    fn copied(ctx: &Context, srcs: &[&str]) -> Vec<String> {
        let srcs: Vec<String> = srcs.iter().map(|s| s.to_string()).collect();
        let mut out: Vec<String> = select(ctx, &srcs)
            .unwrap()
            .iter()
            .flat_map(|s| {
                let top = if s.top.rel == "." {
                    String::new()
                } else {
                    format!("{}/", s.top.rel)
                };
                s.children
                    .iter()
                    .map(move |c| c.rel.strip_prefix(&top).unwrap_or(&c.rel).to_string())
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    // The cases of BuildKit's dockerfile_parents_test.go.
    #[test]
    fn pivots_globs_and_double_stars() {
        let (_d, c) = tree();
        let middle = copied(&c, &["/test/a/b/./c/d"]);
        assert!(middle.contains(&"c/d/e/bay".to_string()), "{middle:?}");
        assert!(middle.contains(&"c/d/foo".to_string()));
        assert!(
            !middle
                .iter()
                .any(|p| p.starts_with("test") || p.starts_with("a"))
        );
        let end = copied(&c, &["/test/a/b/c/d/."]);
        assert!(end.contains(&"test/a/b/c/d/foo".to_string()), "{end:?}");
        assert!(end.contains(&"test".to_string()));
        let start = copied(&c, &["./test/a/b/c/d"]);
        assert_eq!(start, end);
        let double = copied(&c, &["/test/a/./b/./c"]);
        assert!(double.contains(&"b/c/d/foo".to_string()), "{double:?}");
        let wildcard = copied(&c, &["/test/a/./*/c"]);
        assert!(
            wildcard.contains(&"b/c/d/e/bay".to_string()),
            "{wildcard:?}"
        );
        assert!(wildcard.contains(&"b2/c/d/e/bar".to_string()));
        let dw = copied(&c, &["/test/a/b*/./c/**/e"]);
        assert!(dw.contains(&"c/d/e/bay".to_string()), "{dw:?}");
        assert!(dw.contains(&"c/d/e/bar".to_string()));
        assert!(!dw.contains(&"c/d/foo".to_string()));
        let two = copied(&c, &["/test/a/b/c*/./d/**/baz", "/test/a/b*/./c/**/bar"]);
        assert!(two.contains(&"d/e/baz".to_string()), "{two:?}");
        assert!(two.contains(&"d/e2/baz".to_string()));
        assert!(two.contains(&"c/d/e/bar".to_string()));
        assert!(!two.contains(&"d/e/bay".to_string()));
        // Wildcards may match nothing; a literal path must exist.
        assert!(copied(&c, &["/test/a/b3*/c"]).is_empty());
        assert!(
            copied(&c, &["/test/a/b/./c2*"])
                .iter()
                .all(|p| !p.starts_with("test"))
        );
        let err = select(&c, &["/test/nonexistent-file".to_string()]).unwrap_err();
        assert!(
            err.contains("\"/test/nonexistent-file\": not found"),
            "{err}"
        );
    }
}
