//! Archives against other tools: what `rbuild save` writes, skopeo and umoci read with
//! the same digests and files; what they write, `rbuild load` reads the same way.
//! The tools are Debian's `skopeo` and `umoci`; a missing one fails the test.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use rbuild_builder::store::Store;

use crate::imagetar::{assert_same_tree, listing};
use crate::util::{TempDir, TestStore, json, p, tool};

#[test]
fn skopeo_and_umoci_read_what_rbuild_saves() {
    let s = TestStore::new("interop-save");
    let id = s.busybox("busybox:latest");
    let tmp = TempDir::new("interop-save-out");
    let archive = tmp.0.join("busybox.tar");
    s.run(&["save", "-o", p(&archive), "busybox:latest"])
        .success();
    let store = Store::open(s.root()).unwrap();
    let img = store.resolve("busybox").unwrap();
    let blobs: Vec<String> = img
        .layers
        .iter()
        .map(|l| store.layer_blobs(l).unwrap()[0].0.to_string())
        .collect();

    // The Docker half.
    let src = format!("docker-archive:{}", p(&archive));
    let raw = json(&tool("skopeo", &["inspect", "--raw", &src]));
    assert_eq!(raw["config"]["digest"], id.as_str(), "{raw}");
    let layers: Vec<&str> = raw["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    assert_eq!(layers, blobs);
    let info = json(&tool("skopeo", &["inspect", &src]));
    let diff_ids: Vec<String> = img.layers.iter().map(|l| l.to_string()).collect();
    assert_eq!(info["Layers"], serde_json::json!(diff_ids));
    let by_name = json(&tool(
        "skopeo",
        &["inspect", "--raw", &format!("{src}:busybox:latest")],
    ));
    assert_eq!(by_name["config"]["digest"], id.as_str());

    // Through skopeo into an OCI layout, unpacked by umoci: the same files as the tree
    // rbuild extracted.
    let oci = tmp.0.join("oci");
    tool(
        "skopeo",
        &["copy", "-q", &src, &format!("oci:{}:bb", p(&oci))],
    );
    let bundle = tmp.0.join("bundle");
    tool(
        "umoci",
        &["unpack", "--image", &format!("{}:bb", p(&oci)), p(&bundle)],
    );
    assert_same_tree(
        &listing(&store.layer_dir(&img.layers[0])),
        &listing(&bundle.join("rootfs")),
        "rbuild's layer tree vs umoci unpack",
    );

    // The OCI half, read as a layout: the index annotation names the tag.
    let layout = tmp.0.join("layout");
    fs::create_dir(&layout).unwrap();
    tar::Archive::new(fs::File::open(&archive).unwrap())
        .unpack(&layout)
        .unwrap();
    for reference in [
        format!("oci:{}:latest", p(&layout)),
        format!("oci:{}", p(&layout)),
    ] {
        let raw = json(&tool("skopeo", &["inspect", "--raw", &reference]));
        assert_eq!(raw["config"]["digest"], id.as_str(), "{reference}: {raw}");
        let info = json(&tool("skopeo", &["inspect", &reference]));
        assert_eq!(info["Layers"], serde_json::json!(diff_ids), "{reference}");
    }
    let bundle2 = tmp.0.join("bundle2");
    tool(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}:latest", p(&layout)),
            p(&bundle2),
        ],
    );
    assert_same_tree(
        &listing(&store.layer_dir(&img.layers[0])),
        &listing(&bundle2.join("rootfs")),
        "rbuild's layer tree vs umoci unpack of the saved OCI layout",
    );
}

/// The config digest a tag of an OCI layout names.
fn oci_config_digest(layout: &Path) -> String {
    let index = json(&fs::read_to_string(layout.join("index.json")).unwrap());
    let manifest = index["manifests"][0]["digest"].as_str().unwrap();
    let blob = layout.join("blobs/sha256").join(&manifest[7..]);
    let manifest = json(&fs::read_to_string(blob).unwrap());
    manifest["config"]["digest"].as_str().unwrap().to_string()
}

