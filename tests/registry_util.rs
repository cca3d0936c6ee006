//! A real registry for the tests: Debian's `docker-registry` (distribution 2.8) on
//! 127.0.0.1, one per test, on a free port, with its own storage and config, stopped on drop.
//!
//! [`RegistryAuth`] picks the configuration: anonymous, htpasswd (HTTP Basic), or token
//! auth with a test token server ([`crate::token_server`]) whose certificate the registry
//! trusts. Faults between client and registry come from [`crate::fault_proxy`].

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::token_server::{self, TokenRequest, TokenServer};
use crate::util::TempDir;

/// The realm the registry names in htpasswd mode's `WWW-Authenticate: Basic`.
pub const HTPASSWD_REALM: &str = "rbuild-test";

/// The binary Debian's `docker-registry` package installs.
const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// How a test registry asks clients to authenticate.
#[derive(Debug, Clone, Default)]
pub enum RegistryAuth {
    /// Pull and push need no credentials.
    #[default]
    Anonymous,
    /// HTTP Basic against a bcrypt htpasswd file holding one user (`realm="rbuild-test"`).
    Htpasswd { user: String, password: String },
    /// Bearer tokens from a test token server on 127.0.0.1, which grants `user` every
    /// scope it asks for and anonymous clients nothing. Tokens last `expires_in_secs`
    /// (the registry refuses them from then on), so a test can make one expire mid-pull.
    Token {
        user: String,
        password: String,
        expires_in_secs: u64,
    },
}

impl RegistryAuth {
    pub fn htpasswd(user: &str, password: &str) -> RegistryAuth {
        RegistryAuth::Htpasswd {
            user: user.to_string(),
            password: password.to_string(),
        }
    }

    /// Token auth with tokens that last 5 minutes, longer than any test.
    pub fn token(user: &str, password: &str) -> RegistryAuth {
        RegistryAuth::Token {
            user: user.to_string(),
            password: password.to_string(),
            expires_in_secs: 300,
        }
    }
}

/// A running registry; the process is killed and its storage removed on drop.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`, which is also how image references name it.
    pub addr: String,
    /// Holds `config.yml`, `storage/` and `registry.log` (and `htpasswd`).
    pub dir: TempDir,
    /// The token server when the registry is in token mode; dropped after the registry.
    token: Option<TokenServer>,
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
        Self::start_at(tag, auth, "127.0.0.1")
    }

    /// [`Registry::start`] listening on `host`, a loopback address as it appears before
    /// `:PORT` (`127.0.0.1`, `[::1]`), for tests of how clients name a registry.
    pub fn start_at(tag: &str, auth: RegistryAuth, host: &str) -> Registry {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing: install Debian's docker-registry (apt-get install docker-registry)"
        );
        // The port is found free and then handed to the registry, so another process may
        // take it in between; a registry that dies at start is retried on a new port.
        let token = match &auth {
            RegistryAuth::Token {
                user,
                password,
                expires_in_secs,
            } => Some(TokenServer::start(user, password, *expires_in_secs)),
            _ => None,
        };
        let mut last_log = String::new();
        for _ in 0..3 {
            let dir = TempDir::new(&format!("registry-{tag}"));
            let port = free_port(host);
            let addr = format!("{host}:{port}");
            let config = Self::config(&dir.0, &addr, &auth, token.as_ref());
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
            let mut reg = Registry {
                child,
                addr,
                dir,
                token: None,
            };
            if reg.wait_ready(Duration::from_secs(20)) {
                reg.token = token;
                return reg;
            }
            last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
            // Dropping `reg` kills the process and removes its directory.
        }
        panic!("docker-registry did not answer on /v2/ after 3 tries; last log:\n{last_log}");
    }

    /// The registry's configuration for `auth`, listening on `addr` only.
    fn config(dir: &Path, addr: &str, auth: &RegistryAuth, token: Option<&TokenServer>) -> String {
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
  addr: '{addr}'
  secret: rbuild-test-secret
",
            storage = storage.display()
        );
        match auth {
            RegistryAuth::Anonymous => {}
            RegistryAuth::Htpasswd { user, password } => {
                // distribution reads only bcrypt entries; cost 4 (the least) keeps
                // start-up and every request fast, strength is not the point here.
                let hash = bcrypt::hash(password, 4).unwrap();
                let path = dir.join("htpasswd");
                std::fs::write(&path, format!("{user}:{hash}\n")).unwrap();
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: {HTPASSWD_REALM}\n    path: {}\n",
                    path.display()
                ));
            }
            RegistryAuth::Token { .. } => {
                let token = token.expect("token mode starts its token server first");
                config.push_str(&format!(
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    token.realm(),
                    token_server::SERVICE,
                    token_server::ISSUER,
                    token.cert_path().display()
                ));
            }
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

    /// The token server's log, oldest first. Panics unless the registry is in token mode.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.token_server().requests()
    }

    /// The token server, to read its realm or change token lifetimes mid-test. Panics
    /// unless the registry is in token mode.
    pub fn token_server(&self) -> &TokenServer {
        self.token
            .as_ref()
            .expect("token_server() on a registry not in token mode")
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

/// A port on `host` that was free a moment ago.
fn free_port(host: &str) -> u16 {
    TcpListener::bind(format!("{host}:0"))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A minimal HTTP/1.1 GET (the tests' own client, independent of rbuild's).
pub fn http_get(addr: &str, path: &str) -> std::io::Result<HttpResponse> {
    http_request("GET", addr, path, &[], b"")
}

/// One HTTP/1.1 request with `Content-Length` framing (for a body, or any POST/PUT/PATCH)
/// and `Connection: close`; `headers` come after `Host`. The tests' own client, so the
/// harness can be checked without rbuild's.
pub fn http_request(
    method: &str,
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("accept"))
    {
        head.push_str("Accept: */*\r\n");
    }
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut raw = head.into_bytes();
    raw.extend_from_slice(body);
    http_raw(addr, &raw, Duration::from_secs(10))
}

/// Sends `request` exactly as given (for framings [`http_request`] does not make, such
/// as a chunked body) and reads the answer until the server closes or `timeout` passes
/// without data (then an error of kind `WouldBlock`/`TimedOut`).
pub fn http_raw(addr: &str, request: &[u8], timeout: Duration) -> std::io::Result<HttpResponse> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(timeout))?;
    s.write_all(request)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw).ok_or_else(|| {
        std::io::Error::other(format!("malformed HTTP response ({} bytes)", raw.len()))
    })
}

fn parse_response(mut raw: &[u8]) -> Option<HttpResponse> {
    // Interim answers (`100 Continue`) come before the real one.
    while raw.starts_with(b"HTTP/1.1 1") {
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        raw = &raw[end + 4..];
    }
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
