//! `rbuild commit`: a new image from a container's changes, as `docker commit` makes one
//! (moby `daemon/commit.go`, `image.NewChildImage`).
//!
//! - The parent is the container's image; the new top layer is the container's upper
//!   dir, copied (the container keeps its own) without the sandbox's mount-point
//!   leftovers (`Store::container_fs`), and committed by `Store::add_layer_dir`, the
//!   same path a RUN step's layer takes.
//! - A container that changed nothing gives an image with no new layer and a history
//!   entry marked `empty_layer`, as docker's graph-driver store does (`layer.IsEmpty`).
//! - The config is the container's (the image's, with `run`'s command, entrypoint,
//!   `-e`, `-w` and `-u`), then the `--change` instructions; `container_config` keeps the
//!   container's as it was, `container` its ID. The history entry is `{created,
//!   created_by: the container's command joined by spaces, author, comment}`.
//! - A running container is frozen while its upper dir is read (`--pause`, the
//!   default), through its cgroup ([`crate::cgroup`]), and thawed whatever happens.

use std::fs;

use rbuild_store::commit::CommittedLayer;
use rbuild_store::config::{ContainerConfig, History, ImageConfig, RootFs};
use rbuild_store::containers::{Container, RunConfig, State};
use rbuild_store::images::NewImage;
use rbuild_store::import::rfc3339_now;
use rbuild_store::{Digest, Store, StoreError};

use crate::cgroup::ContainerCgroup;
use crate::config_edit::{ConfigEditError, apply_changes};
use crate::upper_copy::{self, CopyError};

/// What `commit` was asked for.
pub struct Request<'a> {
    /// `-a`: the image's `author` and the history entry's.
    pub author: Option<String>,
    /// `-m`: the history entry's comment.
    pub message: Option<String>,
    /// `-c`: Dockerfile instructions applied to the config.
    pub changes: Vec<String>,
    /// Freeze a running container while its changes are read.
    pub pause: bool,
    /// Asked while copying; true stops the commit (nothing is stored).
    pub cancel: &'a dyn Fn() -> bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Change(#[from] ConfigEditError),
    #[error(transparent)]
    Copy(#[from] CopyError),
    #[error(
        "cannot pause container {0}: it has no freezer cgroup on this machine; commit it with --pause=false"
    )]
    NoFreezer(String),
    #[error("pausing container {id}: {source}")]
    Pause { id: String, source: std::io::Error },
    #[error("unpausing container {id}: {source}")]
    Unpause { id: String, source: std::io::Error },
}

/// Commits `container` as a new image and returns its ID. On any error nothing is
/// stored and the container is left as it was (thawed).
pub fn commit(
    store: &Store,
    container: &Container,
    req: &Request<'_>,
) -> Result<Digest, CommitError> {
    let image = store
        .image(&container.image_id)?
        .ok_or_else(|| StoreError::NoSuchImage(container.image_id.to_string()))?;
    let parent = store.config(&image.id)?;
    // A container recorded before its config was kept: its command is all there is.
    let run = store
        .run_config(&container.id)
        .unwrap_or_else(|_| RunConfig {
            args: container.command.clone(),
            ..RunConfig::default()
        });
    let container_config = container_config(parent.config.clone().unwrap_or_default(), &run);
    let mut config = container_config.clone();
    // Before pausing anything: a bad change costs nothing.
    apply_changes(&mut config, &req.changes)?;

    // Held until the image exists: GC must not sweep the scratch or the new layer.
    let _lock = store.write_lock()?;
    let scratch = store.new_upper_dir()?;
    let layer = read_changes(store, container, req, &scratch.upper).and_then(|()| {
        let empty = fs::read_dir(&scratch.upper)
            .map_err(|source| StoreError::Io {
                what: format!("reading {}", scratch.upper.display()),
                source,
            })?
            .next()
            .is_none();
        if empty {
            Ok(None)
        } else {
            Ok(Some(store.add_layer_dir(&scratch.upper)?))
        }
    });
    let _ = scratch.remove();
    let layer = layer?;
    let bytes = image_config(
        &parent,
        container,
        &run,
        req,
        config,
        container_config,
        layer,
    );
    let id = store.create_image(
        &bytes,
        &NewImage {
            parent: Some(image.id.clone()),
            manifest: None,
        },
    )?;
    Ok(id)
}

