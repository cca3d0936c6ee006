//! The overlay mount of a snapshot, as data: plain code, unit-tested without root.
//!
//! Options (kernel `Documentation/filesystems/overlayfs.rst`):
//!
//! - `lowerdir=` top layer first ("the lower layers are stacked … from top to bottom");
//!   an image's diff IDs are bottom first, so they are reversed here.
//! - `index=off`, `redirect_dir=off`, `metacopy=off`, `xino=off`: the upper dir is not
//!   only overlay's private state here, it *becomes the layer* (DESIGN.md step 5), and the
//!   layer tar writer (`rbuild_store::layer::write_tar`) understands exactly two overlay
//!   features: 0/0 whiteouts and `trusted.overlay.opaque`. So every feature that would put
//!   anything else meaningful in the upper dir is off, whatever the kernel's or the
//!   module's defaults (`CONFIG_OVERLAY_FS_*`, `/sys/module/overlay/parameters`) say:
//!   - `metacopy=on` copies up only metadata on chmod/chown, leaving a *data-less* file in
//!     upper that points at the lower one by xattr: the layer would hold an empty file.
//!   - `redirect_dir=on` renames a lower directory by recording a redirect xattr in upper
//!     instead of copying it: the layer would hold an empty dir. Off, rename(2) of a
//!     lower dir fails with EXDEV and tools (mv, rename in coreutils, dpkg) copy instead,
//!     as they do on Docker's overlay2 (which also turns it off).
//!   - `index=on` keeps hard links to copied-up lower files in `work/index` and needs
//!     file handles that stay valid across mounts; it matters for NFS export and keeping
//!     lower hard links unbroken on copy-up, neither of which a build step needs, and
//!     it fails mounts of lowers from different file systems.
//!   - `xino=off`: st_ino seen through the mount is the real inode number of the upper
//!     or lower file, not one with the layer's number in its high bits; the sandbox and
//!     the tools in it get plain numbers, and nothing here needs them unique across
//!     layers (the layer writer reads the upper dir directly, not through the mount).
//!
//!   This is BuildKit's and containerd's choice too: both refuse to use the overlay
//!   differ when `redirect_dir`/`metacopy` are on (buildkit `util/overlay/overlay_linux.go`
//!   `overlaySupportsDiff` checks `/sys/module/overlay/parameters/{redirect_dir,metacopy}`).
//! - A `FROM scratch` step has no lower layer, and overlay requires at least one: an empty
//!   directory of the snapshot's own stands in.
//! - The options must fit one page; with many layers they do not (a layer path is ~90
//!   bytes, so ~40 layers). Then each lower dir gets a symlink `l/<n>` in the snapshot's
//!   scratch dir and the mount is made from there with relative paths (`l/0:l/1`,
//!   `upper`, `work`): ~5 bytes a layer, far beyond overlay's own limit of 500 lowers.
//!   Paths that contain `,` `:` or `\` (which the option parser would split or unescape)
//!   take the same route, as the short names contain none.

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use crate::sys::mount::{MAX_DATA_LEN, Mount};

/// The options that keep the upper dir in the plain format the layer writer reads.
pub(crate) const PLAIN_UPPER: &str = "index=off,redirect_dir=off,metacopy=off,xino=off";

/// How to make the overlay mount of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OverlayPlan {
    pub mount: Mount,
    /// When set, the data holds relative paths: make these symlinks (link → target)
    /// first, then mount from this directory ([`crate::sys::mount::mount_from`]).
    pub from: Option<FromDir>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FromDir {
    pub dir: PathBuf,
    pub symlinks: Vec<(PathBuf, PathBuf)>,
}

/// The scratch dirs of one snapshot.
#[derive(Debug, Clone)]
pub(crate) struct Dirs<'a> {
    /// The snapshot's scratch root, holding the others.
    pub root: &'a Path,
    pub upper: &'a Path,
    pub work: &'a Path,
    pub merged: &'a Path,
}

fn safe_in_options(p: &Path) -> bool {
    p.to_str()
        .is_some_and(|s| !s.contains([',', ':', '\\']) && !s.is_empty())
}

