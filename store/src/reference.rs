//! Docker image references (`busybox`, `user/app:1.0`, `localhost:5000/x@sha256:…`),
//! normalised as the docker CLI does (distribution/reference's `ParseNormalizedNamed`).
//!
//! The grammar is distribution/reference's, as `oci_spec::distribution::Reference`
//! encodes it in one regex; [`grammar`] checks it by hand because compiling that regex
//! (its tag part is a Unicode `\w` repeated 128 times) costs about 35 ms per process,
//! a third of a fully cached build. Also hand-written is what oci-spec lacks or does
//! differently from docker:
//! - the domain split: docker treats an uppercase first component as a domain and takes
//!   `docker.io/library/` off familiar names; oci-spec always splits its own way;
//! - bracketed IPv6 registries (`[::1]:5000/x`), which oci-spec's grammar rejects;
//! - docker's error messages for uppercase names and 64-hex names (an image ID is not a
//!   repository);
//! - a reference without a tag stays without one: oci-spec adds `latest` while parsing,
//!   docker only when asked ([`ImageRef::with_default_tag`]);
//! - digests are our validated sha256 [`Digest`]; other algorithms are refused.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const DEFAULT_TAG: &str = "latest";

/// A parsed, normalised image reference: registry, repository path, optional tag and
/// optional digest. Both tag and digest may be present (`app:1.0@sha256:…`), as docker
/// allows.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a string is not an image reference. Messages are docker's, so that scripts and
/// users see what they would see from `docker pull`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format")]
    Format,
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
    #[error("repository name must not be more than 255 characters")]
    NameTooLong,
    #[error("invalid checksum digest format")]
    DigestFormat,
    #[error("invalid checksum digest length")]
    DigestLength,
    /// Docker also accepts sha384/sha512 digests; rbuild's store is sha256 only.
    #[error("unsupported digest algorithm")]
    DigestAlgorithm,
}

impl ImageRef {
    /// Parses a reference as the docker CLI does: `busybox` becomes
    /// `docker.io/library/busybox` (no tag added), `index.docker.io/x/y` becomes
    /// `docker.io/x/y`.
    pub fn parse(s: &str) -> Result<ImageRef, ReferenceError> {
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(ReferenceError::HexName(s.to_string()));
        }
        let (domain, remainder) = split_docker_domain(s);
        // docker checks case on everything before the first ':' of the remainder (the
        // domain, the only other place a ':' can be, is already split off).
        let before_colon = &remainder[..remainder.find(':').unwrap_or(remainder.len())];
        if before_colon.to_lowercase() != before_colon {
            return Err(ReferenceError::Uppercase(before_colon.to_string()));
        }
        let remote = &remainder[..remainder.find([':', '@']).unwrap_or(remainder.len())];
        let checked_domain = checked_domain(&domain)?;
        let (tag, digest) = grammar::check(&checked_domain, &remainder)?;
        let tag = tag.map(str::to_string);
        let digest = digest
            .map(|d| {
                d.parse::<Digest>().map_err(|e| match e {
                    DigestError::Algorithm(_) => ReferenceError::DigestAlgorithm,
                    DigestError::Format(_) => ReferenceError::DigestFormat,
                })
            })
            .transpose()?;
        Ok(ImageRef {
            registry: domain,
            repository: remote.to_string(),
            tag,
            digest,
        })
    }

    /// Adds the tag `latest` when the reference has neither tag nor digest, as
    /// `docker pull busybox` pulls `busybox:latest`.
    pub fn with_default_tag(mut self) -> ImageRef {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// The registry host (and port): `docker.io`, `localhost:5000`, `[::1]:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path within the registry: `library/busybox`, `user/app`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, only when one was written or added by [`ImageRef::with_default_tag`].
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest pinned with `@sha256:…`, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// Registry and repository: `docker.io/library/busybox`. What tags are keyed by.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The name as docker shows it (`FamiliarName`): Docker Hub's domain and, for
    /// single-component official images, `library/` left out.
    pub fn familiar_name(&self) -> String {
        if self.registry != DEFAULT_DOMAIN {
            return self.full_name();
        }
        match self.repository.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => self.repository.clone(),
        }
    }

    /// The whole reference as docker prints it (`FamiliarString`): `busybox:latest`,
    /// `user/app@sha256:…`. What `docker images` and `Untagged:` show.
    pub fn familiar(&self) -> String {
        self.with_suffix(self.familiar_name())
    }

    fn with_suffix(&self, mut name: String) -> String {
        if let Some(tag) = &self.tag {
            name.push(':');
            name.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            name.push('@');
            name.push_str(&digest.to_string());
        }
        name
    }
}

