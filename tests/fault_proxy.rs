//! A reverse proxy in front of a test registry that breaks chosen requests on purpose, so
//! the registry client's retry, resume, verification, timeout and redirect handling meet
//! real failures from a real registry (issue 5). The client under test is given the
//! proxy's address as the registry (`127.0.0.1:PROXYPORT/repo:tag`).
//!
//! The client's `Host` header is passed through unchanged, so the `Location` headers the
//! registry builds from it (upload sessions) point at the proxy, not around it. Every
//! answer carries `Connection: close`: clients that keep connections alive reconnect,
//! and the proxy needs no keep-alive bookkeeping. Bodies are streamed both ways.
//!
//! Also here: [`EvilServer`], a server on 127.0.0.2 (another host as far as a client can
//! tell) that a redirect can point to, recording whether credentials leaked to it.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::http_wire::{
    RequestHead, Server, copy_body, discard_body, read_header_lines, read_request_head, respond,
};

/// What the proxy does to a request that a rule matches.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answers with this status and these extra headers (e.g. 429 with
    /// `Retry-After: 1`) without asking the registry.
    Status(u16, Vec<(String, String)>),
    /// Forwards, then closes the connection after this many body bytes of the
    /// registry's answer: a connection dropped halfway through a layer. The count is of
    /// bytes as on the wire, which for blobs (sent with `Content-Length`) is the blob.
    DropAfter(u64),
    /// Forwards, inverting the first body byte of the answer (same length, so only a
    /// digest check can notice). Meant for `Content-Length` answers (blobs, manifests).
    CorruptBody,
    /// Reads the request and never answers; the connection stays open until the client
    /// gives up or the proxy is dropped: a server that stops answering.
    Stall,
    /// Answers `307 Temporary Redirect` to this URL.
    Redirect(String),
    /// Forwards after holding the request this long: a slow network, or time for a
    /// token the request carries to expire before the registry sees it. `Delay(ZERO)`
    /// forwards untouched, to let a later rule pick a later request.
    Delay(Duration),
    /// Forwards the request head and this many bytes of its body, then closes both
    /// connections without an answer: an upload whose connection broke mid-way. The
    /// registry sees a body cut short, as it would when a client's network fails.
    CutRequest(u64),
}

impl Fault {
    /// `Status(code)` with no extra headers.
    pub fn status(code: u16) -> Fault {
        Fault::Status(code, Vec::new())
    }
}

/// Which requests a fault applies to, and how many more times.
#[derive(Debug, Clone)]
struct Rule {
    /// Empty matches any method.
    method: String,
    path_contains: String,
    /// Empty matches any query.
    query_contains: String,
    /// Matching requests still to let through before the fault applies.
    skip: usize,
    remaining: usize,
    fault: Fault,
}

/// One request the proxy (or the evil server) received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Without `?`; empty when there was none.
    pub query: String,
    /// Whether the request carried an `Authorization` header.
    pub authorization: bool,
    /// The `Range` header, if any (a resumed download sends one).
    pub range: Option<String>,
    /// The fault applied, `None` when the request was forwarded untouched.
    pub fault: Option<Fault>,
    /// The status the client was sent (from the registry or from the fault); `None` for
    /// `Stall`, or when the registry could not be reached.
    pub status: Option<u16>,
}

struct State {
    upstream: String,
    rules: Mutex<Vec<Rule>>,
    seen: Mutex<Vec<Seen>>,
}

/// A running proxy; its threads and connections end on drop.
pub struct FaultProxy {
    server: Server,
    state: Arc<State>,
}

/// How long the proxy waits on a silent registry or client before giving up on the
/// exchange, so a test that goes wrong does not hang forever.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

