//! Hostile tars: each must be refused with an error naming the member, leaving nothing
//! outside `dest`.

use std::fs;
use std::os::unix::fs::MetadataExt;

use tar::EntryType;

use super::{RawTar, Scene};
use crate::layer::{LayerError, Refusal};

/// Extracts `tar` in a fresh scene, expects a refusal of `member`, checks confinement.
fn refused(tar: &RawTar, member: &str) -> Refusal {
    let bytes = tar.b.get_ref().clone();
    let mut full = bytes;
    full.extend_from_slice(&[0; 1024]);
    let scene = Scene::new();
    let err = scene
        .extract(&full)
        .expect_err("a hostile tar was accepted");
    scene.assert_confined();
    let message = err.to_string();
    assert!(
        message.contains(&format!("layer member {member:?}")),
        "{message:?} does not name {member:?}"
    );
    match err {
        LayerError::Refused { member: m, reason } => {
            assert_eq!(m, member);
            reason
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn dotdot_is_refused() {
    let mut t = RawTar::new();
    t.file("../x", b"x");
    assert_eq!(refused(&t, "../x"), Refusal::Escapes);

    let mut t = RawTar::new();
    t.dir("a/").file("a/../../x", b"x");
    assert_eq!(refused(&t, "a/../../x"), Refusal::Escapes);

    // Even where it would stay inside: no honest layer needs it.
    let mut t = RawTar::new();
    t.dir("a/").file("a/../b", b"x");
    assert_eq!(refused(&t, "a/../b"), Refusal::Escapes);

    let mut t = RawTar::new();
    t.dir("../");
    assert_eq!(refused(&t, "../"), Refusal::Escapes);
}

#[test]
fn absolute_paths_are_refused() {
    let mut t = RawTar::new();
    t.file("/etc/x", b"x");
    assert_eq!(refused(&t, "/etc/x"), Refusal::Absolute);

    // An absolute path into the canary: were it joined to dest, it would land there.
    let scene = Scene::new();
    let name = format!("{}/x", scene.canary.display());
    let mut t = RawTar::new();
    t.file(&name, b"x");
    assert_eq!(refused(&t, &name), Refusal::Absolute);
}

#[test]
fn paths_through_an_absolute_symlink_are_refused() {
    // `l -> /` then a path through it into the canary (the brief's `l/etc/passwd`, aimed at
    // a directory this test can check instead of the host's /etc).
    let scene = Scene::new();
    let through = format!("l{}/x", scene.canary.display());
    let mut t = RawTar::new();
    t.symlink("l", "/").file(&through, b"pwned");
    assert_eq!(
        refused(&t, &through),
        Refusal::ThroughSymlink { parent: "l".into() }
    );

    let mut t = RawTar::new();
    t.symlink("l", "/").file("l/etc/passwd", b"pwned");
    assert_eq!(
        refused(&t, "l/etc/passwd"),
        Refusal::ThroughSymlink { parent: "l".into() }
    );
}

#[test]
fn paths_through_a_relative_symlink_are_refused() {
    let mut t = RawTar::new();
    t.symlink("l", "../../..").file("l/x", b"pwned");
    assert_eq!(
        refused(&t, "l/x"),
        Refusal::ThroughSymlink { parent: "l".into() }
    );

    let mut t = RawTar::new();
    t.dir("a/")
        .symlink("a/l", "../../canary")
        .file("a/l/x", b"pwned");
    assert_eq!(
        refused(&t, "a/l/x"),
        Refusal::ThroughSymlink {
            parent: "a/l".into()
        }
    );

    // A directory member over a symlink replaces the symlink: harmless, and not through it.
    let mut t = RawTar::new();
    t.dir("a/").symlink("a/l", "../../canary").dir("a/l/");
    let scene = Scene::new();
    scene.extract(&t.bytes()).unwrap();
    scene.assert_confined();
    assert!(scene.dest.join("a/l").symlink_metadata().unwrap().is_dir());
}

#[test]
fn a_file_as_a_parent_is_refused() {
    let mut t = RawTar::new();
    t.file("f", b"").file("f/x", b"");
    assert_eq!(
        refused(&t, "f/x"),
        Refusal::ParentNotDirectory { parent: "f".into() }
    );
}

#[test]
fn hard_links_out_of_the_layer_are_refused() {
    super::need_root(); // one case makes a whiteout device first
    let hl = |target: &str, why| Refusal::HardLink {
        target: target.into(),
        why: Box::new(why),
    };
    let mut t = RawTar::new();
    t.hardlink("h", "../outside");
    assert_eq!(refused(&t, "h"), hl("../outside", Refusal::Escapes));

    let mut t = RawTar::new();
    t.hardlink("h", "/etc/passwd");
    assert_eq!(refused(&t, "h"), hl("/etc/passwd", Refusal::Absolute));

    let mut t = RawTar::new();
    t.symlink("l", "/etc").hardlink("h", "l/passwd");
    assert_eq!(
        refused(&t, "h"),
        hl("l/passwd", Refusal::ThroughSymlink { parent: "l".into() })
    );

    let mut t = RawTar::new();
    t.symlink("l", "..").hardlink("h", "l/outside");
    assert_eq!(
        refused(&t, "h"),
        hl("l/outside", Refusal::ThroughSymlink { parent: "l".into() })
    );

    // Not yet in this layer: a hard link may only point backwards.
    let mut t = RawTar::new();
    t.hardlink("h", "later").file("later", b"");
    assert_eq!(refused(&t, "h"), hl("later", Refusal::Missing));

    let mut t = RawTar::new();
    t.dir("d/").hardlink("h", "d");
    assert_eq!(refused(&t, "h"), hl("d", Refusal::IsDirectory));

    let mut t = RawTar::new();
    t.file(".wh.gone", b"").hardlink("h", "gone");
    assert_eq!(refused(&t, "h"), hl("gone", Refusal::IsWhiteout));

    let mut t = RawTar::new();
    t.hardlink("h", "");
    assert_eq!(
        refused(&t, "h"),
        Refusal::NoLinkTarget { kind: "hard link" }
    );
}

#[test]
fn a_hard_link_to_an_escaping_symlink_links_the_symlink() {
    let scene = Scene::new();
    let mut t = RawTar::new();
    t.symlink("s", "../outside").hardlink("h", "s");
    scene.extract(&t.bytes()).unwrap();
    scene.assert_confined();
    let h = scene.dest.join("h").symlink_metadata().unwrap();
    let s = scene.dest.join("s").symlink_metadata().unwrap();
    assert!(h.file_type().is_symlink());
    assert_eq!(h.ino(), s.ino());
}

#[test]
fn the_root_must_be_a_directory() {
    let mut t = RawTar::new();
    t.symlink(".", "/");
    assert_eq!(
        refused(&t, "."),
        Refusal::RootNotDirectory {
            kind: "symbolic link"
        }
    );
    let mut t = RawTar::new();
    t.file("./", b"");
    assert_eq!(
        refused(&t, "./"),
        Refusal::RootNotDirectory {
            kind: "regular file"
        }
    );
}

#[test]
fn dangerous_devices_are_refused() {
    let mut t = RawTar::new();
    t.device("sda", EntryType::Block, 8, 0);
    assert_eq!(
        refused(&t, "sda"),
        Refusal::BlockDevice { major: 8, minor: 0 }
    );

    let mut t = RawTar::new();
    t.device("c", EntryType::Char, 8, 0);
    assert_eq!(refused(&t, "c"), Refusal::CharDevice { major: 8, minor: 0 });

    let mut t = RawTar::new();
    t.device("mem", EntryType::Char, 1, 1);
    assert_eq!(
        refused(&t, "mem"),
        Refusal::CharDevice { major: 1, minor: 1 }
    );

    // Only `.wh.` names may make whiteouts.
    let mut t = RawTar::new();
    t.device("w", EntryType::Char, 0, 0);
    assert_eq!(refused(&t, "w"), Refusal::ForgedWhiteout);
}

#[test]
fn bad_whiteouts_are_refused() {
    for (name, why) in [
        (".wh.", Refusal::EmptyWhiteout),
        (".wh..", Refusal::EmptyWhiteout),
        (".wh...", Refusal::Escapes),
        ("d/.wh...", Refusal::Escapes),
        (".wh./x", Refusal::ReservedName),
        (".wh.d/x", Refusal::ReservedName),
        ("d/.wh..wh.plnk", Refusal::ReservedName),
    ] {
        let mut t = RawTar::new();
        t.dir("d/").file(name, b"");
        assert_eq!(refused(&t, name), why, "{name}");
    }
}

#[test]
fn nul_bytes_are_refused() {
    let mut t = RawTar::new();
    t.pax(&[(b"path", b"a\0b")]).file("placeholder", b"");
    assert_eq!(refused(&t, "a\0b"), Refusal::Nul);

    let mut t = RawTar::new();
    t.pax(&[(b"linkpath", b"x\0y")]).symlink("s", "t");
    assert_eq!(refused(&t, "s"), Refusal::Nul);
}

#[test]
fn unsupported_types_are_refused() {
    let mut t = RawTar::new();
    let h = RawTar::header(b"v", EntryType::new(b'V'), 0o644, 0);
    t.push(h, b"");
    assert!(matches!(refused(&t, "v"), Refusal::Unsupported(_)));
}

#[test]
fn overlay_xattrs_cannot_be_forged() {
    let scene = Scene::new();
    let mut t = RawTar::new();
    t.pax(&[
        (b"SCHILY.xattr.trusted.overlay.opaque", b"y"),
        (b"SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
        (b"SCHILY.xattr.user.kept", b"1"),
    ])
    .dir("d/");
    scene.extract(&t.bytes()).unwrap();
    let d = scene.dest.join("d");
    assert_eq!(xattr::get(&d, "trusted.overlay.opaque").unwrap(), None);
    assert_eq!(xattr::get(&d, "trusted.overlay.redirect").unwrap(), None);
    assert_eq!(xattr::get(&d, "user.kept").unwrap(), Some(b"1".to_vec()));
}

#[test]
fn a_symlink_at_the_path_is_replaced_not_followed() {
    let scene = Scene::new();
    let mut t = RawTar::new();
    t.symlink("x", "../canary/x")
        .file("x", b"content")
        .symlink("d", "../canary")
        .dir("d/");
    scene.extract(&t.bytes()).unwrap();
    scene.assert_confined();
    assert_eq!(fs::read(scene.dest.join("x")).unwrap(), b"content");
    assert!(scene.dest.join("d").symlink_metadata().unwrap().is_dir());
}

#[test]
fn replaced_directories_get_no_late_metadata() {
    // `d/sub/` is made, then `d` becomes a symlink to the canary: the deferred mode and
    // mtime of `d/sub` must not land on `canary/sub` (or the canary) through it.
    let scene = Scene::new();
    let canary_sub = scene.canary.join("sub");
    fs::create_dir(&canary_sub).unwrap();
    let before = fs::metadata(&canary_sub).unwrap();
    let mut t = RawTar::new();
    let mut h = RawTar::header(b"d/sub/", EntryType::Directory, 0o700, 0);
    h.set_mtime(1);
    t.dir("d/")
        .push(h, b"")
        .symlink("d", &scene.canary.display().to_string());
    scene.extract(&t.bytes()).unwrap();
    let after = fs::metadata(&canary_sub).unwrap();
    assert_eq!(before.mode(), after.mode());
    assert_eq!(before.mtime(), after.mtime());
    fs::remove_dir(&canary_sub).unwrap();
    scene.assert_confined();
}

#[test]
fn truncated_tars_are_read_errors() {
    let mut t = RawTar::new();
    t.file("f", &[7; 2000]);
    let bytes = t.bytes();
    let scene = Scene::new();
    let err = scene.extract(&bytes[..1500]).unwrap_err();
    assert!(
        matches!(err, LayerError::Member { .. } | LayerError::Read { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("\"f\""), "{err}");
}