/// Plans the overlay mount of `lowers` (top layer first; never empty — the caller puts an
/// empty dir there for `FROM scratch`).
pub(crate) fn plan(lowers: &[PathBuf], dirs: &Dirs) -> OverlayPlan {
    assert!(!lowers.is_empty(), "overlay needs at least one lower dir");
    let mount = |data: String| Mount {
        fstype: "overlay".into(),
        source: "overlay".into(),
        target: dirs.merged.to_path_buf(),
        flags: MsFlags::empty(),
        data,
    };
    let all_safe = lowers
        .iter()
        .chain([&dirs.upper.to_path_buf(), &dirs.work.to_path_buf()])
        .all(|p| safe_in_options(p));
    if all_safe {
        let data = options(
            lowers.iter().map(|p| p.to_str().expect("checked")),
            dirs.upper.to_str().expect("checked"),
            dirs.work.to_str().expect("checked"),
        );
        if data.len() <= MAX_DATA_LEN {
            return OverlayPlan {
                mount: mount(data),
                from: None,
            };
        }
    }
    let links: Vec<String> = (0..lowers.len()).map(|i| format!("l/{i}")).collect();
    let data = options(links.iter().map(String::as_str), "upper", "work");
    OverlayPlan {
        mount: mount(data),
        from: Some(FromDir {
            dir: dirs.root.to_path_buf(),
            symlinks: links
                .iter()
                .zip(lowers)
                .map(|(l, target)| (dirs.root.join(l), target.clone()))
                .collect(),
        }),
    }
}

fn options<'a>(lowers: impl Iterator<Item = &'a str>, upper: &str, work: &str) -> String {
    let lowers: Vec<&str> = lowers.collect();
    format!(
        "lowerdir={},upperdir={upper},workdir={work},{PLAIN_UPPER}",
        lowers.join(":")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(root: &Path) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
        (
            root.to_path_buf(),
            root.join("upper"),
            root.join("work"),
            root.join("merged"),
        )
    }

    fn layer(i: usize) -> PathBuf {
        PathBuf::from(format!("/var/lib/rbuild/layers/{i:064x}/diff"))
    }

    #[test]
    fn absolute_paths_when_they_fit() {
        let (root, upper, work, merged) = dirs(Path::new("/var/lib/rbuild/tmp/snap-1"));
        let d = Dirs {
            root: &root,
            upper: &upper,
            work: &work,
            merged: &merged,
        };
        let p = plan(&[layer(2), layer(1)], &d);
        assert_eq!(p.from, None);
        assert_eq!(p.mount.fstype, "overlay");
        assert_eq!(p.mount.target, merged);
        assert_eq!(
            p.mount.data,
            format!(
                "lowerdir={}:{},upperdir=/var/lib/rbuild/tmp/snap-1/upper,workdir=/var/lib/rbuild/tmp/snap-1/work,index=off,redirect_dir=off,metacopy=off,xino=off",
                layer(2).display(),
                layer(1).display()
            )
        );
    }

    #[test]
    fn short_relative_links_when_a_page_would_overflow() {
        let (root, upper, work, merged) = dirs(Path::new("/var/lib/rbuild/tmp/snap-1"));
        let d = Dirs {
            root: &root,
            upper: &upper,
            work: &work,
            merged: &merged,
        };
        // 40 layers fit, 50 do not (each path is 91 bytes).
        assert_eq!(plan(&(0..40).map(layer).collect::<Vec<_>>(), &d).from, None);
        let lowers: Vec<PathBuf> = (0..200).map(layer).collect();
        let p = plan(&lowers, &d);
        let from = p.from.expect("relative form");
        assert_eq!(from.dir, root);
        assert_eq!(from.symlinks.len(), 200);
        assert_eq!(from.symlinks[0], (root.join("l/0"), layer(0)));
        assert_eq!(from.symlinks[199], (root.join("l/199"), layer(199)));
        assert!(p.mount.data.starts_with("lowerdir=l/0:l/1:l/2:"));
        assert!(p.mount.data.ends_with(
            ":l/199,upperdir=upper,workdir=work,index=off,redirect_dir=off,metacopy=off,xino=off"
        ));
        assert!(p.mount.data.len() <= MAX_DATA_LEN);
        // Overlay's own limit is 500 lowers; that many still fit a page.
        let lowers: Vec<PathBuf> = (0..500).map(layer).collect();
        assert!(plan(&lowers, &d).mount.data.len() <= MAX_DATA_LEN);
    }

    #[test]
    fn paths_the_option_parser_would_split_go_relative() {
        for odd in ["/st,ore/tmp/s", "/st:ore/tmp/s", "/st\\ore/tmp/s"] {
            let (root, upper, work, merged) = dirs(Path::new(odd));
            let d = Dirs {
                root: &root,
                upper: &upper,
                work: &work,
                merged: &merged,
            };
            let p = plan(&[layer(1)], &d);
            assert!(p.from.is_some(), "{odd}");
            assert_eq!(
                p.mount.data,
                format!("lowerdir=l/0,upperdir=upper,workdir=work,{PLAIN_UPPER}")
            );
        }
    }
}
