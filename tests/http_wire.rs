//! Server side of HTTP/1.1 for the tests' own servers (token server, fault proxy, evil
//! server): reading a request head and body off the wire, answering, and an accept loop
//! that stops on drop. Every answer says `Connection: close`, so no server here has to
//! track keep-alive state; clients that reuse connections simply open a new one.

use std::collections::HashMap;
use std::io::{self, BufRead, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A request line and headers as received; header names keep their case so a proxy can
/// pass them on unchanged.
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub method: String,
    /// Path and query, as on the request line.
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The query string without `?`, empty when there is none.
    pub fn query(&self) -> &str {
        self.target.split_once('?').map(|(_, q)| q).unwrap_or("")
    }

    /// How the body that follows the head is framed.
    pub fn body_kind(&self) -> BodyKind {
        if self
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            BodyKind::Chunked
        } else {
            match self
                .header("content-length")
                .and_then(|v| v.trim().parse().ok())
            {
                Some(0) | None => BodyKind::None,
                Some(n) => BodyKind::Length(n),
            }
        }
    }

    /// Whether the client waits for `100 Continue` before sending its body (curl does
    /// for large uploads).
    pub fn expects_continue(&self) -> bool {
        self.header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    None,
    Length(u64),
    Chunked,
}

/// Reads a request head; `None` when the peer closed before sending one.
///
/// A TLS ClientHello (first byte 0x16) is refused at once: clients told a registry is
/// insecure (skopeo's `--tls-verify=false`) try HTTPS first and fall back to HTTP when
/// the connection closes, whereas waiting for a request line would hang both sides.
pub fn read_request_head(r: &mut impl BufRead) -> io::Result<Option<RequestHead>> {
    match r.fill_buf()?.first() {
        None => return Ok(None),
        Some(0x16) => return Err(io::Error::other("TLS handshake on a plain HTTP port")),
        Some(_) => {}
    }
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.trim_end().splitn(3, ' ');
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(io::Error::other(format!("bad request line {line:?}")));
    };
    let (method, target) = (method.to_string(), target.to_string());
    let headers = read_header_lines(r)?;
    Ok(Some(RequestHead {
        method,
        target,
        headers,
    }))
}

/// Reads `Name: value` lines up to the empty line that ends a head.
pub fn read_header_lines(r: &mut impl BufRead) -> io::Result<Vec<(String, String)>> {
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            return Ok(headers);
        }
        if let Some((n, v)) = line.split_once(':') {
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
}

/// Copies a body framed as `kind` from `r` to `w` byte for byte (chunk framing included,
/// so the receiver sees the same `Transfer-Encoding`); returns the bytes copied.
pub fn copy_body(r: &mut impl BufRead, kind: BodyKind, w: &mut impl Write) -> io::Result<u64> {
    match kind {
        BodyKind::None => Ok(0),
        BodyKind::Length(n) => {
            let copied = io::copy(&mut r.take(n), w)?;
            if copied < n {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            Ok(copied)
        }
        BodyKind::Chunked => {
            let mut total = 0;
            loop {
                let mut size_line = String::new();
                if r.read_line(&mut size_line)? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                w.write_all(size_line.as_bytes())?;
                let size_field = size_line.trim().split(';').next().unwrap_or("");
                let size = u64::from_str_radix(size_field, 16)
                    .map_err(|_| io::Error::other(format!("bad chunk size {size_line:?}")))?;
                if size == 0 {
                    // Trailer lines, then the empty line.
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line)? == 0 {
                            return Err(io::ErrorKind::UnexpectedEof.into());
                        }
                        w.write_all(line.as_bytes())?;
                        if line.trim_end().is_empty() {
                            return Ok(total);
                        }
                    }
                }
                // The chunk and its CRLF.
                let copied = io::copy(&mut r.take(size + 2), w)?;
                if copied < size + 2 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                total += size;
            }
        }
    }
}

/// Reads and drops a request body, so that answering without it does not reset the
/// connection under the client (unread data at close makes the kernel send RST).
pub fn discard_body(r: &mut impl BufRead, head: &RequestHead) -> io::Result<()> {
    if head.expects_continue() {
        // The client sends nothing until told to; the answer replaces the body.
        return Ok(());
    }
    copy_body(r, head.body_kind(), &mut io::sink()).map(|_| ())
}

/// Writes a complete response with `Content-Length` and `Connection: close`.
pub fn respond(
    w: &mut impl Write,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    w.write_all(head.as_bytes())?;
    w.write_all(body)?;
    w.flush()
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        206 => "Partial Content",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// An accept loop on its own thread, one thread per connection. Dropping it stops
/// accepting, shuts down every connection still open (so handlers blocked on a read
/// return) and joins the accept thread, so no test leaves a listener behind.
pub struct Server {
    pub addr: String,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<HashMap<u64, TcpStream>>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `bind` (e.g. `127.0.0.1:0`) and runs `handler` for each connection.
    pub fn spawn(
        bind: &str,
        handler: impl Fn(TcpStream) + Send + Sync + 'static,
    ) -> io::Result<Server> {
        let listener = TcpListener::bind(bind)?;
        let addr = listener.local_addr()?.to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<HashMap<u64, TcpStream>>> = Arc::default();
        let handler = Arc::new(handler);
        let thread = {
            let (stop, conns) = (stop.clone(), conns.clone());
            let next_id = AtomicU64::new(0);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let id = next_id.fetch_add(1, Ordering::SeqCst);
                    if let Ok(clone) = stream.try_clone() {
                        conns.lock().unwrap().insert(id, clone);
                    }
                    let (handler, conns) = (handler.clone(), conns.clone());
                    std::thread::spawn(move || {
                        handler(stream);
                        conns.lock().unwrap().remove(&id);
                    });
                }
            })
        };
        Ok(Server {
            addr,
            stop,
            conns,
            thread: Some(thread),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept; the loop sees `stop` and returns.
        let _ = TcpStream::connect(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        for (_, s) in self.conns.lock().unwrap().drain() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}
