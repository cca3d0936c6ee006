//! One registry request, done right: plain HTTP or HTTPS by host, credentials only to the
//! registry's own host, challenges answered, tokens reused, redirects followed by hand,
//! transient failures retried with backoff, every body read under a size cap, and errors
//! that name the host but never a secret or a query string.
//!
//! Written on `reqwest` rather than taken from oci-client: its client has no retries, no
//! token refresh on a 401, uncapped bodies and errors that carry whole URLs, and it pins
//! reqwest 0.13 (see DESIGN-NOTES.md).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, Response, StatusCode, Url};

use super::auth::{AuthCache, Challenge, TokenResponse, parse_challenge};
use super::creds::{Credential, DockerConfig, SecretKind};
use super::error::RegistryError;

/// Where credentials come from: `rbuild login`'s store (docker's config.json and its
/// helpers), or the ones `login` is checking before it stores them.
pub trait CredentialSource: Send + Sync {
    /// The credential for `registry` as references spell it (`docker.io`,
    /// `127.0.0.1:5000`), if the user stored one.
    fn get(&self, registry: &str) -> Result<Option<Credential>, RegistryError>;
}

/// No credentials: every registry is spoken to anonymously.
pub struct Anonymous;

impl CredentialSource for Anonymous {
    fn get(&self, _: &str) -> Result<Option<Credential>, RegistryError> {
        Ok(None)
    }
}

/// Exactly one registry's credential, as `login` checks it before storing.
pub struct Given {
    pub registry: String,
    pub credential: Credential,
}

impl CredentialSource for Given {
    fn get(&self, registry: &str) -> Result<Option<Credential>, RegistryError> {
        Ok((registry == self.registry).then(|| self.credential.clone()))
    }
}

impl CredentialSource for DockerConfig {
    fn get(&self, registry: &str) -> Result<Option<Credential>, RegistryError> {
        DockerConfig::get(self, registry).map_err(|e| RegistryError::Credentials(e.to_string()))
    }
}

/// How the client behaves; [`ClientOptions::new`] gives docker's defaults.
#[derive(Clone)]
pub struct ClientOptions {
    /// Whether a registry host is spoken to over plain HTTP (loopback and
    /// `--insecure-registry` hosts) rather than HTTPS.
    pub plain_http: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    pub credentials: Arc<dyn CredentialSource>,
    /// How long a connection may stay silent (connecting, waiting for headers, or
    /// between two reads of a body) before the request counts as failed.
    pub idle_timeout: Duration,
    /// Tries per request, the first included, for 5xx, 429 and broken connections.
    pub attempts: u32,
    /// The first retry's delay; each further one doubles it.
    pub backoff: Duration,
}

impl ClientOptions {
    pub fn new(
        plain_http: Arc<dyn Fn(&str) -> bool + Send + Sync>,
        credentials: Arc<dyn CredentialSource>,
    ) -> ClientOptions {
        ClientOptions {
            plain_http,
            credentials,
            idle_timeout: Duration::from_secs(30),
            attempts: 5,
            backoff: Duration::from_millis(250),
        }
    }
}

/// The longest `Retry-After` honoured; a server asking for more gets this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Redirect hops followed for one request.
const MAX_REDIRECTS: usize = 10;
/// Cap on a token server's answer and on an error body.
pub const SMALL_BODY_LIMIT: u64 = 1 << 20;

/// A request body that can be sent again on a retry.
#[derive(Clone, Default)]
pub enum Body {
    #[default]
    Empty,
    Bytes(Bytes),
    /// `len` bytes of a file from `offset`; `progress` is told the bytes sent so far in
    /// the current attempt.
    File {
        path: PathBuf,
        offset: u64,
        len: u64,
        progress: Option<Arc<dyn Fn(u64) + Send + Sync>>,
    },
}

impl Body {
    fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } => *len,
        }
    }

    async fn to_reqwest(&self) -> std::io::Result<reqwest::Body> {
        Ok(match self {
            Body::Empty => reqwest::Body::from(Bytes::new()),
            Body::Bytes(b) => reqwest::Body::from(b.clone()),
            Body::File {
                path,
                offset,
                len,
                progress,
            } => {
                use tokio::io::{AsyncReadExt, AsyncSeekExt};
                let mut f = tokio::fs::File::open(path).await?;
                f.seek(std::io::SeekFrom::Start(*offset)).await?;
                let reader = f.take(*len);
                let progress = progress.clone();
                let mut sent = 0u64;
                let stream =
                    tokio_util::io::ReaderStream::with_capacity(reader, 256 << 10).map(move |c| {
                        if let (Ok(chunk), Some(p)) = (&c, &progress) {
                            sent += chunk.len() as u64;
                            p(sent);
                        }
                        c
                    });
                reqwest::Body::wrap_stream(stream)
            }
        })
    }
}

