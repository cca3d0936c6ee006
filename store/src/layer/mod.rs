//! Layer tars: confined extraction into overlay format, and deterministic writing back.
//!
//! A layer is kept on disk *extracted*, in the shape overlayfs wants for a lowerdir, because
//! that is how layers are stacked for RUN steps and containers (DESIGN.md, "store"). The tar
//! format (OCI image-spec `layer.md`) and the overlay format (kernel
//! `Documentation/filesystems/overlayfs.rst`) say "this file was deleted" differently, so
//! [`extract`] and [`write_tar`] translate between them:
//!
//! | OCI tar (image-spec `layer.md`, "Whiteouts")  | overlay dir (overlayfs.rst, "whiteouts and opaque directories") |
//! |-----------------------------------------------|------------------------------------------------------------------|
//! | empty file `dir/.wh.NAME`                     | character device 0/0 at `dir/NAME`                               |
//! | empty file `dir/.wh..wh..opq`                 | xattr `trusted.overlay.opaque=y` on `dir`                         |
//!
//! Layer tars come from registries and `docker save` files, i.e. from anyone, so extraction is
//! the one place in the store where hostile input meets the filesystem as root. Every rule it
//! enforces is listed on [`extract`]; a refused member is a [`LayerError::Refused`] naming it.

mod compression;
mod confine;
mod diff;
mod extract;
mod write;

#[cfg(test)]
mod tests;

use std::io;
use std::path::PathBuf;

pub use compression::{Compression, decompress};
pub use diff::{EntryDifference, first_difference};
pub use extract::{ExtractOptions, Extracted, extract};
pub use write::{WriteOptions, Written, write_tar};

/// The prefix that marks a whiteout in a layer tar (image-spec `layer.md`, "Whiteouts").
const WHITEOUT_PREFIX: &str = ".wh.";
/// The whole name of an opaque-directory marker (image-spec `layer.md`, "Opaque Whiteout").
const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// overlayfs keeps its own metadata under this xattr namespace (overlayfs.rst); a tar must
/// never be able to set it, and it is never copied into a tar as an xattr.
const OVERLAY_XATTR_PREFIX: &str = "trusted.overlay.";
/// The xattr that makes a directory opaque in overlayfs (overlayfs.rst, "whiteouts and
/// opaque directories").
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Character devices a layer may carry: the ones Docker's default `/dev` has, which give no
/// access to hardware. Everything else would hand a container (or anyone who extracts the
/// layer as root) a door into the host's disks or memory.
const HARMLESS_CHAR_DEVICES: [(u64, u64, &str); 6] = [
    (1, 3, "null"),
    (1, 5, "zero"),
    (1, 7, "full"),
    (1, 8, "random"),
    (1, 9, "urandom"),
    (5, 0, "tty"),
];

fn is_harmless_char_device(major: u64, minor: u64) -> bool {
    HARMLESS_CHAR_DEVICES
        .iter()
        .any(|&(ma, mi, _)| (ma, mi) == (major, minor))
}

/// What went wrong reading, extracting or writing a layer. Every variant about one tar member
/// or one file of a layer directory names it, because "path escapes the layer root" is
/// useless without knowing which path.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The member breaks one of the confinement or content rules; nothing was written for it.
    #[error("layer member {member:?}: {reason}")]
    Refused { member: String, reason: Refusal },
    /// The member is acceptable but the filesystem said no.
    #[error("layer member {member:?}: {action}: {source}")]
    Member {
        member: String,
        action: &'static str,
        #[source]
        source: io::Error,
    },
    /// The stream itself is broken (truncated, bad checksum, decompression error).
    /// Before any member was read, the stream is most likely not a tar at all.
    #[error("{}: {source}", match after { Some(m) => format!("reading the layer tar after member {m:?}"), None => "not a tar archive".to_string() })]
    Read {
        after: Option<String>,
        #[source]
        source: io::Error,
    },
    /// A file in a layer directory cannot be put in a tar that [`extract`] would accept.
    #[error("layer directory entry {path:?}: {reason}")]
    Unwritable { path: PathBuf, reason: Refusal },
    /// Reading a file of a layer directory failed.
    #[error("layer directory entry {path:?}: {action}: {source}")]
    Source {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: io::Error,
    },
    /// The destination of [`write_tar`] failed.
    #[error("writing the layer tar: {0}")]
    Write(#[source] io::Error),
}

/// Why a member (or a layer directory entry) is refused. Kept as data so that callers and
/// tests can tell an escape attempt from a merely unsupported entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("empty path")]
    EmptyPath,
    #[error("path contains a NUL byte")]
    Nul,
    #[error("path escapes the layer root")]
    Escapes,
    #[error("absolute path")]
    Absolute,
    #[error("parent {parent:?} is a symbolic link; a member may not go through one")]
    ThroughSymlink { parent: String },
    #[error("parent {parent:?} is not a directory")]
    ParentNotDirectory { parent: String },
    #[error("the layer root `.` must be a directory, not a {kind}")]
    RootNotDirectory { kind: &'static str },
    #[error("{kind} without a link target")]
    NoLinkTarget { kind: &'static str },
    #[error("hard link to {target:?}: {why}")]
    HardLink { target: String, why: Box<Refusal> },
    #[error("it does not exist earlier in this layer")]
    Missing,
    #[error("it is a directory")]
    IsDirectory,
    #[error("it is an overlay whiteout")]
    IsWhiteout,
    #[error("block device {major}:{minor} refused: layers may not carry block devices")]
    BlockDevice { major: u64, minor: u64 },
    #[error(
        "character device {major}:{minor} refused: only null, zero, full, random, urandom and tty are allowed"
    )]
    CharDevice { major: u64, minor: u64 },
    #[error("character device 0:0 is an overlay whiteout; a layer tar must say `.wh.NAME` instead")]
    ForgedWhiteout,
    #[error("whiteout names no file (`.wh.` must be followed by a file name)")]
    EmptyWhiteout,
    #[error("names starting with `.wh.` are reserved for whiteouts")]
    ReservedName,
    #[error("unsupported entry type {0}")]
    Unsupported(String),
    #[error("bad header field: {0}")]
    BadHeader(String),
}
