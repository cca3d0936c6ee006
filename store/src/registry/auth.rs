//! Registry authentication: `WWW-Authenticate` challenges, bearer tokens and their reuse.
//!
//! A registry answers 401 with a challenge: `Basic realm=…` (send the user's
//! credentials) or `Bearer realm=…,service=…,scope=…` (get a token from `realm` for the
//! scopes, with the credentials if any, then send the token). Tokens are cached per
//! registry and scope set, so the layers of one pull share a token; an expired or revoked
//! token (a 401 while using it) is dropped and fetched again once.
//!
//! oci-client has the same challenge/token flow but no refresh on a 401 mid-operation
//! and uncapped token bodies, which is why this is ours (see DESIGN-NOTES.md).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        /// The scope the registry asked for, when it said (the request's own scope is
        /// added to it).
        scope: Option<String>,
    },
}

/// Parses the first challenge we can answer from a `WWW-Authenticate` value.
///
/// The header is a comma-separated list of `scheme param=value, …` where values are
/// tokens or quoted strings (RFC 7235); registries send one challenge, but a Basic and a
/// Bearer may come together, and Bearer is preferred then, as docker does.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let challenges = parse_challenges(header);
    let bearer = challenges
        .iter()
        .find(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"));
    if let Some((_, params)) = bearer {
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        return Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        });
    }
    challenges
        .iter()
        .any(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .then_some(Challenge::Basic)
}

type Params = Vec<(String, String)>;

fn parse_challenges(s: &str) -> Vec<(String, Params)> {
    let mut out: Vec<(String, Params)> = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t' || b[*i] == b',') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && !matches!(b[*i], b' ' | b'\t' | b',' | b'=' | b'"') {
            *i += 1;
        }
        s[start..*i].to_string()
    };
    loop {
        skip_ws(&mut i);
        if i >= b.len() {
            return out;
        }
        let word = token(&mut i);
        if word.is_empty() {
            // A stray quote or '=': skip it rather than loop forever.
            i += 1;
            continue;
        }
        if i < b.len() && b[i] == b'=' {
            i += 1;
            let value = if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut v = String::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    let ch = s[i..].chars().next().unwrap_or('\u{fffd}');
                    v.push(ch);
                    i += ch.len_utf8();
                }
                i += 1;
                v
            } else {
                token(&mut i)
            };
            match out.last_mut() {
                Some((_, params)) => params.push((word, value)),
                None => out.push((String::new(), vec![(word, value)])),
            }
        } else {
            out.push((word, Vec::new()));
        }
    }
}

/// A bearer token and when to stop using it.
#[derive(Debug, Clone)]
struct Token {
    value: String,
    expires: Instant,
}

/// What the client learnt about each registry's authentication, shared by its requests.
#[derive(Debug, Default)]
pub struct AuthCache {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The last challenge seen per registry, so the next scope's token is fetched
    /// before the request instead of after a 401.
    challenges: HashMap<String, Challenge>,
    /// Tokens per (registry, sorted scope list).
    tokens: HashMap<(String, String), Token>,
}

/// How long a token is trusted when the server does not say (the token spec's default).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

impl AuthCache {
    pub fn challenge(&self, registry: &str) -> Option<Challenge> {
        self.lock().challenges.get(registry).cloned()
    }

    pub fn set_challenge(&self, registry: &str, c: Challenge) {
        self.lock().challenges.insert(registry.to_string(), c);
    }

    /// A token for `scopes` that has not expired (with a few seconds' margin).
    pub fn token(&self, registry: &str, scopes: &[String]) -> Option<String> {
        let key = (registry.to_string(), scope_key(scopes));
        let inner = self.lock();
        let t = inner.tokens.get(&key)?;
        (t.expires > Instant::now() + Duration::from_secs(2)).then(|| t.value.clone())
    }

    pub fn set_token(&self, registry: &str, scopes: &[String], value: String, lifetime: Duration) {
        let key = (registry.to_string(), scope_key(scopes));
        let token = Token {
            value,
            expires: Instant::now() + lifetime,
        };
        self.lock().tokens.insert(key, token);
    }

    /// Forgets a token the registry refused.
    pub fn drop_token(&self, registry: &str, scopes: &[String]) {
        let key = (registry.to_string(), scope_key(scopes));
        self.lock().tokens.remove(&key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn scope_key(scopes: &[String]) -> String {
    let mut s: Vec<&str> = scopes.iter().map(String::as_str).collect();
    s.sort_unstable();
    s.join(" ")
}

/// The scope string for actions on a repository: `repository:user/app:pull,push`.
pub fn repository_scope(repository: &str, actions: &str) -> String {
    format!("repository:{repository}:{actions}")
}

/// A token server's answer; `token` and `access_token` are synonyms (the spec keeps both
/// for OAuth2 compatibility).
#[derive(Debug, serde::Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

impl TokenResponse {
    /// The token and how long it may be used.
    pub fn into_token(self) -> Option<(String, Duration)> {
        let value = self.token.or(self.access_token).filter(|t| !t.is_empty())?;
        // The spec says at least 60 seconds is assumed when a server says less or nothing.
        let lifetime = self
            .expires_in
            .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs)
            .max(Duration::from_secs(1));
        Some((value, lifetime))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenge() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:samalba/my-app:pull,push".into()),
            })
        );
    }

    #[test]
    fn parses_basic_and_prefers_bearer() {
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        let both = r#"Basic realm="x", Bearer realm="http://127.0.0.1:1/token",service=reg"#;
        assert!(matches!(
            parse_challenge(both),
            Some(Challenge::Bearer { service: Some(s), .. }) if s == "reg"
        ));
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge(""), None);
        assert_eq!(parse_challenge(r#"Bearer service="x""#), None, "no realm");
        // Escapes and garbage do not panic.
        assert!(parse_challenge(r#"Bearer realm="a\"b",="#).is_some());
        assert_eq!(parse_challenge("=\"\"\""), None);
    }

    #[test]
    fn tokens_are_keyed_by_scope_set_and_expire() {
        let c = AuthCache::default();
        let a = vec![
            "repository:a:pull".to_string(),
            "repository:b:pull".to_string(),
        ];
        let b = vec![
            "repository:b:pull".to_string(),
            "repository:a:pull".to_string(),
        ];
        c.set_token("r", &a, "t1".into(), Duration::from_secs(60));
        assert_eq!(
            c.token("r", &b).as_deref(),
            Some("t1"),
            "order does not matter"
        );
        assert_eq!(c.token("other", &a), None);
        c.drop_token("r", &a);
        assert_eq!(c.token("r", &a), None);
        c.set_token("r", &a, "t2".into(), Duration::from_secs(1));
        assert_eq!(c.token("r", &a), None, "about to expire: not used");
    }

    #[test]
    fn token_response_forms() {
        let r: TokenResponse = serde_json::from_str(r#"{"access_token":"x"}"#).unwrap();
        assert_eq!(r.into_token(), Some(("x".into(), DEFAULT_TOKEN_LIFETIME)));
        let r: TokenResponse = serde_json::from_str(r#"{"token":"","expires_in":5}"#).unwrap();
        assert_eq!(r.into_token(), None);
    }
}