/// One request to a registry.
#[derive(Clone)]
pub struct Request {
    pub method: Method,
    /// The registry as references name it; decides credentials and which host may
    /// receive them.
    pub registry: String,
    pub url: Url,
    /// Token scopes the request needs (`repository:x:pull`).
    pub scopes: Vec<String>,
    pub headers: HeaderMap,
    pub body: Body,
    /// Names the request in errors: `manifest 127.0.0.1:5000/x:1`, `blob sha256:…`.
    pub what: String,
}

impl Request {
    pub fn new(method: Method, registry: &str, url: Url, what: impl Into<String>) -> Request {
        Request {
            method,
            registry: registry.to_string(),
            url,
            scopes: Vec::new(),
            headers: HeaderMap::new(),
            body: Body::Empty,
            what: what.into(),
        }
    }

    pub fn scope(mut self, scope: String) -> Request {
        self.scopes.push(scope);
        self
    }

    pub fn header(mut self, name: header::HeaderName, value: &str) -> Request {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.insert(name, v);
        }
        self
    }

    pub fn body(mut self, body: Body) -> Request {
        self.body = body;
        self
    }
}

/// A registry client; cheap to share (`Arc`) between the tasks of one pull or push.
pub struct Client {
    http: reqwest::Client,
    opts: ClientOptions,
    auth: AuthCache,
    /// Credentials per registry, looked up once: a credential helper is a process.
    creds: Mutex<HashMap<String, Option<Credential>>>,
    /// Held while a token is fetched, so concurrent requests fetch it once.
    token_fetch: tokio::sync::Mutex<()>,
}

impl Client {
    pub fn new(opts: ClientOptions) -> Result<Client, RegistryError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("rbuild/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(opts.idle_timeout)
            .read_timeout(opts.idle_timeout)
            // Redirects are followed by `send`, which decides per hop whether the
            // credentials may go along.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| RegistryError::Protocol(format!("HTTP client: {e}")))?;
        Ok(Client {
            http,
            opts,
            auth: AuthCache::default(),
            creds: Mutex::default(),
            token_fetch: tokio::sync::Mutex::new(()),
        })
    }

    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// The user's credential for `registry`, asked of the source once per client.
    fn credential(&self, registry: &str) -> Result<Option<Credential>, RegistryError> {
        let mut cache = self.creds.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cache.get(registry) {
            return Ok(c.clone());
        }
        let c = self.opts.credentials.get(registry)?;
        cache.insert(registry.to_string(), c.clone());
        Ok(c)
    }

    /// The registry's API root, `https://host/` or `http://host/` for plain-HTTP hosts.
    /// Docker Hub's API lives on `registry-1.docker.io`.
    pub fn base(&self, registry: &str) -> Result<Url, RegistryError> {
        let host = api_host(registry);
        let scheme = if (self.opts.plain_http)(registry) {
            "http"
        } else {
            "https"
        };
        Url::parse(&format!("{scheme}://{host}/"))
            .map_err(|_| RegistryError::Protocol(format!("invalid registry host {registry}")))
    }

    /// `path` (starting with `/v2/`) on `registry`.
    pub fn url(&self, registry: &str, path: &str) -> Result<Url, RegistryError> {
        self.base(registry)?
            .join(path.trim_start_matches('/'))
            .map_err(|_| RegistryError::Protocol(format!("invalid path {path}")))
    }