/// docker's `splitDockerDomain`: the first component is a domain when it is `localhost`,
/// contains `.` or `:`, or has an uppercase letter (repository paths never do).
fn split_docker_domain(name: &str) -> (String, String) {
    let Some((maybe_domain, rest)) = name.split_once('/') else {
        return (
            DEFAULT_DOMAIN.into(),
            format!("{OFFICIAL_REPO_PREFIX}{name}"),
        );
    };
    let (domain, remainder) = if maybe_domain == LEGACY_DEFAULT_DOMAIN {
        (DEFAULT_DOMAIN, rest)
    } else if maybe_domain == "localhost"
        || maybe_domain.contains(['.', ':'])
        || maybe_domain.to_lowercase() != maybe_domain
    {
        (maybe_domain, rest)
    } else {
        (DEFAULT_DOMAIN, name)
    };
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        return (domain.into(), format!("{OFFICIAL_REPO_PREFIX}{remainder}"));
    }
    (domain.into(), remainder.into())
}

/// The domain to hand to oci-spec's grammar. A bracketed IPv6 host
/// (`\[[a-fA-F0-9:]+\]`, distribution/reference's `ipv6address`) is checked here and
/// stood in for by `localhost`, keeping its port for the grammar to check.
fn checked_domain(domain: &str) -> Result<String, ReferenceError> {
    let Some(rest) = domain.strip_prefix('[') else {
        return Ok(domain.to_string());
    };
    let (host, port) = rest.split_once(']').ok_or(ReferenceError::Format)?;
    if host.is_empty()
        || !host.bytes().all(|b| b.is_ascii_hexdigit() || b == b':')
        || !(port.is_empty() || port.starts_with(':'))
    {
        return Err(ReferenceError::Format);
    }
    Ok(format!("localhost{port}"))
}

mod grammar {
    //! distribution/reference's grammar, the one `oci_spec`'s `REFERENCE_REGEXP` encodes:
    //!
    //! ```text
    //! reference := domain "/" path [ ":" tag ] [ "@" digest ]
    //! domain    := component ("." component)* [ ":" [0-9]+ ]
    //! component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
    //! path      := part ("/" part)*,   part := [a-z0-9]+ (([._]|__|-*) [a-z0-9]+)*
    //! tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    //! digest    := alg ":" [0-9a-fA-F]{32,},   alg := word ([-_+.] word)*, word := [A-Za-z][A-Za-z0-9]*
    //! ```
    //!
    //! with oci-spec's checks after a match: a path of at most 255 characters, and
    //! sha256/sha384/sha512 digests of their exact length.

    use super::ReferenceError;

    const NAME_MAX: usize = 255;

    /// Checks `domain/remainder` and returns its tag and digest as written.
    pub(super) fn check<'a>(
        domain: &str,
        remainder: &'a str,
    ) -> Result<(Option<&'a str>, Option<&'a str>), ReferenceError> {
        let (rest, digest) = match remainder.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (remainder, None),
        };
        let (path, tag) = match rest.split_once(':') {
            Some((p, t)) => (p, Some(t)),
            None => (rest, None),
        };
        let ok = domain_ok(domain)
            && path.split('/').all(part_ok)
            && tag.is_none_or(tag_ok)
            && digest.is_none_or(digest_ok);
        if !ok {
            return Err(ReferenceError::Format);
        }
        if path.len() > NAME_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        if let Some((alg, hex)) = digest.and_then(|d| d.split_once(':')) {
            let want = match alg {
                "sha256" => 64,
                "sha384" => 96,
                "sha512" => 128,
                _ => return Err(ReferenceError::DigestAlgorithm),
            };
            if hex.len() != want {
                return Err(ReferenceError::DigestLength);
            }
        }
        Ok((tag, digest))
    }

    fn domain_ok(domain: &str) -> bool {
        let (host, port) = match domain.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (domain, None),
        };
        let component = |c: &str| {
            let b = c.as_bytes();
            !b.is_empty()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        };
        host.split('.').all(component)
            && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    }

    /// `[a-z0-9]+` runs joined by `.`, `_`, `__` or any number of `-`.
    fn part_ok(part: &str) -> bool {
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let b = part.as_bytes();
        if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
            return false;
        }
        let mut i = 0;
        while i < b.len() {
            if alnum(b[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && !alnum(b[i]) {
                i += 1;
            }
            let sep = &part[start..i];
            if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-')) {
                return false;
            }
        }
        true
    }

    fn tag_ok(tag: &str) -> bool {
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        let b = tag.as_bytes();
        (1..=128).contains(&b.len())
            && word(b[0])
            && b.iter().all(|x| word(*x) || *x == b'.' || *x == b'-')
    }

    fn digest_ok(digest: &str) -> bool {
        let Some((alg, hex)) = digest.split_once(':') else {
            return false;
        };
        let mut words = alg.split(['-', '_', '+', '.']);
        let word_ok = |w: &str| {
            let b = w.as_bytes();
            !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
        };
        words.all(word_ok) && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
    }
}

