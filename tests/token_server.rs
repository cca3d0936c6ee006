//! A docker token server (https://distribution.github.io/distribution/spec/auth/token/)
//! for a test registry in token mode: it checks Basic credentials, grants the requested
//! scopes to the one known user (nothing to anonymous clients, as Docker Hub does for a
//! private repository) and signs ES256 JWTs that carry their certificate in `x5c`, the
//! certificate the registry trusts as its `rootcertbundle`.
//!
//! Key, certificate and signatures come from the `openssl` CLI, so the tests need no
//! crypto crates: one P-256 key per server (~20 ms; an RSA key took up to 0.7 s), one
//! `openssl dgst` per token.

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::http_wire::{Server, discard_body, read_request_head, respond};
use crate::util::TempDir;

/// The `service` the registry names in its challenge and expects as the token's `aud`.
pub const SERVICE: &str = "rbuild-test-registry";
/// The `iss` the registry expects.
pub const ISSUER: &str = "rbuild-test-token-issuer";

/// distribution 2.8 accepts a token until `exp` + 60 s (`token.Leeway`, for clock skew).
/// The server subtracts it from `exp`, so a token the client is told lasts N seconds is
/// refused by the registry after N seconds, which a test of "refresh on 401" needs.
const REGISTRY_LEEWAY_SECS: u64 = 60;

/// What the token server received in one request, for tests to assert on (e.g. "the
/// client asked once for pull,push" or "no credentials were sent to the realm").
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub method: String,
    /// `/token` for the realm; anything else was answered 404.
    pub path: String,
    /// The raw query string.
    pub query: String,
    pub service: Option<String>,
    /// Every `scope` parameter, decoded, in order.
    pub scopes: Vec<String>,
    /// The user name from `Authorization: Basic`, if that header was sent.
    pub basic_user: Option<String>,
    /// What the server answered: 200, 401 for wrong credentials, 404 for anything but
    /// `GET /token`.
    pub status: u16,
}

struct State {
    user: String,
    password: String,
    /// Seconds a new token lasts; changeable while the server runs.
    expires_in: AtomicU64,
    /// When not 0, the seconds the registry accepts a new token for, whatever
    /// `expires_in` says (see [`TokenServer::set_valid_for`]).
    valid_for: AtomicU64,
    key: PathBuf,
    /// The certificate's DER, base64 (standard alphabet, as `x5c` wants).
    cert_der_b64: String,
    next_jti: AtomicU64,
    log: Mutex<Vec<TokenRequest>>,
}

/// A running token server; its thread and key directory go away on drop.
pub struct TokenServer {
    server: Server,
    state: Arc<State>,
    /// Holds `key.pem` and `cert.pem`.
    dir: TempDir,
}

impl TokenServer {
    /// Makes a key and self-signed certificate and starts answering on a free port of
    /// 127.0.0.1. Tokens last `expires_in_secs`.
    pub fn start(user: &str, password: &str, expires_in_secs: u64) -> TokenServer {
        let dir = TempDir::new("token-server");
        let key = dir.0.join("key.pem");
        let cert = dir.0.join("cert.pem");
        let out = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-nodes", "-days", "2"])
            .args(["-pkeyopt", "ec_paramgen_curve:prime256v1"])
            .args(["-subj", "/CN=rbuild-test-token"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!("running openssl: {e} (install Debian's openssl: apt-get install openssl)")
            });
        assert!(
            out.status.success(),
            "openssl req failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // A PEM body is the DER in base64, split into lines.
        let pem = std::fs::read_to_string(&cert).unwrap();
        let cert_der_b64: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat();
        let state = Arc::new(State {
            user: user.to_string(),
            password: password.to_string(),
            expires_in: AtomicU64::new(expires_in_secs),
            valid_for: AtomicU64::new(0),
            key,
            cert_der_b64,
            next_jti: AtomicU64::new(1),
            log: Mutex::default(),
        });
        let handler_state = state.clone();
        let server = Server::spawn("127.0.0.1:0", move |s| handle(&handler_state, s))
            .expect("binding the token server on 127.0.0.1");
        TokenServer { server, state, dir }
    }

    /// The `realm` to configure in the registry: `http://127.0.0.1:PORT/token`.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.server.addr)
    }

    /// The certificate the registry must trust (`rootcertbundle`).
    pub fn cert_path(&self) -> PathBuf {
        self.dir.0.join("cert.pem")
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.state.log.lock().unwrap().clone()
    }

    /// Changes how long tokens issued from now on last.
    pub fn set_expires_in(&self, secs: u64) {
        self.state.expires_in.store(secs, Ordering::SeqCst);
    }

    /// Makes tokens issued from now on expire (for the registry) after `secs` while the
    /// answer still says `expires_in`: a token revoked early, or a server whose clock
    /// runs behind. The client can only learn it from the registry's 401, which is what
    /// a test of "refresh the token on 401" needs. 0 goes back to honest tokens.
    pub fn set_valid_for(&self, secs: u64) {
        self.state.valid_for.store(secs, Ordering::SeqCst);
    }
}