#[test]
fn rbuild_loads_what_umoci_and_skopeo_make() {
    let tmp = TempDir::new("interop-umoci");
    let layout = tmp.0.join("layout");
    let image = format!("{}:t", p(&layout));
    tool("umoci", &["init", "--layout", p(&layout)]);
    tool("umoci", &["new", "--image", &image]);
    let bundle = tmp.0.join("bundle");
    tool("umoci", &["unpack", "--image", &image, p(&bundle)]);
    let rootfs = bundle.join("rootfs");
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    fs::create_dir_all(rootfs.join("usr/local/bin")).unwrap();
    fs::write(rootfs.join("etc/hello"), "hello from umoci\n").unwrap();
    fs::write(rootfs.join("usr/local/bin/run"), "#!/bin/sh\necho run\n").unwrap();
    fs::set_permissions(
        rootfs.join("usr/local/bin/run"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    fs::create_dir(rootfs.join("secret")).unwrap();
    fs::set_permissions(rootfs.join("secret"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(rootfs.join("secret/key"), vec![7u8; 100_000]).unwrap();
    symlink("../etc/hello", rootfs.join("usr/hello")).unwrap();
    tool("umoci", &["repack", "--image", &image, p(&bundle)]);
    tool(
        "umoci",
        &[
            "config",
            "--image",
            &image,
            "--config.cmd",
            "/usr/local/bin/run",
        ],
    );
    let config_digest = oci_config_digest(&layout);

    // skopeo turns it into a Docker archive (layers decompressed, config as it was).
    let docker_tar = tmp.0.join("docker.tar");
    tool(
        "skopeo",
        &[
            "copy",
            "-q",
            &format!("oci:{image}"),
            &format!("docker-archive:{}:umoci/img:t", p(&docker_tar)),
        ],
    );
    let s = TestStore::new("interop-umoci-load");
    s.run(&["load", "-i", p(&docker_tar)])
        .success()
        .stdout_contains("Loaded image: umoci/img:t\n");
    let store = Store::open(s.root()).unwrap();
    let img = store.resolve("umoci/img:t").unwrap();
    assert_eq!(img.id.to_string(), config_digest, "same config digest");
    assert_eq!(img.layers.len(), 1);
    // umoci's unpack of the image again (the bundle's rootfs is what it packed).
    let check = tmp.0.join("check");
    tool("umoci", &["unpack", "--image", &image, p(&check)]);
    let want = listing(&check.join("rootfs"));
    assert_same_tree(
        &want,
        &listing(&store.layer_dir(&img.layers[0])),
        "umoci's image vs rbuild's load of skopeo's docker-archive",
    );
    assert!(store.check().unwrap().is_clean());

    // The OCI layout itself as a tar (gzip layers, a ref.name without a repository).
    let oci_tar = tmp.0.join("oci.tar");
    let out = Command::new("tar")
        .args(["-C", p(&layout), "-cf", p(&oci_tar), "."])
        .output()
        .unwrap();
    assert!(out.status.success());
    let s2 = TestStore::new("interop-umoci-oci");
    s2.run(&["load", "-i", p(&oci_tar)])
        .success()
        .stdout_contains(&format!("Loaded image ID: {config_digest}\n"));
    let store2 = Store::open(s2.root()).unwrap();
    let img2 = store2.resolve(&config_digest).unwrap();
    assert!(img2.manifest.is_some());
    assert_same_tree(
        &want,
        &listing(&store2.layer_dir(&img2.layers[0])),
        "umoci's image vs rbuild's load of the OCI layout tar",
    );
    assert!(store2.check().unwrap().is_clean());

    // And back out: what rbuild saves of it, skopeo reads with the same config.
    let again = tmp.0.join("again.tar");
    s.run(&["save", "-o", p(&again), "umoci/img:t"]).success();
    let raw = json(&tool(
        "skopeo",
        &["inspect", "--raw", &format!("docker-archive:{}", p(&again))],
    ));
    assert_eq!(raw["config"]["digest"], config_digest.as_str());
}
