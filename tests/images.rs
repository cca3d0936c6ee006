//! `rbuild images` / `image ls`: the table, names, filters, quiet mode.

use crate::util::TestStore;

fn short(id: &str) -> &str {
    &id["sha256:".len().."sha256:".len() + 12]
}

#[test]
fn table_rows_per_tag_and_none_rows() {
    let store = TestStore::new("images");
    let old = store.busybox("busybox");
    store.run(&["tag", "busybox", "me/app:1.2"]).success();
    // A new import under `busybox` takes that tag; the old image keeps `me/app:1.2`.
    let new = store.busybox("busybox");
    let out = store.run(&["images"]).success().stdout;
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("REPOSITORY   TAG       IMAGE ID       CREATED   "),
        "{out}"
    );
    assert!(lines[0].ends_with("   SIZE"), "{out}");
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[1].starts_with(&format!("busybox      latest    {}   ", short(&new))),
        "{out}"
    );
    assert!(
        lines[2].starts_with(&format!("me/app       1.2       {}   ", short(&old))),
        "{out}"
    );
    // Columns line up: SIZE starts at the same offset on every line.
    let size_at = lines[0].find("SIZE").unwrap();
    for l in &lines[1..] {
        assert!(
            l[size_at..].ends_with("MB") && l.as_bytes()[size_at - 1] == b' ',
            "{out}"
        );
    }

    // Moving its last tag away leaves the old image dangling: a `<none>` row.
    store.run(&["tag", "busybox", "me/app:1.2"]).success();
    let out = store.run(&["image", "ls"]).success().stdout;
    assert!(
        out.contains(&format!("\n<none>       <none>    {}   ", short(&old))),
        "{out}"
    );
    // -q: unique IDs, newest first.
    let q = store.run(&["images", "-q"]).success().stdout;
    assert_eq!(q, format!("{}\n{}\n", short(&new), short(&old)));
    let q = store
        .run(&["image", "list", "-q", "--no-trunc"])
        .success()
        .stdout;
    assert_eq!(q, format!("{new}\n{old}\n"));
}

#[test]
fn filters_and_formats() {
    let store = TestStore::new("images-filters");
    let old = store.busybox("busybox:1");
    let new = store.busybox("busybox:1");
    store.run(&["tag", "busybox:1", "me/app:1.5"]).success();
    let run = |args: &[&str]| store.run(args).success().stdout;
    assert_eq!(
        run(&["images", "-q", "-f", "dangling=true"]),
        format!("{}\n", short(&old))
    );
    assert_eq!(
        run(&["images", "-q", "-f", "dangling=false"]),
        format!("{}\n", short(&new))
    );
    assert_eq!(
        run(&[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            "-f",
            "reference=*/app:1.*"
        ]),
        "me/app:1.5\n"
    );
    assert_eq!(
        run(&["images", "--format", "{{.Repository}}:{{.Tag}}", "busy*"]),
        "busybox:1\n"
    );
    assert_eq!(run(&["images", "--format", "{{.Tag}}", "busybox:1"]), "1\n");
    assert_eq!(
        run(&["images", "-q", "-f", "before=busybox:1"]),
        format!("{}\n", short(&old))
    );
    assert_eq!(run(&["images", "-q", "-f", "since=busybox:1"]), "");
    assert_eq!(run(&["images", "-q", "-f", "label=nope"]), "");
    let out = run(&[
        "images",
        "--digests",
        "--format",
        "table {{.Repository}}\t{{.Digest}}",
        "me/app",
    ]);
    assert_eq!(out, "REPOSITORY   DIGEST\nme/app       <none>\n");
    let json = run(&["images", "--format", "json", "me/app"]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["Repository"], "me/app");
    assert_eq!(v["Tag"], "1.5");
    assert_eq!(v["ID"], short(&new));

    store
        .run(&["images", "-f", "x=1"])
        .failure()
        .stderr_contains("invalid filter 'x'");
    store
        .run(&["images", "-f", "dangling=maybe"])
        .failure()
        .stderr_contains("invalid filter 'dangling=[maybe]'");
    store
        .run(&["images", "-f", "nonsense"])
        .failure()
        .stderr_contains("bad format of filter (expected name=value)");
}

#[test]
fn tag_rules() {
    let store = TestStore::new("tag");
    let id = store.busybox("busybox");
    store
        .run(&["tag", "busybox", "localhost:5000/x/y"])
        .success();
    store.run(&["image", "tag", &id[7..19], "z:2"]).success();
    let out = store
        .run(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .success()
        .stdout;
    assert_eq!(out, "busybox:latest\nlocalhost:5000/x/y:latest\nz:2\n");
    store
        .run(&["tag", "busybox", "Bad"])
        .failure()
        .stderr_contains("must be lowercase");
    store
        .run(&["tag", "nope", "x"])
        .failure()
        .stderr_contains("No such image: nope:latest");
    store
        .run(&["tag", "busybox", &format!("x@{id}")])
        .failure()
        .stderr_contains("refusing to create a tag with a digest reference");
}
