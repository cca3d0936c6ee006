//! `rmi` and `image prune`, with Docker's rules (moby `daemon/images/image_delete.go`):
//! removing a name only untags unless it was the image's last; deleting an image also
//! deletes the untagged parents nothing else needs; an image with children is never
//! deleted; an ID that several names share needs `force`.

use rusqlite::params;

use crate::containers::State;
use crate::digest::Digest;
use crate::error::StoreError;
use crate::images::ImageRecord;
use crate::reference::ImageRef;
use crate::store::Store;

/// One line of what a removal did, in the order Docker prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    Untagged(ImageRef),
    Deleted(Digest),
}

/// What `image prune` did.
#[derive(Debug, Default)]
pub struct PruneReport {
    pub removed: Vec<Removed>,
    /// Bytes freed on disk (layer trees and blobs).
    pub reclaimed: u64,
}

impl Store {
    /// `rmi [-f] [--no-prune] NAME|ID`.
    pub fn remove_image(
        &self,
        name_or_id: &str,
        force: bool,
        prune_parents: bool,
    ) -> Result<Vec<Removed>, StoreError> {
        let img = self.resolve(name_or_id)?;
        let mut out = Vec::new();
        let by_id = is_id_of(name_or_id, &img.id);
        if !by_id {
            let r = ImageRef::parse(name_or_id)
                .map_err(|e| StoreError::Reference(e.to_string()))?
                .with_default_tag();
            // Like Docker: the last name of an image a container uses stays unless
            // forced, so the image does not silently become dangling.
            if !force
                && self.refs_of(&img.id)?.len() <= 1
                && let Some(c) = self.containers_of(&img.id)?.first()
            {
                return Err(StoreError::Conflict(format!(
                    "unable to remove repository reference {name_or_id:?} (must force) - container {} is using its referenced image {}",
                    c.short_id(),
                    img.id.short()
                )));
            }
            self.untag(&r)?;
            out.push(Removed::Untagged(r.clone()));
            let mut remaining = self.refs_of(&img.id)?;
            // Like Docker: once no tag of that repository is left, its digest
            // references go too.
            if r.digest().is_none()
                && !remaining
                    .iter()
                    .any(|x| x.digest().is_none() && x.full_name() == r.full_name())
            {
                let (same, other): (Vec<_>, Vec<_>) = remaining
                    .into_iter()
                    .partition(|x| x.full_name() == r.full_name());
                for d in same {
                    self.untag(&d)?;
                    out.push(Removed::Untagged(d));
                }
                remaining = other;
            }
            if !remaining.is_empty() {
                return Ok(out);
            }
            // The last name went: delete the image unless children need it.
            self.delete_helper(&img.id, &mut out, force, prune_parents, true)?;
        } else {
            let refs = self.refs_of(&img.id)?;
            let tags = refs.iter().filter(|r| r.digest().is_none()).count();
            let one_repo = refs
                .windows(2)
                .all(|w| w[0].full_name() == w[1].full_name());
            if tags <= 1 && one_repo {
                self.check_conflict(&img.id, true, false)?;
                // Nothing is untagged when a container's use stops the deletion.
                self.container_conflict(&img.id, !force)?;
                for r in refs {
                    self.untag(&r)?;
                    out.push(Removed::Untagged(r));
                }
            }
            self.delete_helper(&img.id, &mut out, force, prune_parents, false)?;
        }
        Ok(out)
    }

    fn refs_of(&self, id: &Digest) -> Result<Vec<ImageRef>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name FROM refs WHERE image_id = ?1 ORDER BY name")?;
        let names = stmt
            .query_map([id.to_string()], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(names
            .iter()
            .filter_map(|n| ImageRef::parse(n).ok())
            .collect())
    }

