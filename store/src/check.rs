//! `system check`: re-hashes every blob and follows every reference, so a user (or a
//! test after `kill -9`) can tell whether the store is sound.

use std::io::{self, Read};

use crate::digest::{Digest, Verifying};
use crate::error::StoreError;
use crate::store::{Store, io_err};

/// What a check found.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub blobs: usize,
    pub images: usize,
    pub layers: usize,
    /// Damage: each line names the blob, image or layer and what is wrong.
    pub problems: Vec<String>,
    /// Leftovers that are not damage (an interrupted write's scratch, blobs no image
    /// needs); the next GC removes them.
    pub reclaimable: Vec<String>,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Store {
    /// Verifies the whole store without changing it.
    pub fn check(&self) -> Result<CheckReport, StoreError> {
        let mut report = CheckReport::default();
        let integrity: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if integrity != "ok" {
            report
                .problems
                .push(format!("metadata database: {integrity}"));
        }
        let mut stmt = self.conn.prepare("PRAGMA foreign_key_check")?;
        let fk: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<_, _>>()?;
        for table in fk {
            report.problems.push(format!(
                "metadata database: a row in {table} points at nothing"
            ));
        }
        drop(stmt);

        let keep = self.reachable()?;
        for d in self.blobs().list().map_err(io_err("reading blobs/"))? {
            report.blobs += 1;
            if let Err(e) = self.verify_blob(&d) {
                report.problems.push(format!("blob {d}: {e}"));
            }
            if !keep.blobs.contains(&d) {
                report
                    .reclaimable
                    .push(format!("blob {d} is not used by any image"));
            }
        }
        for d in &keep.blobs {
            if !self.blobs().contains(d) {
                report
                    .problems
                    .push(format!("blob {d} is referenced but missing"));
            }
        }

        let mut stmt = self.conn.prepare("SELECT diff_id FROM layers")?;
        let layers: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        drop(stmt);
        for l in layers {
            report.layers += 1;
            match l.parse::<Digest>() {
                // A pulled layer may be only packed until first use.
                Ok(d) if self.layer_size(&d)?.is_none() => report.problems.push(format!(
                    "layer {d}: neither its extracted tree nor a blob holding it is here"
                )),
                Ok(_) => {}
                Err(e) => report.problems.push(format!("layer row {l:?}: {e}")),
            }
        }

        // A tree renamed into layers/ by a writer killed before it recorded it.
        for entry in std::fs::read_dir(self.layers_dir()).map_err(io_err("reading layers/"))? {
            let name = entry.map_err(io_err("reading layers/"))?.file_name();
            let known = name
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
                .is_some_and(|d| keep.layers.contains(&d));
            if !known {
                report.reclaimable.push(format!(
                    "layer tree layers/{} is not used by any image",
                    name.to_string_lossy()
                ));
            }
        }

        for img in self.images()? {
            report.images += 1;
            match self.config(&img.id) {
                Ok(config) => {
                    if config.rootfs.diff_ids != img.layers {
                        report.problems.push(format!(
                            "image {}: recorded layers differ from its config's rootfs",
                            img.id
                        ));
                    }
                }
                Err(e) => report.problems.push(format!("image {}: {e}", img.id)),
            }
            if let Some(p) = &img.parent
                && self.image(p)?.is_none()
            {
                report
                    .problems
                    .push(format!("image {}: parent {p} is missing", img.id));
            }
            if let Some(m) = &img.manifest
                && let Err(e) = self.blobs().read(m)
            {
                report
                    .problems
                    .push(format!("image {} manifest: {e}", img.id));
            }
        }

        for (dir, what) in [
            (self.blobs().ingest_dir().to_path_buf(), "ingest"),
            (self.tmp_dir(), "tmp"),
        ] {
            let n = std::fs::read_dir(&dir)
                .map_err(io_err(format!("reading {what}/")))?
                .count();
            if n > 0 {
                report
                    .reclaimable
                    .push(format!("{n} unfinished write(s) left in {what}/"));
            }
        }
        Ok(report)
    }

    fn verify_blob(&self, d: &Digest) -> io::Result<()> {
        let f = self.blobs().open(d).map_err(io::Error::other)?;
        let mut v = Verifying::new(io::BufReader::with_capacity(1 << 20, f), d.clone(), None);
        let mut buf = vec![0u8; 1 << 20];
        while v.read(&mut buf)? > 0 {}
        Ok(())
    }
}