impl FaultProxy {
    /// Starts a proxy on a free port of 127.0.0.1 forwarding to `upstream`
    /// (`127.0.0.1:PORT`, e.g. [`crate::registry_util::Registry::addr`]).
    pub fn start(upstream: &str) -> FaultProxy {
        let state = Arc::new(State {
            upstream: upstream.to_string(),
            rules: Mutex::default(),
            seen: Mutex::default(),
        });
        let handler_state = state.clone();
        let server = Server::spawn("127.0.0.1:0", move |s| handle(&handler_state, s))
            .expect("binding the fault proxy on 127.0.0.1");
        FaultProxy { server, state }
    }

    /// `127.0.0.1:PORT`: what the client under test uses as the registry.
    pub fn addr(&self) -> &str {
        &self.server.addr
    }

    /// Applies `fault` to the next `times` requests whose method is `method` (empty for
    /// any) and whose path contains `path_contains`; after that they are forwarded.
    /// Rules are tried in the order added; the first one that still applies wins.
    pub fn fail(&self, method: &str, path_contains: &str, times: usize, fault: Fault) {
        self.fail_after(method, path_contains, 0, times, fault);
    }

    /// Like [`FaultProxy::fail`], after letting the first `skip` matching requests
    /// through untouched: e.g. the second chunk of an upload.
    pub fn fail_after(
        &self,
        method: &str,
        path_contains: &str,
        skip: usize,
        times: usize,
        fault: Fault,
    ) {
        self.state.rules.lock().unwrap().push(Rule {
            method: method.to_string(),
            path_contains: path_contains.to_string(),
            query_contains: String::new(),
            skip,
            remaining: times,
            fault,
        });
    }

    /// Like [`FaultProxy::fail`], for requests whose query also contains
    /// `query_contains`: upload requests of one blob share their path with nothing but
    /// name it only in the query (`PUT …/uploads/UUID?digest=sha256%3AHEX`).
    pub fn fail_query(
        &self,
        method: &str,
        path_contains: &str,
        query_contains: &str,
        times: usize,
        fault: Fault,
    ) {
        self.state.rules.lock().unwrap().push(Rule {
            method: method.to_string(),
            path_contains: path_contains.to_string(),
            query_contains: query_contains.to_string(),
            skip: 0,
            remaining: times,
            fault,
        });
    }

    /// Drops every rule, used or not: from now on requests are forwarded untouched
    /// (e.g. to run a command again once the fault is gone).
    pub fn clear(&self) {
        self.state.rules.lock().unwrap().clear();
    }

    /// Every request so far, in the order they arrived.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// How many requests so far had this method (empty for any) and a path containing
    /// `path_contains`: e.g. how often a client retried a blob.
    pub fn count(&self, method: &str, path_contains: &str) -> usize {
        self.state
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| {
                (method.is_empty() || s.method.eq_ignore_ascii_case(method))
                    && s.path.contains(path_contains)
            })
            .count()
    }
}

/// Takes one use of the first rule matching `head`.
fn take_fault(state: &State, head: &RequestHead) -> Option<Fault> {
    let mut rules = state.rules.lock().unwrap();
    let rule = rules.iter_mut().find(|r| {
        r.remaining > 0
            && (r.method.is_empty() || r.method.eq_ignore_ascii_case(&head.method))
            && head.path().contains(&r.path_contains)
            && head.query().contains(&r.query_contains)
    })?;
    if rule.skip > 0 {
        rule.skip -= 1;
        return None;
    }
    rule.remaining -= 1;
    Some(rule.fault.clone())
}

fn record(seen: &Mutex<Vec<Seen>>, head: &RequestHead, fault: Option<Fault>) -> usize {
    let mut seen = seen.lock().unwrap();
    seen.push(Seen {
        method: head.method.clone(),
        path: head.path().to_string(),
        query: head.query().to_string(),
        authorization: head.header("authorization").is_some(),
        range: head.header("range").map(str::to_string),
        fault,
        status: None,
    });
    seen.len() - 1
}

fn set_status(state: &State, index: usize, status: u16) {
    state.seen.lock().unwrap()[index].status = Some(status);
}