    /// Docker's conflicts: children and running containers are hard (never forced),
    /// names and stopped containers are soft.
    fn check_conflict(&self, id: &Digest, children: bool, names: bool) -> Result<(), StoreError> {
        if children && !self.children(id)?.is_empty() {
            return Err(StoreError::Conflict(format!(
                "unable to delete {} (cannot be forced) - image has dependent child images",
                id.short()
            )));
        }
        self.container_conflict(id, false)?;
        if names && !self.refs_of(id)?.is_empty() {
            return Err(StoreError::Conflict(format!(
                "unable to delete {} (must be forced) - image is referenced in multiple repositories",
                id.short()
            )));
        }
        self.container_conflict(id, names)
    }

    /// A running container using the image is a hard conflict; a stopped one a soft
    /// one, checked when `stopped`.
    fn container_conflict(&self, id: &Digest, stopped: bool) -> Result<(), StoreError> {
        let users = self.containers_of(id)?;
        if let Some(c) = users.iter().find(|c| c.state == State::Running) {
            return Err(StoreError::Conflict(format!(
                "unable to delete {} (cannot be forced) - image is being used by running container {}",
                id.short(),
                c.short_id()
            )));
        }
        if stopped && let Some(c) = users.first() {
            return Err(StoreError::Conflict(format!(
                "unable to delete {} (must be forced) - image is being used by stopped container {}",
                id.short(),
                c.short_id()
            )));
        }
        Ok(())
    }

    fn delete_helper(
        &self,
        id: &Digest,
        out: &mut Vec<Removed>,
        force: bool,
        prune_parents: bool,
        quiet: bool,
    ) -> Result<(), StoreError> {
        if let Err(conflict) = self.check_conflict(id, true, !force) {
            // Pruning a parent, or deleting after the last untag: a conflict just
            // means the image stays (Docker's "quiet" mode).
            if quiet {
                return Ok(());
            }
            return Err(conflict);
        }
        let parent = self.image(id)?.and_then(|i| i.parent);
        for r in self.refs_of(id)? {
            self.untag(&r)?;
            out.push(Removed::Untagged(r));
        }
        // Forced past a stopped container: the names go, but the image stays (dangling)
        // while a container uses it; it goes with the last such container's `rm` and
        // the next prune. Docker deletes the record and leaves the container pointing
        // at a missing image; here the container can still be diffed and committed.
        if !self.containers_of(id)?.is_empty() {
            return Ok(());
        }
        self.conn
            .execute("DELETE FROM images WHERE id = ?1", params![id.to_string()])?;
        out.push(Removed::Deleted(id.clone()));
        match parent {
            Some(p) if prune_parents => {
                if self.image(&p)?.is_some() {
                    self.delete_helper(&p, out, false, true, true)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// `image prune`: dangling images (untagged, no children), or with `all` every image
    /// that nothing needs, restricted to those `select` accepts. Then collects garbage.
    pub fn prune_images(
        &self,
        all: bool,
        select: &dyn Fn(&ImageRecord) -> bool,
    ) -> Result<PruneReport, StoreError> {
        let images = self.images()?;
        let mut report = PruneReport::default();
        for img in images {
            if !all && !self.children(&img.id)?.is_empty() {
                continue;
            }
            if !select(&img) || self.image(&img.id)?.is_none() {
                continue;
            }
            if !all && img.is_tagged() {
                continue;
            }
            let targets: Vec<String> = if img.tags.is_empty() && img.digests.is_empty() {
                vec![img.id.to_string()]
            } else {
                img.tags
                    .iter()
                    .chain(&img.digests)
                    .map(|r| r.to_string())
                    .collect()
            };
            for t in targets {
                match self.remove_image(&t, false, true) {
                    Ok(removed) => report.removed.extend(removed),
                    Err(StoreError::Conflict(_) | StoreError::NoSuchImage(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        report.reclaimed = self.collect_garbage()?.reclaimed;
        Ok(report)
    }
}

/// Whether `s` names the image by ID (full, `sha256:`-prefixed, or a prefix of it)
/// rather than by a reference.
fn is_id_of(s: &str, id: &Digest) -> bool {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    !hex.is_empty() && id.hex().starts_with(hex)
}
