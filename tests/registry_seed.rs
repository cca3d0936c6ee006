//! Content for test registries: blobs pushed with the tests' own HTTP client, and a tiny
//! image pushed by skopeo, so registry-client tests have something real to pull, and the
//! harness can be checked without rbuild.

use std::io::Write;
use std::path::Path;

use crate::registry_util::http_request;
use crate::util::TempDir;

/// `sha256:HEX` of `data`, as the registry names blobs.
pub fn digest(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let hex: String = Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// The path and query of an upload `Location`, which distribution 2.8 makes absolute.
pub fn location_path(location: &str) -> &str {
    match location.strip_prefix("http://") {
        Some(rest) => &rest[rest.find('/').unwrap_or(rest.len())..],
        None => location,
    }
}

/// Pushes `data` as a blob of `repo` with a monolithic upload (POST, then PUT
/// `?digest=`), with `auth` as the `Authorization` header when given; returns its digest.
pub fn push_blob(addr: &str, repo: &str, data: &[u8], auth: Option<&str>) -> String {
    let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
    let start = http_request(
        "POST",
        addr,
        &format!("/v2/{repo}/blobs/uploads/"),
        &headers,
        b"",
    )
    .unwrap_or_else(|e| panic!("POST upload to {addr}: {e}"));
    assert_eq!(start.status, 202, "POST upload: {start:?}");
    let location = start
        .header("Location")
        .expect("Location on 202")
        .to_string();
    assert!(
        location.contains(addr),
        "upload Location {location} does not point at {addr} (the address the client used)"
    );
    let d = digest(data);
    let path = location_path(&location);
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut put_headers = headers.clone();
    put_headers.push(("Content-Type", "application/octet-stream"));
    let put = http_request(
        "PUT",
        addr,
        &format!("{path}{sep}digest={d}"),
        &put_headers,
        data,
    )
    .unwrap_or_else(|e| panic!("PUT upload to {addr}: {e}"));
    assert_eq!(put.status, 201, "PUT upload: {put:?}");
    assert_eq!(
        put.header("Docker-Content-Digest"),
        Some(d.as_str()),
        "{put:?}"
    );
    d
}

/// A blob of `len` bytes that is not all one value, so a flipped byte shows.
pub fn sample_blob(len: usize) -> Vec<u8> {
    // A prime-length pattern, copied in slices: byte loops are slow in debug builds.
    let pattern: Vec<u8> = (0..65_521usize).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut blob = Vec::with_capacity(len);
    while blob.len() < len {
        let n = (len - blob.len()).min(pattern.len());
        blob.extend_from_slice(&pattern[..n]);
    }
    blob
}

/// Writes an OCI layout at `dir` holding one image tagged `1`: a gzip layer with one
/// file, its config and manifest. Returns the manifest's bytes.
pub fn tiny_oci_layout(dir: &Path) -> Vec<u8> {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| -> (String, usize) {
        let d = digest(data);
        std::fs::write(blobs.join(d.trim_start_matches("sha256:")), data).unwrap();
        (d, data.len())
    };
    let mut tar = tar::Builder::new(Vec::new());
    let content = b"hello from the registry harness\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, "hello.txt", &content[..])
        .unwrap();
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    let (layer, layer_size) = put(&gz.finish().unwrap());
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [digest(&tar)]},
    });
    let (config, config_size) = put(config.to_string().as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": layer_size}],
    })
    .to_string()
    .into_bytes();
    let (m, m_size) = put(&manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": m,
            "size": m_size,
            "annotations": {"org.opencontainers.image.ref.name": "1"},
        }],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    manifest
}

/// Runs skopeo; a missing binary fails naming the package.
pub fn skopeo(args: &[&str]) -> std::process::Output {
    std::process::Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running skopeo: {e} (apt-get install skopeo)"))
}

/// Pushes the [`tiny_oci_layout`] image to `registry` (`127.0.0.1:PORT`) as
/// `repo_tag` with skopeo, with `creds` (`user:password`) when given, so a pull test
/// starts from an image a real client put there. Returns the manifest's bytes (its
/// digest is what the registry serves it under).
pub fn seed_image(registry: &str, repo_tag: &str, creds: Option<&str>) -> Vec<u8> {
    let layout = TempDir::new("seed-image");
    let manifest = tiny_oci_layout(&layout.0);
    let src = format!("oci:{}:1", layout.0.display());
    let dest = format!("docker://{registry}/{repo_tag}");
    let mut args = vec!["copy", "--dest-tls-verify=false"];
    match creds {
        Some(c) => args.extend(["--dest-creds", c]),
        None => args.push("--dest-no-creds"),
    }
    args.extend([src.as_str(), dest.as_str()]);
    let out = skopeo(&args);
    assert!(
        out.status.success(),
        "skopeo {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    manifest
}
