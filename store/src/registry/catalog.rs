//! What a registry holds: `/v2/_catalog` (its repositories) and `/v2/NAME/tags/list` (a
//! repository's tags), page by page. Plain registries have no search API; these two lists
//! are all `rbuild search` has to go on.
//!
//! Both lists page the same way (distribution spec, "Listing Tags" and the catalog API):
//! the client asks for `n` entries and the answer's `Link: <URL>; rel="next"` names the
//! next page (`?n=…&last=…`). The registry decides what it sends, so each page is read
//! under [`PAGE_LIMIT`], a list stops being read past [`MAX_ENTRIES`], and a next link that
//! leaves the registry's origin (our token would follow it) or returns to a page already
//! read is refused: a hostile registry can make us neither loop nor fill memory.

use std::collections::HashSet;
use std::ops::ControlFlow;

use reqwest::header::LINK;
use reqwest::{Method, Url};
use serde::Deserialize;

use super::error::RegistryError;
use super::transport::{Client, Request, host_label, same_origin};

/// Repositories asked for per catalog request: the distribution spec's default, which
/// every registry accepts (distribution 3 refuses an `n` above its configured maximum).
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Cap on one page's body; a 100-name page is a few KiB.
pub const PAGE_LIMIT: u64 = 4 << 20;
/// Cap on the entries of one list, all pages together.
pub const MAX_ENTRIES: usize = 100_000;

/// Every repository of `registry`, in the registry's (lexical) order.
pub async fn catalog(
    client: &Client,
    registry: &str,
    page_size: usize,
) -> Result<Vec<String>, RegistryError> {
    let mut all = Vec::new();
    catalog_pages(client, registry, page_size, |page| {
        all.extend(page);
        ControlFlow::Continue(())
    })
    .await?;
    Ok(all)
}

/// Reads the catalog of `registry` page by page, handing each page to `each`, which may
/// stop the walk early (a search that has found enough).
pub async fn catalog_pages(
    client: &Client,
    registry: &str,
    page_size: usize,
    each: impl FnMut(Vec<String>) -> ControlFlow<()>,
) -> Result<(), RegistryError> {
    let mut url = client.url(registry, "/v2/_catalog")?;
    url.query_pairs_mut()
        .append_pair("n", &page_size.max(1).to_string());
    let list = Listing {
        registry,
        scope: "registry:catalog:*".to_string(),
        what: "repository catalog".to_string(),
        key: Key::Repositories,
    };
    match walk(client, &list, url, each).await {
        // Registries that keep their catalog private (or have none) answer 404.
        Err(RegistryError::NotFound { host, .. }) => Err(RegistryError::Unsupported(format!(
            "{host} does not list its repositories: its /v2/_catalog is not found"
        ))),
        r => r,
    }
}

/// The tags of `repository` on `registry`, in the registry's order.
pub async fn tags(
    client: &Client,
    registry: &str,
    repository: &str,
) -> Result<Vec<String>, RegistryError> {
    // Names come from the registry's own catalog: one with `..`, `?` or `#` would point
    // the request somewhere else.
    if !is_repository_name(repository) {
        return Err(RegistryError::Protocol(format!(
            "{registry} lists an invalid repository name {repository:?}"
        )));
    }
    let url = client.url(registry, &format!("/v2/{repository}/tags/list"))?;
    let list = Listing {
        registry,
        scope: format!("repository:{repository}:pull"),
        what: format!("tags of {repository}"),
        key: Key::Tags,
    };
    let mut all = Vec::new();
    walk(client, &list, url, |page| {
        all.extend(page);
        ControlFlow::Continue(())
    })
    .await?;
    Ok(all)
}

/// One paginated list: where it lives and which field of the answer holds its entries.
struct Listing<'a> {
    registry: &'a str,
    scope: String,
    what: String,
    key: Key,
}

#[derive(Clone, Copy)]
enum Key {
    Repositories,
    Tags,
}

/// Both answers' shapes: `{"repositories":[…]}` and `{"name":…,"tags":[…]}`; a tag list
/// of `null` (a repository whose tags were all deleted) is empty.
#[derive(Deserialize)]
struct Page {
    repositories: Option<Vec<String>>,
    tags: Option<Vec<String>>,
}

