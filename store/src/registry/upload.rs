//! Getting one blob into a repository the cheapest way the registry allows: nothing if it
//! is there already (HEAD), a cross-repository mount if another repository of the same
//! registry holds it, else an upload — one PUT for a small blob, PATCH chunks for a large
//! one, resumed from the registry's own count of what it received when a chunk fails.
//!
//! Written here rather than taken from oci-client, whose push chooses chunked or
//! monolithic once per client rather than per blob, cannot resume a failed chunk, and
//! drops the upload session a refused mount opens (see DESIGN-NOTES.md).

use std::path::PathBuf;
use std::sync::Arc;

use reqwest::header::{self, HeaderName};
use reqwest::{Method, Response, Url};
use tokio::sync::mpsc::UnboundedSender;

use super::RegistryError;
use super::auth::repository_scope;
use super::progress::Event;
use super::transport::{Body, Client, Request, error_detail, host_label};
use crate::digest::Digest;

/// `Docker-Content-Digest`: what the registry says it stored.
const CONTENT_DIGEST: &str = "docker-content-digest";
/// Upload sessions opened for one blob before giving up; each one starts from byte 0.
const SESSIONS: u32 = 3;
/// Failed chunks within one session that are resumed from the registry's count.
const CHUNK_RESUMES: u32 = 3;

/// One blob to put into `registry/repository`.
#[derive(Debug, Clone)]
pub struct BlobUpload {
    pub digest: Digest,
    pub size: u64,
    /// The stored blob's file.
    pub path: PathBuf,
    /// The progress line it is shown on (the layer's short diff ID, as docker shows
    /// it); `None` for the config, which docker pushes without a line.
    pub id: Option<String>,
    /// Other repositories of the same registry known to hold it, to mount from.
    pub mount_from: Vec<String>,
}

/// How the blob got there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uploaded {
    Existed,
    Mounted(String),
    Pushed,
}

/// Where uploads go and how they are cut.
pub struct Target<'a> {
    pub client: &'a Client,
    pub registry: &'a str,
    pub repository: &'a str,
    /// Blobs up to this size go in one PUT; larger ones in PATCH chunks of this size.
    pub chunk_size: u64,
    pub events: UnboundedSender<Event>,
}