/// Copies the container's changes into `dst`, the container frozen meanwhile if asked.
fn read_changes(
    store: &Store,
    container: &Container,
    req: &Request<'_>,
    dst: &std::path::Path,
) -> Result<(), CommitError> {
    let cgroup = if req.pause && container.state == State::Running {
        match ContainerCgroup::existing(&container.id) {
            Some(cg) => Some(cg),
            None => return Err(CommitError::NoFreezer(container.id.clone())),
        }
    } else {
        None
    };
    // A container the user paused stays paused: it is read as it is, and not thawed.
    let cgroup = cgroup.filter(|cg| !cg.is_frozen().unwrap_or(false));
    let frozen = match &cgroup {
        Some(cg) => Some(cg.freeze().map_err(|source| CommitError::Pause {
            id: container.id.clone(),
            source,
        })?),
        None => None,
    };
    // Read while frozen: a running container changes what is an artefact too.
    let copied = store
        .container_fs(container)
        .map_err(CommitError::from)
        .and_then(|view| {
            if view.upper.is_dir() {
                upper_copy::copy_upper(&view.upper, dst, &view.artefacts, req.cancel)?;
            }
            Ok(())
        });
    let thawed = match frozen {
        Some(f) => f.thaw().map_err(|source| CommitError::Unpause {
            id: container.id.clone(),
            source,
        }),
        None => Ok(()),
    };
    copied.and(thawed)
}

/// The container's config as docker keeps it: the image's, with what `run` changed.
fn container_config(image: ContainerConfig, run: &RunConfig) -> ContainerConfig {
    let split = run.entrypoint_len.min(run.args.len());
    let (entrypoint, cmd) = run.args.split_at(split);
    let non_empty = |v: &[String]| (!v.is_empty()).then(|| v.to_vec());
    ContainerConfig {
        entrypoint: non_empty(entrypoint),
        cmd: non_empty(cmd),
        env: non_empty(&run.env).or(image.env.clone()),
        user: (!run.user.is_empty())
            .then(|| run.user.clone())
            .or(image.user.clone()),
        // `run` resolves no WORKDIR to "/": docker leaves it empty.
        working_dir: if image.working_dir.is_none() && run.working_dir == "/" {
            None
        } else {
            Some(run.working_dir.clone())
        },
        ..image
    }
}

/// The new image's config (moby `image.NewChildImage`): the parent's platform and
/// history, one more layer unless nothing changed, and the commit's entry.
fn image_config(
    parent: &ImageConfig,
    container: &Container,
    run: &RunConfig,
    req: &Request<'_>,
    config: ContainerConfig,
    container_config: ContainerConfig,
    layer: Option<CommittedLayer>,
) -> Vec<u8> {
    let created = rfc3339_now();
    let author = req.author.clone().filter(|a| !a.is_empty());
    let mut diff_ids = parent.rootfs.diff_ids.clone();
    let empty_layer = layer.is_none();
    if let Some(l) = layer {
        diff_ids.push(l.diff_id);
    }
    let mut history = parent.history.clone();
    history.push(History {
        created: Some(created.clone()),
        author: author.clone(),
        created_by: Some(run.args[run.entrypoint_len.min(run.args.len())..].join(" ")),
        comment: req.message.clone().filter(|m| !m.is_empty()),
        empty_layer,
    });
    ImageConfig {
        architecture: parent.architecture.clone(),
        variant: parent.variant.clone(),
        os: parent.os.clone(),
        os_version: parent.os_version.clone(),
        os_features: parent.os_features.clone(),
        author,
        created: Some(created),
        config: Some(config),
        container: Some(container.id.clone()),
        container_config: Some(container_config),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids,
        },
        history,
        ..ImageConfig::default()
    }
    .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_containers_command_and_overrides_become_the_config() {
        let image = ContainerConfig {
            entrypoint: Some(vec!["/ep".into()]),
            cmd: Some(vec!["default".into()]),
            env: Some(vec!["PATH=/bin".into()]),
            labels: Some([("k".to_string(), "v".to_string())].into()),
            ..ContainerConfig::default()
        };
        let run = RunConfig {
            args: vec!["/ep".into(), "sh".into(), "-c".into(), "echo hi".into()],
            entrypoint_len: 1,
            env: vec!["PATH=/bin".into(), "X=1".into()],
            working_dir: "/".into(),
            ..RunConfig::default()
        };
        let c = container_config(image, &run);
        assert_eq!(c.entrypoint, Some(vec!["/ep".to_string()]));
        assert_eq!(
            c.cmd,
            Some(vec![
                "sh".to_string(),
                "-c".to_string(),
                "echo hi".to_string()
            ])
        );
        assert_eq!(c.env.as_ref().unwrap().len(), 2);
        assert_eq!(c.working_dir, None, "no WORKDIR stays none");
        assert_eq!(c.user, None);
        assert!(
            c.labels.is_some(),
            "what run does not change is the image's"
        );
    }
}
