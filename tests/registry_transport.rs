//! The registry transport end to end (issue 5): retries, `Retry-After`, timeouts,
//! redirects that must not carry credentials, bearer token reuse and refresh, and how a
//! registry may be named, all through the commands that talk to registries (`login`,
//! `search`), against real registries, with [`FaultProxy`] in between where a fault is
//! needed. Whatever fails, the output holds no password, token or query string.

use std::time::{Duration, Instant};

use crate::fault_proxy::{EvilServer, Fault, FaultProxy, Seen};
use crate::login::Env;
use crate::registry_seed::push_blob;
use crate::registry_util::{HTPASSWD_REALM, Registry, RegistryAuth, http_request};
use crate::token_server::basic_auth;
use crate::util::Run;

/// Pushes a layerless image as `repo:tag` to `addr`, sending `auth` as the
/// `Authorization` header when given: enough for a catalog and a tag list.
pub fn push_tiny(addr: &str, repo: &str, tag: &str, auth: Option<&str>) {
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"config":{{"Labels":{{"repo":"{repo}"}}}}}}"#
    );
    let digest = push_blob(addr, repo, config.as_bytes(), auth);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{digest}","size":{}}},"layers":[]}}"#,
        config.len()
    );
    let mut headers = vec![("Content-Type", "application/vnd.oci.image.manifest.v1+json")];
    if let Some(a) = auth {
        headers.push(("Authorization", a));
    }
    let res = http_request(
        "PUT",
        addr,
        &format!("/v2/{repo}/manifests/{tag}"),
        &headers,
        manifest.as_bytes(),
    )
    .unwrap_or_else(|e| panic!("PUT manifest {repo}:{tag} to {addr}: {e}"));
    assert_eq!(res.status, 201, "PUT manifest {repo}:{tag}: {res:?}");
}

/// A token from the registry's token server for `scopes`, as `user`: the tests' own
/// way in, to put content in a token registry.
pub fn bearer(reg: &Registry, user: &str, password: &str, scopes: &[String]) -> String {
    let realm = reg.token_server().realm();
    let rest = realm.strip_prefix("http://").unwrap();
    let (addr, path) = rest.split_at(rest.find('/').unwrap());
    let mut query = format!("{path}?service={}", crate::token_server::SERVICE);
    for s in scopes {
        query.push_str(&format!(
            "&scope={}",
            s.replace(':', "%3A").replace(',', "%2C")
        ));
    }
    let auth = basic_auth(user, password);
    let res = http_request("GET", addr, &query, &[("Authorization", &auth)], b"").unwrap();
    assert_eq!(res.status, 200, "token server: {res:?}");
    let v: serde_json::Value = serde_json::from_slice(&res.body).unwrap();
    format!("Bearer {}", v["token"].as_str().unwrap())
}

