//! `write_tar` is the inverse of `extract`, and deterministic.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use nix::sys::stat::{Mode, SFlag, makedev, mknod};
use tar::EntryType;

use super::happy::{long_file, sample_layer};
use super::{Scene, listing, members, need_root};
use crate::digest::Digest;
use crate::layer::{LayerError, Refusal, WriteOptions, Written, write_tar};

fn write(dir: &Path, opts: &WriteOptions) -> (Vec<u8>, Written) {
    let mut out = Vec::new();
    let written = write_tar(dir, &mut out, opts).unwrap();
    (out, written)
}

#[test]
fn write_then_extract_gives_the_same_tree() {
    need_root();
    let first = Scene::new();
    first.extract(&sample_layer()).unwrap();
    let (tar, written) = write(&first.dest, &WriteOptions::default());
    assert_eq!(written.diff_id, Digest::of(&tar));
    assert_eq!(written.size, tar.len() as u64);

    let second = Scene::new();
    let extracted = second.extract(&tar).unwrap();
    assert_eq!(extracted.diff_id, written.diff_id);
    assert_eq!(extracted.tar_size, written.size);
    // The root itself is not a member (Docker writes none either), so only what is below it
    // must match.
    assert_eq!(listing(&first.dest)[1..], listing(&second.dest)[1..]);

    // Deterministic: the same tree, written twice or from its copy, gives the same bytes.
    assert_eq!(write(&first.dest, &WriteOptions::default()).0, tar);
    assert_eq!(write(&second.dest, &WriteOptions::default()).0, tar);
}

#[test]
fn the_written_tar_is_sorted_and_speaks_oci() {
    need_root();
    let scene = Scene::new();
    scene.extract(&sample_layer()).unwrap();
    let (tar, _) = write(&scene.dest, &WriteOptions::default());
    let list = members(&tar);
    let names: Vec<&str> = list.iter().map(|(n, _)| n.as_str()).collect();
    let position = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .unwrap_or_else(|| panic!("{name} not in {names:#?}"))
    };
    // Parents first, siblings by name bytes, the opaque marker right after its dir.
    assert_eq!(names[0], "bin/");
    assert!(position("bin/su") < position("bin/sudo"));
    assert_eq!(position("opq/.wh..wh..opq"), position("opq/") + 1);
    assert!(position("etc/.wh.shadow") > position("etc/"));
    assert_eq!(list[position("bin/sudo")].1, EntryType::Link);
    assert_eq!(list[position("dev/null")].1, EntryType::Char);
    assert!(names.contains(&long_file().as_str()));

    let mut archive = tar::Archive::new(&tar[..]);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let h = entry.header();
        assert!(h.as_ustar().is_some(), "{name}: ustar header");
        assert_eq!(h.username_bytes(), Some(&b""[..]), "{name}: no user names");
        assert_eq!(
            h.groupname_bytes(),
            Some(&b""[..]),
            "{name}: no group names"
        );
        if name.contains(".wh.") {
            assert_eq!(h.entry_type(), EntryType::Regular);
            assert_eq!(
                (h.mode().unwrap(), h.uid().unwrap(), h.gid().unwrap()),
                (0, 0, 0)
            );
            assert_eq!(entry.size(), 0);
        }
        if name == "bin/sudo" {
            assert_eq!(entry.link_name_bytes().as_deref(), Some(&b"bin/su"[..]));
        }
        if name == "home/user/notes" {
            let pax: Vec<_> = entry
                .pax_extensions()
                .unwrap()
                .expect("xattrs as PAX records")
                .map(|r| r.unwrap().key().unwrap().to_string())
                .collect();
            assert_eq!(
                pax,
                ["SCHILY.xattr.trusted.rbuild", "SCHILY.xattr.user.comment"]
            );
        }
    }
}

#[test]
fn mtimes_are_clamped_to_source_date_epoch() {
    need_root();
    let scene = Scene::new();
    scene.extract(&sample_layer()).unwrap();
    let clamp = super::T0 as i64 - 3;
    let opts = WriteOptions {
        clamp_mtime: Some(clamp),
    };
    let (tar, _) = write(&scene.dest, &opts);
    let mut archive = tar::Archive::new(&tar[..]);
    let mut seen_older = false;
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let mtime = entry.header().mtime().unwrap() as i64;
        assert!(mtime <= clamp, "{:?} has mtime {mtime}", entry.path());
        seen_older |= mtime < clamp;
    }
    assert!(seen_older, "older mtimes are kept as they are");
    let again = write(&scene.dest, &opts).0;
    assert_eq!(tar, again);
}