fn handle(state: &State, stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    let Ok(Some(head)) = read_request_head(&mut reader) else {
        return;
    };
    let _ = discard_body(&mut reader, &head);
    let basic = head.header("authorization").and_then(parse_basic);
    // Only the GET form of the spec. containerd-style clients try the OAuth2 POST form
    // first and fall back to GET on 404, as they must with many registries.
    if head.method != "GET" || head.path() != "/token" {
        log(state, &head, None, Vec::new(), basic, 404);
        let _ = respond(&mut out, 404, &[], b"not found\n");
        return;
    }
    let mut service = None;
    let mut scopes = Vec::new();
    for pair in head.query().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "service" => service = Some(percent_decode(v)),
            // One parameter may also hold several scopes, space-separated (OAuth2 style).
            "scope" => scopes.extend(
                percent_decode(v)
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            ),
            _ => {}
        }
    }
    let authenticated = match &basic {
        None => false,
        Some((u, p)) if *u == state.user && *p == state.password => true,
        Some(_) => {
            log(state, &head, service, scopes, basic, 401);
            let _ = respond(
                &mut out,
                401,
                &[("Content-Type", "application/json")],
                br#"{"details":"incorrect username or password"}"#,
            );
            return;
        }
    };
    // The known user gets what it asks for; anonymous clients get a token with no access.
    let access: Vec<serde_json::Value> = if authenticated {
        scopes.iter().filter_map(|s| grant(s)).collect()
    } else {
        Vec::new()
    };
    let sub = if authenticated {
        state.user.as_str()
    } else {
        ""
    };
    let expires_in = state.expires_in.load(Ordering::SeqCst);
    let valid_for = match state.valid_for.load(Ordering::SeqCst) {
        0 => expires_in,
        secs => secs,
    };
    let token = sign(
        state,
        service.as_deref().unwrap_or(SERVICE),
        sub,
        access,
        valid_for,
    );
    let body = serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": expires_in,
        "issued_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    log(state, &head, service, scopes, basic, 200);
    let _ = respond(
        &mut out,
        200,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
}

fn log(
    state: &State,
    head: &crate::http_wire::RequestHead,
    service: Option<String>,
    scopes: Vec<String>,
    basic: Option<(String, String)>,
    status: u16,
) {
    state.log.lock().unwrap().push(TokenRequest {
        method: head.method.clone(),
        path: head.path().to_string(),
        query: head.query().to_string(),
        service,
        scopes,
        basic_user: basic.map(|(u, _)| u),
        status,
    });
}

/// `repository:NAME:pull,push` → an `access` entry; the name may hold `/` and, with a
/// type class such as `repository(plugin)`, the type keeps it.
fn grant(scope: &str) -> Option<serde_json::Value> {
    let (typ, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let actions: Vec<&str> = actions.split(',').filter(|a| !a.is_empty()).collect();
    Some(serde_json::json!({"type": typ, "name": name, "actions": actions}))
}

/// A JWT the registry accepts for `valid_for` seconds from now.
fn sign(
    state: &State,
    aud: &str,
    sub: &str,
    access: Vec<serde_json::Value>,
    valid_for: u64,
) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [state.cert_der_b64]});
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": sub,
        "aud": aud,
        "exp": (now + valid_for).saturating_sub(REGISTRY_LEEWAY_SECS),
        "nbf": now,
        "iat": now,
        "jti": format!("rbuild-test-{}", state.next_jti.fetch_add(1, Ordering::SeqCst)),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = jws_signature(&openssl_sign(&state.key, signing_input.as_bytes()));
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// ECDSA P-256 with SHA-256 of `data`, DER-encoded as openssl writes it.
fn openssl_sign(key: &Path, data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running openssl dgst (apt-get install openssl)");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl dgst -sign failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A DER `SEQUENCE { INTEGER r, INTEGER s }` → JWS's ES256 form, `r || s` with each
/// left-padded to 32 bytes (RFC 7518 §3.4).
fn jws_signature(der: &[u8]) -> Vec<u8> {
    // P-256 signatures are < 128 bytes, so every length here is one short-form byte.
    assert_eq!(der.first(), Some(&0x30), "not a DER sequence: {der:02x?}");
    let mut rest = &der[2..];
    let mut out = Vec::with_capacity(64);
    for _ in 0..2 {
        assert_eq!(rest[0], 0x02, "not a DER integer: {der:02x?}");
        let len = rest[1] as usize;
        let int = &rest[2..2 + len];
        let int = &int[int.iter().take_while(|b| **b == 0).count()..];
        assert!(int.len() <= 32, "integer too long: {der:02x?}");
        out.extend(std::iter::repeat_n(0u8, 32 - int.len()));
        out.extend_from_slice(int);
        rest = &rest[2 + len..];
    }
    out
}

/// `Basic BASE64(user:password)` → (user, password).
fn parse_basic(value: &str) -> Option<(String, String)> {
    let (scheme, b64) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = String::from_utf8(STANDARD.decode(b64.trim()).ok()?).ok()?;
    let (u, p) = raw.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// `Authorization` value for HTTP Basic, for tests that talk to the realm themselves.
pub fn basic_auth(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

/// Query-string decoding (`%XX` and `+`).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