/// Follows the `next` links from `first` until the last page or until `each` stops.
async fn walk(
    client: &Client,
    list: &Listing<'_>,
    first: Url,
    mut each: impl FnMut(Vec<String>) -> ControlFlow<()>,
) -> Result<(), RegistryError> {
    let host = host_label(&first);
    let protocol = |msg: String| RegistryError::Protocol(format!("{}: {host} {msg}", list.what));
    let mut seen = HashSet::new();
    let mut total = 0usize;
    let mut next = Some(first.clone());
    while let Some(url) = next.take() {
        if !seen.insert(url.to_string()) {
            return Err(protocol("sent a next page that was already read".into()));
        }
        let req = Request::new(Method::GET, list.registry, url.clone(), list.what.clone())
            .scope(list.scope.clone());
        let (headers, body) = client.fetch(&req, &[200], PAGE_LIMIT).await?;
        let values: Vec<String> = headers
            .get_all(LINK)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        let link = next_link(&url, values.iter().map(String::as_str))
            .map_err(|l| protocol(format!("sent an invalid next link <{l}>")))?;
        let page: Page = serde_json::from_slice(&body)
            .map_err(|e| protocol(format!("sent an answer that is not a list: {e}")))?;
        let entries = match list.key {
            Key::Repositories => page.repositories,
            Key::Tags => page.tags,
        }
        .unwrap_or_default();
        if let Some(l) = &link {
            if !same_origin(l, &first) {
                return Err(protocol(format!(
                    "sent a next link to another host ({})",
                    host_label(l)
                )));
            }
            if entries.is_empty() {
                return Err(protocol("sent an empty page with a next link".into()));
            }
        }
        total += entries.len();
        if total > MAX_ENTRIES {
            return Err(protocol(format!("lists more than {MAX_ENTRIES} entries")));
        }
        if each(entries).is_break() {
            return Ok(());
        }
        next = link;
    }
    Ok(())
}

/// The target of the first link whose `rel` includes `next`, resolved against the URL of
/// the page that named it (registries send paths: `</v2/_catalog?last=a&n=2>`). The
/// error is the target that does not resolve.
pub fn next_link<'a>(
    base: &Url,
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Option<Url>, String> {
    for value in values {
        for (target, params) in parse_links(value) {
            let is_next = params.iter().any(|(name, v)| {
                name == "rel"
                    && v.split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            });
            if is_next {
                return base.join(target).map(Some).map_err(|_| target.to_string());
            }
        }
    }
    Ok(None)
}

/// Parses a `Link` header value (RFC 8288): `<target>; name=value; name="quoted", <…>`.
/// Parameter names are lower-cased; a value may be a token or a quoted string with `\`
/// escapes. Parsing stops at the first link that is not `<…>`.
fn parse_links(value: &str) -> Vec<(&str, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        let Some(r) = rest.strip_prefix('<') else {
            return out;
        };
        let Some(end) = r.find('>') else {
            return out;
        };
        let target = r[..end].trim();
        rest = &r[end + 1..];
        let mut params = Vec::new();
        loop {
            rest = rest.trim_start_matches([' ', '\t']);
            let Some(r) = rest.strip_prefix(';') else {
                break;
            };
            rest = r.trim_start_matches([' ', '\t']);
            let name_end = rest.find(['=', ';', ',']).unwrap_or(rest.len());
            let name = rest[..name_end].trim().to_ascii_lowercase();
            rest = &rest[name_end..];
            let mut value = String::new();
            if let Some(r) = rest.strip_prefix('=') {
                let r = r.trim_start_matches([' ', '\t']);
                if let Some(quoted) = r.strip_prefix('"') {
                    let mut consumed = quoted.len();
                    let mut chars = quoted.char_indices();
                    while let Some((i, c)) = chars.next() {
                        match c {
                            '\\' => value.extend(chars.next().map(|(_, c)| c)),
                            '"' => {
                                consumed = i + 1;
                                break;
                            }
                            c => value.push(c),
                        }
                    }
                    rest = &quoted[consumed..];
                } else {
                    let end = r.find([';', ',']).unwrap_or(r.len());
                    value = r[..end].trim().to_string();
                    rest = &r[end..];
                }
            }
            params.push((name, value));
        }
        out.push((target, params));
        match rest.find(',') {
            Some(i) => rest = &rest[i + 1..],
            None => return out,
        }
    }
}

