//! Cache keys, and saying why a step missed the cache.
//!
//! A step's **key** is sha256 over, each part length-prefixed so no two inputs collide:
//! a version tag; the parent image ID (`scratch` for an empty base); the instruction
//! text after expansion; the build arguments it uses (`NAME=value`, sorted, unset ones
//! as `NAME` alone); for COPY/ADD the digest of its sources ([`super::context`]: content,
//! mode, uid, gid, type and link target of every file, not mtimes), a git source by
//! the commit its ref resolves to (`build::git`); and for RUN the network mode. The
//! key names the intermediate image the step made ([`rbuild_store::Store::cache_get`]).
//! A `--link` step also has a key without the parent (`build::link`), which names
//! the image whose top layer it can reuse on another parent.
//!
//! A **note** per step of a Dockerfile (keyed by the context, the Dockerfile, the stage,
//! the instruction as written and which occurrence of it this is) remembers the last
//! inputs: parent, text, build arguments and per-file source digests. On a miss the
//! first difference from the note is the reason.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Bump when the meaning of a key changes, so old entries are never mistaken for new.
const KEY_VERSION: &str = "rbuild-build-cache-v1";

/// Why a step was not taken from the cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum MissReason {
    /// `--no-cache`.
    NoCache,
    /// Nothing is known about this step.
    FirstBuild,
    /// The image it builds on is another one than last time.
    ParentChanged,
    /// A build argument it uses has another value.
    BuildArgChanged(String),
    /// A source file (context-relative path) was added, removed or changed.
    FileChanged(String),
    /// A git source (`git URL#ref:subdir`) resolves to another commit than last time.
    GitChanged(String),
    /// The instruction reads differently after expansion (an ENV it uses changed).
    InstructionChanged,
    /// The inputs are as last time, but the image that step made is gone (`rmi`).
    ResultRemoved,
    /// `SOURCE_DATE_EPOCH` differs from last time (or was unset).
    EpochChanged,
}

impl fmt::Display for MissReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MissReason::NoCache => f.write_str("--no-cache"),
            MissReason::FirstBuild => f.write_str("first build"),
            MissReason::ParentChanged => f.write_str("parent changed"),
            MissReason::BuildArgChanged(n) => write!(f, "build arg {n} changed"),
            MissReason::FileChanged(p) => write!(f, "file {p} changed"),
            MissReason::GitChanged(s) => write!(
                f,
                "git source {} moved to another commit",
                s.strip_prefix("git ").unwrap_or(s)
            ),
            MissReason::InstructionChanged => f.write_str("instruction changed"),
            MissReason::ResultRemoved => f.write_str("previous result was removed"),
            MissReason::EpochChanged => f.write_str("SOURCE_DATE_EPOCH changed"),
        }
    }
}

/// Everything a step's result depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inputs {
    /// Parent image ID, or `scratch`.
    pub parent: String,
    /// The instruction after expansion.
    pub text: String,
    /// Build arguments the step uses; `None` for declared but unset.
    pub args: BTreeMap<String, Option<String>>,
    /// COPY/ADD: context-relative source path → digest of its content and metadata.
    pub sources: BTreeMap<String, String>,
    /// Anything else that changes the result (RUN's network mode).
    pub extra: String,
    /// `SOURCE_DATE_EPOCH` of the build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<i64>,
}