fn handle(state: &State, client: TcpStream) {
    let _ = client.set_read_timeout(Some(IO_TIMEOUT));
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut out = client;
    let Ok(Some(head)) = read_request_head(&mut reader) else {
        return;
    };
    let fault = take_fault(state, &head);
    let index = record(&state.seen, &head, fault.clone());
    match fault {
        Some(Fault::Status(code, headers)) => {
            let _ = discard_body(&mut reader, &head);
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            set_status(state, index, code);
            let _ = respond(&mut out, code, &headers, b"");
        }
        Some(Fault::Redirect(location)) => {
            let _ = discard_body(&mut reader, &head);
            set_status(state, index, 307);
            let _ = respond(&mut out, 307, &[("Location", &location)], b"");
        }
        Some(Fault::Stall) => {
            let _ = discard_body(&mut reader, &head);
            // Blocks until the client closes or the proxy's drop shuts the socket down.
            let _ = out.set_read_timeout(None);
            let _ = io::copy(&mut reader, &mut io::sink());
        }
        Some(Fault::Delay(wait)) => {
            std::thread::sleep(wait);
            if let Err(e) = forward(state, index, &head, &mut reader, &mut out, None) {
                eprintln!("fault proxy: {} {}: {e}", head.method, head.path());
            }
        }
        fault @ (None
        | Some(Fault::DropAfter(_))
        | Some(Fault::CorruptBody)
        | Some(Fault::CutRequest(_))) => {
            if let Err(e) = forward(state, index, &head, &mut reader, &mut out, fault) {
                eprintln!(
                    "fault proxy: {} {}: {e}",
                    head.method,
                    head.path().chars().take(80).collect::<String>()
                );
            }
        }
    }
}

/// Hop-by-hop headers the proxy replaces with its own `Connection: close`; `Expect` is
/// answered by the proxy itself.
fn hop_by_hop(name: &str) -> bool {
    ["connection", "keep-alive", "proxy-connection", "expect"]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
}

