//! The general matcher for patterns with wildcards, classes or escapes.
//!
//! Docker turns such a pattern into a Go regular expression: `*` is `[^/]*`, `?` is
//! `[^/]`, `**` is `(.*/)?` (or `.*` at the end of the pattern), everything else is
//! literal. We compile the same pieces into [`Step`]s and run them as a
//! Thompson-style automaton: every reachable position is tracked at once, so matching
//! costs O(path length × pattern length) whatever the pattern. A backtracking glob
//! matcher would take exponential time on hostile patterns such as `**/**/**/…/x`.
//!
//! Go's `.` does not match a newline, so neither do the `.*` pieces here; the `[^/]`
//! pieces do. File names with newlines are rare, but this keeps the answer Docker's.

use super::class::Class;

/// One piece of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// A literal character.
    Char(char),
    /// `?`: one character other than `/`.
    AnyChar,
    /// `[...]`.
    Class(Class),
    /// `*`: any run of characters other than `/`.
    Star,
    /// `**` at the end of the pattern: anything but a newline (`.*`).
    AnyText,
    /// `**` elsewhere (`(.*/)?`): nothing, or anything ending in `/`. Takes two states:
    /// this one only forks to "skip" (two ahead) or "enter" the next one, which must be
    /// [`Step::DirsBody`].
    DirsStart,
    /// The `.*/` inside a [`Step::DirsStart`].
    DirsBody,
}

/// A compiled wildcard pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    steps: Vec<Step>,
}

impl Glob {
    pub(crate) fn new() -> Self {
        Glob { steps: Vec::new() }
    }

    pub(crate) fn push(&mut self, step: Step) {
        self.steps.push(step);
    }

    /// Adds `**` in the middle of a pattern.
    pub(crate) fn push_dirs(&mut self) {
        self.steps.push(Step::DirsStart);
        self.steps.push(Step::DirsBody);
    }

    /// Whether the whole of `text` matches.
    pub(crate) fn matches(&self, text: &str) -> bool {
        let mut run = Run::new(self);
        for c in text.chars() {
            if !run.advance(c) {
                return false;
            }
        }
        run.accepting()
    }

    /// Whether the pattern matches `dir` or one of its ancestors, i.e. `dir` itself or
    /// any prefix of it that ends just before a `/` (`a/b/c` tries `a`, `a/b`, `a/b/c`).
    /// One pass over `dir` answers for every prefix.
    pub(crate) fn matches_dir_or_ancestor(&self, dir: &str) -> bool {
        let mut run = Run::new(self);
        for c in dir.chars() {
            if c == '/' && run.accepting() {
                return true;
            }
            if !run.advance(c) {
                return false;
            }
        }
        run.accepting()
    }

    /// Whether some path below `dir` (`dir/…`) might match. Never wrongly `false`:
    /// after reading `dir/` any live state can still reach the end, because every step
    /// can consume some character or none (a class that no character satisfies would be
    /// the only exception; treating it as satisfiable only errs on the safe side).
    pub(crate) fn could_match_below(&self, dir: &str) -> bool {
        let mut run = Run::new(self);
        dir.chars().chain(['/']).all(|c| run.advance(c))
    }
}

/// The set of positions in a [`Glob`] reachable after the characters read so far.
/// Position `i` means "about to match step `i`"; position `steps.len()` is the end.
struct Run<'g> {
    steps: &'g [Step],
    active: Vec<bool>,
    next: Vec<bool>,
}

impl<'g> Run<'g> {
    fn new(glob: &'g Glob) -> Self {
        let size = glob.steps.len() + 1;
        let mut active = vec![false; size];
        mark(&mut active, 0);
        let mut run = Run {
            steps: &glob.steps,
            active,
            next: vec![false; size],
        };
        close(run.steps, &mut run.active);
        run
    }

    fn accepting(&self) -> bool {
        self.active.last().copied().unwrap_or(false)
    }

    /// Reads one character; returns whether any position is still alive.
    fn advance(&mut self, c: char) -> bool {
        self.next.fill(false);
        for (i, step) in self.steps.iter().enumerate() {
            if !self.active.get(i).copied().unwrap_or(false) {
                continue;
            }
            match step {
                Step::Char(want) if *want == c => mark(&mut self.next, i + 1),
                Step::AnyChar if c != '/' => mark(&mut self.next, i + 1),
                Step::Class(class) if class.matches(c) => mark(&mut self.next, i + 1),
                Step::Star if c != '/' => mark(&mut self.next, i),
                Step::AnyText if c != '\n' => mark(&mut self.next, i),
                Step::DirsBody if c != '\n' => {
                    mark(&mut self.next, i);
                    if c == '/' {
                        mark(&mut self.next, i + 1);
                    }
                }
                _ => {}
            }
        }
        close(self.steps, &mut self.next);
        std::mem::swap(&mut self.active, &mut self.next);
        self.active.contains(&true)
    }
}

/// Adds the positions reachable without reading a character. Such moves only go
/// forward, so one ascending pass reaches everything.
fn close(steps: &[Step], set: &mut [bool]) {
    for (i, step) in steps.iter().enumerate() {
        if !set.get(i).copied().unwrap_or(false) {
            continue;
        }
        match step {
            Step::Star | Step::AnyText => mark(set, i + 1),
            Step::DirsStart => {
                mark(set, i + 1);
                mark(set, i + 2);
            }
            _ => {}
        }
    }
}