    /// Sends `req`, answering auth challenges, following redirects and retrying what may
    /// succeed on a retry. Returns the final answer whatever its status, except that a
    /// 401 the credentials could not satisfy is [`RegistryError::Unauthorized`] and a
    /// 5xx/429 that outlasted the retries is [`RegistryError::Status`].
    pub async fn send(&self, req: &Request) -> Result<Response, RegistryError> {
        let host = host_label(&req.url);
        let mut url = req.url.clone();
        let mut method = req.method.clone();
        let mut body = req.body.clone();
        let mut fresh_auth = false;
        let mut hops = 0;
        loop {
            let at_home = same_origin(&url, &req.url);
            let auth = if at_home {
                self.authorization(req, &host).await?
            } else {
                None
            };
            let resp = self
                .exchange(&method, &url, &req.headers, auth, &body, &host, &req.what)
                .await?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED {
                if !at_home {
                    return Err(RegistryError::RedirectAuth {
                        host,
                        what: req.what.clone(),
                        to: host_label(&url),
                    });
                }
                let challenge = resp
                    .headers()
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_challenge);
                let detail = error_detail(resp).await;
                let Some(challenge) = challenge else {
                    return Err(unauthorized(&host, req, detail));
                };
                if fresh_auth {
                    return Err(unauthorized(&host, req, detail));
                }
                // A token that was refused (expired, revoked) is fetched again once.
                self.auth.drop_token(&req.registry, &req.scopes);
                if challenge == Challenge::Basic && self.credential(&req.registry)?.is_none() {
                    return Err(unauthorized(&host, req, detail));
                }
                self.auth.set_challenge(&req.registry, challenge);
                fresh_auth = true;
                continue;
            }
            if status.is_redirection()
                && let Some(loc) = resp.headers().get(header::LOCATION)
            {
                hops += 1;
                if hops > MAX_REDIRECTS {
                    return Err(RegistryError::Protocol(format!(
                        "{}: more than {MAX_REDIRECTS} redirects from {host}",
                        req.what
                    )));
                }
                let loc = loc.to_str().unwrap_or_default();
                url = url.join(loc).map_err(|_| {
                    RegistryError::Protocol(format!("{}: bad redirect from {host}", req.what))
                })?;
                if status == StatusCode::SEE_OTHER {
                    method = Method::GET;
                    body = Body::Empty;
                }
                continue;
            }
            return Ok(resp);
        }
    }

    /// Like [`Client::send`], with any status outside `ok` turned into an error carrying
    /// the registry's message (404 is [`RegistryError::NotFound`]).
    pub async fn send_expect(&self, req: &Request, ok: &[u16]) -> Result<Response, RegistryError> {
        let resp = self.send(req).await?;
        let status = resp.status().as_u16();
        if ok.contains(&status) {
            return Ok(resp);
        }
        let host = host_label(&req.url);
        let detail = error_detail(resp).await;
        Err(if status == 404 {
            RegistryError::NotFound {
                host,
                what: req.what.clone(),
                detail,
            }
        } else {
            RegistryError::Status {
                host,
                what: req.what.clone(),
                status,
                detail,
            }
        })
    }

    /// [`Client::send_expect`] and the whole body, read under `limit`: for the small
    /// answers (lists, manifests) that are read at once. A connection that breaks or
    /// goes silent while the body is read is retried like one that fails before the
    /// headers: the request is sent again, after the same backoff.
    pub async fn fetch(
        &self,
        req: &Request,
        ok: &[u16],
        limit: u64,
    ) -> Result<(HeaderMap, Bytes), RegistryError> {
        let host = host_label(&req.url);
        let attempts = self.opts.attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let resp = self.send_expect(req, ok).await?;
            let headers = resp.headers().clone();
            match read_body(resp, limit, &host, &req.what, self.opts.idle_timeout).await {
                Ok(body) => return Ok((headers, body)),
                Err(e) if e.is_transient() && attempt < attempts => {
                    tokio::time::sleep(self.backoff(attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The Authorization header for `req` from what we know of its registry: a cached or
    /// freshly fetched token for a Bearer registry, the credentials for a Basic one,
    /// nothing before the first challenge.
    async fn authorization(
        &self,
        req: &Request,
        host: &str,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        let value = match self.auth.challenge(&req.registry) {
            None => return Ok(None),
            Some(Challenge::Basic) => match self.credential(&req.registry)? {
                Some(c) => format!("Basic {}", basic(&c.username, &c.secret)),
                None => return Ok(None),
            },
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                let token = match self.auth.token(&req.registry, &req.scopes) {
                    Some(t) => t,
                    None => {
                        // One fetch at a time: the layers of a pull start together and
                        // need the same token; the first fetches it, the others find it
                        // cached once they get the lock.
                        let _one = self.token_fetch.lock().await;
                        match self.auth.token(&req.registry, &req.scopes) {
                            Some(t) => t,
                            None => {
                                let mut scopes = req.scopes.clone();
                                if scopes.is_empty()
                                    && let Some(s) = scope
                                {
                                    scopes.push(s);
                                }
                                let (token, lifetime) = self
                                    .fetch_token(req, host, &realm, service.as_deref(), &scopes)
                                    .await?;
                                self.auth.set_token(
                                    &req.registry,
                                    &req.scopes,
                                    token.clone(),
                                    lifetime,
                                );
                                token
                            }
                        }
                    }
                };
                format!("Bearer {token}")
            }
        };
        HeaderValue::from_str(&value)
            .map(|mut v| {
                v.set_sensitive(true);
                Some(v)
            })
            .map_err(|_| {
                RegistryError::Credentials("the credentials are not valid in an HTTP header".into())
            })
    }

    /// Asks the realm named by the registry's challenge for a token, with the user's
    /// credentials when there are any (anonymous tokens otherwise, as Docker Hub gives).
    async fn fetch_token(
        &self,
        req: &Request,
        host: &str,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<(String, Duration), RegistryError> {
        let what = format!("{}: token from {}", req.what, redact_url(realm));
        let mut url = Url::parse(realm)
            .map_err(|_| RegistryError::Protocol(format!("{host} named an invalid token realm")))?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for s in scopes {
                q.append_pair("scope", s);
            }
        }
        let credential = self.credential(&req.registry)?;
        let realm_host = host_label(&url);
        let resp = match credential {
            // docker's OAuth2 flow: an identity token is a refresh token, POSTed.
            Some(c) if c.kind == SecretKind::IdentityToken => {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token")
                    .append_pair("refresh_token", &c.secret)
                    .append_pair("client_id", "rbuild");
                if let Some(s) = service {
                    form.append_pair("service", s);
                }
                if !scopes.is_empty() {
                    form.append_pair("scope", &scopes.join(" "));
                }
                let mut headers = HeaderMap::new();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
                let mut post = url.clone();
                post.set_query(None);
                let body = Body::Bytes(Bytes::from(form.finish()));
                self.exchange(
                    &Method::POST,
                    &post,
                    &headers,
                    None,
                    &body,
                    &realm_host,
                    &what,
                )
                .await?
            }
            c => {
                let auth = match c {
                    Some(c) => {
                        let mut v = HeaderValue::from_str(&format!(
                            "Basic {}",
                            basic(&c.username, &c.secret)
                        ))
                        .map_err(|_| bad_header())?;
                        v.set_sensitive(true);
                        Some(v)
                    }
                    None => None,
                };
                self.exchange(
                    &Method::GET,
                    &url,
                    &HeaderMap::new(),
                    auth,
                    &Body::Empty,
                    &realm_host,
                    &what,
                )
                .await?
            }
        };
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let detail = error_detail(resp).await;
            return Err(RegistryError::Unauthorized {
                host: realm_host,
                what,
                detail,
            });
        }
        if !status.is_success() {
            let detail = error_detail(resp).await;
            return Err(RegistryError::Status {
                host: realm_host,
                what,
                status: status.as_u16(),
                detail,
            });
        }
        let body = read_body(
            resp,
            SMALL_BODY_LIMIT,
            &realm_host,
            &what,
            self.opts.idle_timeout,
        )
        .await?;
        serde_json::from_slice::<TokenResponse>(&body)
            .ok()
            .and_then(TokenResponse::into_token)
            .ok_or_else(|| RegistryError::Protocol(format!("{what}: the answer holds no token")))
    }

    /// One hop: sends the request, retrying connection failures, timeouts, 5xx and 429
    /// (after its `Retry-After`) up to the configured attempts. The last answer is
    /// returned as it is; a connection failure on the last attempt is the error.
    #[allow(clippy::too_many_arguments)]
    async fn exchange(
        &self,
        method: &Method,
        url: &Url,
        headers: &HeaderMap,
        auth: Option<HeaderValue>,
        body: &Body,
        host: &str,
        what: &str,
    ) -> Result<Response, RegistryError> {
        let attempts = self.opts.attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= attempts;
            let mut rb = self.http.request(method.clone(), url.clone());
            rb = rb.headers(headers.clone());
            if let Some(a) = &auth {
                rb = rb.header(header::AUTHORIZATION, a.clone());
            }
            if !matches!(body, Body::Empty)
                || matches!(*method, Method::PUT | Method::POST | Method::PATCH)
            {
                let b = body.to_reqwest().await.map_err(|e| {
                    RegistryError::Protocol(format!("{what}: reading what to send: {e}"))
                })?;
                rb = rb.header(header::CONTENT_LENGTH, body.len()).body(b);
            }
            match rb.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let transient =
                        status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
                    if !transient || last {
                        if transient {
                            let detail = error_detail(resp).await;
                            return Err(RegistryError::Status {
                                host: host.to_string(),
                                what: what.to_string(),
                                status: status.as_u16(),
                                detail,
                            });
                        }
                        return Ok(resp);
                    }
                    let wait = retry_after(resp.headers()).unwrap_or_else(|| self.backoff(attempt));
                    drop(resp);
                    tokio::time::sleep(wait).await;
                }
                Err(e) => {
                    // A name that does not resolve will not resolve in a second either.
                    if last || is_dns_failure(&e) {
                        return Err(transport_error(&e, host, what, self.opts.idle_timeout));
                    }
                    tokio::time::sleep(self.backoff(attempt)).await;
                }
            }
        }
    }

    /// The delay before retry number `attempt` (1-based): doubling from the base, with a
    /// little jitter so parallel transfers do not retry in lockstep.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let base = self.opts.backoff * 2u32.saturating_pow(attempt.saturating_sub(1).min(6));
        let jitter = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() % 100);
        base.min(Duration::from_secs(10)) + Duration::from_millis(jitter as u64)
    }
}

