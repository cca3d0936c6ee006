//! `rbuild history` / `image history`.

use crate::util::TestStore;

#[test]
fn rows_and_flags() {
    let store = TestStore::new("history");
    let id = store.busybox("busybox");
    let out = store.run(&["history", "busybox"]).success().stdout;
    let lines: Vec<&str> = out.lines().collect();
    // The CREATED column is as wide as its widest cell, which depends on how many
    // seconds have passed since the import; the titles and their order do not.
    let titles: Vec<&str> = lines[0]
        .split("   ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    assert_eq!(
        titles,
        ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
        "{out}"
    );
    assert!(lines[0].starts_with("IMAGE          CREATED   "), "{out}");
    assert_eq!(lines.len(), 2);
    let cells: Vec<&str> = lines[1]
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(cells[0], &id[7..19], "{out}");
    assert!(
        cells[1].ends_with("second ago") || cells[1].ends_with("seconds ago"),
        "CREATED should read like \"Less than a second ago\": {out}"
    );
    assert!(lines[1].contains("MB    Imported from "), "{out}");
    let q = store
        .run(&["image", "history", "-q", "--no-trunc", "busybox"])
        .success()
        .stdout;
    assert_eq!(q, format!("{id}\n"));
    let raw = store
        .run(&[
            "history",
            "--human=false",
            "--format",
            "{{.Size}} {{.CreatedSince}}",
            "busybox",
        ])
        .success()
        .stdout;
    let (size, created) = raw.trim().split_once(' ').unwrap();
    assert!(size.parse::<u64>().unwrap() > 1_000_000, "{raw}");
    assert!(created.ends_with('Z') && created.contains('T'), "{raw}");
    store
        .run(&["history", "nope"])
        .failure()
        .stderr_contains("No such image: nope:latest");
}
