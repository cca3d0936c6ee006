//! A layer with every kind of member Docker images carry, extracted for real.

use std::fs;
use std::os::unix::fs::MetadataExt;

use tar::{EntryType, Header};

use super::{RawTar, Scene, ShortReads, T0, listing, need_root, node};
use crate::digest::Digest;
use crate::layer::{ExtractOptions, extract};

/// Directory components of the 300-character name.
pub(super) fn long_dir() -> String {
    format!("long/{}", "d".repeat(150))
}

pub(super) fn long_file() -> String {
    format!("{}/{}", long_dir(), "f".repeat(144))
}

/// A layer with dirs, special modes, symlinks, hard links, a fifo, /dev/null, xattrs, a
/// whiteout, an opaque dir and long names (GNU long-name entries and PAX `path`).
pub(super) fn sample_layer() -> Vec<u8> {
    let mut t = RawTar::new();
    let with = |name: &str, kind, mode, uid: u64, mtime: u64| {
        let mut h = RawTar::header(name.as_bytes(), kind, mode, 0);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_mtime(mtime);
        h
    };
    t.push(with("./", EntryType::Directory, 0o755, 0, T0 - 1), b"");
    t.dir("bin/");
    let mut su = with("bin/su", EntryType::Regular, 0o4755, 0, T0 - 2);
    su.set_size(6);
    t.push(su, b"su bin");
    // Writers give a hard link its inode's metadata, and Docker applies it (to the inode).
    let mut sudo = with("bin/sudo", EntryType::Link, 0o4755, 0, T0 - 2);
    sudo.as_old_mut().linkname[..6].copy_from_slice(b"bin/su");
    t.push(sudo, b"");
    t.dir("home/");
    t.push(
        with("home/user/", EntryType::Directory, 0o2750, 1000, T0 - 3),
        b"",
    );
    t.pax(&[
        (b"SCHILY.xattr.user.comment", b"hi there"),
        (b"SCHILY.xattr.trusted.rbuild", b"\x00\x01binary"),
    ]);
    let mut f = with("home/user/notes", EntryType::Regular, 0o640, 1000, T0 - 4);
    f.set_size(5);
    t.push(f, b"hello");
    t.push(with("tmp/", EntryType::Directory, 0o1777, 0, T0), b"");
    t.dir("etc/");
    t.file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n");
    // A whiteout for a name this layer made keeps the name (image-spec: lower layers only).
    t.file("etc/.wh.passwd", b"");
    t.file("etc/.wh.shadow", b"");
    let mut lt = with("etc/localtime", EntryType::Symlink, 0o777, 0, T0 - 5);
    lt.as_old_mut().linkname[..23].copy_from_slice(b"/usr/share/zoneinfo/UTC");
    t.push(lt, b"");
    t.symlink("etc/su", "../bin/su");
    t.dir("run/");
    t.push(with("run/fifo", EntryType::Fifo, 0o600, 0, T0), b"");
    t.dir("dev/");
    t.device("dev/null", EntryType::Char, 1, 3);
    t.device("dev/tty", EntryType::Char, 5, 0);
    t.dir("opq/");
    t.file("opq/.wh..wh..opq", b"");
    t.file("opq/keep", b"kept");
    t.dir("long/");
    let dir = format!("{}/", long_dir());
    t.pax(&[(b"path", dir.as_bytes())]).dir("placeholder/");
    let mut b = t.b;
    // GNU long names and long link targets, as tar-rs's Builder writes them.
    let mut h = Header::new_gnu();
    h.set_mode(0o644);
    h.set_mtime(T0);
    h.set_size(4);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(EntryType::Regular);
    b.append_data(&mut h, long_file(), &b"long"[..]).unwrap();
    let mut h = Header::new_gnu();
    h.set_mode(0o777);
    h.set_mtime(T0);
    h.set_size(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(EntryType::Symlink);
    b.append_link(&mut h, "long/ln", "t".repeat(200)).unwrap();
    let mut t = RawTar { b };
    // A PAX long name.
    let pax_name = format!("long/{}", "p".repeat(120));
    t.pax(&[(b"path", pax_name.as_bytes())]);
    t.file("placeholder", b"pax");
    t.bytes()
}

#[test]
fn extracts_every_kind_of_member() {
    need_root();
    let scene = Scene::new();
    let tar = sample_layer();
    let got = scene.extract(&tar).unwrap();
    scene.assert_confined();
    assert_eq!(got.diff_id, Digest::of(&tar));
    assert_eq!(got.tar_size, tar.len() as u64);
    let files = [
        "su bin",
        "hello",
        "root:x:0:0::/root:/bin/sh\n",
        "kept",
        "long",
        "pax",
    ];
    assert_eq!(
        got.content_size,
        files.iter().map(|f| f.len() as u64).sum::<u64>()
    );
    assert_eq!(got.entries, 27);

    let l = listing(&scene.dest);
    let root = node(&l, "");
    assert_eq!((root.mode, root.mtime), (0o755, ((T0 - 1) as i64, 0)));

    let su = node(&l, "bin/su");
    assert_eq!((su.kind, su.mode, su.uid), ("file", 0o4755, 0));
    assert_eq!(su.mtime, ((T0 - 2) as i64, 0));
    assert_eq!(su.content, Some(Digest::of(b"su bin")));
    assert_eq!(node(&l, "bin/sudo").hardlink_of.as_deref(), Some("bin/su"));

    let user = node(&l, "home/user");
    assert_eq!(
        (user.kind, user.mode, user.uid, user.gid),
        ("dir", 0o2750, 1000, 1000)
    );
    assert_eq!(
        user.mtime,
        ((T0 - 3) as i64, 0),
        "dir mtime set after its children"
    );
    let notes = node(&l, "home/user/notes");
    assert_eq!((notes.mode, notes.uid, notes.gid), (0o640, 1000, 1000));
    assert_eq!(notes.mtime, ((T0 - 4) as i64, 0));
    assert_eq!(
        notes.xattrs,
        [
            ("trusted.rbuild".to_string(), b"\x00\x01binary".to_vec()),
            ("user.comment".to_string(), b"hi there".to_vec())
        ]
    );

    let tmp = node(&l, "tmp");
    assert_eq!((tmp.kind, tmp.mode), ("dir", 0o1777));

    let passwd = node(&l, "etc/passwd");
    assert_eq!(
        passwd.kind, "file",
        "a whiteout does not hide its own layer's file"
    );
    let shadow = node(&l, "etc/shadow");
    assert_eq!((shadow.kind, shadow.rdev, shadow.mode), ("char", (0, 0), 0));
    let localtime = node(&l, "etc/localtime");
    assert_eq!(localtime.link.as_deref(), Some("/usr/share/zoneinfo/UTC"));
    assert_eq!(
        localtime.mtime,
        ((T0 - 5) as i64, 0),
        "symlink mtime, not its target's"
    );
    assert_eq!(node(&l, "etc/su").link.as_deref(), Some("../bin/su"));

    let fifo = node(&l, "run/fifo");
    assert_eq!((fifo.kind, fifo.mode), ("fifo", 0o600));
    let null = node(&l, "dev/null");
    assert_eq!((null.kind, null.rdev, null.mode), ("char", (1, 3), 0o666));
    assert_eq!(node(&l, "dev/tty").rdev, (5, 0));

    let opq = node(&l, "opq");
    assert_eq!(
        opq.xattrs,
        [("trusted.overlay.opaque".to_string(), b"y".to_vec())]
    );
    assert_eq!(node(&l, "opq/keep").content, Some(Digest::of(b"kept")));
    assert!(
        !l.iter().any(|n| n.path.contains(".wh.")),
        "no .wh. names on disk"
    );

    assert_eq!(long_file().len(), 300);
    assert_eq!(node(&l, &long_file()).content, Some(Digest::of(b"long")));
    assert_eq!(node(&l, "long/ln").link, Some("t".repeat(200)));
    let pax_name = format!("long/{}", "p".repeat(120));
    assert_eq!(node(&l, &pax_name).content, Some(Digest::of(b"pax")));
    assert!(!scene.dest.join("placeholder").exists());
}

#[test]
fn short_reads_change_nothing() {
    need_root();
    let tar = sample_layer();
    let (a, b) = (Scene::new(), Scene::new());
    let whole = a.extract(&tar).unwrap();
    let opts = ExtractOptions { set_owners: true };
    let short = extract(ShortReads::new(&tar[..]), &b.dest, &opts).unwrap();
    assert_eq!(whole, short);
    assert_eq!(listing(&a.dest), listing(&b.dest));
}

#[test]
fn later_members_replace_earlier_ones() {
    need_root();
    let scene = Scene::new();
    let mut t = RawTar::new();
    let mut d = RawTar::header(b"d/", EntryType::Directory, 0o700, 0);
    d.set_uid(5);
    t.push(d, b"")
        .file("d/child", b"1")
        // dir over dir: metadata only, children stay
        .dir("d/")
        .file("f", b"old")
        .file("f", b"new")
        .dir("g/")
        .file("g/child", b"")
        // a file over a dir removes the whole dir
        .file("g", b"now a file")
        .symlink("s", "x")
        .dir("s/");
    scene.extract(&t.bytes()).unwrap();
    let l = listing(&scene.dest);
    let d = node(&l, "d");
    assert_eq!((d.mode, d.uid), (0o755, 0));
    assert_eq!(node(&l, "d/child").content, Some(Digest::of(b"1")));
    assert_eq!(node(&l, "f").content, Some(Digest::of(b"new")));
    assert_eq!(node(&l, "g").content, Some(Digest::of(b"now a file")));
    assert_eq!(node(&l, "s").kind, "dir");
    assert_eq!(l.len(), 6);
}

#[test]
fn missing_parents_are_made_0755() {
    need_root();
    let scene = Scene::new();
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let mut t = RawTar::new();
    t.file("a/b/c", b"x");
    let result = scene.extract(&t.bytes());
    nix::sys::stat::umask(old);
    result.unwrap();
    for dir in ["a", "a/b"] {
        let m = fs::symlink_metadata(scene.dest.join(dir)).unwrap();
        assert!(m.is_dir());
        assert_eq!(m.mode() & 0o7777, 0o755, "{dir}");
    }
}

#[test]
fn trailing_padding_is_hashed() {
    need_root();
    let mut tar = sample_layer();
    tar.extend_from_slice(&[0; 10240]);
    tar.extend_from_slice(b"trailing garbage is part of the blob");
    let scene = Scene::new();
    let got = scene.extract(&tar).unwrap();
    assert_eq!(got.diff_id, Digest::of(&tar));
    assert_eq!(got.tar_size, tar.len() as u64);
}

#[test]
fn owners_are_kept_only_when_asked() {
    need_root();
    let scene = Scene::new();
    let mut t = RawTar::new();
    let mut h = RawTar::header(b"f", EntryType::Regular, 0o6755, 0);
    h.set_uid(1000);
    h.set_gid(1000);
    t.push(h, b"");
    let opts = ExtractOptions { set_owners: false };
    extract(&t.bytes()[..], &scene.dest, &opts).unwrap();
    let m = fs::symlink_metadata(scene.dest.join("f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (0, 0));
    assert_eq!(m.mode() & 0o7777, 0o6755);
}
