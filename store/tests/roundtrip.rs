//! The store end to end through its library API: import, name, save, load into another
//! store, remove, collect, check.

use std::io::Cursor;

use rbuild_store::import::ImportOptions;
use rbuild_store::remove::Removed;
use rbuild_store::{ImageRef, Store};

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (layers hold overlay whiteouts and owners); run the suite as root"
    );
}

fn rootfs_tar(marker: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8], mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, data).unwrap();
    };
    add("etc/hostname", marker.as_bytes(), 0o644);
    add("bin/tool", b"#!/bin/sh\necho hi\n", 0o755);
    b.into_inner().unwrap()
}

fn name(s: &str) -> ImageRef {
    ImageRef::parse(s).unwrap().with_default_tag()
}

#[test]
fn import_save_load_remove() {
    require_root();
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let a = Store::open(a_dir.path()).unwrap();
    let id = a
        .import(
            Cursor::new(rootfs_tar("one")),
            "-",
            ImportOptions::default(),
        )
        .unwrap();
    assert_eq!(a.tag(&id, &name("demo:1")).unwrap(), None);
    a.tag(&id, &name("demo:2")).unwrap();
    let img = a.resolve("demo:1").unwrap();
    assert_eq!(img.id, id);
    assert_eq!(img.tags.len(), 2);
    assert_eq!(a.resolve(&id.hex()[..8]).unwrap().id, id);
    assert!(
        a.resolve("nope")
            .unwrap_err()
            .to_string()
            .contains("No such image: nope:latest")
    );
    let layer_dir = a.layer_dir(&img.layers[0]);
    assert_eq!(
        std::fs::read_to_string(layer_dir.join("etc/hostname")).unwrap(),
        "one"
    );

    let mut archive = Vec::new();
    rbuild_store::archive::save(
        &a,
        &[rbuild_store::archive::SaveRequest {
            image: img.clone(),
            names: img.tags.clone(),
        }],
        &mut archive,
    )
    .unwrap();
    let b = Store::open(b_dir.path()).unwrap();
    let loaded = rbuild_store::archive::load_reader(&b, Cursor::new(&archive), "-").unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].id, id, "same config digest after save/load");
    assert_eq!(b.resolve("demo:2").unwrap().id, id);
    assert!(b.check().unwrap().is_clean());

    // Removing one of two tags only untags.
    let removed = a.remove_image("demo:1", false, true).unwrap();
    assert_eq!(removed, vec![Removed::Untagged(name("demo:1"))]);
    // The last tag deletes the image; GC then frees its layer.
    let removed = a.remove_image("demo:2", false, true).unwrap();
    assert_eq!(
        removed,
        vec![
            Removed::Untagged(name("demo:2")),
            Removed::Deleted(id.clone())
        ]
    );
    let gc = a.collect_garbage().unwrap();
    assert!(gc.reclaimed > 0);
    assert!(!layer_dir.exists());
    let report = a.check().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert!(report.reclaimable.is_empty(), "{:?}", report.reclaimable);
}

#[test]
fn id_with_two_tags_needs_force() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let id = s
        .import(
            Cursor::new(rootfs_tar("two")),
            "-",
            ImportOptions::default(),
        )
        .unwrap();
    s.tag(&id, &name("x:1")).unwrap();
    s.tag(&id, &name("y:1")).unwrap();
    let err = s.remove_image(id.short(), false, true).unwrap_err();
    assert!(
        err.to_string()
            .contains("(must be forced) - image is referenced in multiple repositories"),
        "{err}"
    );
    let removed = s.remove_image(id.short(), true, true).unwrap();
    assert_eq!(removed.len(), 3, "{removed:?}");
    assert!(s.images().unwrap().is_empty());
}

/// Docker keeps config fields OCI lacks (Healthcheck, OnBuild, Shell); they must come
/// back from every trip byte for byte, since the config's digest is the image ID.
#[test]
fn docker_only_config_fields_survive_save_and_load() {
    require_root();
    let a_dir = tempfile::tempdir().unwrap();
    let a = Store::open(a_dir.path()).unwrap();
    let layer = a
        .add_layer(
            Cursor::new(rootfs_tar("fields")),
            &rbuild_store::unpack::LayerSource {
                what: "test layer",
                ..Default::default()
            },
        )
        .unwrap();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","created":"2024-01-02T03:04:05.123456789Z","config":{{"Env":["PATH=/bin"],"Cmd":["sh"],"Healthcheck":{{"Test":["CMD-SHELL","true"],"Interval":30000000000,"Retries":3}},"OnBuild":["RUN echo child"],"Shell":["/bin/ash","-c"],"StopSignal":"SIGQUIT","X-Unknown":{{"kept":true}}}},"rootfs":{{"type":"layers","diff_ids":["{}"]}},"history":[{{"created":"2024-01-02T03:04:05Z","created_by":"test"}}],"x-top-level":[1,2]}}"#,
        layer.diff_id
    );
    let id = a
        .create_image(config.as_bytes(), &rbuild_store::NewImage::default())
        .unwrap();
    a.tag(&id, &name("fields:1")).unwrap();
    let img = a.resolve("fields:1").unwrap();
    let mut archive = Vec::new();
    rbuild_store::archive::save(
        &a,
        &[rbuild_store::archive::SaveRequest {
            names: img.tags.clone(),
            image: img,
        }],
        &mut archive,
    )
    .unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let b = Store::open(b_dir.path()).unwrap();
    let loaded = rbuild_store::archive::load_reader(&b, Cursor::new(&archive), "-").unwrap();
    assert_eq!(loaded[0].id, id);
    assert_eq!(b.config_bytes(&id).unwrap(), config.as_bytes());
    let parsed = b.config(&id).unwrap();
    let cc = parsed.config.unwrap();
    assert_eq!(cc.shell.unwrap(), vec!["/bin/ash", "-c"]);
    assert_eq!(cc.on_build.unwrap(), vec!["RUN echo child"]);
    assert_eq!(cc.healthcheck.unwrap().retries, Some(3));
}

#[test]
fn save_to_path_is_atomic_and_load_path_reads_it_in_place() {
    require_root();
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let a = Store::open(a_dir.path()).unwrap();
    let id = a
        .import(
            Cursor::new(rootfs_tar("three")),
            "-",
            ImportOptions::default(),
        )
        .unwrap();
    a.tag(&id, &name("demo:3")).unwrap();
    let img = a.resolve("demo:3").unwrap();
    let req = [rbuild_store::archive::SaveRequest {
        image: img.clone(),
        names: img.tags.clone(),
    }];
    let path = out_dir.path().join("demo.tar");
    std::fs::write(&path, b"old").unwrap();
    rbuild_store::archive::save_to_path(&a, &req, &path).unwrap();
    let names: Vec<_> = std::fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["demo.tar"], "no temp file left beside it");

    let b = Store::open(b_dir.path()).unwrap();
    let loaded = rbuild_store::archive::load_path(&b, &path).unwrap();
    assert_eq!(loaded[0].id, id);
    assert_eq!(loaded[0].tags, vec![name("demo:3")]);
    assert!(loaded[0].replaced.is_empty());
    // No scratch left behind.
    assert_eq!(
        std::fs::read_dir(b_dir.path().join("tmp")).unwrap().count(),
        0
    );

    // A save into a missing directory fails and creates nothing.
    let bad = out_dir.path().join("missing/demo.tar");
    let err = rbuild_store::archive::save_to_path(&a, &req, &bad).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    assert!(!bad.parent().unwrap().exists());
}
