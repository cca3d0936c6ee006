//! `ADD <git repository>`: recognising git sources as BuildKit does, resolving the ref
//! to a commit before the cache is consulted (the commit is the cache key, so an
//! unchanged repository is CACHED and a new commit on a branch runs the step again),
//! and checking the commit out into a store scratch directory on a miss.
//!
//! Recognition (BuildKit `util/gitutil/git_url.go`, `dfgitutil.ParseGitRef`):
//! `git://…` and `ssh://…` URLs and scp-style `user@host:path` are always git;
//! `http(s)://…` only when the URL's path ends in `.git`. The fragment is
//! `#ref:subdir`; the query may say `ref=`, `branch=`, `tag=`, `subdir=`,
//! `checksum=`/`commit=` and `keep-git-dir=`.
//!
//! Like BuildKit, the system `git` does the work. It runs with no system or global
//! config (`GIT_CONFIG_NOSYSTEM`, `GIT_CONFIG_GLOBAL` and `HOME` pointed at
//! `/dev/null`), never prompts (`GIT_TERMINAL_PROMPT=0`, ssh in batch mode), and may
//! speak only the network transports (`GIT_ALLOW_PROTOCOL`), so neither the URL nor a
//! submodule can make it read local repositories (`file://`) or run commands (`ext::`).
//!
//! What the checkout looks like: files 0644, or 0755 when git marks them executable,
//! directories 0755, owned by root (or `--chown`), `.git` left out unless
//! `--keep-git-dir=true`. Every file and directory gets the **commit's** time as its
//! mtime. BuildKit's default leaves checkout-time mtimes (it offers `mtime=commit` as
//! an option); the commit time is chosen here because the step's result must follow
//! from its cache key (the commit) alone: checkout-time mtimes would give every rebuild
//! of the same commit another layer digest.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use rbuild_store::Store;
use rbuild_store::commit::UpperDir;

use super::context::{Context, Selection};

/// A git source as the Dockerfile names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSource {
    /// What git is given: the URL without fragment and query.
    pub remote: String,
    /// Branch, tag, or full commit; `None` for the remote's default branch.
    pub reference: Option<String>,
    /// Directory inside the repository to take (clean, relative; `""` for all).
    pub subdir: String,
    pub keep_git_dir: Option<bool>,
    pub checksum: Option<String>,
}

/// A git source whose ref was resolved to a commit.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub source: GitSource,
    /// The ref fetched (`refs/heads/main`, `refs/tags/v1`), or the commit itself.
    pub fetch: String,
    /// The object the ref names (an annotated tag's own object for tags).
    pub object: String,
    /// The commit checked out.
    pub commit: String,
    pub keep_git_dir: bool,
}

impl Resolved {
    /// The source's name in the step's cache inputs: where it comes from, without
    /// credentials.
    pub fn key_name(&self) -> String {
        let s = &self.source;
        format!(
            "git {}#{}:{}",
            redact(&s.remote),
            s.reference.as_deref().unwrap_or(""),
            s.subdir
        )
    }

    /// The remote (redacted) and the ref as written, for progress lines.
    pub fn describe(&self) -> String {
        let s = &self.source;
        match &s.reference {
            Some(r) => format!("{}#{r}", redact(&s.remote)),
            None => format!("{} (default branch {})", redact(&s.remote), self.fetch),
        }
    }

    /// What the source's content is known by before it is fetched: the commit, or the
    /// ref's own object when `.git` is kept (it then holds an annotated tag too), as
    /// BuildKit keys git sources.
    pub fn key_value(&self) -> String {
        if self.keep_git_dir {
            format!("commit {} object {}", self.commit, self.object)
        } else {
            format!("commit {}", self.commit)
        }
    }
}