/// Whether the request failed because the host name did not resolve.
fn is_dns_failure(e: &reqwest::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        if s.to_string().starts_with("dns error") {
            return true;
        }
        source = s.source();
    }
    false
}

fn bad_header() -> RegistryError {
    RegistryError::Credentials("the credentials are not valid in an HTTP header".into())
}

fn unauthorized(host: &str, req: &Request, detail: String) -> RegistryError {
    RegistryError::Unauthorized {
        host: host.to_string(),
        what: req.what.clone(),
        detail,
    }
}

/// The error for a request that got no answer; the reason is the innermost cause
/// (`Connection refused`), never the URL.
pub fn transport_error(
    e: &reqwest::Error,
    host: &str,
    what: &str,
    idle: Duration,
) -> RegistryError {
    if e.is_timeout() {
        return RegistryError::Timeout {
            host: host.to_string(),
            what: what.to_string(),
            secs: idle.as_secs().max(1),
        };
    }
    // The innermost cause says what happened (`Connection refused`); the outer ones
    // repeat it with the URL, which may carry a query string.
    let mut reason = String::from("the connection failed");
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        reason = s.to_string();
        source = s.source();
    }
    RegistryError::Connect {
        host: host.to_string(),
        what: what.to_string(),
        reason,
    }
}

