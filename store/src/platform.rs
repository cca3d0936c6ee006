//! This machine's platform in the names images use (Go's GOOS/GOARCH).

/// The architecture images built or pulled here are for, as Go names it.
pub fn native_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// Always `linux`: images are Linux root file systems.
pub fn native_os() -> &'static str {
    "linux"
}

/// A platform as manifests and image configs name it (`linux/arm64/v8`), for choosing
/// a manifest from an index.
///
/// Parsing the user's spelling (`--platform x86_64`, `FROM --platform=`) is the
/// parser's job (`rbuild_parser::stages::Platform::parse`, containerd's grammar); the
/// store and the parser know nothing of each other, so callers parse there and hand the
/// three fields over. What lives here is the matching, which needs only the names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    /// `""` when there is none.
    pub variant: String,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: &str) -> Platform {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.to_string(),
        }
    }

    /// This machine, as docker pulls for it by default.
    pub fn native() -> Platform {
        let arch = native_arch();
        Platform::new(native_os(), arch, if arch == "arm" { "v7" } else { "" })
    }

    /// containerd's `platforms.Normalize`: `x86_64` is `amd64`, `aarch64/v8` is
    /// `arm64`, a bare `arm` is `arm/v7`; case is ignored.
    pub fn normalized(&self) -> Platform {
        let os = self.os.to_ascii_lowercase();
        let arch = self.architecture.to_ascii_lowercase();
        let variant = self.variant.to_ascii_lowercase();
        let (arch, variant) = match arch.as_str() {
            "i386" => ("386".to_string(), String::new()),
            "x86_64" | "x86-64" | "amd64" => (
                "amd64".to_string(),
                if variant == "v1" {
                    String::new()
                } else {
                    variant
                },
            ),
            "aarch64" | "arm64" => (
                "arm64".to_string(),
                match variant.as_str() {
                    "8" | "v8" | "v8.0" => String::new(),
                    "9" | "9.0" | "v9.0" => "v9".to_string(),
                    _ => variant,
                },
            ),
            "armhf" => ("arm".to_string(), "v7".to_string()),
            "armel" => ("arm".to_string(), "v6".to_string()),
            "arm" => (
                "arm".to_string(),
                match variant.as_str() {
                    "" | "7" => "v7".to_string(),
                    "5" | "6" | "8" => format!("v{variant}"),
                    _ => variant,
                },
            ),
            _ => (arch, variant),
        };
        Platform {
            os,
            architecture: arch,
            variant,
        }
    }

    /// What can run where `self` is wanted, best first: containerd's `platforms.Only`
    /// (docker pull's matcher). `amd64/v3` also takes `v2`, `v1` and then `386`; `arm/v7`
    /// takes `v6` and `v5`; `arm64` takes 32-bit `arm` from `v8` down.
    fn acceptable(&self) -> Vec<Platform> {
        let p = self.normalized();
        let mut out = vec![p.clone()];
        let level = |v: &str| v.strip_prefix('v').unwrap_or(v).parse::<u32>().ok();
        match p.architecture.as_str() {
            "amd64" => {
                if let Some(n) = level(&p.variant) {
                    for k in (1..n).rev() {
                        let v = if k == 1 {
                            String::new()
                        } else {
                            format!("v{k}")
                        };
                        out.push(Platform::new(&p.os, "amd64", &v));
                    }
                }
                out.push(Platform::new(&p.os, "386", ""));
            }
            "arm" => {
                if let Some(n) = level(&p.variant) {
                    for k in (5..n).rev() {
                        out.push(Platform::new(&p.os, "arm", &format!("v{k}")));
                    }
                }
            }
            "arm64" => {
                let v = if p.variant.is_empty() {
                    "v8"
                } else {
                    &p.variant
                };
                out.extend(Platform::new(&p.os, "arm", v).acceptable());
            }
            _ => {}
        }
        out
    }

    /// How well `candidate` (a manifest's platform) fits what `self` asks for: `Some(0)`
    /// for an exact match, higher for fallbacks, `None` when it cannot run here.
    pub fn rank(&self, candidate: &Platform) -> Option<usize> {
        let c = candidate.normalized();
        self.acceptable().iter().position(|p| *p == c)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Platform;

    fn p(s: &str) -> Platform {
        let mut it = s.split('/');
        Platform::new(
            it.next().unwrap(),
            it.next().unwrap(),
            it.next().unwrap_or(""),
        )
    }

    #[test]
    fn matching_follows_containerd_only() {
        let amd = p("linux/amd64");
        assert_eq!(amd.rank(&p("linux/amd64")), Some(0));
        assert_eq!(amd.rank(&p("linux/x86_64")), Some(0));
        assert_eq!(amd.rank(&p("linux/amd64/v1")), Some(0));
        assert_eq!(amd.rank(&p("linux/386")), Some(1));
        assert_eq!(amd.rank(&p("linux/amd64/v3")), None);
        assert_eq!(amd.rank(&p("linux/arm64")), None);
        assert_eq!(amd.rank(&p("windows/amd64")), None);

        let v3 = p("linux/amd64/v3");
        assert_eq!(v3.rank(&p("linux/amd64/v3")), Some(0));
        assert_eq!(v3.rank(&p("linux/amd64/v2")), Some(1));
        assert_eq!(v3.rank(&p("linux/amd64")), Some(2));

        // arm64 accepts its v8 spelling, and 32-bit arm after it.
        let arm64 = p("linux/arm64");
        assert_eq!(arm64.rank(&p("linux/arm64/v8")), Some(0));
        assert_eq!(arm64.rank(&p("linux/aarch64")), Some(0));
        assert!(arm64.rank(&p("linux/arm/v7")).unwrap() > 0);
        assert_eq!(p("linux/arm64/v8").rank(&p("linux/arm64")), Some(0));

        // A bare arm is v7, which takes v6 but not v8.
        let arm = p("linux/arm");
        assert_eq!(arm.rank(&p("linux/arm/v7")), Some(0));
        assert_eq!(arm.rank(&p("linux/arm/v6")), Some(1));
        assert_eq!(arm.rank(&p("linux/arm/v8")), None);
        assert_eq!(p("linux/arm/v6").rank(&p("linux/arm/v7")), None);
    }

    #[test]
    fn shown_as_docker_writes_it() {
        assert_eq!(p("linux/arm/v7").to_string(), "linux/arm/v7");
        assert_eq!(p("linux/amd64").to_string(), "linux/amd64");
    }
}