/// Whether `src` is a git source, and if so what it names. `None`: not git (a local
/// path, or an `http(s)` URL to download).
pub fn parse(src: &str) -> Option<Result<GitSource, String>> {
    let (remote_with_query, fragment) = match src.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (src, None),
    };
    let (remote, query) = match remote_with_query.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (remote_with_query, None),
    };
    let scheme = scheme(src);
    match scheme.as_deref() {
        Some("git" | "ssh") => {}
        Some("http" | "https") => {
            let path = remote
                .split_once("://")
                .and_then(|(_, rest)| rest.split_once('/'))
                .map_or("", |(_, p)| p);
            if !path.ends_with(".git") {
                return None;
            }
        }
        Some(_) => return None,
        None if is_scp_style(src) => {}
        None => return None,
    }
    Some(from_parts(remote, query, fragment))
}

/// The lower-cased scheme of a `scheme://` URL (BuildKit: letters and digits only).
fn scheme(s: &str) -> Option<String> {
    let (scheme, _) = s.split_once("://")?;
    (!scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| scheme.to_ascii_lowercase())
}

/// `user@host:path` (BuildKit's `sshutil` pattern: user of `[A-Za-z0-9_-]`, host of
/// `[A-Za-z0-9.-]`).
fn is_scp_style(s: &str) -> bool {
    let Some((user, rest)) = s.split_once('@') else {
        return false;
    };
    let Some((host, _)) = rest.split_once(':') else {
        return false;
    };
    !user.is_empty()
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn from_parts(
    remote: &str,
    query: Option<&str>,
    fragment: Option<&str>,
) -> Result<GitSource, String> {
    let mut out = GitSource {
        remote: remote.to_string(),
        reference: None,
        subdir: String::new(),
        keep_git_dir: None,
        checksum: None,
    };
    if let Some(f) = fragment.filter(|f| !f.is_empty()) {
        let (r, sub) = f.split_once(':').unwrap_or((f, ""));
        out.reference = Some(r.to_string()).filter(|r| !r.is_empty());
        out.subdir = super::context::clean(sub);
    }
    let shown = redact(remote);
    let conflict =
        |what: &str, a: &str, b: &str| format!("{shown}: {what} conflicts: {a:?} vs {b:?}");
    let (mut tag, mut branch) = (None, None);
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let bool_value = |v: &str| match v {
            "" | "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
            _ => Err(format!("{shown}: invalid {k} value: {v:?}")),
        };
        match k {
            "ref" => {
                if let Some(r) = &out.reference
                    && r != v
                {
                    return Err(conflict("ref", r, v));
                }
                out.reference = Some(v.to_string());
            }
            "tag" => tag = Some(v.to_string()),
            "branch" => branch = Some(v.to_string()),
            "subdir" => {
                let v = super::context::clean(v);
                if !out.subdir.is_empty() && out.subdir != v {
                    return Err(conflict("subdir", &out.subdir, &v));
                }
                out.subdir = v;
            }
            "checksum" | "commit" => out.checksum = Some(v.to_string()),
            "keep-git-dir" => out.keep_git_dir = Some(bool_value(v)?),
            _ => return Err(format!("{shown}: unexpected query {k:?}")),
        }
    }
    for (name, prefix) in [(tag, "refs/tags/"), (branch, "refs/heads/")] {
        let Some(mut r) = name else { continue };
        if !r.starts_with(prefix) {
            r = format!("{prefix}{r}");
        }
        if let Some(old) = &out.reference
            && *old != r
        {
            return Err(conflict("ref", old, &r));
        }
        out.reference = Some(r);
    }
    if out.reference.as_deref().is_some_and(|r| r.starts_with('-')) {
        return Err(format!(
            "{shown}: invalid git ref {:?}",
            out.reference.unwrap_or_default()
        ));
    }
    Ok(out)
}

/// The remote as shown in messages and keys: credentials (and queries) removed.
pub fn redact(remote: &str) -> String {
    if remote.contains("://") {
        rbuild_store::download::redact(remote)
    } else {
        // scp-style: `git@host:path` names a user but can't carry a password.
        remote.to_string()
    }
}