/// A repository name by the distribution grammar's shape: `/`-separated components of
/// `[a-z0-9]` joined by `.`, `_` or `-`, each starting and ending with an alphanumeric.
fn is_repository_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('/').all(|c| {
            let alnum =
                |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            alnum(c.as_bytes().first())
                && alnum(c.as_bytes().last())
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("http://127.0.0.1:5000/v2/_catalog?n=2").unwrap()
    }

    fn next(values: &[&str]) -> Result<Option<String>, String> {
        next_link(&base(), values.iter().copied()).map(|u| u.map(|u| u.to_string()))
    }

    #[test]
    fn relative_next_link_resolves_against_the_page() {
        assert_eq!(
            next(&[r#"</v2/_catalog?last=team%2Fapp&n=2>; rel="next""#]),
            Ok(Some(
                "http://127.0.0.1:5000/v2/_catalog?last=team%2Fapp&n=2".into()
            ))
        );
        // Unquoted rel, no space, upper case.
        assert_eq!(
            next(&["</v2/_catalog?last=b&n=2>;REL=Next"]),
            Ok(Some("http://127.0.0.1:5000/v2/_catalog?last=b&n=2".into()))
        );
    }

    #[test]
    fn absolute_next_link_is_taken_as_it_is() {
        assert_eq!(
            next(&[r#"<https://other.example/v2/_catalog?last=x>; rel="next""#]),
            Ok(Some("https://other.example/v2/_catalog?last=x".into()))
        );
    }

    #[test]
    fn other_rels_are_ignored() {
        assert_eq!(next(&[r#"</v2/_catalog?last=a>; rel="prev""#]), Ok(None));
        assert_eq!(
            next(&[
                r#"</first>; rel="first", </v2/_catalog?last=c>; title="a, b; c"; rel="last next""#
            ]),
            Ok(Some("http://127.0.0.1:5000/v2/_catalog?last=c".into()))
        );
        // A later header value counts too.
        assert_eq!(
            next(&[r#"</x>; rel="prev""#, r#"</y>; rel=next"#]),
            Ok(Some("http://127.0.0.1:5000/y".into()))
        );
        assert_eq!(next(&[]), Ok(None));
        assert_eq!(next(&["garbage"]), Ok(None));
        assert_eq!(next(&[r#"</z>; rel="nextpage""#]), Ok(None));
    }

    #[test]
    fn quoted_values_unescape() {
        let links = parse_links(r#"<a>; title="say \"hi\", ok"; rel=next"#);
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].0, "a");
        assert_eq!(
            links[0].1,
            vec![
                ("title".to_string(), r#"say "hi", ok"#.to_string()),
                ("rel".to_string(), "next".to_string())
            ]
        );
    }

    #[test]
    fn origins() {
        let a = base();
        assert!(same_origin(&a, &a.join("/v2/_catalog?last=z").unwrap()));
        assert!(same_origin(
            &Url::parse("https://r.example/v2/").unwrap(),
            &Url::parse("https://r.example:443/v2/_catalog").unwrap()
        ));
        assert!(!same_origin(
            &a,
            &Url::parse("http://127.0.0.1:5001/v2/").unwrap()
        ));
        assert!(!same_origin(
            &a,
            &Url::parse("https://127.0.0.1:5000/v2/").unwrap()
        ));
    }

    #[test]
    fn repository_names() {
        for ok in ["app", "team/app", "a.b/c_d-e/f0", "library/ubuntu"] {
            assert!(is_repository_name(ok), "{ok}");
        }
        for bad in [
            "", "..", "a/../b", "a?b", "a#b", "A", "-a", "a/", "/a", "a//b",
        ] {
            assert!(!is_repository_name(bad), "{bad}");
        }
    }
}