/// `Retry-After` as seconds (HTTP dates are rare from registries and are treated as a
/// short wait), capped.
fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = h.get(header::RETRY_AFTER)?.to_str().ok()?;
    let d = match v.trim().parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => Duration::from_secs(1),
    };
    Some(d.min(MAX_RETRY_AFTER))
}

/// Reads a whole body, refusing more than `limit` bytes; `idle` is the client's idle
/// timeout, for the message of a body that went silent.
async fn read_body(
    resp: Response,
    limit: u64,
    host: &str,
    what: &str,
    idle: Duration,
) -> Result<Bytes, RegistryError> {
    let too_large = || RegistryError::TooLarge {
        host: host.to_string(),
        what: what.to_string(),
        limit,
    };
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut out = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| transport_error(&e, host, what, idle))?;
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

/// The registry's explanation of an error answer, as `: CODE: message` (the
/// distribution spec's `{"errors":[{code,message}]}`), or nothing.
pub async fn error_detail(resp: Response) -> String {
    match read_body(resp, 64 << 10, "", "", Duration::ZERO).await {
        Ok(body) => detail_of(&body),
        Err(_) => String::new(),
    }
}

/// [`error_detail`] of a body: the distribution spec's `{"errors":[{code,message}]}`,
/// or the `{"details":"…"}` of Docker Hub's token server (its "incorrect username or
/// password" is what a user with a wrong password needs to read), or nothing.
fn detail_of(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<Entry>,
        #[serde(default)]
        details: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Errors>(body) {
        Ok(e) if !e.errors.is_empty() => e
            .errors
            .iter()
            .map(|e| format!(": {}: {}", e.code, e.message))
            .collect(),
        Ok(Errors {
            details: Some(d), ..
        }) if !d.trim().is_empty() => format!(": {}", d.trim()),
        _ => String::new(),
    }
}

/// The host Docker Hub's API answers on; other registries answer on their own name.
fn api_host(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" => "registry-1.docker.io",
        r => r,
    }
}

/// `host[:port]` of a URL, as errors show it.
pub fn host_label(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => "<no host>".to_string(),
    }
}

/// Scheme, host and port agree: what must hold for credentials to go along (and so for
/// a catalog page to be asked for at all).
pub(super) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// A URL without userinfo or query, fit for messages.
pub fn redact_url(url: &str) -> String {
    crate::download::redact(url)
}

fn basic(user: &str, pass: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
}

#[cfg(test)]
mod tests;
