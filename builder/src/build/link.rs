//! `COPY --link` / `ADD --link`: the files go into an empty layer that does not depend
//! on the image below it (BuildKit copies onto `scratch` and merges the result on top,
//! `dockerfile2llb/convert_copy.go`). Two things follow, and both are done here:
//!
//! * The copy sees none of the base's files: the destination is not resolved through
//!   the base's symlinks, directories it creates are new (0755, the copy's owner), and
//!   `--chown` can't name users or groups, as there is no `/etc/passwd` to read.
//!   BuildKit fails on names there too (`invalid user index: -1`); numbers and `root`
//!   work.
//! * The layer can be reused when only what lies below it changed: besides the step's
//!   own key, a `link:` key made without the parent image names the image the step
//!   made before, and a miss on the step's key takes that image's top layer (no copy)
//!   under the new parent. The step's image is still a new one (its parent differs),
//!   so the progress says the layer was reused rather than `CACHED`.
//!
//! As in BuildKit, `--link` with `--chmod` is an ordinary copy.

use rbuild_parser::instruction::Instruction;
use rbuild_store::{Digest, Store, StoreError};

use super::cache::Inputs;

/// Whether the step copies as `--link` does.
pub fn active(instr: &Instruction) -> bool {
    match instr {
        Instruction::Copy(c) => c.link && c.chmod.is_none(),
        Instruction::Add(a) => a.link && a.chmod.is_none(),
        _ => false,
    }
}

/// The key of the step's layer alone: its inputs without the parent image, but with
/// the WORKDIR a relative destination is resolved against (all the step takes from
/// the image below).
pub fn key(inputs: &Inputs, workdir: &str) -> String {
    let layer_only = Inputs {
        parent: format!("--link workdir={workdir}"),
        ..inputs.clone()
    };
    format!("link:{}", layer_only.key())
}

/// The top layer of the image a `--link` step with this `key` made before, if that
/// image and its layer are still stored.
pub fn reuse(store: &Store, key: &str) -> Result<Option<Digest>, StoreError> {
    let Some(id) = store.cache_get(key)? else {
        return Ok(None);
    };
    if store.image(&id)?.is_none() {
        return Ok(None);
    }
    let config = store.config(&id)?;
    let made_layer = config.history.last().is_some_and(|h| !h.empty_layer);
    let Some(diff_id) = config.rootfs.diff_ids.last().filter(|_| made_layer) else {
        return Ok(None);
    };
    Ok(store
        .layer_size(diff_id)?
        .is_some()
        .then(|| diff_id.clone()))
}

/// `--chown` of a `--link` copy: numbers (or `root`), a lone user also giving the
/// group, as BuildKit's `llb.WithUser` parses them.
pub fn owner(spec: &str) -> Result<(u32, u32), String> {
    let id = |s: &str| -> Result<u32, String> {
        if s == "root" {
            return Ok(0);
        }
        s.parse().map_err(|_| {
            format!(
                "--chown={spec} with --link: the name {s:?} can't be looked up, as a --link \
                 layer is made without the image's /etc/passwd and /etc/group; use numeric \
                 IDs (BuildKit can't resolve names here either)"
            )
        })
    };
    match spec.split_once(':') {
        Some((u, g)) => Ok((id(u)?, id(g)?)),
        None => {
            let u = id(spec)?;
            Ok((u, u))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layer_key_leaves_the_parent_out_but_not_the_workdir() {
        let mut a = Inputs {
            parent: "sha256:one".into(),
            text: "COPY --link f rel/".into(),
            ..Inputs::default()
        };
        let k = key(&a, "/w");
        a.parent = "sha256:two".into();
        assert_eq!(key(&a, "/w"), k);
        assert_ne!(key(&a, "/other"), k);
        a.text.push(' ');
        assert_ne!(key(&a, "/w"), k);
        assert_ne!(a.key(), k.trim_start_matches("link:"));
    }

    #[test]
    fn owners_are_numbers_or_root() {
        assert_eq!(owner("7").unwrap(), (7, 7));
        assert_eq!(owner("7:8").unwrap(), (7, 8));
        assert_eq!(owner("root").unwrap(), (0, 0));
        assert_eq!(owner("root:5").unwrap(), (0, 5));
        let e = owner("app:staff").unwrap_err();
        assert!(e.contains("\"app\"") && e.contains("numeric"), "{e}");
        assert!(owner("1:staff").is_err());
    }
}
