//! Platforms (`linux/amd64`, `linux/arm/v7`): what `FROM --platform=` names and what the
//! predefined `BUILDPLATFORM`/`TARGETPLATFORM` arguments hold.
//!
//! Parsing and normalisation follow containerd's `platforms.Parse` (which BuildKit uses):
//! `x86_64` is `amd64`, `aarch64` is `arm64`, a bare `arm` means `arm/v7` but is written
//! `arm`, a single word is an OS (with the host's architecture) or an architecture (with
//! the host's OS). OS versions in parentheses (`windows(10.0.17763)`) are a Windows
//! feature and are refused here.

use std::fmt;

use serde::{Serialize, Serializer};

/// An OS, an architecture and an optional variant (`""` when there is none).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: String,
}

/// Why a platform string was refused; messages follow containerd's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    #[error("{0:?}: wildcards not yet supported: invalid argument")]
    Wildcard(String),
    #[error(
        "{part:?} is an invalid OS component of {spec:?}: OS must be letters, digits, '_' or '-' (OS versions are not supported): invalid argument"
    )]
    InvalidOs { part: String, spec: String },
    #[error(
        "{part:?} is an invalid component of {spec:?}: platform specifier component must be letters, digits, '_', '.' or '-': invalid argument"
    )]
    InvalidComponent { part: String, spec: String },
    #[error("{0:?}: unknown operating system or architecture: invalid argument")]
    Unknown(String),
    #[error("{0:?}: cannot parse platform specifier: invalid argument")]
    TooManyParts(String),
}

const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "windows",
    "zos",
];

const KNOWN_ARCH: &[&str] = &[
    "386",
    "amd64",
    "amd64p32",
    "arm",
    "armbe",
    "arm64",
    "arm64be",
    "ppc64",
    "ppc64le",
    "loong64",
    "mips",
    "mipsle",
    "mips64",
    "mips64le",
    "mips64p32",
    "mips64p32le",
    "ppc",
    "riscv",
    "riscv64",
    "s390",
    "s390x",
    "sparc",
    "sparc64",
    "wasm",
];

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: &str) -> Platform {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.to_string(),
        }
    }

    /// The platform this binary was compiled for, named the way Go (and so BuildKit)
    /// names it. Pure: derived from `std::env::consts`, no probing of the CPU. Like
    /// BuildKit's worker (which normalises `platforms.DefaultSpec()`), 64-bit ARM has no
    /// variant and 32-bit ARM is `v7`.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "x86" => "386",
            "aarch64" => "arm64",
            "loongarch64" => "loong64",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "powerpc64" => "ppc64",
            "powerpc" => "ppc",
            "mips64" if cfg!(target_endian = "little") => "mips64le",
            "mips" if cfg!(target_endian = "little") => "mipsle",
            "wasm32" => "wasm",
            other => other,
        };
        let variant = if arch == "arm" { "v7" } else { "" };
        Platform::new(std::env::consts::OS, arch, variant)
    }

    /// Parses `os[/arch[/variant]]`, `os` or `arch`, normalising names as containerd does.
    pub fn parse(spec: &str) -> Result<Platform, PlatformError> {
        if spec.contains('*') {
            return Err(PlatformError::Wildcard(spec.to_string()));
        }
        let parts: Vec<&str> = spec.splitn(4, '/').collect();
        let os_part = parts.first().copied().unwrap_or_default();
        if os_part.is_empty()
            || !os_part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(PlatformError::InvalidOs {
                part: os_part.to_string(),
                spec: spec.to_string(),
            });
        }
        for part in parts.iter().skip(1) {
            if part.is_empty()
                || !part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
            {
                return Err(PlatformError::InvalidComponent {
                    part: part.to_string(),
                    spec: spec.to_string(),
                });
            }
        }
        let os = normalize_os(os_part);
        match parts.as_slice() {
            [_] => {
                let host = Platform::host();
                if KNOWN_OS.contains(&os.as_str()) {
                    return Ok(Platform {
                        os,
                        architecture: host.architecture,
                        variant: if host.variant == "v7" {
                            String::new()
                        } else {
                            host.variant
                        },
                    });
                }
                let (arch, variant) = normalize_arch(os_part, "");
                if KNOWN_ARCH.contains(&arch.as_str()) {
                    return Ok(Platform {
                        os: host.os,
                        variant: drop_arm_v7(&arch, variant),
                        architecture: arch,
                    });
                }
                Err(PlatformError::Unknown(spec.to_string()))
            }
            [_, arch] => {
                let (arch, variant) = normalize_arch(arch, "");
                Ok(Platform {
                    os,
                    variant: drop_arm_v7(&arch, variant),
                    architecture: arch,
                })
            }
            [_, arch, variant] => {
                let (arch, mut variant) = normalize_arch(arch, variant);
                if arch == "arm64" && variant.is_empty() {
                    variant = "v8".to_string();
                }
                Ok(Platform {
                    os,
                    architecture: arch,
                    variant,
                })
            }
            _ => Err(PlatformError::TooManyParts(spec.to_string())),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.os)?;
        if !self.architecture.is_empty() {
            write!(f, "/{}", self.architecture)?;
        }
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

