//! "Did you mean …?" hints for misspelt instructions, flags and stage names.

/// Returns the candidate closest to `word` if it is close enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&word, &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(d, c)| *d > 0 && *d <= (c.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn finds_typos_not_strangers() {
        assert_eq!(closest("COPPY", ["copy", "run", "cmd"]), Some("copy"));
        assert_eq!(closest("chwon", ["chown", "chmod", "from"]), Some("chown"));
        assert_eq!(closest("banana", ["copy", "run"]), None);
    }
}
