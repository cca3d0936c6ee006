//! COPY/ADD heredoc sources (`COPY <<EOF /etc/motd`): each becomes a file named after
//! its heredoc, mode 0644 whatever the umask (BuildKit's `Mkfile`), dated
//! `SOURCE_DATE_EPOCH` or the Unix epoch without one — made by the build, it has no
//! time of its own, and the build's would make every build's layer differ — in a directory of its own
//! in a store scratch dir the step removes when it ends. Being files, they are keyed on their content and
//! copied like any other source.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use rbuild_parser::instruction::InlineSource;
use rbuild_store::Store;
use rbuild_store::commit::UpperDir;

use super::context::{Entry, Selection};

/// Writes `sources` into one new scratch dir (added to `scratch`) and selects them.
pub(super) fn materialize(
    store: &Store,
    sources: &[InlineSource],
    epoch: Option<i64>,
    scratch: &mut Vec<UpperDir>,
) -> Result<Vec<Selection>, String> {
    if sources.is_empty() {
        return Ok(Vec::new());
    }
    let dir = store.new_upper_dir().map_err(|e| e.to_string())?;
    let root = dir.upper.clone();
    scratch.push(dir);
    let mut out = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        if s.name.contains('/') || s.name == "." || s.name == ".." {
            return Err(format!("heredoc name {:?} can't name a file", s.name));
        }
        // One directory each: two heredocs may share a name.
        let own = root.join(i.to_string());
        std::fs::create_dir(&own).map_err(|e| format!("writing the heredoc {}: {e}", s.name))?;
        let path = own.join(&s.name);
        let err = |e: std::io::Error| format!("writing the heredoc {}: {e}", s.name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)
            .map_err(err)?;
        f.write_all(s.content.as_bytes()).map_err(err)?;
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .map_err(err)?;
        f.set_modified(super::copy::made_time(epoch)).map_err(err)?;
        drop(f);
        let meta = std::fs::symlink_metadata(&path).map_err(err)?;
        out.push(Selection {
            top: Entry {
                rel: s.name.clone(),
                path,
                meta,
            },
            children: Vec::new(),
            keep_owner: false,
            // Never unpacked by ADD, like a download.
            remote: true,
        });
    }
    Ok(out)
}
