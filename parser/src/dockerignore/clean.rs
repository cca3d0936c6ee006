//! Lexical path cleaning, the way Go's `path/filepath` does it on Unix.
//!
//! Docker cleans every ignore pattern with `filepath.Clean` and derives a path's parent
//! directories with `filepath.Dir`; matching only agrees with Docker's when both are
//! reproduced exactly, including their corner cases (`..` at the start is kept, `""`
//! becomes `"."`, a pattern such as `a/[b/../c]` is cleaned as if it were a path).

/// Go's `filepath.Clean`: the shortest path naming the same file by pure lexical
/// processing. Repeated slashes collapse, `.` elements vanish, `x/..` pairs cancel,
/// `..` right after the root is dropped, trailing slashes go, and an empty result is `.`.
pub(crate) fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for element in path.split('/') {
        match element {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                // `/..` is `/`; a relative path keeps its leading `..`s.
                _ if rooted => {}
                _ => parts.push(".."),
            },
            other => parts.push(other),
        }
    }
    let body = parts.join("/");
    if rooted {
        format!("/{body}")
    } else if body.is_empty() {
        ".".to_string()
    } else {
        body
    }
}

/// Go's `filepath.Dir`: everything before the last slash, cleaned (so `a/b/` gives
/// `a/b`, `file` gives `.` and `/` gives `/`).
pub(crate) fn dir(path: &str) -> String {
    match path.rfind('/') {
        // The slash is one byte, so `i + 1` is a character boundary.
        Some(i) => clean(path.get(..=i).unwrap_or(path)),
        None => ".".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{clean, dir};

    #[test]
    fn clean_matches_go() {
        // Cases from Go's path/filepath tests (Unix).
        let cases = [
            ("", "."),
            (".", "."),
            ("/", "/"),
            ("//", "/"),
            ("abc", "abc"),
            ("abc/", "abc"),
            ("abc//def", "abc/def"),
            ("./abc", "abc"),
            ("abc/./def", "abc/def"),
            ("abc/..", "."),
            ("abc/def/..", "abc"),
            ("abc/../../def", "../def"),
            ("../../abc", "../../abc"),
            ("/../abc", "/abc"),
            ("/abc/../..", "/"),
            ("abc/./../def", "def"),
            ("a/[b/../c]", "a/c]"),
            ("**/", "**"),
            ("!foo/../bar", "bar"),
        ];
        for (input, want) in cases {
            assert_eq!(clean(input), want, "clean({input:?})");
        }
    }

    #[test]
    fn dir_matches_go() {
        let cases = [
            ("", "."),
            ("file", "."),
            ("file/", "file"),
            ("/", "/"),
            ("/file", "/"),
            ("a/b/c", "a/b"),
            ("a/b/c/", "a/b/c"),
            ("a//b", "a"),
            ("./a", "."),
        ];
        for (input, want) in cases {
            assert_eq!(dir(input), want, "dir({input:?})");
        }
    }
}
