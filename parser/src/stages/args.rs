//! Build arguments: where each is visible and what value it has.
//!
//! BuildKit's rules (`dockerfile2llb/convert.go`: `defaultArgs`, `buildMetaArgs`,
//! `dispatchArg`), which this module reproduces:
//!
//! - The *global scope* holds the predefined platform arguments (`BUILDPLATFORM`,
//!   `TARGETARCH`, …, `TARGETSTAGE`) and the ARGs written before the first FROM. A
//!   `--build-arg` overrides a default (predefined ones included); a global ARG's default
//!   may use the global ARGs above it. Only FROM lines see this scope directly.
//! - Inside a stage, `ARG NAME` with no default takes the `--build-arg` value, else the
//!   global value, else stays unset; `ARG NAME=default` takes the `--build-arg` value,
//!   else its default expanded with the stage's variables at that point.
//! - An ARG's value joins the stage's variables (BuildKit adds it to the build state's
//!   environment, so RUN sees it too); ENV does the same. Whichever was set last wins.
//!   A stage built `FROM` another stage starts with that stage's variables, ARGs
//!   included.
//! - Proxy arguments (`HTTP_PROXY`, `no_proxy`, …, any case) need no ARG: BuildKit hands
//!   them to every RUN without putting them in the cache key.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use serde::Serialize;

use super::platform::Platform;
use crate::shell::Env;

/// The predefined arguments BuildKit puts in the global scope.
pub const PREDEFINED_ARGS: [&str; 11] = [
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDOSVERSION",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETOSVERSION",
    "TARGETARCH",
    "TARGETVARIANT",
    "TARGETSTAGE",
];

/// The proxy arguments every RUN gets without declaring them, lower-case; build-arg
/// names match them in any case.
pub const PROXY_ARGS: [&str; 5] = [
    "http_proxy",
    "https_proxy",
    "ftp_proxy",
    "no_proxy",
    "all_proxy",
];

/// One build argument and the value it ended up with (`None`: declared but unset).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgValue {
    pub name: String,
    pub value: Option<String>,
}

/// Variables in scope while expanding: ARG values and ENV values of a stage (or the
/// global ARGs). A child stage starts with a copy of its base stage's scope, so names
/// and values are shared (`Rc`) to keep that copy cheap in long chains of stages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Scope {
    vars: BTreeMap<Rc<str>, Rc<str>>,
}

impl Scope {
    /// Sets `name`, replacing an earlier value.
    pub fn set(&mut self, name: &str, value: String) {
        self.vars.insert(Rc::from(name), Rc::from(value));
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(|v| &**v)
    }

    /// The names set, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.vars.keys().map(|k| &**k).collect()
    }
}

impl Env for Scope {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name)
    }
}

/// The predefined arguments for a build, each overridable by a `--build-arg`.
/// `target_stage` is the target's name, or `default` when it has none.
pub(crate) fn predefined(
    build: &Platform,
    target: &Platform,
    target_stage: &str,
    build_args: &BTreeMap<String, String>,
) -> Scope {
    let values = [
        build.to_string(),
        build.os.clone(),
        String::new(),
        build.architecture.clone(),
        build.variant.clone(),
        target.to_string(),
        target.os.clone(),
        String::new(),
        target.architecture.clone(),
        target.variant.clone(),
        target_stage.to_string(),
    ];
    let mut scope = Scope::default();
    for (name, value) in PREDEFINED_ARGS.iter().zip(values) {
        let value = build_args.get(*name).cloned().unwrap_or(value);
        scope.set(name, value);
    }
    scope
}

/// The proxy settings among the build arguments, keyed by the lower-case name.
pub(crate) fn proxies(build_args: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    build_args
        .iter()
        .filter_map(|(k, v)| {
            PROXY_ARGS
                .iter()
                .find(|p| p.eq_ignore_ascii_case(k))
                .map(|p| (p.to_string(), v.clone()))
        })
        .collect()
}

/// The build arguments nothing consumed: not declared by an ARG of the global scope or
/// of a stage that is built, not a predefined or proxy argument. Sorted.
pub(crate) fn unconsumed(
    build_args: &BTreeMap<String, String>,
    declared: &BTreeSet<String>,
) -> Vec<String> {
    build_args
        .keys()
        .filter(|k| {
            !declared.contains(*k)
                && !PREDEFINED_ARGS.contains(&k.as_str())
                && !PROXY_ARGS.iter().any(|p| p.eq_ignore_ascii_case(k))
        })
        .cloned()
        .collect()
}

/// BuildKit's (really the classic builder's) wording, Go's `%v` of a string slice.
pub(crate) fn unconsumed_warning(names: &[String]) -> String {
    format!(
        "[Warning] One or more build-args [{}] were not consumed",
        names.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn scope_keeps_the_last_value() {
        let mut s = Scope::default();
        s.set("B", "2".into());
        s.set("A", "1".into());
        s.set("A", "3".into());
        assert_eq!(s.get("A"), Some("3"));
        assert_eq!(s.lookup("B"), Some("2"));
        assert_eq!(s.get("C"), None);
        assert_eq!(s.names(), ["A", "B"]);
    }

    #[test]
    fn predefined_platform_args_and_overrides() {
        let build = Platform::new("linux", "amd64", "");
        let target = Platform::new("linux", "arm", "v7");
        let s = predefined(&build, &target, "final", &args(&[("TARGETOS", "plan9")]));
        assert_eq!(s.get("BUILDPLATFORM"), Some("linux/amd64"));
        assert_eq!(s.get("BUILDVARIANT"), Some(""), "set but empty");
        assert_eq!(s.get("TARGETPLATFORM"), Some("linux/arm/v7"));
        assert_eq!(s.get("TARGETARCH"), Some("arm"));
        assert_eq!(s.get("TARGETVARIANT"), Some("v7"));
        assert_eq!(s.get("TARGETOS"), Some("plan9"), "a build arg overrides");
        assert_eq!(s.get("TARGETSTAGE"), Some("final"));
    }

    #[test]
    fn proxies_match_any_case() {
        let p = proxies(&args(&[("HTTP_PROXY", "h"), ("No_Proxy", "n"), ("X", "x")]));
        assert_eq!(p, args(&[("http_proxy", "h"), ("no_proxy", "n")]));
    }

    #[test]
    fn unconsumed_skips_declared_predefined_and_proxies() {
        let declared: BTreeSet<String> = ["A".to_string()].into();
        let got = unconsumed(
            &args(&[
                ("A", ""),
                ("B", ""),
                ("TARGETARCH", ""),
                ("https_proxy", ""),
                ("c", ""),
            ]),
            &declared,
        );
        assert_eq!(got, ["B", "c"]);
        assert_eq!(
            unconsumed_warning(&got),
            "[Warning] One or more build-args [B c] were not consumed"
        );
    }
}