impl Target<'_> {
    fn status(&self, blob: &BlobUpload, status: impl Into<String>) {
        if let Some(id) = &blob.id {
            let _ = self.events.send(Event::Status {
                id: id.clone(),
                status: status.into(),
            });
        }
    }

    fn push_scope(&self) -> String {
        repository_scope(self.repository, "pull,push")
    }

    fn request(&self, method: Method, url: Url, blob: &BlobUpload) -> Request {
        Request::new(method, self.registry, url, format!("blob {}", blob.digest))
            .scope(self.push_scope())
    }

    fn api(&self, path: &str) -> Result<Url, RegistryError> {
        self.client
            .url(self.registry, &format!("/v2/{}/{path}", self.repository))
    }

    /// Puts `blob` into the repository unless it is there already.
    pub async fn upload(&self, blob: &BlobUpload) -> Result<Uploaded, RegistryError> {
        if self.exists(blob).await? {
            self.status(blob, "Layer already exists");
            return Ok(Uploaded::Existed);
        }
        let mut session = None;
        for from in &blob.mount_from {
            match self.mount(blob, from).await? {
                Mount::Done => {
                    self.status(blob, format!("Mounted from {from}"));
                    return Ok(Uploaded::Mounted(from.clone()));
                }
                // The registry opened an upload instead: use it rather than open another.
                Mount::Session(url) => {
                    session = Some(url);
                    break;
                }
                Mount::Refused => {}
            }
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let url = match session.take() {
                Some(u) => u,
                None => self.open_session(blob).await?,
            };
            let result = if blob.size <= self.chunk_size {
                self.put_whole(blob, url).await
            } else {
                self.put_chunked(blob, url).await
            };
            match result {
                Ok(()) => {
                    self.status(blob, "Pushed");
                    return Ok(Uploaded::Pushed);
                }
                Err(e) if attempt < SESSIONS && restartable(&e) => {
                    let wait = self.client.backoff(attempt);
                    let secs = wait.as_secs().max(1);
                    let unit = if secs == 1 { "second" } else { "seconds" };
                    self.status(blob, format!("Retrying in {secs} {unit}"));
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// HEAD: 200 means the repository has the blob.
    async fn exists(&self, blob: &BlobUpload) -> Result<bool, RegistryError> {
        let url = self.api(&format!("blobs/{}", blob.digest))?;
        let req = self.request(Method::HEAD, url, blob);
        let resp = self.client.send_expect(&req, &[200, 404]).await?;
        Ok(resp.status().as_u16() == 200)
    }

    /// POST `?mount=&from=`: 201 is a mount; 202 is an upload session the registry opened
    /// instead (the spec's fallback); anything else, try the next candidate.
    async fn mount(&self, blob: &BlobUpload, from: &str) -> Result<Mount, RegistryError> {
        let mut url = self.api("blobs/uploads/")?;
        url.query_pairs_mut()
            .append_pair("mount", &blob.digest.to_string())
            .append_pair("from", from);
        let req = self
            .request(Method::POST, url.clone(), blob)
            .scope(repository_scope(from, "pull"));
        let resp = match self.client.send(&req).await {
            Ok(r) => r,
            // A source repository we may not read is only a mount that did not happen.
            Err(RegistryError::Unauthorized { .. }) => return Ok(Mount::Refused),
            Err(e) => return Err(e),
        };
        match resp.status().as_u16() {
            201 => {
                check_digest(&resp, &blob.digest)?;
                Ok(Mount::Done)
            }
            202 => Ok(Mount::Session(location(&resp, &url, blob)?)),
            _ => Ok(Mount::Refused),
        }
    }

    /// POST: opens an upload session; its URL is the answer's `Location`.
    async fn open_session(&self, blob: &BlobUpload) -> Result<Url, RegistryError> {
        let url = self.api("blobs/uploads/")?;
        let req = self.request(Method::POST, url.clone(), blob);
        let resp = self.client.send_expect(&req, &[202]).await?;
        location(&resp, &url, blob)
    }

    /// The whole blob in one `PUT <session>?digest=`.
    async fn put_whole(&self, blob: &BlobUpload, session: Url) -> Result<(), RegistryError> {
        let url = with_digest(session, &blob.digest);
        let req = self
            .request(Method::PUT, url, blob)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(self.file_body(blob, 0, blob.size));
        let resp = self.client.send_expect(&req, &[201]).await?;
        check_digest(&resp, &blob.digest)
    }

    /// PATCH chunks of `chunk_size`, each to the `Location` the last answer gave; after a
    /// failed chunk, asks the registry how much it has (`GET`, `Range: 0-N`) and goes on
    /// from there. Ends with `PUT ?digest=` and no body.
    async fn put_chunked(&self, blob: &BlobUpload, mut session: Url) -> Result<(), RegistryError> {
        let mut offset = 0u64;
        let mut resumes = 0;
        while offset < blob.size {
            let len = self.chunk_size.min(blob.size - offset);
            let req = self
                .request(Method::PATCH, session.clone(), blob)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .header(
                    header::CONTENT_RANGE,
                    &format!("{offset}-{}", offset + len - 1),
                )
                .body(self.file_body(blob, offset, len));
            let failure = match self.client.send(&req).await {
                Ok(resp) if resp.status().as_u16() == 202 => {
                    // Some registries keep one URL for the whole session.
                    session = location(&resp, &session, blob).unwrap_or(session);
                    // The registry's count wins, unless it shows no progress (a `0-0`
                    // after a one-byte chunk is that chunk, not an empty upload).
                    offset = match received(&resp) {
                        Some(n) if n > offset => n,
                        _ => offset + len,
                    };
                    continue;
                }
                Ok(resp) => status_error(resp, &session, blob).await,
                Err(e) => e,
            };
            resumes += 1;
            if resumes > CHUNK_RESUMES || !restartable(&failure) {
                return Err(failure);
            }
            // The session's state may have moved on with bytes that arrived before the
            // failure; the registry's count is the truth.
            let status_req = self.request(Method::GET, session.clone(), blob);
            let resp = self.client.send_expect(&status_req, &[204]).await?;
            session = location(&resp, &session, blob)?;
            offset = received(&resp).unwrap_or(0);
        }
        let req = self
            .request(Method::PUT, with_digest(session, &blob.digest), blob)
            .body(Body::Empty);
        let resp = self.client.send_expect(&req, &[201]).await?;
        check_digest(&resp, &blob.digest)
    }

    /// `len` bytes of the blob from `offset`, reporting `Pushing` progress as they go.
    fn file_body(&self, blob: &BlobUpload, offset: u64, len: u64) -> Body {
        let progress = blob.id.clone().map(|id| {
            let events = self.events.clone();
            let total = blob.size;
            Arc::new(move |sent: u64| {
                let _ = events.send(Event::Bytes {
                    id: id.clone(),
                    action: "Pushing",
                    current: offset + sent,
                    total,
                });
            }) as Arc<dyn Fn(u64) + Send + Sync>
        });
        Body::File {
            path: blob.path.clone(),
            offset,
            len,
            progress,
        }
    }
}

enum Mount {
    Done,
    Session(Url),
    Refused,
}

/// Whether a fresh attempt may do better: not when the credentials are refused or the
/// store failed us.
fn restartable(e: &RegistryError) -> bool {
    !matches!(
        e,
        RegistryError::Unauthorized { .. }
            | RegistryError::RedirectAuth { .. }
            | RegistryError::Credentials(_)
            | RegistryError::Store(_)
            | RegistryError::Interrupted
    )
}

/// An unexpected answer as an error naming the blob and host.
async fn status_error(resp: Response, url: &Url, blob: &BlobUpload) -> RegistryError {
    let status = resp.status().as_u16();
    let detail = error_detail(resp).await;
    RegistryError::Status {
        host: host_label(url),
        what: format!("blob {}", blob.digest),
        status,
        detail,
    }
}

/// The answer's `Location`, resolved against the URL the request went to (registries
/// send paths, absolute URLs, or occasionally paths relative to the request).
fn location(resp: &Response, request_url: &Url, blob: &BlobUpload) -> Result<Url, RegistryError> {
    let loc = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            RegistryError::Protocol(format!(
                "blob {}: {} answered {} without a Location",
                blob.digest,
                host_label(request_url),
                resp.status().as_u16()
            ))
        })?;
    resolve_location(request_url, loc).ok_or_else(|| {
        RegistryError::Protocol(format!(
            "blob {}: {} sent an invalid Location",
            blob.digest,
            host_label(request_url)
        ))
    })
}

/// `loc` as an absolute URL, relative to `base`.
pub fn resolve_location(base: &Url, loc: &str) -> Option<Url> {
    base.join(loc.trim()).ok()
}

/// The session URL with `digest=` added to whatever query it carries (the registry's
/// upload state lives there).
pub fn with_digest(mut url: Url, digest: &Digest) -> Url {
    url.query_pairs_mut()
        .append_pair("digest", &digest.to_string());
    url
}

/// From `Range: 0-N`, the count of bytes the registry holds (N + 1). Distribution sends
/// `0-0` for an empty upload too, so `0-0` counts as nothing: at worst one byte is sent
/// again and the registry's range check makes us ask once more.
fn received(resp: &Response) -> Option<u64> {
    let v = resp.headers().get(header::RANGE)?.to_str().ok()?;
    parse_range_end(v)
}

fn parse_range_end(v: &str) -> Option<u64> {
    let v = v.trim();
    let v = v.strip_prefix("bytes=").unwrap_or(v);
    let (start, end) = v.split_once('-')?;
    if start.trim() != "0" {
        return None;
    }
    let end: u64 = end.trim().parse().ok()?;
    Some(if end == 0 { 0 } else { end + 1 })
}

/// Checks `Docker-Content-Digest`, when the registry sends it, against what we sent.
fn check_digest(resp: &Response, expected: &Digest) -> Result<(), RegistryError> {
    let Some(v) = resp
        .headers()
        .get(HeaderName::from_static(CONTENT_DIGEST))
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(());
    };
    match v.trim().parse::<Digest>() {
        Ok(actual) if &actual == expected => Ok(()),
        Ok(actual) => Err(RegistryError::DigestMismatch {
            expected: expected.clone(),
            actual,
        }),
        Err(_) => Err(RegistryError::Protocol(format!(
            "{expected}: the registry answered with an invalid Docker-Content-Digest"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_against_the_request() {
        let base = Url::parse("http://127.0.0.1:5000/v2/a/b/blobs/uploads/").unwrap();
        let abs = resolve_location(&base, "/v2/a/b/blobs/uploads/u1?_state=xyz").unwrap();
        assert_eq!(
            abs.as_str(),
            "http://127.0.0.1:5000/v2/a/b/blobs/uploads/u1?_state=xyz"
        );
        let rel = resolve_location(&base, "u2?_state=q").unwrap();
        assert_eq!(
            rel.as_str(),
            "http://127.0.0.1:5000/v2/a/b/blobs/uploads/u2?_state=q"
        );
        let other = resolve_location(&base, "https://uploads.example.com/s/3?sig=1").unwrap();
        assert_eq!(other.as_str(), "https://uploads.example.com/s/3?sig=1");
        let from_session = Url::parse("http://h:1/v2/x/blobs/uploads/u1?_state=a").unwrap();
        assert_eq!(
            resolve_location(&from_session, "/v2/x/blobs/uploads/u1?_state=b")
                .unwrap()
                .as_str(),
            "http://h:1/v2/x/blobs/uploads/u1?_state=b"
        );
    }

    #[test]
    fn digest_is_added_to_the_session_query() {
        let d = Digest::of(b"x");
        let u = with_digest(
            Url::parse("http://h:1/v2/x/blobs/uploads/u1?_state=a%2Bb").unwrap(),
            &d,
        );
        let pairs: Vec<(String, String)> = u.query_pairs().into_owned().collect();
        assert_eq!(
            pairs,
            vec![
                ("_state".to_string(), "a+b".to_string()),
                ("digest".to_string(), d.to_string())
            ]
        );
        let bare = with_digest(Url::parse("http://h:1/u").unwrap(), &d);
        assert_eq!(
            bare.query(),
            Some(format!("digest=sha256%3A{}", d.hex()).as_str())
        );
    }

    #[test]
    fn upload_ranges() {
        assert_eq!(parse_range_end("0-1023"), Some(1024));
        assert_eq!(parse_range_end("bytes=0-9"), Some(10));
        assert_eq!(parse_range_end("0-0"), Some(0));
        assert_eq!(parse_range_end("5-9"), None);
        assert_eq!(parse_range_end("junk"), None);
    }
}
