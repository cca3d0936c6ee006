//! ADD's archive extraction: a local tar, plain or gzip/bzip2/xz compressed (told by
//! magic bytes, as Docker does), extracted into a private staging directory that the
//! copy then merges into the destination like a directory source.
//!
//! Confined like layer extraction (store `layer::extract`): a leading `/` is dropped
//! (Docker extracts absolute members relative to the destination), `..` components are
//! refused, and no member is written through a symlink (a symlink as a parent is
//! refused), so nothing outside the staging directory is ever touched. Whiteout names are
//! ordinary files here, as in Docker's ADD. Owners, modes and mtimes come from the tar;
//! hard links are made inside the staging directory (the copy then writes their
//! contents); devices and FIFOs are refused.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tar::EntryType;

/// The decompressed stream of an archive file.
pub fn open(path: &Path) -> io::Result<Box<dyn Read>> {
    let mut f = fs::File::open(path)?;
    let mut head = [0u8; 6];
    let n = f.read(&mut head)?;
    let f = io::BufReader::new(io::Cursor::new(head[..n].to_vec()).chain(f));
    let head = &head[..n];
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(f))
    } else if head.starts_with(b"BZh") {
        Box::new(bzip2::read::MultiBzDecoder::new(f))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Box::new(xz2::read::XzDecoder::new_multi_decoder(f))
    } else {
        Box::new(f)
    })
}

/// Extracts the archive at `path` into `dest` (an empty private directory). `name` is
/// the source as the user knows it, for messages.
pub fn extract(path: &Path, dest: &Path, name: &str) -> Result<(), String> {
    let r = open(path).map_err(|e| format!("{name}: {e}"))?;
    let mut archive = tar::Archive::new(r);
    let mut dirs: BTreeMap<PathBuf, (u32, SystemTime)> = BTreeMap::new();
    let entries = archive
        .entries()
        .map_err(|e| format!("{name}: not a tar archive: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("{name}: reading the archive: {e}"))?;
        let member = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let fail = |why: String| format!("{name}: member {member:?}: {why}");
        let comps = components(&member).map_err(|e| fail(e.to_string()))?;
        let Some((last, parents)) = comps.split_last() else {
            continue; // the archive's `.` itself
        };
        let parent = walk_dirs(dest, parents, &mut dirs).map_err(&fail)?;
        let host = parent.join(last);
        let h = entry.header();
        let kind = h.entry_type();
        let mode = h.mode().unwrap_or(0o644) & 0o7777;
        let uid = h.uid().unwrap_or(0) as u32;
        let gid = h.gid().unwrap_or(0) as u32;
        let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(h.mtime().unwrap_or(0));
        let existing = fs::symlink_metadata(&host).ok();
        if let Some(m) = &existing
            && !(m.is_dir() && kind == EntryType::Directory)
        {
            if m.is_dir() {
                fs::remove_dir_all(&host)
            } else {
                fs::remove_file(&host)
            }
            .map_err(|e| fail(format!("replacing: {e}")))?;
        }
        let io = |what: &'static str| move |e: io::Error| format!("{what}: {e}");
        match kind {
            EntryType::Directory => {
                if !host.is_dir() {
                    fs::create_dir(&host)
                        .map_err(io("creating"))
                        .map_err(&fail)?;
                }
                chown(&host, uid, gid).map_err(&fail)?;
                dirs.insert(host, (mode, mtime));
            }
            EntryType::Regular | EntryType::Continuous => {
                let mut f = fs::File::create(&host)
                    .map_err(io("creating"))
                    .map_err(&fail)?;
                io::copy(&mut entry, &mut f)
                    .map_err(io("writing"))
                    .map_err(&fail)?;
                drop(f);
                chown(&host, uid, gid).map_err(&fail)?;
                fs::set_permissions(&host, fs::Permissions::from_mode(mode))
                    .map_err(io("chmod"))
                    .map_err(&fail)?;
                set_mtime(&host, mtime).map_err(&fail)?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .ok()
                    .flatten()
                    .ok_or_else(|| fail("symlink without a target".into()))?;
                std::os::unix::fs::symlink(&target, &host)
                    .map_err(io("creating symlink"))
                    .map_err(&fail)?;
                chown(&host, uid, gid).map_err(&fail)?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| fail("hard link without a target".into()))?;
                let target = String::from_utf8_lossy(&target).into_owned();
                let tcomps = components(&target).map_err(|e| fail(e.to_string()))?;
                let Some((tlast, tparents)) = tcomps.split_last() else {
                    return Err(fail("hard link to the archive root".into()));
                };
                let tparent = walk_dirs(dest, tparents, &mut dirs).map_err(&fail)?;
                let thost = tparent.join(tlast);
                match fs::symlink_metadata(&thost) {
                    Ok(m) if m.is_file() => {}
                    _ => {
                        return Err(fail(format!(
                            "hard link to {target:?}, which is not a file earlier in the archive"
                        )));
                    }
                }
                fs::hard_link(&thost, &host)
                    .map_err(io("linking"))
                    .map_err(&fail)?;
            }
            EntryType::XGlobalHeader | EntryType::XHeader => {}
            other => return Err(fail(format!("unsupported entry type {other:?}"))),
        }
    }
    // Deepest first: setting a child's metadata must not change a parent's mtime later.
    for (dir, (mode, mtime)) in dirs.iter().rev() {
        fs::set_permissions(dir, fs::Permissions::from_mode(*mode))
            .map_err(|e| format!("{name}: chmod {}: {e}", dir.display()))?;
        set_mtime(dir, *mtime).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

/// A member path's components: `/` and `.` dropped, `..` refused.
fn components(raw: &str) -> Result<Vec<&str>, &'static str> {
    if raw.contains('\0') {
        return Err("path contains a NUL byte");
    }
    let mut out = Vec::new();
    for p in raw.split('/') {
        match p {
            "" | "." => {}
            ".." => return Err("path escapes the destination (`..`)"),
            x => out.push(x),
        }
    }
    Ok(out)
}

/// Walks (making 0755 where missing) real directories under `root`; a symlink or a
/// non-directory on the way is refused. A directory made here (the archive has no entry
/// for it, or not yet) goes into `dirs` dated 0, the time of what a build makes without
/// `SOURCE_DATE_EPOCH` (`copy::made_time`), not the time of the build; an entry for it
/// later in the archive replaces that.
fn walk_dirs(
    root: &Path,
    parts: &[&str],
    dirs: &mut BTreeMap<PathBuf, (u32, SystemTime)>,
) -> Result<PathBuf, String> {
    let mut path = root.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        path.push(part);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!(
                    "parent {:?} is a symbolic link; a member may not go through one",
                    parts[..=i].join("/")
                ));
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(format!(
                    "parent {:?} is not a directory",
                    parts[..=i].join("/")
                ));
            }
            Err(_) => {
                fs::create_dir(&path).map_err(|e| format!("creating a parent: {e}"))?;
                fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
                    .map_err(|e| format!("creating a parent: {e}"))?;
                dirs.insert(path.clone(), (0o755, SystemTime::UNIX_EPOCH));
            }
        }
    }
    Ok(path)
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(|e| format!("chown: {e}"))
}

fn set_mtime(path: &Path, t: SystemTime) -> Result<(), String> {
    fs::File::open(path)
        .and_then(|f| f.set_modified(t))
        .map_err(|e| format!("setting mtime of {}: {e}", path.display()))
}