impl Inputs {
    /// The cache key: hex sha256 over all inputs.
    pub fn key(&self) -> String {
        let mut h = Sha256::new();
        let mut part = |s: &str| {
            h.update((s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        };
        part(KEY_VERSION);
        part(&self.parent);
        part(&self.text);
        for (k, v) in &self.args {
            match v {
                Some(v) => part(&format!("{k}={v}")),
                None => part(k),
            }
        }
        part("");
        for (path, digest) in &self.sources {
            part(path);
            part(digest);
        }
        part("");
        part(&self.extra);
        if let Some(epoch) = self.epoch {
            part(&format!("source-date-epoch={epoch}"));
        }
        format!("sha256:{}", hex(&h.finalize()))
    }

    /// Why these inputs missed, given the note of the step's last build (if any).
    pub fn miss_reason(&self, last: Option<&Inputs>) -> MissReason {
        let Some(last) = last else {
            return MissReason::FirstBuild;
        };
        if last.parent != self.parent {
            return MissReason::ParentChanged;
        }
        if let Some(name) = first_difference(&last.args, &self.args) {
            return MissReason::BuildArgChanged(name);
        }
        if let Some(path) = first_difference(&last.sources, &self.sources) {
            // Git sources are keyed `git URL#ref:subdir` (see `build::git`).
            let git = |m: &BTreeMap<String, String>| {
                m.get(&path).is_some_and(|v| v.starts_with("commit "))
            };
            return if path.starts_with("git ") && (git(&self.sources) || git(&last.sources)) {
                MissReason::GitChanged(path)
            } else {
                MissReason::FileChanged(path)
            };
        }
        if last.text != self.text || last.extra != self.extra {
            return MissReason::InstructionChanged;
        }
        if last.epoch != self.epoch {
            return MissReason::EpochChanged;
        }
        MissReason::ResultRemoved
    }
}

/// The second key of a `COPY --from` step: on the image it reads (`None`: scratch)
/// rather than the content of the files it reads. The same image ID means the same
/// files, so it is as sound as the content key, if less often hit (a stage rebuilt with
/// the same output has another ID); it lets an imported stage's result be copied from
/// without fetching its layers ([`super::remote_cache`]).
pub fn copy_from_image_key(
    parent: Option<&rbuild_store::Digest>,
    text: &str,
    args: &BTreeMap<String, Option<String>>,
    source: Option<&rbuild_store::Digest>,
    epoch: Option<i64>,
) -> String {
    let name =
        |d: Option<&rbuild_store::Digest>| d.map_or("scratch".to_string(), |d| d.to_string());
    Inputs {
        parent: name(parent),
        text: text.to_string(),
        args: args.clone(),
        sources: BTreeMap::from([("--from image".to_string(), name(source))]),
        extra: String::new(),
        epoch,
    }
    .key()
}

/// The first key (in order) that is in one map and not the other, or has another value.
fn first_difference<V: PartialEq>(
    a: &BTreeMap<String, V>,
    b: &BTreeMap<String, V>,
) -> Option<String> {
    a.keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .min()
        .cloned()
}

/// The note key of a step: where it is in which Dockerfile of which context.
pub fn step_id(
    context: &str,
    dockerfile: &str,
    stage: usize,
    written: &str,
    occurrence: usize,
) -> String {
    let mut h = Sha256::new();
    for s in [
        context,
        dockerfile,
        &stage.to_string(),
        written,
        &occurrence.to_string(),
    ] {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    }
    hex(&h.finalize())
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> Inputs {
        Inputs {
            parent: "sha256:p".into(),
            text: "COPY . /app".into(),
            args: BTreeMap::from([("V".to_string(), Some("1".to_string()))]),
            sources: BTreeMap::from([
                ("a.py".to_string(), "1".to_string()),
                ("src/b.py".to_string(), "2".to_string()),
            ]),
            extra: String::new(),
            epoch: None,
        }
    }

    #[test]
    fn every_input_changes_the_key() {
        let base = inputs();
        let mut keys = vec![base.key()];
        let mut x = base.clone();
        x.parent = "sha256:q".into();
        keys.push(x.key());
        let mut x = base.clone();
        x.text.push(' ');
        keys.push(x.key());
        let mut x = base.clone();
        x.args.insert("V".into(), None);
        keys.push(x.key());
        let mut x = base.clone();
        x.sources.insert("src/b.py".into(), "3".into());
        keys.push(x.key());
        let mut x = base.clone();
        x.extra = "network=none".into();
        keys.push(x.key());
        let mut x = base.clone();
        x.epoch = Some(0);
        keys.push(x.key());
        x.epoch = Some(1);
        keys.push(x.key());
        let mut sorted = keys.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), keys.len());
        assert_eq!(base.key(), inputs().key());
    }

    #[test]
    fn copy_from_image_key_follows_parent_and_source() {
        let d = |s: &str| rbuild_store::Digest::of(s.as_bytes());
        let args = BTreeMap::new();
        let text = "COPY --from=b /out /out";
        let k = copy_from_image_key(Some(&d("p")), text, &args, Some(&d("s")), None);
        assert_eq!(
            k,
            copy_from_image_key(Some(&d("p")), text, &args, Some(&d("s")), None)
        );
        assert_ne!(
            k,
            copy_from_image_key(Some(&d("p")), text, &args, Some(&d("t")), None)
        );
        assert_ne!(
            k,
            copy_from_image_key(Some(&d("q")), text, &args, Some(&d("s")), None)
        );
        assert_ne!(
            k,
            copy_from_image_key(Some(&d("p")), text, &args, None, None)
        );
    }

    #[test]
    fn reasons_name_the_first_change() {
        let last = inputs();
        let mut now = inputs();
        assert_eq!(now.miss_reason(None), MissReason::FirstBuild);
        assert_eq!(now.miss_reason(Some(&last)), MissReason::ResultRemoved);
        now.sources.insert("src/b.py".into(), "9".into());
        now.sources.remove("a.py");
        assert_eq!(
            now.miss_reason(Some(&last)).to_string(),
            "file a.py changed"
        );
        now.args.insert("V".into(), Some("2".into()));
        assert_eq!(
            now.miss_reason(Some(&last)).to_string(),
            "build arg V changed"
        );
        now.parent = "sha256:other".into();
        assert_eq!(now.miss_reason(Some(&last)), MissReason::ParentChanged);
        let mut dated = inputs();
        dated.epoch = Some(1_700_000_000);
        assert_eq!(
            dated.miss_reason(Some(&last)).to_string(),
            "SOURCE_DATE_EPOCH changed"
        );
    }

    #[test]
    fn a_key_without_an_epoch_is_unchanged_and_its_note_reads_as_before() {
        // Notes written before the field existed still read; keys without an epoch
        // stay what they were, so existing caches keep hitting.
        let note = r#"{"parent":"p","text":"t","args":{},"sources":{},"extra":""}"#;
        let read: Inputs = serde_json::from_str(note).unwrap();
        assert_eq!(read.epoch, None);
        assert_eq!(serde_json::to_string(&read).unwrap(), note);
    }
}
