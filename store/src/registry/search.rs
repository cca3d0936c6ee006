//! `rbuild search`: repositories of one registry whose names contain a term.
//!
//! Docker searches Docker Hub's own search API (`/v1/search`); plain registries have none,
//! so this reads the registry's catalog and matches names, case-insensitively, as Docker
//! Hub's search by name does. Docker Hub, for its part, has no catalog.

use std::ops::ControlFlow;

use futures_util::StreamExt;

use super::catalog;
use super::error::RegistryError;
use super::transport::Client;

/// `REGISTRY/TERM` split as docker splits a search term (`splitReposSearchTerm`): the
/// part before the first `/` is a registry when it holds a `.` or a `:` or is
/// `localhost`; otherwise the whole term is for Docker Hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchTerm {
    pub registry: String,
    /// Matched against repository names; empty matches them all.
    pub text: String,
}

/// Docker Hub's names, which all mean the registry that has no catalog.
const DOCKER_HUB: &[&str] = &["docker.io", "index.docker.io", "registry-1.docker.io"];

impl SearchTerm {
    pub fn parse(term: &str) -> Result<SearchTerm, RegistryError> {
        let registry = term.split_once('/').and_then(|(first, rest)| {
            (first == "localhost" || first.contains(['.', ':'])).then_some((first, rest))
        });
        match registry {
            Some((registry, text)) if !DOCKER_HUB.contains(&registry) => Ok(SearchTerm {
                registry: registry.to_string(),
                text: text.to_string(),
            }),
            _ => Err(RegistryError::Unsupported(docker_hub_message(term))),
        }
    }

    /// Whether a repository name contains the term, ignoring case.
    pub fn matches(&self, repository: &str) -> bool {
        repository
            .to_lowercase()
            .contains(&self.text.to_lowercase())
    }
}

#[derive(Debug, Clone)]
pub struct SearchOptions {
    /// Stop after this many matches.
    pub limit: usize,
    /// Repositories per catalog request ([`catalog::DEFAULT_PAGE_SIZE`]).
    pub page_size: usize,
    /// Also fetch each match's tags (one more request per match).
    pub list_tags: bool,
}

/// One matching repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The name within the registry (`team/app`).
    pub repository: String,
    /// Sorted; `None` unless asked for.
    pub tags: Option<Vec<String>>,
}

/// Why Docker Hub cannot be searched, and what to write instead.
fn docker_hub_message(term: &str) -> String {
    let why = format!(
        "rbuild search reads a registry's catalog (/v2/_catalog), and Docker Hub, which \
         {term:?} would search, has none"
    );
    if !term.contains('/') && (term == "localhost" || term.contains(['.', ':'])) {
        format!("{why}: to list every repository of {term}, write {term}/")
    } else {
        let text = term.rsplit('/').next().unwrap_or_default();
        format!("{why}: name a registry, as in localhost:5000/{text}")
    }
}

/// Tag lists fetched at once: enough to hide round trips, few enough to be polite.
const TAG_REQUESTS: usize = 4;

/// The first `opts.limit` repositories of the term's registry that match it, in catalog
/// order; the catalog is read only as far as needed.
pub async fn search(
    client: &Client,
    term: &SearchTerm,
    opts: &SearchOptions,
) -> Result<Vec<Found>, RegistryError> {
    let mut names = Vec::new();
    if opts.limit > 0 {
        catalog::catalog_pages(client, &term.registry, opts.page_size, |page| {
            for name in page {
                if term.matches(&name) {
                    names.push(name);
                    if names.len() >= opts.limit {
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        })
        .await?;
    }
    if !opts.list_tags {
        return Ok(names
            .into_iter()
            .map(|repository| Found {
                repository,
                tags: None,
            })
            .collect());
    }
    let results: Vec<Result<Found, RegistryError>> = futures_util::stream::iter(names)
        .map(|repository| async move {
            let tags = match catalog::tags(client, &term.registry, &repository).await {
                Ok(mut tags) => {
                    tags.sort();
                    tags
                }
                // Deleted between the catalog and now: a repository without tags.
                Err(RegistryError::NotFound { .. }) => Vec::new(),
                Err(e) => return Err(e),
            };
            Ok(Found {
                repository,
                tags: Some(tags),
            })
        })
        .buffered(TAG_REQUESTS)
        .collect()
        .await;
    results.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(registry: &str, text: &str) -> SearchTerm {
        SearchTerm {
            registry: registry.into(),
            text: text.into(),
        }
    }

    #[test]
    fn registry_part_by_dockers_rule() {
        let ok = |s: &str| SearchTerm::parse(s).unwrap();
        assert_eq!(ok("localhost/app"), term("localhost", "app"));
        assert_eq!(
            ok("127.0.0.1:5000/team/app"),
            term("127.0.0.1:5000", "team/app")
        );
        assert_eq!(ok("reg.example/"), term("reg.example", ""));
        assert_eq!(ok("[::1]:5000/x"), term("[::1]:5000", "x"));
        for hub in [
            "ubuntu",
            "library/ubuntu",
            "team/app",
            "docker.io/ubuntu",
            "index.docker.io/library/ubuntu",
            "localhost:5000",
            "",
        ] {
            let err = SearchTerm::parse(hub).unwrap_err().to_string();
            assert!(err.contains("Docker Hub"), "{hub}: {err}");
            assert!(err.contains("/v2/_catalog"), "{hub}: {err}");
        }
    }

    #[test]
    fn substring_ignoring_case() {
        let t = term("r.example", "App");
        assert!(t.matches("team/app"));
        assert!(t.matches("team/my-apple"));
        assert!(!t.matches("team/db"));
        assert!(term("r.example", "").matches("anything"));
        assert!(term("r.example", "m/a").matches("team/app"));
    }
}
