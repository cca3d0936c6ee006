use chrono::TimeZone;
use serde_json::json;

use super::*;

const L1: &str = "sha256:65014c70e84b6817fb42e5ea1ccd0c3a2f1e2a9c4b8d8e36ad3b7e5b1ea0b1c1";
const L2: &str = "sha256:9bb7a4a2d0d4e4d5f1b4a8f3c0e2d6b1a7c5e9f0d3b2a1c4e6f8a0b2c4d6e8f0";

/// A config as Docker's legacy builder writes it, with the Docker-only keys, legacy
/// top-level keys, a container_config full of keys we do not model, and a key nobody
/// knows. (No `null`s: those are covered by `nulls_read_as_absent`.)
fn docker_config() -> Value {
    json!({
        "architecture": "amd64",
        "config": {
            "Hostname": "",
            "Domainname": "",
            "User": "app",
            "AttachStdin": false,
            "ExposedPorts": {"80/tcp": {}, "443/tcp": {}},
            "Tty": false,
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
            "Healthcheck": {
                "Test": ["CMD-SHELL", "wget -q -O- localhost || exit 1"],
                "Interval": 30000000000u64,
                "Timeout": 5000000000u64,
                "StartPeriod": 1000000000u64,
                "StartInterval": 500000000u64,
                "Retries": 3
            },
            "ArgsEscaped": true,
            "Image": "sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741",
            "Volumes": {"/data": {}},
            "WorkingDir": "/srv",
            "Entrypoint": ["/entry.sh"],
            "OnBuild": ["RUN echo child"],
            "Labels": {"maintainer": "me", "org.opencontainers.image.version": "1.0"},
            "StopSignal": "SIGQUIT",
            "Shell": ["/bin/ash", "-eo", "pipefail", "-c"]
        },
        "container": "8a3b6c2b1f4d",
        "container_config": {
            "Hostname": "8a3b6c2b1f4d",
            "Cmd": ["/bin/sh", "-c", "#(nop) ", "CMD [\"sh\"]"],
            "Labels": {}
        },
        "created": "2024-09-26T21:31:42.123456789Z",
        "docker_version": "26.1.5",
        "history": [
            {"created": "2024-09-26T21:31:41Z", "created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
            {"created": "2024-09-26T21:31:42.123456789Z", "created_by": "/bin/sh -c #(nop)  CMD [\"sh\"]", "empty_layer": true},
            {"created": "2024-09-26T21:31:42.2Z", "author": "me", "comment": "buildkit.dockerfile.v0", "created_by": "RUN /bin/sh -c true"}
        ],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [L1, L2]},
        "variant": "v8",
        "moby.buildkit.buildinfo.v1": "e30="
    })
}

#[test]
fn docker_config_round_trips() {
    let original = docker_config();
    let bytes = serde_json::to_vec(&original).unwrap();
    let config = ImageConfig::from_slice(&bytes).unwrap();

    let c = config.config.as_ref().unwrap();
    assert_eq!(c.user.as_deref(), Some("app"));
    assert_eq!(c.cmd.as_deref(), Some(&["sh".to_string()][..]));
    let hc = c.healthcheck.as_ref().unwrap();
    assert_eq!(hc.interval, Some(30_000_000_000));
    assert_eq!(hc.retries, Some(3));
    assert_eq!(c.on_build.as_ref().unwrap()[0], "RUN echo child");
    assert_eq!(c.shell.as_ref().unwrap()[0], "/bin/ash");
    assert!(c.args_escaped);
    assert!(c.exposed_ports.as_ref().unwrap().contains_key("443/tcp"));
    assert_eq!(c.extra["Hostname"], json!(""));
    assert_eq!(config.rootfs.diff_ids[1].to_string(), L2);
    assert!(config.history[1].empty_layer);
    assert_eq!(config.docker_version.as_deref(), Some("26.1.5"));
    assert_eq!(config.extra["moby.buildkit.buildinfo.v1"], json!("e30="));

    let again: Value = serde_json::from_slice(&config.to_vec()).unwrap();
    assert_eq!(again, original);
    // And the bytes are stable.
    assert_eq!(
        ImageConfig::from_slice(&config.to_vec()).unwrap().to_vec(),
        config.to_vec()
    );
}

