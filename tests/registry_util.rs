//! A real registry for the tests: Debian's `docker-registry` (distribution 2.8) on
//! 127.0.0.1, one per test, on a free port, with its own storage and config, stopped on drop.
//!
//! [`RegistryAuth`] picks the configuration. Only anonymous mode exists yet; htpasswd Basic
//! auth and token auth (a test token server whose key the registry trusts) are meant to
//! become further variants, each adding its own `auth:` section in [`Registry::config`] and
//! whatever files it needs in the registry's temp dir.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::TempDir;

/// The binary Debian's `docker-registry` package installs.
const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// How a test registry asks clients to authenticate.
#[derive(Debug, Clone, Default)]
pub enum RegistryAuth {
    /// Pull and push need no credentials.
    #[default]
    Anonymous,
}

/// A running registry; the process is killed and its storage removed on drop.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`, which is also how image references name it.
    pub addr: String,
    /// Holds `config.yml`, `storage/` and `registry.log`.
    pub dir: TempDir,
}

/// An HTTP response as read off the wire, enough for the tests' checks.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Registry {
    /// Starts a registry and waits until `/v2/` answers. Panics (naming the Debian package
    /// when the binary is missing) if it cannot.
    pub fn start(tag: &str, auth: RegistryAuth) -> Registry {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing: install Debian's docker-registry (apt-get install docker-registry)"
        );
        // The port is found free and then handed to the registry, so another process may
        // take it in between; a registry that dies at start is retried on a new port.
        let mut last_log = String::new();
        for _ in 0..3 {
            let dir = TempDir::new(&format!("registry-{tag}"));
            let port = free_port();
            let addr = format!("127.0.0.1:{port}");
            let config = Self::config(&dir.0, &addr, &auth);
            let config_path = dir.write("config.yml", &config);
            let log_path = dir.0.join("registry.log");
            let log = std::fs::File::create(&log_path).unwrap();
            let child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&config_path)
                // Settings in the environment would override the config file.
                .env_clear()
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {REGISTRY_BIN}: {e}"));
            let mut reg = Registry { child, addr, dir };
            if reg.wait_ready(Duration::from_secs(20)) {
                return reg;
            }
            last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
            // Dropping `reg` kills the process and removes its directory.
        }
        panic!("docker-registry did not answer on /v2/ after 3 tries; last log:\n{last_log}");
    }

    /// The registry's configuration for `auth`, listening on `addr` only.
    fn config(dir: &Path, addr: &str, auth: &RegistryAuth) -> String {
        let storage = dir.join("storage");
        std::fs::create_dir_all(&storage).unwrap();
        let mut config = format!(
            "version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {addr}
  secret: rbuild-test-secret
",
            storage = storage.display()
        );
        match auth {
            RegistryAuth::Anonymous => {}
        }
        config.push('\n');
        config
    }

    /// Polls `/v2/` until any HTTP answer (200 when anonymous, 401 with auth) or the
    /// process exits or `timeout` passes.
    fn wait_ready(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if http_get(&self.addr, "/v2/").is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// GETs `path` from the registry without credentials.
    pub fn get(&self, path: &str) -> HttpResponse {
        http_get(&self.addr, path)
            .unwrap_or_else(|e| panic!("GET {}{path}: {e}\nlog:\n{}", self.url(), self.log()))
    }

    /// What the registry logged so far: for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A minimal HTTP/1.1 GET (the tests' own client, independent of rbuild's).
pub fn http_get(addr: &str, path: &str) -> std::io::Result<HttpResponse> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: */*\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw).ok_or_else(|| {
        std::io::Error::other(format!("malformed HTTP response ({} bytes)", raw.len()))
    })
}

/// One HTTP/1.1 request with `headers` and `body` (the tests' own client), for putting
/// content into a registry without rbuild.
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw).ok_or_else(|| {
        std::io::Error::other(format!("malformed HTTP response ({} bytes)", raw.len()))
    })
}

fn parse_response(raw: &[u8]) -> Option<HttpResponse> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Some(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size_field = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(size_field.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}