#[test]
fn pax_is_used_for_long_names_links_and_big_ids() {
    need_root();
    let tmp = tempfile::tempdir().unwrap();
    let long = "n".repeat(200);
    fs::write(tmp.path().join(&long), b"x").unwrap();
    symlink("t".repeat(150), tmp.path().join("ln")).unwrap();
    std::os::unix::fs::lchown(tmp.path().join("ln"), Some(3_000_000), Some(3_000_001)).unwrap();
    let (tar, _) = write(tmp.path(), &WriteOptions::default());
    let copy = Scene::new();
    copy.extract(&tar).unwrap();
    let mut a = listing(tmp.path());
    let mut b = listing(&copy.dest);
    a[0].mtime = (0, 0); // the roots: only the members are written
    b[0].mtime = (0, 0);
    a[0].mode = 0;
    b[0].mode = 0;
    assert_eq!(a[1..].len(), 2);
    assert_eq!(b[1..].iter().map(|n| n.mtime.1).max(), Some(0));
    for (x, y) in a[1..].iter().zip(&b[1..]) {
        assert_eq!(
            (&x.path, x.uid, x.gid, &x.link),
            (&y.path, y.uid, y.gid, &y.link)
        );
    }
    assert!(
        members(&tar)
            .iter()
            .all(|(_, t)| *t != EntryType::GNULongName)
    );
}

#[test]
fn the_writer_refuses_what_extract_would_refuse() {
    need_root();
    type Make = fn(&Path);
    let cases: [(&str, Make); 4] = [
        ("sda", |p| {
            mknod(
                p,
                SFlag::S_IFBLK,
                Mode::from_bits_truncate(0o600),
                makedev(8, 0),
            )
            .unwrap()
        }),
        ("mem", |p| {
            mknod(
                p,
                SFlag::S_IFCHR,
                Mode::from_bits_truncate(0o600),
                makedev(1, 1),
            )
            .unwrap()
        }),
        (".wh.x", |p| fs::write(p, b"").unwrap()),
        ("bad-xattr", |p| {
            fs::write(p, b"").unwrap();
            xattr::set(p, "user.a=b", b"1").unwrap();
        }),
    ];
    for (name, make) in cases {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("d")).unwrap();
        let path = tmp.path().join("d").join(name);
        make(&path);
        let err = write_tar(tmp.path(), Vec::new(), &WriteOptions::default()).unwrap_err();
        assert!(err.to_string().contains(&format!("d/{name}")), "{err}");
        assert!(matches!(err, LayerError::Unwritable { .. }), "{err:?}");
    }
}

#[test]
fn sockets_are_skipped_and_selinux_labels_dropped() {
    need_root();
    let tmp = tempfile::tempdir().unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(tmp.path().join("sock")).unwrap();
    fs::write(tmp.path().join("f"), b"").unwrap();
    // Setting a label needs an SELinux kernel; where it is refused there is nothing to drop.
    let labelled = xattr::set(
        tmp.path().join("f"),
        "security.selinux",
        b"system_u:object_r:tmp_t:s0",
    )
    .is_ok();
    let (tar, _) = write(tmp.path(), &WriteOptions::default());
    assert_eq!(members(&tar), [("f".to_string(), EntryType::Regular)]);
    if labelled {
        let mut archive = tar::Archive::new(&tar[..]);
        let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
        assert!(entry.pax_extensions().unwrap().is_none());
    }
}

#[test]
fn whiteouts_and_opaque_dirs_become_oci_entries() {
    need_root();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("d");
    fs::create_dir(&d).unwrap();
    xattr::set(&d, "trusted.overlay.opaque", b"y").unwrap();
    xattr::set(&d, "trusted.overlay.origin", b"junk").unwrap();
    mknod(
        &d.join("gone"),
        SFlag::S_IFCHR,
        Mode::empty(),
        makedev(0, 0),
    )
    .unwrap();
    let (tar, _) = write(tmp.path(), &WriteOptions::default());
    assert_eq!(
        members(&tar),
        [
            ("d/".to_string(), EntryType::Directory),
            ("d/.wh..wh..opq".to_string(), EntryType::Regular),
            ("d/.wh.gone".to_string(), EntryType::Regular),
        ]
    );
    let mut archive = tar::Archive::new(&tar[..]);
    let mut dir = archive.entries().unwrap().next().unwrap().unwrap();
    assert!(
        dir.pax_extensions().unwrap().is_none(),
        "no trusted.overlay.* in the tar"
    );
}

#[test]
fn refusals_are_data() {
    let err = LayerError::Refused {
        member: "../etc/passwd".into(),
        reason: Refusal::Escapes,
    };
    assert_eq!(
        err.to_string(),
        "layer member \"../etc/passwd\": path escapes the layer root"
    );
}
