//! Registry client (issue 5), against a real `docker-registry` on 127.0.0.1.

use std::time::{Duration, Instant};

use crate::registry_util::{HttpResponse, Registry, RegistryAuth, http_request};
use crate::token_server::{self, basic_auth};

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

/// `sha256:HEX` of `data`, as the registry names blobs.
fn digest(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let hex: String = Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// The path and query of an upload `Location`, which distribution 2.8 makes absolute.
fn location_path(location: &str) -> &str {
    match location.strip_prefix("http://") {
        Some(rest) => &rest[rest.find('/').unwrap_or(rest.len())..],
        None => location,
    }
}

/// Pushes `data` as a blob of `repo` with a monolithic upload (POST, then PUT
/// `?digest=`), with `auth` as the `Authorization` header when given; returns its digest.
fn push_blob(addr: &str, repo: &str, data: &[u8], auth: Option<&str>) -> String {
    let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
    let start = http_request(
        "POST",
        addr,
        &format!("/v2/{repo}/blobs/uploads/"),
        &headers,
        b"",
    )
    .unwrap();
    assert_eq!(start.status, 202, "POST upload: {start:?}");
    let location = start
        .header("Location")
        .expect("Location on 202")
        .to_string();
    assert!(
        location.contains(addr),
        "upload Location {location} does not point at {addr} (the address the client used)"
    );
    let d = digest(data);
    let path = location_path(&location);
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut put_headers = headers.clone();
    put_headers.push(("Content-Type", "application/octet-stream"));
    let put = http_request(
        "PUT",
        addr,
        &format!("{path}{sep}digest={d}"),
        &put_headers,
        data,
    )
    .unwrap();
    assert_eq!(put.status, 201, "PUT upload: {put:?}");
    assert_eq!(
        put.header("Docker-Content-Digest"),
        Some(d.as_str()),
        "{put:?}"
    );
    d
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
    let res = http_request("GET", &reg.addr, "/v2/", &[("Authorization", &good)], b"").unwrap();
    assert_eq!(res.status, 200, "{res:?}\nlog:\n{}", reg.log());
    let bad = basic_auth("alice", "wrong");
    let res = http_request("GET", &reg.addr, "/v2/", &[("Authorization", &bad)], b"").unwrap();
    assert_eq!(res.status, 401, "{res:?}");
    // And the credentials are good for a push.
    let d = push_blob(&reg.addr, "hp/x", b"htpasswd blob", Some(&good));
    let res = http_request(
        "GET",
        &reg.addr,
        &format!("/v2/hp/x/blobs/{d}"),
        &[("Authorization", &good)],
        b"",
    )
    .unwrap();
    assert_eq!(
        (res.status, res.body.as_slice()),
        (200, &b"htpasswd blob"[..]),
        "{res:?}"
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
            s.replace(':', "%3A").replace(',', "%2C")
        ));
    }
    let auth = creds.map(|(u, p)| basic_auth(u, p));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| ("Authorization", a))
        .into_iter()
        .collect();
    http_request("GET", addr, &query, &headers, b"").unwrap()
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
    let bearer = format!("Bearer {token}");
    let res = http_request("GET", &reg.addr, "/v2/", &[("Authorization", &bearer)], b"").unwrap();
    assert_eq!(res.status, 200, "{res:?}\nlog:\n{}", reg.log());
    let d = push_blob(&reg.addr, "tk/x", b"token blob", Some(&bearer));
    let res = http_request(
        "GET",
        &reg.addr,
        &format!("/v2/tk/x/blobs/{d}"),
        &[("Authorization", &bearer)],
        b"",
    )
    .unwrap();
    assert_eq!(
        (res.status, res.body.as_slice()),
        (200, &b"token blob"[..]),
        "{res:?}"
    );
    // The token is for tk/x only: another repository gets a challenge naming the scope.
    let res = http_request(
        "GET",
        &reg.addr,
        &format!("/v2/tk/other/blobs/{d}"),
        &[("Authorization", &bearer)],
        b"",
    )
    .unwrap();
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
    let res = http_request(
        "GET",
        &reg.addr,
        &format!("/v2/tk/x/blobs/{d}"),
        &[("Authorization", &anon)],
        b"",
    )
    .unwrap();
    assert_eq!(res.status, 401, "anonymous token must not pull: {res:?}");
    // No scope at all (what `docker login` asks for): still a token for `/v2/`.
    let bare = format!(
        "Bearer {}",
        token_of(&fetch_token(&reg, &[], Some(("bob", "hunter2"))))
    );
    let res = http_request("GET", &reg.addr, "/v2/", &[("Authorization", &bare)], b"").unwrap();
    assert_eq!(res.status, 200, "{res:?}");

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
        ]
    );
    assert!(
        log.iter()
            .all(|r| r.service.as_deref() == Some(token_server::SERVICE)),
        "{log:?}"
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
    let get =
        || http_request("GET", &reg.addr, "/v2/", &[("Authorization", &bearer)], b"").unwrap();
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
    let res = http_request("GET", &reg.addr, "/v2/", &[("Authorization", &bearer)], b"").unwrap();
    assert_eq!(res.status, 200, "{res:?}");
}