fn mark(set: &mut [bool], i: usize) {
    if let Some(slot) = set.get_mut(i) {
        *slot = true;
    }
}

#[cfg(test)]
mod tests {
    use super::{Glob, Step};
    use proptest::prelude::*;

    fn glob(steps: &[Step]) -> Glob {
        let mut g = Glob::new();
        for s in steps {
            match s {
                Step::DirsStart => g.push_dirs(),
                Step::DirsBody => {}
                other => g.push(other.clone()),
            }
        }
        g
    }

    /// A direct backtracking reading of the regular expressions Docker builds; slow on
    /// big inputs but obviously right, so it checks the automaton on small ones.
    fn reference(steps: &[Step], text: &[char]) -> bool {
        let Some((first, rest)) = steps.split_first() else {
            return text.is_empty();
        };
        let one = |ok: &dyn Fn(char) -> bool| {
            text.first().is_some_and(|&c| ok(c)) && reference(rest, &text[1..])
        };
        match first {
            Step::Char(want) => one(&|c| c == *want),
            Step::AnyChar => one(&|c| c != '/'),
            Step::Class(class) => one(&|c| class.matches(c)),
            Step::Star => (0..=text.len())
                .take_while(|&n| text[..n].iter().all(|&c| c != '/'))
                .any(|n| reference(rest, &text[n..])),
            Step::AnyText => (0..=text.len())
                .take_while(|&n| text[..n].iter().all(|&c| c != '\n'))
                .any(|n| reference(rest, &text[n..])),
            // `(.*/)?`: skip, or take a run without newlines whose last character is `/`.
            Step::DirsStart => {
                let rest = &rest[1..];
                reference(rest, text)
                    || (1..=text.len())
                        .take_while(|&n| text[..n].iter().all(|&c| c != '\n'))
                        .any(|n| text[n - 1] == '/' && reference(rest, &text[n..]))
            }
            Step::DirsBody => unreachable!("always consumed with DirsStart"),
        }
    }

    fn step() -> impl Strategy<Value = Vec<Step>> {
        prop_oneof![
            Just(vec![Step::Char('a')]),
            Just(vec![Step::Char('b')]),
            Just(vec![Step::Char('/')]),
            Just(vec![Step::AnyChar]),
            Just(vec![Step::Star]),
            Just(vec![Step::AnyText]),
            Just(vec![Step::DirsStart, Step::DirsBody]),
        ]
    }

    proptest! {
        #[test]
        fn automaton_agrees_with_backtracking(
            parts in prop::collection::vec(step(), 0..6),
            text in "[ab/\n]{0,8}",
        ) {
            let steps: Vec<Step> = parts.concat();
            let chars: Vec<char> = text.chars().collect();
            prop_assert_eq!(glob(&steps).matches(&text), reference(&steps, &chars));
        }
    }

    #[test]
    fn docker_shapes() {
        // `a**/*.txt` is `^a(.*/)?[^/]*\.txt$`.
        let mut g = Glob::new();
        g.push(Step::Char('a'));
        g.push_dirs();
        g.push(Step::Star);
        for c in ".txt".chars() {
            g.push(Step::Char(c));
        }
        assert!(g.matches("a/file.txt"));
        assert!(g.matches("a/dir/dir/file.txt"));
        assert!(g.matches("a.txt"));
        // `(.*/)?` is not bound to whole directory names: `a` + `b/` + `file.txt`.
        assert!(g.matches("ab/file.txt"));
        assert!(!g.matches("b/file.txt"));
        assert!(!g.matches("a/file.txt2"));
        // `.*` does not cross a newline, `[^/]*` does.
        assert!(!g.matches("a\n/file.txt"));
        assert!(g.matches("a/fi\nle.txt"));
    }

    #[test]
    fn ancestors_are_tried_at_each_slash() {
        let mut g = Glob::new();
        g.push(Step::Char('b'));
        g.push(Step::Star);
        assert!(g.matches_dir_or_ancestor("bx/c/d"));
        assert!(!g.matches_dir_or_ancestor("a/bx/c"));
        assert!(g.matches_dir_or_ancestor("bee"));
        assert!(!g.matches_dir_or_ancestor(""));
    }

    #[test]
    fn below_is_possible_only_through_live_states() {
        // `a/*/c`
        let mut g = Glob::new();
        for s in [
            Step::Char('a'),
            Step::Char('/'),
            Step::Star,
            Step::Char('/'),
            Step::Char('c'),
        ] {
            g.push(s);
        }
        assert!(g.could_match_below("a"));
        assert!(g.could_match_below("a/x"));
        assert!(!g.could_match_below("a/x/c"));
        assert!(!g.could_match_below("b"));
    }

    #[test]
    fn hostile_pattern_is_linear() {
        // `**/` five hundred times, then `x`, against a 6,000-character path that never
        // matches: a backtracking matcher would not finish.
        let mut g = Glob::new();
        for _ in 0..500 {
            g.push_dirs();
        }
        g.push(Step::Char('x'));
        let path = "a/".repeat(3_000);
        let start = std::time::Instant::now();
        assert!(!g.matches(&path));
        assert!(!g.matches_dir_or_ancestor(&path));
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
    }
}