/// Asserts that nothing secret reached the user: no password (plain or in a Basic
/// header), no token, no query string of a registry URL (upload state, token scopes and
/// account live there).
#[track_caller]
pub fn assert_clean(run: &Run, secrets: &[&str]) {
    let out = format!("{}\n{}", run.stdout, run.stderr);
    let mut forbidden: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
    // A JWT starts with the base64 of `{"`; Authorization values name their scheme.
    forbidden.extend(
        [
            "eyJ", "Bearer ", "Basic ", "_state=", "scope=", "account=", "service=", "?n=", "last=",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    for f in &forbidden {
        assert!(
            !out.contains(f.as_str()),
            "the output of rbuild {} holds {f:?}:\n{out}",
            run.args.join(" ")
        );
    }
}

/// (status, had Authorization) of each request whose path contains `path`.
fn statuses(seen: &[Seen], path: &str) -> Vec<(Option<u16>, bool)> {
    seen.iter()
        .filter(|s| s.path.contains(path))
        .map(|s| (s.status, s.authorization))
        .collect()
}

#[test]
fn login_retries_500_and_503_then_succeeds() {
    let secret = "pw-retry-Hh21";
    let reg = Registry::start("retry-5xx", RegistryAuth::htpasswd("alice", secret));
    let proxy = FaultProxy::start(&reg.addr);
    proxy.fail("GET", "/v2/", 1, Fault::status(500));
    proxy.fail("GET", "/v2/", 1, Fault::status(503));
    let env = Env::new("retry-5xx");
    let run = env
        .login(proxy.addr(), "alice", secret)
        .success()
        .stdout_contains("Login Succeeded");
    assert_clean(&run, &[secret]);
    // Two failures retried, the challenge answered, then the registry let alice in.
    assert_eq!(
        statuses(&proxy.seen(), "/v2/"),
        [
            (Some(500), false),
            (Some(503), false),
            (Some(401), false),
            (Some(200), true)
        ],
        "{:#?}",
        proxy.seen()
    );
    assert!(env.json()["auths"].get(proxy.addr()).is_some());
}

#[test]
fn search_waits_for_retry_after_on_429() {
    let reg = Registry::start("retry-429", RegistryAuth::Anonymous);
    push_tiny(&reg.addr, "team/app", "1", None);
    let proxy = FaultProxy::start(&reg.addr);
    proxy.fail(
        "GET",
        "/v2/_catalog",
        1,
        Fault::Status(429, vec![("Retry-After".into(), "1".into())]),
    );
    let env = Env::new("retry-429");
    let start = Instant::now();
    let run = env
        .run(
            &[
                "search",
                "--format",
                "{{.Name}}",
                &format!("{}/", proxy.addr()),
            ],
            None,
        )
        .success();
    let took = start.elapsed();
    assert_eq!(run.stdout, format!("{}/team/app\n", proxy.addr()));
    assert_eq!(
        statuses(&proxy.seen(), "/v2/_catalog"),
        [(Some(429), false), (Some(200), false)]
    );
    // The first retry's own backoff is 250 ms: a second means Retry-After was obeyed.
    assert!(took >= Duration::from_secs(1), "retried after {took:?}");
}

/// A registry that takes the request and never answers: each try ends after the idle
/// timeout, and the error names the host and says it did not answer.
#[test]
fn a_registry_that_stops_answering_times_out_naming_the_host() {
    let secret = "pw-stall-Vv38";
    let reg = Registry::start("stall", RegistryAuth::htpasswd("alice", secret));
    let proxy = FaultProxy::start(&reg.addr);
    proxy.fail("GET", "/v2/", 100, Fault::Stall);
    let env = Env::new("stall");
    let timeout = [("RBUILD_REGISTRY_TIMEOUT", "1")];
    for args in [
        vec!["login", "-u", "alice", "--password-stdin", proxy.addr()],
        vec!["search", &format!("{}/app", proxy.addr())],
    ] {
        let before = proxy.seen().len();
        let start = Instant::now();
        let run = env
            .run_env(&args, Some(secret), &timeout)
            .failure()
            .stderr_contains(&format!("{} did not answer", proxy.addr()));
        let took = start.elapsed();
        assert!(took < Duration::from_secs(20), "gave up after {took:?}");
        assert_clean(&run, &[secret]);
        let tries = proxy.seen().len() - before;
        assert!(
            (2..=5).contains(&tries),
            "{tries} tries: {:#?}",
            proxy.seen()
        );
        assert!(!env.config().exists(), "a failed login wrote config.json");
    }
}

/// The registry answers the login's challenge, then redirects the request that carries
/// the credentials to another host that asks for them: they must not go there.
#[test]
fn login_credentials_do_not_follow_a_redirect_to_another_host() {
    let secret = "pw-redirect-Ee52";
    let reg = Registry::start("redirect-login", RegistryAuth::htpasswd("alice", secret));
    let evil = EvilServer::start();
    let proxy = FaultProxy::start(&reg.addr);
    // The registry's own challenge, as the proxy's first answer, so the next request is
    // the one with credentials; that one is sent away.
    let challenge = format!("Basic realm=\"{HTPASSWD_REALM}\"");
    proxy.fail(
        "GET",
        "/v2/",
        1,
        Fault::Status(401, vec![("WWW-Authenticate".into(), challenge)]),
    );
    proxy.fail(
        "GET",
        "/v2/",
        1,
        Fault::Redirect(format!("http://{}/v2/", evil.addr())),
    );
    let env = Env::new("redirect-login");
    let run = env
        .login(proxy.addr(), "alice", secret)
        .failure()
        .stderr_contains("they are not sent to another host")
        .stderr_contains(&format!("{} redirected to {}", proxy.addr(), evil.addr()));
    assert_clean(&run, &[secret]);
    assert_eq!(
        statuses(&proxy.seen(), "/v2/"),
        [(Some(401), false), (Some(307), true)],
        "the redirected request is the one with credentials"
    );
    let at_evil = evil.seen();
    assert!(!at_evil.is_empty(), "the redirect was not followed");
    assert!(
        at_evil.iter().all(|s| !s.authorization),
        "credentials went to {}: {at_evil:#?}",
        evil.addr()
    );
    assert!(!env.config().exists(), "a failed login wrote config.json");
}

/// Credentials stored by a login go with search's requests, and not along a redirect
/// to another host.
#[test]
fn search_credentials_do_not_follow_a_redirect_to_another_host() {
    let secret = "pw-redirect-Gg17";
    let reg = Registry::start("redirect-search", RegistryAuth::htpasswd("alice", secret));
    push_tiny(
        &reg.addr,
        "team/app",
        "1",
        Some(&basic_auth("alice", secret)),
    );
    let evil = EvilServer::start();
    let proxy = FaultProxy::start(&reg.addr);
    let env = Env::new("redirect-search");
    env.login(proxy.addr(), "alice", secret).success();
    proxy.fail(
        "GET",
        "/tags/list",
        1,
        Fault::Redirect(format!("http://{}/v2/team/app/tags/list", evil.addr())),
    );
    let run = env
        .run(
            &["search", "--list-tags", &format!("{}/team", proxy.addr())],
            None,
        )
        .failure()
        .stderr_contains("they are not sent to another host")
        .stderr_contains(evil.addr());
    assert_clean(&run, &[secret]);
    assert_eq!(
        statuses(&proxy.seen(), "/tags/list"),
        [(Some(307), true)],
        "the tag list was asked for with credentials"
    );
    let at_evil = evil.seen();
    assert_eq!(at_evil.len(), 1, "{at_evil:#?}");
    assert!(
        !at_evil[0].authorization,
        "credentials leaked: {at_evil:#?}"
    );
}

/// Scopes of the token requests since `from`, each as its sorted list joined by spaces.
fn token_scopes(reg: &Registry, from: usize) -> Vec<String> {
    reg.token_requests()[from..]
        .iter()
        .map(|r| {
            assert_eq!(r.basic_user.as_deref(), Some("alice"), "{r:?}");
            assert_eq!(r.status, 200, "{r:?}");
            let mut s = r.scopes.clone();
            s.sort();
            s.join(" ")
        })
        .collect()
}

fn count(list: &[String], item: &str) -> usize {
    list.iter().filter(|s| *s == item).count()
}

/// A token registry holding `repos`, each with tag `1`, and a login to it through a
/// proxy (the proxy's address is the registry for the client).
fn token_registry_with(tag: &str, secret: &str, repos: &[String]) -> (Registry, FaultProxy, Env) {
    let reg = Registry::start(tag, RegistryAuth::token("alice", secret));
    let scopes: Vec<String> = repos
        .iter()
        .map(|r| format!("repository:{r}:pull,push"))
        .collect();
    let auth = bearer(&reg, "alice", secret, &scopes);
    for r in repos {
        push_tiny(&reg.addr, r, "1", Some(&auth));
    }
    let proxy = FaultProxy::start(&reg.addr);
    let env = Env::new(tag);
    env.login(proxy.addr(), "alice", secret).success();
    (reg, proxy, env)
}

/// One catalog token serves every page; each repository's tag list needs its own scope
/// and gets one token: one token request per scope set, not per request.
#[test]
fn search_asks_one_token_per_scope_set() {
    let secret = "pw-reuse-Pq66";
    let repos: Vec<String> = (0..4).map(|i| format!("team/r{i}")).collect();
    let (reg, proxy, env) = token_registry_with("token-reuse", secret, &repos);
    let before = reg.token_requests().len();
    let a = proxy.addr();
    let run = env
        .run(
            &[
                "search",
                "--list-tags",
                "--page-size",
                "1",
                "--format",
                "{{.Name}} {{.Tags}}",
                &format!("{a}/"),
            ],
            None,
        )
        .success();
    let want: String = repos.iter().map(|r| format!("{a}/{r} 1\n")).collect();
    assert_eq!(run.stdout, want, "{}", run.stderr);
    let scopes = token_scopes(&reg, before);
    assert_eq!(count(&scopes, "registry:catalog:*"), 1, "{scopes:#?}");
    for r in &repos {
        assert_eq!(
            count(&scopes, &format!("repository:{r}:pull")),
            1,
            "{scopes:#?}"
        );
    }
    assert_eq!(scopes.len(), 1 + repos.len(), "{scopes:#?}");
    // Four pages (and the first, challenged try) on the one catalog token.
    let catalog = statuses(&proxy.seen(), "/v2/_catalog");
    assert_eq!(catalog[0], (Some(401), false), "{catalog:?}");
    assert!(catalog.len() >= 5, "{catalog:?}");
    assert!(
        catalog[1..].iter().all(|c| *c == (Some(200), true)),
        "{catalog:?}"
    );
}

/// A token the registry stops accepting while the client still trusts it (the server
/// said 300 s; the registry refuses it after 4 s): the registry's 401 mid-way through a
/// catalog makes the client fetch a new token once and carry on. (`exp` is in whole
/// seconds, so a token lives 3–4 s: time enough for every other request to use its
/// token at once, even on a busy machine.)
#[test]
fn a_refused_token_is_fetched_again_once() {
    let secret = "pw-refresh-Nn85";
    let repos: Vec<String> = (0..3).map(|i| format!("team/r{i}")).collect();
    let (reg, proxy, env) = token_registry_with("token-refresh", secret, &repos);
    reg.token_server().set_valid_for(4);
    // The first two catalog requests (the challenged one and page 1) pass; page 2 is
    // held until the token that page 1 used has expired.
    proxy.fail("GET", "/v2/_catalog", 2, Fault::Delay(Duration::ZERO));
    proxy.fail(
        "GET",
        "/v2/_catalog",
        1,
        Fault::Delay(Duration::from_millis(5500)),
    );
    let before = reg.token_requests().len();
    let a = proxy.addr();
    let run = env
        .run(
            &[
                "search",
                "--list-tags",
                "--page-size",
                "2",
                "--format",
                "{{.Name}} {{.Tags}}",
                &format!("{a}/"),
            ],
            None,
        )
        .success();
    let want: String = repos.iter().map(|r| format!("{a}/{r} 1\n")).collect();
    assert_eq!(run.stdout, want, "{}", run.stderr);
    let catalog = statuses(&proxy.seen(), "/v2/_catalog");
    assert_eq!(
        catalog,
        [
            (Some(401), false),
            (Some(200), true),
            (Some(401), true),
            (Some(200), true)
        ],
        "page 2's token was refused, then a new one worked"
    );
    let scopes = token_scopes(&reg, before);
    assert_eq!(count(&scopes, "registry:catalog:*"), 2, "{scopes:#?}");
    for r in &repos {
        assert_eq!(
            count(&scopes, &format!("repository:{r}:pull")),
            1,
            "{scopes:#?}"
        );
    }
    // The registry's 401 went no further than the transport.
    assert!(!run.stderr.contains("unauthorized"), "{}", run.stderr);
}

/// Loopback registries speak plain HTTP however they are named: `localhost:PORT`, and
/// `[::1]:PORT` for a registry listening on IPv6 loopback.
#[test]
fn loopback_registries_by_name_and_ipv6_speak_plain_http() {
    let secret = "pw-loop-Cc09";
    let reg = Registry::start("loop-name", RegistryAuth::htpasswd("alice", secret));
    let auth = basic_auth("alice", secret);
    push_tiny(&reg.addr, "team/app", "1", Some(&auth));
    let port = reg.addr.rsplit(':').next().unwrap();
    let mut names = vec![format!("localhost:{port}")];
    let _v6 = match std::net::TcpListener::bind("[::1]:0") {
        Ok(_) => {
            let v6 =
                Registry::start_at("loop-v6", RegistryAuth::htpasswd("alice", secret), "[::1]");
            push_tiny(&v6.addr, "team/app", "1", Some(&auth));
            names.push(v6.addr.clone());
            Some(v6)
        }
        Err(e) => {
            eprintln!("SKIPPED the [::1] case: this machine cannot bind [::1] ({e})");
            None
        }
    };
    for name in &names {
        let env = Env::new("loop");
        let run = env
            .login(name, "alice", secret)
            .success()
            .stdout_contains("Login Succeeded");
        assert_clean(&run, &[secret]);
        assert!(
            env.json()["auths"].get(name.as_str()).is_some(),
            "{}",
            env.json()
        );
        let run = env
            .run(
                &[
                    "search",
                    "--list-tags",
                    "--format",
                    "{{.Name}} {{.Tags}}",
                    &format!("{name}/team"),
                ],
                None,
            )
            .success();
        assert_eq!(run.stdout, format!("{name}/team/app 1\n"), "{}", run.stderr);
    }
}

/// A connection that breaks in the middle of a catalog page is retried, as one that
/// breaks before the headers is.
#[test]
fn search_retries_a_catalog_page_cut_short() {
    let reg = Registry::start("retry-drop", RegistryAuth::Anonymous);
    push_tiny(&reg.addr, "team/app", "1", None);
    let proxy = FaultProxy::start(&reg.addr);
    proxy.fail("GET", "/v2/_catalog", 1, Fault::DropAfter(5));
    let env = Env::new("retry-drop");
    let run = env
        .run(
            &[
                "search",
                "--format",
                "{{.Name}}",
                &format!("{}/", proxy.addr()),
            ],
            None,
        )
        .success();
    assert_eq!(run.stdout, format!("{}/team/app\n", proxy.addr()));
    let catalog: Vec<bool> = proxy
        .seen()
        .iter()
        .filter(|s| s.path == "/v2/_catalog")
        .map(|s| s.fault.is_some())
        .collect();
    assert_eq!(catalog, [true, false], "{:#?}", proxy.seen());
}