/// The full canonical form: `docker.io/library/busybox:latest`.
impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.with_suffix(self.full_name()))
    }
}

impl FromStr for ImageRef {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<ImageRef, ReferenceError> {
        ImageRef::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa";

    /// input, full form (Display), familiar form.
    const GOOD: &[(&str, &str, &str)] = &[
        ("busybox", "docker.io/library/busybox", "busybox"),
        (
            "busybox:latest",
            "docker.io/library/busybox:latest",
            "busybox:latest",
        ),
        ("docker.io/busybox", "docker.io/library/busybox", "busybox"),
        (
            "docker.io/library/busybox:1.36",
            "docker.io/library/busybox:1.36",
            "busybox:1.36",
        ),
        ("index.docker.io/user/app", "docker.io/user/app", "user/app"),
        (
            "index.docker.io/busybox",
            "docker.io/library/busybox",
            "busybox",
        ),
        (
            "user/app:v1.2-rc_3",
            "docker.io/user/app:v1.2-rc_3",
            "user/app:v1.2-rc_3",
        ),
        ("library/a/b", "docker.io/library/a/b", "library/a/b"),
        ("a/b/c/d", "docker.io/a/b/c/d", "a/b/c/d"),
        ("localhost/x", "localhost/x", "localhost/x"),
        (
            "localhost:5000/app:dev",
            "localhost:5000/app:dev",
            "localhost:5000/app:dev",
        ),
        ("localhost", "docker.io/library/localhost", "localhost"),
        (
            "localhost:5000",
            "docker.io/library/localhost:5000",
            "localhost:5000",
        ),
        (
            "127.0.0.1:5000/ns/app",
            "127.0.0.1:5000/ns/app",
            "127.0.0.1:5000/ns/app",
        ),
        ("[::1]:5000/x", "[::1]:5000/x", "[::1]:5000/x"),
        ("[fe80::1]/x:t", "[fe80::1]/x:t", "[fe80::1]/x:t"),
        (
            "quay.io/org/sub/img:Tag.1",
            "quay.io/org/sub/img:Tag.1",
            "quay.io/org/sub/img:Tag.1",
        ),
        ("Foo/bar", "Foo/bar", "Foo/bar"),
        (
            "user/a__b.c-d---e",
            "docker.io/user/a__b.c-d---e",
            "user/a__b.c-d---e",
        ),
    ];