/// A full commit ID (SHA-1 or SHA-256).
fn is_commit(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `git` with nothing of the user's or the system's configuration, no prompts, and
/// only network transports.
fn git() -> Command {
    let mut c = Command::new("git");
    c.env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("HOME", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ALLOW_PROTOCOL", "http:https:git:ssh")
        .env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
        .env("LC_ALL", "C")
        .current_dir("/");
    // Proxies, as BuildKit passes them on.
    for k in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "all_proxy",
    ] {
        if let Some(v) = std::env::var_os(k) {
            c.env(k, v);
        }
    }
    c
}

/// Runs git; an error names the remote (redacted) and carries git's stderr, in which
/// the remote as written is also redacted.
fn run(remote: &str, dir: Option<&Path>, args: &[&str]) -> Result<String, String> {
    let mut c = git();
    if let Some(d) = dir {
        c.current_dir(d);
    }
    let out = c.args(args).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            "git is not installed: ADD of a git repository needs the git command (apt-get install git)"
                .to_string()
        } else {
            format!("running git: {e}")
        }
    })?;
    let shown = redact(remote);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).replace(remote, &shown);
        let what = args
            .iter()
            .take_while(|a| **a != "--")
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        return Err(format!(
            "git source {shown}: git {what} failed: {}",
            stderr.trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Resolves the source's ref to a commit with `git ls-remote` (nothing is fetched),
/// checking `--checksum` (a commit prefix, as BuildKit accepts) on the way.
/// `keep_flag` and `checksum_flag` are ADD's own flags, which the URL may repeat.
pub fn resolve(
    source: GitSource,
    keep_flag: Option<bool>,
    checksum_flag: Option<&str>,
) -> Result<Resolved, String> {
    let shown = redact(&source.remote);
    let keep = match (keep_flag, source.keep_git_dir) {
        (Some(a), Some(b)) if a != b => {
            return Err(format!("{shown}: inconsistent keep-git-dir configuration"));
        }
        (a, b) => a.or(b).unwrap_or(false),
    };
    let checksum = match (checksum_flag, source.checksum.as_deref()) {
        (Some(a), Some(b)) if a != b => {
            return Err(format!("{shown}: checksum mismatch {a:?} != {b:?}"));
        }
        (a, b) => a.or(b).map(str::to_string),
    };
    if let Some(c) = &checksum
        && (c.is_empty() || !c.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(format!(
            "invalid checksum {c} for Git URL, expected hex commit hash"
        ));
    }
    let checksum = checksum.map(|c| c.to_ascii_lowercase());
    let mismatch = |got: &str| {
        format!(
            "git source {shown}: expected checksum to match {}, got {got}",
            checksum.as_deref().unwrap_or("")
        )
    };
    let remote = source.remote.as_str();
    if let Some(r) = source.reference.as_deref().filter(|r| is_commit(r)) {
        let commit = r.to_ascii_lowercase();
        if let Some(c) = &checksum
            && !commit.starts_with(c.as_str())
        {
            return Err(mismatch(&commit));
        }
        return Ok(Resolved {
            fetch: commit.clone(),
            object: commit.clone(),
            commit,
            keep_git_dir: keep,
            source,
        });
    }
    let reference = match &source.reference {
        Some(r) => r.clone(),
        None => default_branch(remote)?,
    };
    let peeled = format!("{reference}^{{}}");
    let listing = run(
        remote,
        None,
        &["ls-remote", "--", remote, &reference, &peeled],
    )?;
    // BuildKit's preference: an exact `refs/…` name, then a branch, then a tag.
    let bare = reference.strip_prefix("refs/").unwrap_or(&reference);
    let exact = format!("refs/{bare}");
    let head = format!(
        "refs/heads/{}",
        reference.strip_prefix("refs/heads/").unwrap_or(&reference)
    );
    let tag = format!(
        "refs/tags/{}",
        reference.strip_prefix("refs/tags/").unwrap_or(&reference)
    );
    let tag_peeled = format!("{tag}^{{}}");
    let (mut exact_sha, mut head_sha, mut tag_sha, mut peeled_sha) = (None, None, None, None);
    // `HEAD` itself, when the remote did not say which branch it is.
    let mut as_named = None;
    for line in listing.lines() {
        let Some((sha, name)) = line.split_once('\t') else {
            continue;
        };
        let sha = Some(sha.to_string());
        if name == head {
            head_sha = sha.clone();
        }
        if name == tag {
            tag_sha = sha.clone();
        }
        if name == tag_peeled {
            peeled_sha = sha.clone();
        }
        if name == reference {
            as_named = sha.clone();
        }
        if name == exact {
            exact_sha = sha;
        }
    }
    let (object, fetch, commit) = if let Some(s) = exact_sha.filter(|_| exact != tag) {
        (s.clone(), exact.clone(), s)
    } else if let Some(s) = head_sha {
        (s.clone(), head, s)
    } else if let Some(s) = tag_sha {
        let commit = peeled_sha.unwrap_or_else(|| s.clone());
        (s, tag, commit)
    } else if let Some(s) = as_named.filter(|_| reference == "HEAD") {
        (s.clone(), reference.clone(), s)
    } else {
        return Err(format!(
            "git source {shown}: repository does not contain ref {reference}"
        ));
    };
    if !is_commit(&object) {
        return Err(format!("git source {shown}: invalid commit sha {object:?}"));
    }
    if let Some(c) = &checksum
        && !commit.starts_with(c.as_str())
        && !object.starts_with(c.as_str())
    {
        return Err(mismatch(&commit));
    }
    Ok(Resolved {
        source,
        fetch,
        object,
        commit,
        keep_git_dir: keep,
    })
}

/// The branch the remote's HEAD points at (`HEAD` itself when it says none).
fn default_branch(remote: &str) -> Result<String, String> {
    let out = run(
        remote,
        None,
        &["ls-remote", "--symref", "--", remote, "HEAD"],
    )?;
    Ok(out
        .lines()
        .find_map(|l| {
            l.strip_prefix("ref: ")
                .and_then(|r| r.split_once('\t'))
                .filter(|(_, name)| *name == "HEAD")
                .map(|(r, _)| r.to_string())
        })
        .unwrap_or_else(|| "HEAD".to_string()))
}

/// Fetches and checks out the resolved commit into a store scratch directory (pushed
/// onto `scratch`, which the step removes when it ends) and selects its files like a
/// directory source: the whole tree, or the subdirectory the URL names.
pub fn checkout(
    store: &Store,
    r: &Resolved,
    scratch: &mut Vec<UpperDir>,
) -> Result<Selection, String> {
    let remote = r.source.remote.as_str();
    let shown = redact(remote);
    let dirs = store.new_upper_dir().map_err(|e| e.to_string())?;
    let work = dirs.upper.join("checkout");
    scratch.push(dirs);
    let work_s = work.to_string_lossy().into_owned();
    run(
        remote,
        None,
        &[
            "init",
            "-q",
            "--initial-branch=rbuild-unborn",
            "--",
            &work_s,
        ],
    )?;
    let at = Some(work.as_path());
    let in_repo = |args: &[&str]| run(remote, at, args);
    // `origin` is what relative submodule URLs are resolved against.
    in_repo(&["remote", "add", "--", "origin", remote])?;
    // Named refs are fetched into the same local name, as BuildKit's kept `.git` has
    // them; a commit is fetched by its ID (servers allow that for reachable commits
    // with protocol v2), else everything is fetched and the commit looked for.
    let named = !is_commit(&r.fetch);
    let refspec = if r.fetch == "HEAD" {
        // Into FETCH_HEAD only: HEAD is no ref to write.
        r.fetch.clone()
    } else {
        format!("+{0}:{0}", r.fetch)
    };
    let fetched = if named {
        shallow_fetch(remote, at, &refspec)
    } else {
        fetch_commit(remote, at, &r.commit)
    };
    fetched?;
    let head = in_repo(&["rev-parse", "--verify", "-q", "FETCH_HEAD^{commit}"])?;
    if head.trim() != r.commit {
        // The branch moved between ls-remote and the fetch: the key says r.commit.
        fetch_commit(remote, at, &r.commit).map_err(|e| {
            format!(
                "{e} (the ref moved to {} while it was fetched)",
                head.trim()
            )
        })?;
    }
    in_repo(&[
        "-c",
        "advice.detachedHead=false",
        "checkout",
        "-q",
        "--detach",
        &r.commit,
    ])?;
    if work.join(".gitmodules").exists() {
        in_repo(&[
            "submodule",
            "-q",
            "update",
            "--init",
            "--recursive",
            "--depth=1",
        ])?;
    }
    let time: i64 = in_repo(&["log", "-1", "--format=%ct", &r.commit])?
        .trim()
        .parse()
        .map_err(|e| format!("git source {shown}: reading the commit time: {e}"))?;
    let keep = r.keep_git_dir && r.source.subdir.is_empty();
    if keep {
        in_repo(&["remote", "set-url", "origin", &shown])?;
        in_repo(&["reflog", "expire", "--all", "--expire=now"])?;
        let _ = fs::remove_file(work.join(".git/FETCH_HEAD"));
    } else {
        fs::remove_dir_all(work.join(".git"))
            .map_err(|e| format!("git source {shown}: removing .git: {e}"))?;
    }
    let root = subdir(&work, &r.source.subdir)
        .map_err(|e| format!("git source {shown}: subdir {:?}: {e}", r.source.subdir))?;
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(time.max(0) as u64);
    normalize(&root, time, true).map_err(|e| format!("git source {shown}: {e}"))?;
    let ctx = Context::new(
        root,
        rbuild_parser::dockerignore::Matcher::new(std::iter::empty::<&str>()).expect("no patterns"),
    );
    let mut sel = ctx.select("").map_err(|e| e.to_string())?;
    let mut sel = sel.pop().expect("the checkout root is selected");
    sel.remote = true;
    Ok(sel)
}

/// The step's sources with its git sources checked out and put in their places
/// (`(index in the selections, source)`), each filtered by `exclude` (`--exclude`).
pub fn fetch_all(
    store: &Store,
    selections: Option<Vec<Selection>>,
    git_sources: Vec<(usize, Resolved)>,
    exclude: impl Fn(Vec<Selection>) -> Result<Vec<Selection>, String>,
    scratch: &mut Vec<UpperDir>,
) -> Result<Option<Vec<Selection>>, String> {
    if git_sources.is_empty() {
        return Ok(selections);
    }
    let mut sels = selections.unwrap_or_default();
    // From the last, so that earlier places stay right.
    for (at, r) in git_sources.into_iter().rev() {
        let got = exclude(vec![checkout(store, &r, scratch)?])?;
        let at = at.min(sels.len());
        sels.splice(at..at, got);
    }
    Ok(Some(sels))
}

/// `git fetch --depth=1` of one refspec or commit, without tags.
fn shallow_fetch(remote: &str, at: Option<&Path>, what: &str) -> Result<(), String> {
    run(
        remote,
        at,
        &["fetch", "-q", "--depth=1", "--no-tags", "--", remote, what],
    )
    .map(drop)
}

fn fetch_commit(remote: &str, at: Option<&Path>, commit: &str) -> Result<(), String> {
    if shallow_fetch(remote, at, commit).is_ok() {
        return Ok(());
    }
    run(
        remote,
        at,
        &[
            "fetch",
            "-q",
            "--tags",
            "--",
            remote,
            "+refs/heads/*:refs/remotes/origin/*",
        ],
    )?;
    let spec = format!("{commit}^{{commit}}");
    run(remote, at, &["cat-file", "-e", &spec])
        .map(drop)
        .map_err(|_| {
            format!(
                "git source {}: commit {commit} is not in the repository",
                redact(remote)
            )
        })
}

/// `work/sub`, every component a real directory (no symlink may lead out of the
/// checkout).
fn subdir(work: &Path, sub: &str) -> Result<PathBuf, String> {
    let mut p = work.to_path_buf();
    for c in sub.split('/').filter(|c| !c.is_empty()) {
        p.push(c);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err("not a directory".into()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err("not found in the repository".into());
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(p)
}

/// Modes as BuildKit's checkouts have them (0644/0755 files, 0755 directories; not
/// inside `.git`, which git wrote itself) and `time` as every mtime, children before
/// their directory. Symlinks are left alone (they are copied as links).
fn normalize(dir: &Path, time: std::time::SystemTime, top: bool) -> Result<(), String> {
    let err = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    let mut names: Vec<_> = fs::read_dir(dir)
        .map_err(|e| err(dir, e))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(|e| err(dir, e))?;
    names.sort();
    for name in names {
        let p = dir.join(&name);
        let m = fs::symlink_metadata(&p).map_err(|e| err(&p, e))?;
        let in_git = top && name == ".git";
        if m.is_dir() {
            if !in_git {
                fs::set_permissions(&p, fs::Permissions::from_mode(0o755))
                    .map_err(|e| err(&p, e))?;
            }
            normalize_tree(&p, time, in_git)?;
        } else if m.is_file() {
            if !in_git {
                let mode = if m.permissions().mode() & 0o111 != 0 {
                    0o755
                } else {
                    0o644
                };
                fs::set_permissions(&p, fs::Permissions::from_mode(mode))
                    .map_err(|e| err(&p, e))?;
            }
            set_mtime(&p, time)?;
        }
    }
    set_mtime(dir, time)
}

/// [`normalize`] below the top, where `.git` is only special when `in_git`.
fn normalize_tree(dir: &Path, time: std::time::SystemTime, in_git: bool) -> Result<(), String> {
    if !in_git {
        return normalize(dir, time, false);
    }
    for entry in fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let p = entry.map_err(|e| e.to_string())?.path();
        let m = fs::symlink_metadata(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        if m.is_dir() {
            normalize_tree(&p, time, true)?;
        } else if m.is_file() {
            set_mtime(&p, time)?;
        }
    }
    set_mtime(dir, time)
}

fn set_mtime(p: &Path, t: std::time::SystemTime) -> Result<(), String> {
    // Opened read-only: futimens needs only ownership (we are root), and a 0444 git
    // object file opens fine. Never a symlink here: callers lstat first.
    fs::File::open(p)
        .and_then(|f| f.set_modified(t))
        .map_err(|e| format!("setting the mtime of {}: {e}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(s: &str) -> GitSource {
        parse(s).expect("is git").expect("parses")
    }

    #[test]
    fn recognises_git_sources_as_buildkit_does() {
        assert!(parse("https://example.com/file.tar.gz").is_none());
        assert!(parse("https://example.com/repo").is_none());
        assert!(parse("http://example.com/a.git/file").is_none());
        assert!(parse("local/dir").is_none());
        assert!(parse("foo:bar").is_none());
        assert!(parse("ftp://example.com/x.git").is_none());
        let s = src("https://user:pw@example.com/org/repo.git#v1.2:docs/./x");
        assert_eq!(s.remote, "https://user:pw@example.com/org/repo.git");
        assert_eq!(s.reference.as_deref(), Some("v1.2"));
        assert_eq!(s.subdir, "docs/x");
        assert_eq!(redact(&s.remote), "https://example.com/org/repo.git");
        let s = src("git@github.com:moby/buildkit.git#main");
        assert_eq!(s.remote, "git@github.com:moby/buildkit.git");
        assert_eq!(s.reference.as_deref(), Some("main"));
        let s = src("git://127.0.0.1:9418/repo");
        assert_eq!((s.reference, s.subdir.as_str()), (None, ""));
        let s = src("ssh://git@host/x#:sub");
        assert_eq!((s.reference, s.subdir.as_str()), (None, "sub"));
        let s = src("https://h/r.git?tag=v1&subdir=a&keep-git-dir=true");
        assert_eq!(s.reference.as_deref(), Some("refs/tags/v1"));
        assert_eq!(s.subdir, "a");
        assert_eq!(s.keep_git_dir, Some(true));
        assert!(parse("https://h/r.git?bogus=1").unwrap().is_err());
        assert!(parse("https://h/r.git#a?ref=b").unwrap().is_ok());
        assert!(parse("https://h/r.git?ref=b#a").unwrap().is_err());
        assert!(parse("https://h/r.git#-upload-pack=x").unwrap().is_err());
    }
}
