//! A list of patterns deciding whether a context path is excluded.
//!
//! Docker's rule (`PatternMatcher.MatchesOrParentMatches`) walks the patterns in order
//! with a running verdict: a pattern that matches the path *or any of its parent
//! directories* sets the verdict to "excluded", or back to "included" for a `!` pattern.
//! The verdict therefore equals that of the **last** pattern that matches, which is how
//! [`Matcher`] evaluates it (from the end, stopping at the first match), and what makes
//! [`Matcher::could_contain_included`] provable.

use super::clean::dir;
use super::pattern::{Pattern, PatternError};

/// Compiled `.dockerignore` patterns.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

impl Matcher {
    /// Compiles `patterns` as Docker's `patternmatcher.New` does: each is trimmed and
    /// cleaned, blank ones are skipped, a `!` prefix marks an exception. Fails on the first
    /// invalid pattern. A leading `/` is kept here, as in Docker (only the file reader
    /// removes it), so pass patterns from [`read_ignore_file`](super::read_ignore_file), or
    /// use [`parse_ignore_file`](super::parse_ignore_file), which also gives line numbers.
    pub fn new<I, S>(patterns: I) -> Result<Matcher, PatternError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut compiled = Vec::new();
        for raw in patterns {
            if let Some(pattern) = Pattern::parse(raw.as_ref())? {
                compiled.push(pattern);
            }
        }
        Ok(Matcher { patterns: compiled })
    }

    /// Builds a matcher from patterns already compiled, in order.
    pub fn from_patterns(patterns: Vec<Pattern>) -> Matcher {
        Matcher { patterns }
    }

    /// The patterns, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether there are no patterns, so nothing is excluded.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether any pattern is a `!` exception (Docker's `Exclusions()`). Without one, an
    /// excluded directory can be skipped whole.
    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(Pattern::is_exception)
    }

    /// Whether `path` (relative to the context root, `/`-separated, clean, as a directory
    /// walk produces it) is left out of the build context: the last pattern that matches
    /// it or one of its parent directories is not a `!` exception.
    ///
    /// The context root itself (`""` or `"."`) is never excluded, as in Docker's
    /// package-level `MatchesOrParentMatches`. Other paths are taken as given, like
    /// Docker's method of the same name, which the conformance table exercises with
    /// paths such as `file/` and `/`.
    pub fn excluded(&self, path: &str) -> bool {
        if path.is_empty() || path == "." {
            return false;
        }
        self.last_match(path).is_some_and(|p| !p.is_exception())
    }

    /// Whether a walk must descend into directory `dir` because something below it could
    /// end up in the context. `false` means every path below `dir` is excluded, so the
    /// whole subtree can be skipped; `true` may be returned when nothing below turns out
    /// to be included (the walk then merely visits excluded entries).
    ///
    /// Why it is sound: when `dir` is excluded, some non-exception pattern *k* is the last
    /// one matching `dir` or a parent of it. Those are parents of every path `p` below
    /// `dir` too, so the last pattern matching `p` is *k* or a later one; for `p` to be
    /// included it must be a later `!` pattern, which matches nothing at or above `dir`
    /// (else it would come after *k* for `dir` too), so it must match some `dir/…` path.
    /// We return `true` exactly when some `!` pattern after *k* might do that.
    ///
    /// This generalises what BuildKit's fsutil does (it skips a directory only when every
    /// exception is a literal path, comparing prefixes) and Docker's classic tar walk
    /// (prefix comparison only, which wrongly skips `a/` under `** !**/keep`).
    pub fn could_contain_included(&self, dir: &str) -> bool {
        if dir.is_empty() || dir == "." {
            return true;
        }
        let Some(last) = self.last_match_index(dir) else {
            return true;
        };
        let mut patterns = self.patterns.iter().skip(last);
        if patterns.next().is_none_or(Pattern::is_exception) {
            return true;
        }
        patterns.any(|p| p.is_exception() && p.could_match_below(dir))
    }

    /// The last pattern matching `path` or one of its parents (Docker's parents: the
    /// prefixes of `filepath.Dir(path)` at each `/`, unless that is `.`).
    fn last_match(&self, path: &str) -> Option<&Pattern> {
        self.last_match_index(path)
            .and_then(|i| self.patterns.get(i))
    }

    fn last_match_index(&self, path: &str) -> Option<usize> {
        let parent = dir(path);
        let parent = (parent != ".").then_some(parent.as_str());
        self.patterns.iter().rposition(|p| {
            p.matches(path) || parent.is_some_and(|parent| p.matches_dir_or_ancestor(parent))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::clean::dir;
    use super::Matcher;
    use proptest::prelude::*;

    fn matcher(patterns: &[&str]) -> Matcher {
        Matcher::new(patterns).unwrap()
    }

    /// Docker's `MatchesOrParentMatches`, transcribed literally: forward, with a running
    /// verdict and its skip rule. Our last-match evaluation must always agree with it.
    fn docker_forward(m: &Matcher, path: &str) -> bool {
        let parent = dir(path);
        let parents: Vec<&str> = parent.split('/').collect();
        let mut matched = false;
        for p in m.patterns() {
            if p.is_exception() != matched {
                continue;
            }
            let mut hit = p.matches(path);
            if !hit && parent != "." {
                hit = (1..=parents.len()).any(|n| p.matches(&parents[..n].join("/")));
            }
            if hit {
                matched = !p.is_exception();
            }
        }
        matched
    }

    #[test]
    fn folder_exceptions_from_dockers_tests() {
        assert!(!matcher(&["docs", "!docs/README.md"]).excluded("docs/README.md"));
        assert!(matcher(&["docs", "!docs/README.md"]).excluded("docs/other.md"));
        assert!(!matcher(&["docs/", "!docs/README.md"]).excluded("docs/README.md"));
        assert!(!matcher(&["docs/*", "!docs/README.md"]).excluded("docs/README.md"));
        assert!(!matcher(&["*.go", "!fileutils.go"]).excluded("fileutils.go"));
        assert!(matcher(&["!fileutils.go", "*.go"]).excluded("fileutils.go"));
        assert!(!matcher(&[]).excluded("any/path"));
        assert!(!matcher(&["**"]).excluded("."));
        assert!(!matcher(&["**"]).excluded(""));
    }

    #[test]
    fn parents_count() {
        let m = matcher(&["build", "*/cache"]);
        assert!(m.excluded("build/out/a.o"));
        assert!(m.excluded("x/cache/y/z"));
        assert!(!m.excluded("x/y/cache"));
        assert!(!m.excluded("src/build"));
    }

    #[test]
    fn has_exclusions_means_a_bang_pattern() {
        assert!(!matcher(&["a", "b/**"]).has_exclusions());
        assert!(matcher(&["a", "!a/keep"]).has_exclusions());
        assert!(matcher(&["", "  "]).is_empty());
    }

    #[test]
    fn pruning_decisions() {
        // No exceptions: an excluded directory is dead.
        let m = matcher(&["node_modules"]);
        assert!(!m.could_contain_included("node_modules"));
        assert!(m.could_contain_included("src"));

        // A literal exception below keeps its ancestors alive, not its siblings.
        let m = matcher(&["docs", "!docs/keep/me.md"]);
        assert!(m.could_contain_included("docs"));
        assert!(m.could_contain_included("docs/keep"));
        assert!(!m.could_contain_included("docs/other"));

        // A wildcard exception anywhere keeps everything alive (Docker's classic prefix
        // check would wrongly skip `a` here).
        let m = matcher(&["**", "!**/keep"]);
        assert!(m.could_contain_included("a"));
        assert!(!m.excluded("a/b/keep"));

        // An exception *before* the excluding pattern cannot help.
        let m = matcher(&["!keep/x", "keep"]);
        assert!(!m.could_contain_included("keep"));
        assert!(m.excluded("keep/x"));

        // `*/keep` can only re-include at depth two.
        let m = matcher(&["**", "!*/keep"]);
        assert!(m.could_contain_included("a"));
        assert!(!m.could_contain_included("a/b"));

        // The root is always walked.
        assert!(matcher(&["**"]).could_contain_included(""));
    }

    #[test]
    fn hostile_pattern_on_long_path_is_fast() {
        let pattern = format!("{}x", "**/".repeat(500));
        let m = Matcher::new([pattern.as_str(), "!**/**/**/**/**/**/**/**/**/y"]).unwrap();
        let path = "ab/".repeat(1500) + "z";
        let start = std::time::Instant::now();
        assert!(!m.excluded(&path));
        assert!(m.could_contain_included(&path));
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
    }

    fn pattern_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("a"),
            Just("b"),
            Just("/"),
            Just("*"),
            Just("**"),
            Just("?"),
            Just("[ab]"),
            Just("[^a]"),
            Just("\\a"),
        ];
        (any::<bool>(), prop::collection::vec(piece, 1..5)).prop_map(|(bang, pieces)| {
            format!("{}{}", if bang { "!" } else { "" }, pieces.concat())
        })
    }

    fn path_text() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![Just("a"), Just("b"), Just("ab"), Just("ba")],
            1..5,
        )
        .prop_map(|parts| parts.join("/"))
    }

    proptest! {
        #[test]
        fn last_match_equals_dockers_forward_walk(
            patterns in prop::collection::vec(pattern_text(), 0..5),
            path in path_text(),
        ) {
            let Ok(m) = Matcher::new(&patterns) else { return Ok(()) };
            prop_assert_eq!(m.excluded(&path), docker_forward(&m, &path));
        }

        #[test]
        fn pruned_directories_hold_only_excluded_paths(
            patterns in prop::collection::vec(pattern_text(), 0..5),
            dir in path_text(),
            below in path_text(),
        ) {
            let Ok(m) = Matcher::new(&patterns) else { return Ok(()) };
            if !m.could_contain_included(&dir) {
                let inner = format!("{dir}/{below}");
                prop_assert!(m.excluded(&inner), "{patterns:?}: {dir} pruned but {inner} included");
            }
        }
    }
}