    #[test]
    fn normalises_like_docker() {
        for &(input, full, familiar) in GOOD {
            let r = ImageRef::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), full, "{input}");
            assert_eq!(r.familiar(), familiar, "{input}");
            assert_eq!(r.to_string().parse::<ImageRef>().unwrap(), r, "{input}");
        }
    }

    #[test]
    fn digest_references() {
        let r = ImageRef::parse(&format!("busybox@sha256:{HEX}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().hex(), HEX);
        assert_eq!(r.familiar(), format!("busybox@sha256:{HEX}"));
        assert_eq!(r.clone().with_default_tag(), r, "a digest needs no tag");

        let r = ImageRef::parse(&format!("localhost:5000/a:1@sha256:{HEX}")).unwrap();
        assert_eq!(r.tag(), Some("1"));
        assert_eq!(r.to_string(), format!("localhost:5000/a:1@sha256:{HEX}"));
    }

    #[test]
    fn parts_and_default_tag() {
        let r = ImageRef::parse("busybox").unwrap();
        assert_eq!(r.registry(), "docker.io");
        assert_eq!(r.repository(), "library/busybox");
        assert_eq!(r.tag(), None);
        assert_eq!(r.full_name(), "docker.io/library/busybox");
        assert_eq!(r.familiar_name(), "busybox");
        let r = r.with_default_tag();
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        assert_eq!(r.familiar(), "busybox:latest");
        let r = ImageRef::parse("busybox:1").unwrap().with_default_tag();
        assert_eq!(r.tag(), Some("1"));
        assert_eq!(
            ImageRef::parse("[::1]:5000/x").unwrap().registry(),
            "[::1]:5000"
        );
    }

    #[test]
    fn rejects_like_docker() {
        let long_tag = format!("busybox:{}", "t".repeat(129));
        let long_name = format!("a/{}", "b".repeat(254));
        let bad: &[(&str, ReferenceError)] = &[
            ("", ReferenceError::Format),
            (":tag", ReferenceError::Format),
            ("busybox:", ReferenceError::Format),
            ("busybox:tag:", ReferenceError::Format),
            ("a//b", ReferenceError::Format),
            ("-a/b", ReferenceError::Format),
            ("busybox:-tag", ReferenceError::Format),
            ("[::1]x/y", ReferenceError::Format),
            ("[zz::1]:5000/y", ReferenceError::Format),
            ("[::1]:port/y", ReferenceError::Format),
            ("a/b$c", ReferenceError::Format),
            (&long_tag, ReferenceError::Format),
            (&long_name, ReferenceError::NameTooLong),
            (
                "Busybox",
                ReferenceError::Uppercase("library/Busybox".into()),
            ),
            (
                "docker.io/User/app:1",
                ReferenceError::Uppercase("User/app".into()),
            ),
            (
                "localhost:5000/App",
                ReferenceError::Uppercase("App".into()),
            ),
            (HEX, ReferenceError::HexName(HEX.into())),
            ("busybox@sha256:abcd", ReferenceError::Format),
            (
                &format!("busybox@sha256:{}", &HEX[..60]),
                ReferenceError::DigestLength,
            ),
            (
                &format!("busybox@sha256:{}", HEX.to_uppercase()),
                ReferenceError::DigestFormat,
            ),
            (
                &format!("busybox@sha512:{HEX}{HEX}"),
                ReferenceError::DigestAlgorithm,
            ),
            (
                &format!("busybox@md5:{HEX}"),
                ReferenceError::DigestAlgorithm,
            ),
        ];
        for (input, err) in bad {
            assert_eq!(ImageRef::parse(input).as_ref(), Err(err), "{input:?}");
        }
        // A 64-hex string is still a fine tag or a name with a tag.
        assert!(ImageRef::parse(&format!("app:{HEX}")).is_ok());
        assert!(ImageRef::parse(&format!("{HEX}:1")).is_ok());
    }

    #[test]
    fn messages_read_like_docker() {
        assert_eq!(
            ImageRef::parse("Busybox").unwrap_err().to_string(),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
        assert_eq!(
            ImageRef::parse(HEX).unwrap_err().to_string(),
            format!("invalid repository name ({HEX}), cannot specify 64-byte hexadecimal strings")
        );
        assert_eq!(
            ImageRef::parse("a b").unwrap_err().to_string(),
            "invalid reference format"
        );
    }

    #[test]
    fn orders_and_hashes_by_value() {
        let mut v: Vec<ImageRef> = ["b", "a:2", "a:1", "a"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        v.sort();
        let shown: Vec<String> = v.iter().map(ImageRef::familiar).collect();
        assert_eq!(shown, ["a", "a:1", "a:2", "b"]);
        let set: std::collections::HashSet<ImageRef> = v.into_iter().collect();
        assert!(set.contains(&"docker.io/library/a:1".parse().unwrap()));
    }

    /// The hand-written grammar accepts exactly what oci-spec's regex does (checked
    /// here with the regex itself; tags differ only beyond ASCII, where docker's Go
    /// `\w` is ASCII too).
    #[test]
    fn grammar_agrees_with_oci_spec() {
        let cases = [
            "docker.io/library/busybox",
            "docker.io/a/b:1.0",
            "docker.io/a/b:_x",
            "docker.io/a/b:.x",
            "docker.io/a/b:-x",
            "docker.io/a/b:",
            "docker.io/a__b/c",
            "docker.io/a___b/c",
            "docker.io/a._b/c",
            "docker.io/a-_b/c",
            "docker.io/a----b/c",
            "docker.io/a./c",
            "docker.io/-a/c",
            "docker.io/a//c",
            "docker.io/a/",
            "localhost:5000/x",
            "localhost:/x",
            "localhost:50a0/x",
            "my-reg.example.com/x",
            "-reg.example.com/x",
            "reg-.example.com/x",
            "reg..example.com/x",
            "10.0.0.1:5000/x",
            "docker.io/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "docker.io/x:t@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "docker.io/x@sha256:0123",
            "docker.io/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
            "docker.io/x@md5:0123456789abcdef0123456789abcdef",
            "docker.io/x@a+b.c:0123456789abcdef0123456789abcdef",
            "docker.io/x@1a:0123456789abcdef0123456789abcdef",
            "docker.io/x@sha256",
            "docker.io/x:a:b",
        ];
        let long_tag = format!("docker.io/x:{}", "t".repeat(128));
        let too_long_tag = format!("docker.io/x:{}", "t".repeat(129));
        let long_name = format!("docker.io/{}", "a".repeat(256));
        for case in cases
            .iter()
            .map(|c| c.to_string())
            .chain([long_tag, too_long_tag, long_name])
        {
            let (domain, remainder) = case.split_once('/').unwrap();
            let ours = grammar::check(domain, remainder).map(|_| ());
            let theirs = oci_spec::distribution::Reference::from_str(&case).map(|_| ());
            assert_eq!(
                ours.is_ok(),
                theirs.is_ok(),
                "{case}: {ours:?} vs {theirs:?}"
            );
        }
    }
}
