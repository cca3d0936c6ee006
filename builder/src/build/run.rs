//! RUN steps for real: a snapshot of the parent's layers (overlay, or the copying
//! fallback), the command in the sandbox on its merged root, and the upper dir
//! committed as the step's layer.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};

use rbuild_store::Store;
use rbuild_store::commit::CommittedLayer;

use super::{NetworkMode, RunRequest, RunStep};
use crate::sandbox::{self, MountKind, Network, SandboxError, SandboxMount, SandboxSpec};
use crate::snapshot::{CommitOptions, Snapshot};

/// Runs RUN steps in the sandbox; `cancel` (set on Ctrl-C or SIGTERM) or the request's
/// `abort` (set when another stage of the build failed) stops a running step, and the
/// snapshot's `Drop` unmounts and removes what it had.
pub struct SandboxRunner<'a> {
    pub cancel: &'a AtomicBool,
}

impl RunStep for SandboxRunner<'_> {
    fn run(&self, store: &Store, req: RunRequest<'_>) -> Result<Option<CommittedLayer>, String> {
        let abort = req.abort;
        let stop = || self.cancel.load(Ordering::Relaxed) || abort.load(Ordering::Relaxed);
        let snapshot = Snapshot::prepare(store, &req.parent_layers).map_err(|e| e.to_string())?;
        // After the snapshot, so the mounts' snapshots and locks go first on drop.
        let prepared = super::run_mounts::prepare(
            &super::run_mounts::Inputs {
                store,
                context: req.context,
                secrets: req.secrets,
                sources: req.mount_sources,
                workdir: &req.workdir,
                cancel: &stop,
            },
            &req.mounts,
        )?;
        let mut env = req.env;
        env.extend(prepared.env.iter().cloned());
        let mut mounts = prepared.mounts.clone();
        // Kept until the command is done.
        let _script = match &req.script_file {
            Some((name, body)) => {
                let (dir, file) = script_file(store, body)?;
                mounts.push(SandboxMount {
                    source: Some(file),
                    target: format!("/dev/pipes/{name}"),
                    kind: MountKind::Bind { readonly: true },
                });
                Some(dir)
            }
            None => None,
        };
        let spec = SandboxSpec {
            rootfs: snapshot.merged().to_path_buf(),
            args: req.cmd.clone(),
            env,
            cwd: req.workdir,
            user: req.user.unwrap_or_default(),
            hostname: String::new(),
            network: match req.network {
                NetworkMode::Host => Network::Host,
                NetworkMode::None => Network::None,
            },
            hosts: None,
            resolv_conf: None,
            mounts,
            readonly_rootfs: false,
            tty: false,
            stdin: false,
            cgroup: None,
        };
        let output = RefCell::new(req.output);
        let outcome = sandbox::run_cancellable(
            &spec,
            &stop,
            |b| (output.borrow_mut())(b),
            |b| (output.borrow_mut())(b),
        );
        let outcome = match outcome {
            Ok(o) => o,
            Err(SandboxError::Cancelled) if abort.load(Ordering::Relaxed) => {
                return Err("cancelled: another stage failed".to_string());
            }
            Err(SandboxError::Cancelled) => return Err("interrupted".to_string()),
            Err(e) => return Err(e.to_string()),
        };
        if !outcome.success() {
            // BuildKit's words, so scripts that grep for them keep working.
            return Err(format!(
                "process \"{}\" did not complete successfully: exit code: {}",
                shown_command(&req.cmd),
                outcome.exit_code
            ));
        }
        drop(prepared);
        let layer = snapshot
            .commit(
                store,
                &CommitOptions {
                    clamp_mtime: req.clamp_mtime,
                },
            )
            .map_err(|e| e.to_string())?;
        // A step that changed nothing adds no layer: BuildKit marks its history entry
        // empty too.
        Ok((!layer.empty).then_some(layer))
    }
}

/// The command as BuildKit shows it in errors: `/bin/sh -c make`.
fn shown_command(cmd: &[String]) -> String {
    cmd.join(" ")
}

/// Writes a heredoc script to a private scratch directory of the store, mode 0755.
fn script_file(
    store: &Store,
    body: &str,
) -> Result<(tempfile::TempDir, std::path::PathBuf), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |e: std::io::Error| format!("writing the heredoc script: {e}");
    let dir = tempfile::Builder::new()
        .prefix("heredoc-")
        .tempdir_in(store.root().join("tmp"))
        .map_err(err)?;
    let path = dir.path().join("script");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(&path)
        .map_err(err)?;
    f.write_all(body.as_bytes()).map_err(err)?;
    // Whatever the umask: a USER other than root runs it too.
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(err)?;
    Ok((dir, path))
}
