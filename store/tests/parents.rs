//! Images with parents, made through the library (the CLI has no builder yet): what
//! `images -a` hides and shows, history IDs, rmi's child conflict, prune's choice.

use std::io::Cursor;

use rbuild_store::config::{History, ImageConfig};
use rbuild_store::filters::Filters;
use rbuild_store::import::ImportOptions;
use rbuild_store::list::ListOptions;
use rbuild_store::remove::Removed;
use rbuild_store::{Digest, ImageRef, NewImage, Store};

fn rootfs_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "etc/x", &b"abc"[..]).unwrap();
    b.into_inner().unwrap()
}

/// base (imported) ← mid (ENV step) ← top (CMD step), as a builder would commit them.
fn chain(store: &Store) -> (Digest, Digest, Digest) {
    assert!(nix::unistd::geteuid().is_root(), "this test needs root");
    let base = store
        .import(Cursor::new(rootfs_tar()), "-", ImportOptions::default())
        .unwrap();
    let step = |parent: &Digest, created_by: &str, secs: u32| {
        let mut c: ImageConfig = store.config(parent).unwrap();
        let created = format!("2030-01-01T00:00:{secs:02}Z");
        c.created = Some(created.clone());
        c.history.push(History {
            created: Some(created),
            created_by: Some(created_by.into()),
            empty_layer: true,
            ..History::default()
        });
        store
            .create_image(
                &c.to_vec(),
                &NewImage {
                    parent: Some(parent.clone()),
                    ..NewImage::default()
                },
            )
            .unwrap()
    };
    let mid = step(&base, "ENV A=1", 1);
    let top = step(&mid, "CMD [\"sh\"]", 2);
    store
        .tag(&top, &ImageRef::parse("app").unwrap().with_default_tag())
        .unwrap();
    (base, mid, top)
}

fn ids(store: &Store, all: bool, filters: &[&str]) -> Vec<Digest> {
    let filters = Filters::parse(filters).unwrap();
    store
        .list_images(&ListOptions { all, filters })
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect()
}

#[test]
fn intermediates_history_and_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (base, mid, top) = chain(&store);

    // Intermediate images are hidden unless all; none of them is dangling.
    assert_eq!(ids(&store, false, &[]), vec![top.clone()]);
    let all = ids(&store, true, &[]);
    assert_eq!(all.len(), 3);
    assert!(all.contains(&base) && all.contains(&mid));
    assert!(ids(&store, true, &["dangling=true"]).is_empty());
    assert_eq!(ids(&store, true, &["before=app"]).len(), 2);
    assert_eq!(ids(&store, true, &["since=app"]), Vec::<Digest>::new());

    // History: each step's image found through the parent chain, newest first.
    let h = store.history(&top).unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(h[0].id.as_ref(), Some(&top));
    assert_eq!(h[0].created_by, "CMD [\"sh\"]");
    assert_eq!(h[0].tags.len(), 1);
    assert_eq!(h[1].id.as_ref(), Some(&mid));
    assert_eq!(h[2].id.as_ref(), Some(&base));
    assert_eq!(h[2].size, 3);
    assert!(h[0].empty_layer && h[0].size == 0);

    // A parent cannot be deleted, forced or not.
    for force in [false, true] {
        let e = store
            .remove_image(&mid.to_string(), force, true)
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("(cannot be forced) - image has dependent child images"),
            "{e}"
        );
    }
    // Nothing is dangling, so prune removes nothing.
    let report = store
        .prune(&Filters::default(), chrono::Utc::now())
        .unwrap();
    assert!(report.removed.is_empty());

    // Removing the tag deletes the top and its now unneeded untagged parents.
    let removed = store.remove_image("app", false, true).unwrap();
    assert_eq!(
        removed,
        vec![
            Removed::Untagged(ImageRef::parse("app:latest").unwrap()),
            Removed::Deleted(top.clone()),
            Removed::Deleted(mid.clone()),
            Removed::Deleted(base.clone()),
        ]
    );
    assert!(store.images().unwrap().is_empty());
}

#[test]
fn no_prune_leaves_parents_dangling_for_prune() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (base, mid, top) = chain(&store);
    store.remove_image("app", false, false).unwrap();
    // mid has no child now: dangling; base is still an intermediate.
    assert_eq!(ids(&store, false, &[]), vec![mid.clone()]);
    assert_eq!(ids(&store, false, &["dangling=true"]), vec![mid.clone()]);
    assert!(ids(&store, true, &[]).contains(&base));
    assert!(!ids(&store, true, &[]).contains(&top));
    let report = store
        .prune(&Filters::default(), chrono::Utc::now())
        .unwrap();
    assert_eq!(
        report.removed,
        vec![Removed::Deleted(mid), Removed::Deleted(base)]
    );
    assert!(report.reclaimed > 0);
    assert!(store.check().unwrap().is_clean());
}