fn forward(
    state: &State,
    index: usize,
    head: &RequestHead,
    client_reader: &mut impl BufRead,
    client: &mut TcpStream,
    fault: Option<Fault>,
) -> io::Result<()> {
    let upstream = match TcpStream::connect(&state.upstream) {
        Ok(s) => s,
        Err(e) => {
            let _ = discard_body(client_reader, head);
            set_status(state, index, 502);
            respond(client, 502, &[], b"fault proxy: registry unreachable\n")?;
            return Err(e);
        }
    };
    upstream.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut up_writer = io::BufWriter::new(upstream.try_clone()?);
    let mut request = format!("{} {} HTTP/1.1\r\n", head.method, head.target);
    for (n, v) in head.headers.iter().filter(|(n, _)| !hop_by_hop(n)) {
        request.push_str(&format!("{n}: {v}\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    up_writer.write_all(request.as_bytes())?;
    if head.expects_continue() {
        client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    if let Some(Fault::CutRequest(n)) = fault {
        // Raw bytes, framing and all: what the registry reads is a body that stops.
        io::copy(&mut (&mut *client_reader).take(n), &mut up_writer)?;
        up_writer.flush()?;
        drop(up_writer);
        let _ = upstream.shutdown(Shutdown::Both);
        let _ = client.shutdown(Shutdown::Both);
        return Ok(());
    }
    // The registry may answer (e.g. 401) before reading the whole body and close; what
    // it answered still goes to the client.
    let _ =
        copy_body(client_reader, head.body_kind(), &mut up_writer).and_then(|_| up_writer.flush());
    drop(up_writer);

    let mut up_reader = BufReader::new(upstream);
    let mut status_line = String::new();
    up_reader.read_line(&mut status_line)?;
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line {status_line:?}")))?;
    let headers = read_header_lines(&mut up_reader)?;
    let mut response_head = status_line.trim_end().to_string() + "\r\n";
    for (n, v) in headers.iter().filter(|(n, _)| !hop_by_hop(n)) {
        response_head.push_str(&format!("{n}: {v}\r\n"));
    }
    response_head.push_str("Connection: close\r\n\r\n");
    client.write_all(response_head.as_bytes())?;
    set_status(state, index, status);

    // The registry closes after its answer (we asked it to), so the body is what is left.
    match fault {
        Some(Fault::DropAfter(n)) => {
            io::copy(&mut (&mut up_reader).take(n), client)?;
            client.flush()?;
            // Both ways, so the client sees the end of the stream at once.
            let _ = client.shutdown(Shutdown::Both);
        }
        Some(Fault::CorruptBody) => {
            let mut first = [0u8; 1];
            if up_reader.read(&mut first)? == 1 {
                client.write_all(&[first[0] ^ 0xff])?;
            }
            io::copy(&mut up_reader, client)?;
        }
        _ => {
            io::copy(&mut up_reader, client)?;
        }
    }
    client.flush()
}

/// A server on 127.0.0.2 that answers every request with `401` and
/// `WWW-Authenticate: Basic realm="evil"`, as a host that phishes for credentials would.
/// Tests point redirects at it and assert the client never sent it `Authorization`.
pub struct EvilServer {
    server: Server,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl EvilServer {
    /// Binds a free port on 127.0.0.2 (the loopback range: another host to a client,
    /// and still this machine).
    pub fn start() -> EvilServer {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let handler_seen = seen.clone();
        let server = Server::spawn("127.0.0.2:0", move |s| {
            let mut reader = BufReader::new(s.try_clone().unwrap());
            let mut out = s;
            let Ok(Some(head)) = read_request_head(&mut reader) else {
                return;
            };
            let index = record(&handler_seen, &head, None);
            handler_seen.lock().unwrap()[index].status = Some(401);
            let _ = discard_body(&mut reader, &head);
            let _ = respond(
                &mut out,
                401,
                &[("WWW-Authenticate", "Basic realm=\"evil\"")],
                b"",
            );
        })
        .expect("binding 127.0.0.2 (the loopback range should answer on any 127.x address)");
        EvilServer { server, seen }
    }

    /// `127.0.0.2:PORT`.
    pub fn addr(&self) -> &str {
        &self.server.addr
    }

    /// Every request so far; `authorization` says whether credentials leaked.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A blob store on 127.0.0.2, where real registries send blob downloads (S3, a CDN): it
/// serves `GET …/sha256:HEX` from a distribution registry's storage directory with no
/// authentication at all, and records each request, so a test can redirect a layer
/// there and check that the download worked and carried no credentials.
pub struct StorageServer {
    server: Server,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl StorageServer {
    /// Serves the blobs under `storage` (a registry's `rootdirectory`) on a free port of
    /// 127.0.0.2.
    pub fn start(storage: &std::path::Path) -> StorageServer {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let handler_seen = seen.clone();
        let blobs = storage.join("docker/registry/v2/blobs/sha256");
        let server = Server::spawn("127.0.0.2:0", move |s| {
            let mut reader = BufReader::new(s.try_clone().unwrap());
            let mut out = s;
            let Ok(Some(head)) = read_request_head(&mut reader) else {
                return;
            };
            let index = record(&handler_seen, &head, None);
            let _ = discard_body(&mut reader, &head);
            let hex = head
                .path()
                .rsplit("sha256:")
                .next()
                .unwrap_or("")
                .to_string();
            let data = (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| std::fs::read(blobs.join(&hex[..2]).join(&hex).join("data")).ok())
                .flatten();
            let status = if data.is_some() { 200 } else { 404 };
            handler_seen.lock().unwrap()[index].status = Some(status);
            let _ = respond(
                &mut out,
                status,
                &[("Content-Type", "application/octet-stream")],
                data.as_deref().unwrap_or(b""),
            );
        })
        .expect("binding 127.0.0.2 (the loopback range should answer on any 127.x address)");
        StorageServer { server, seen }
    }

    /// `127.0.0.2:PORT`.
    pub fn addr(&self) -> &str {
        &self.server.addr
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}
