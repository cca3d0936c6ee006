//! `rbuild inspect` / `image inspect`, and `import -c` seen through it.

use crate::util::{TestStore, busybox_tar};

#[test]
fn json_shape_and_templates() {
    let store = TestStore::new("inspect");
    let id = store.busybox("busybox");
    let run = store.run(&["inspect", "busybox"]).success();
    assert!(
        run.stdout.starts_with("[\n    {\n        \"Id\": \""),
        "{}",
        run.stdout
    );
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let i = &v[0];
    assert_eq!(i["Id"], id.as_str());
    assert_eq!(i["RepoTags"], serde_json::json!(["busybox:latest"]));
    assert_eq!(i["RepoDigests"], serde_json::json!([]));
    assert_eq!(i["Parent"], "");
    assert!(i["Comment"].as_str().unwrap().starts_with("Imported from "));
    assert_eq!(i["Os"], "linux");
    assert_eq!(i["RootFS"]["Type"], "layers");
    assert_eq!(i["Config"]["Hostname"], "");
    assert_eq!(i["Config"]["Cmd"], serde_json::Value::Null);
    assert!(i["Config"].get("ExposedPorts").is_none());
    assert!(i["Size"].as_u64().unwrap() > 1_000_000);
    let upper = i["GraphDriver"]["Data"]["UpperDir"].as_str().unwrap();
    assert!(
        std::path::Path::new(upper).join("bin/busybox").exists(),
        "{upper}"
    );
    let keys: Vec<&String> = i.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 15, "{keys:?}");

    let arch = store
        .run(&["inspect", "-f", "{{.Architecture}}", "busybox"])
        .success()
        .stdout;
    assert_eq!(arch, format!("{}\n", i["Architecture"].as_str().unwrap()));
    let layers = store
        .run(&[
            "image",
            "inspect",
            "-f",
            "{{range .RootFS.Layers}}{{.}} {{end}}",
            &id,
        ])
        .success()
        .stdout;
    assert_eq!(
        layers,
        format!("{} \n", i["RootFS"]["Layers"][0].as_str().unwrap())
    );
}

#[test]
fn missing_images() {
    let store = TestStore::new("inspect-missing");
    store.busybox("busybox");
    // docker's messages: no object of any kind, or none of the kind asked for.
    let run = store.run(&["inspect", "nope"]).failure();
    assert_eq!(run.stdout, "[]\n");
    assert_eq!(run.stderr, "Error: No such object: nope\n");
    let run = store
        .run(&["inspect", "-f", "{{.Os}}", "nope", "busybox"])
        .failure();
    assert_eq!(run.stdout, "linux\n");
    let run = store.run(&["image", "inspect", "nope"]).failure();
    assert_eq!(run.stderr, "Error: No such image: nope\n");
    let run = store
        .run(&["inspect", "--type", "container", "busybox"])
        .failure();
    assert_eq!(run.stderr, "Error: No such container: busybox\n");
    store
        .run(&["inspect", "--type", "volume", "busybox"])
        .failure()
        .stderr_contains("is not a valid value for --type");
}

#[test]
fn import_with_changes() {
    let store = TestStore::new("import-change");
    let tar = busybox_tar();
    store
        .run(&[
            "import",
            "-c",
            "ENV A=1",
            "-c",
            "ENV B=$A/x",
            "-c",
            "CMD echo hi",
            "-c",
            "EXPOSE 80 53/udp",
            "-c",
            "WORKDIR /srv",
            "-c",
            "WORKDIR app",
            "-c",
            "LABEL org.x=$B",
            "-c",
            "HEALTHCHECK --interval=5s CMD true",
            "-c",
            "ONBUILD RUN make",
            "--change",
            "USER nobody",
            tar.to_str().unwrap(),
            "ch:1",
        ])
        .success();
    let config = store
        .run(&["inspect", "-f", "{{json .Config}}", "ch:1"])
        .success()
        .stdout;
    let c: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(c["Env"], serde_json::json!(["A=1", "B=1/x"]));
    assert_eq!(c["Cmd"], serde_json::json!(["/bin/sh", "-c", "echo hi"]));
    assert_eq!(
        c["ExposedPorts"],
        serde_json::json!({"80/tcp": {}, "53/udp": {}})
    );
    assert_eq!(c["WorkingDir"], "/srv/app");
    assert_eq!(c["Labels"], serde_json::json!({"org.x": "1/x"}));
    assert_eq!(
        c["Healthcheck"],
        serde_json::json!({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000u64})
    );
    assert_eq!(c["OnBuild"], serde_json::json!(["RUN make"]));
    assert_eq!(c["User"], "nobody");
    let label = store
        .run(&[
            "inspect",
            "-f",
            "{{index .Config.Labels \"org.x\"}}",
            "ch:1",
        ])
        .success()
        .stdout;
    assert_eq!(label, "1/x\n");
    store
        .run(&["import", "-c", "FROM busybox", tar.to_str().unwrap()])
        .failure()
        .stderr_contains("from is not a valid change command");
    store
        .run(&["import", "-c", "EXPOSE x", tar.to_str().unwrap()])
        .failure()
        .stderr_contains("invalid containerPort: x");
    // The refused imports stored nothing.
    assert_eq!(
        store
            .run(&["images", "-q", "-a"])
            .success()
            .stdout
            .lines()
            .count(),
        1
    );
}