/// In JSON a platform is its usual string form, `linux/arm/v7`.
impl Serialize for Platform {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn normalize_os(os: &str) -> String {
    match os.to_ascii_lowercase().as_str() {
        "macos" => "darwin".to_string(),
        other => other.to_string(),
    }
}

/// containerd's `normalizeArch`.
fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let arch = arch.to_ascii_lowercase();
    let variant = variant.to_ascii_lowercase();
    match arch.as_str() {
        "i386" => ("386".into(), String::new()),
        "x86_64" | "x86-64" | "amd64" => {
            let v = if variant == "v1" {
                String::new()
            } else {
                variant
            };
            ("amd64".into(), v)
        }
        "aarch64" | "arm64" => {
            let v = match variant.as_str() {
                "8" | "v8" | "v8.0" => String::new(),
                "9" | "9.0" | "v9.0" => "v9".into(),
                _ => variant,
            };
            ("arm64".into(), v)
        }
        "armhf" => ("arm".into(), "v7".into()),
        "armel" => ("arm".into(), "v6".into()),
        "arm" => {
            let v = match variant.as_str() {
                "" | "7" => "v7".into(),
                "5" | "6" | "8" => format!("v{variant}"),
                _ => variant,
            };
            ("arm".into(), v)
        }
        _ => (arch, variant),
    }
}

/// containerd writes the default ARM variant only when it was spelt out.
fn drop_arm_v7(arch: &str, variant: String) -> String {
    if arch == "arm" && variant == "v7" {
        String::new()
    } else {
        variant
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> String {
        Platform::parse(s)
            .map(|p| p.to_string())
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn normalises_like_containerd() {
        assert_eq!(p("linux/amd64"), "linux/amd64");
        assert_eq!(p("linux/x86_64"), "linux/amd64");
        assert_eq!(p("Linux/AArch64"), "linux/arm64");
        assert_eq!(p("linux/arm64/v8"), "linux/arm64/v8");
        assert_eq!(p("linux/arm64/8"), "linux/arm64/v8");
        assert_eq!(p("linux/arm"), "linux/arm");
        assert_eq!(p("linux/arm/7"), "linux/arm/v7");
        assert_eq!(p("linux/armhf"), "linux/arm");
        assert_eq!(p("linux/armel"), "linux/arm/v6");
        assert_eq!(p("linux/i386"), "linux/386");
        assert_eq!(p("macos/arm64"), "darwin/arm64");
        assert_eq!(p("windows/amd64"), "windows/amd64");
    }

    #[test]
    fn single_words_take_the_rest_from_the_host() {
        let host = Platform::host();
        assert_eq!(
            Platform::parse("linux").unwrap().architecture,
            host.architecture
        );
        let arm = Platform::parse("arm64").unwrap();
        assert_eq!(
            (arm.os.as_str(), arm.architecture.as_str()),
            (host.os.as_str(), "arm64")
        );
        assert_eq!(p("amd64").split('/').nth(1), Some("amd64"));
    }

    #[test]
    fn refuses_what_containerd_refuses() {
        assert_eq!(
            p("bogus"),
            "\"bogus\": unknown operating system or architecture: invalid argument"
        );
        assert!(p("linux/*").contains("wildcards not yet supported"));
        assert!(p("a/b/c/d").contains("cannot parse platform specifier"));
        assert!(p("linux//v7").contains("\"\" is an invalid component"));
        assert!(p("").contains("invalid OS component"));
        assert!(p("windows(10.0)/amd64").contains("invalid OS component"));
        assert!(p("linux/am d64").contains("invalid component"));
    }

    #[test]
    fn host_is_a_go_name() {
        let host = Platform::host();
        assert_eq!(host.os, std::env::consts::OS);
        assert!(
            KNOWN_ARCH.contains(&host.architecture.as_str())
                || host.architecture == std::env::consts::ARCH
        );
        if cfg!(target_arch = "x86_64") {
            assert_eq!(host.to_string(), "linux/amd64");
        }
        if cfg!(target_arch = "aarch64") {
            assert_eq!(host.to_string(), "linux/arm64");
        }
    }

    #[test]
    fn serializes_as_a_string() {
        let json = serde_json::to_string(&Platform::new("linux", "arm", "v7")).unwrap();
        assert_eq!(json, "\"linux/arm/v7\"");
    }
}
