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