/// The shape umoci and buildah write: OCI keys only, `created` with nanoseconds and an
/// offset, a history entry without `created`.
#[test]
fn oci_config_parses() {
    let oci = json!({
        "created": "2023-05-01T10:00:00.000000001+02:00",
        "author": "umoci",
        "architecture": "arm64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/bin"],
            "Entrypoint": ["/bin/app"],
            "WorkingDir": "/",
            "Labels": {"a": "b"},
            "StopSignal": "SIGTERM"
        },
        "rootfs": {"type": "layers", "diff_ids": [L1]},
        "history": [{"created_by": "umoci insert", "comment": "import"}]
    });
    let config = ImageConfig::from_slice(oci.to_string().as_bytes()).unwrap();
    assert_eq!(config.architecture, "arm64");
    assert_eq!(config.author.as_deref(), Some("umoci"));
    assert_eq!(
        config.created_time().unwrap(),
        Utc.with_ymd_and_hms(2023, 5, 1, 8, 0, 0).unwrap() + chrono::Duration::nanoseconds(1)
    );
    assert_eq!(config.history[0].created_time(), None);
    assert!(config.extra.is_empty());
    assert!(config.config.as_ref().unwrap().extra.is_empty());
    let again: Value = serde_json::from_slice(&config.to_vec()).unwrap();
    assert_eq!(again, oci);
}

#[test]
fn nulls_read_as_absent() {
    let legacy = br#"{"architecture":"amd64","os":"linux","config":{"Cmd":null,"Entrypoint":null,
        "OnBuild":null,"Labels":null,"Volumes":null,"Env":["A=1"]},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config = ImageConfig::from_slice(legacy).unwrap();
    let c = config.config.as_ref().unwrap();
    assert_eq!(c.cmd, None);
    assert_eq!(c.labels, None);
    assert_eq!(
        String::from_utf8(config.to_vec()).unwrap(),
        r#"{"architecture":"amd64","config":{"Env":["A=1"]},"os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
    );
}

#[test]
fn a_new_config_has_no_nulls() {
    let config = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        created: Some(format_time(
            Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap(),
        )),
        config: Some(ContainerConfig {
            cmd: Some(vec![]),
            healthcheck: Some(HealthConfig::default()),
            ..ContainerConfig::default()
        }),
        history: vec![History {
            created_by: Some("CMD []".into()),
            empty_layer: true,
            ..History::default()
        }],
        ..ImageConfig::default()
    };
    assert_eq!(
        String::from_utf8(config.to_vec()).unwrap(),
        concat!(
            r#"{"architecture":"amd64","config":{"Cmd":[],"Healthcheck":{}},"#,
            r#""created":"2024-01-02T03:04:05Z","history":[{"created_by":"CMD []","empty_layer":true}],"#,
            r#""os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
        )
    );
}

#[test]
fn times_format_like_go() {
    let t = Utc.with_ymd_and_hms(2024, 9, 26, 21, 31, 42).unwrap();
    assert_eq!(format_time(t), "2024-09-26T21:31:42Z");
    let t2 = t + chrono::Duration::nanoseconds(51_200_000);
    assert_eq!(format_time(t2), "2024-09-26T21:31:42.0512Z");
    let t3 = t + chrono::Duration::nanoseconds(123_456_789);
    assert_eq!(format_time(t3), "2024-09-26T21:31:42.123456789Z");
    let config = ImageConfig {
        created: Some(format_time(t3)),
        ..ImageConfig::default()
    };
    assert_eq!(config.created_time(), Some(t3));
    let bad = ImageConfig {
        created: Some("yesterday".into()),
        ..ImageConfig::default()
    };
    assert_eq!(bad.created_time(), None);
}

#[test]
fn rejects_bad_diff_ids() {
    let bad = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:../x"]}}"#;
    assert!(ImageConfig::from_slice(bad).is_err());
}
