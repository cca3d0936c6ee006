//! Mounts a dead build left under `tmp/`: a builder killed with `kill -9` while a RUN step
//! had its overlay mounted leaves that mount behind (the kernel drops flocks with the
//! process, not mounts). GC must detach it before it can remove the scratch directory,
//! and must not walk into it (removing files *through* the overlay would only add
//! whiteouts to the dead step's upper dir, slowly). GC runs under the exclusive store lock,
//! so no live build has a mount there.
//!
//! The builder mounts (builder `sys/mount.rs`); this is the one unmount the store does, for
//! `image prune` and `system prune`, which run without any builder.

use std::io;
use std::path::{Path, PathBuf};

/// Mount points at or under `dir` in `/proc/self/mountinfo`, deepest first.
pub(crate) fn mounts_under(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(parse_mounts_under(&info, dir))
}

fn parse_mounts_under(info: &str, dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = info
        .lines()
        // proc(5), /proc/pid/mountinfo: field 5 is the mount point.
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    out
}

/// mountinfo writes space, tab, newline and backslash as `\ooo` octal escapes.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let d = |k: usize| u32::from(b[i + k] - b'0');
            out.push((d(1) * 64 + d(2) * 8 + d(3)) as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Detaches every mount at or under `dir` (`umount2(MNT_DETACH)`, umount(2): the mount
/// disappears from the tree now and is freed when nothing uses it).
pub(crate) fn detach_under(dir: &Path) -> io::Result<()> {
    for m in mounts_under(dir)? {
        match nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => {
                return Err(io::Error::other(format!(
                    "detaching the leftover mount {}: {e}",
                    m.display()
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_mounts_under_a_dir_deepest_first() {
        let info = "\
22 1 8:1 / / rw,relatime - ext4 /dev/vda rw
90 22 0:50 / /var/lib/rbuild/tmp/snap-1/merged rw - overlay overlay rw,lowerdir=x
91 90 0:51 / /var/lib/rbuild/tmp/snap-1/merged/proc rw - proc proc rw
92 22 0:52 / /var/lib/rbuild/tmpx rw - tmpfs tmpfs rw
93 22 0:53 / /var/lib/rbuild/tmp/a\\040b rw - tmpfs tmpfs rw
";
        let got = parse_mounts_under(info, Path::new("/var/lib/rbuild/tmp"));
        assert_eq!(
            got,
            vec![
                PathBuf::from("/var/lib/rbuild/tmp/snap-1/merged/proc"),
                PathBuf::from("/var/lib/rbuild/tmp/snap-1/merged"),
                PathBuf::from("/var/lib/rbuild/tmp/a b"),
            ]
        );
    }
}
