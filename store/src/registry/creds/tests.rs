use std::os::unix::fs::PermissionsExt;

use super::*;

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A config in a fresh temp dir whose helpers are looked up only in `DIR/bin`.
fn config(dir: &tempfile::TempDir) -> DockerConfig {
    DockerConfig::in_dir(&dir.path().join("docker")).with_helper_path(dir.path().join("bin"))
}

/// Installs the fixture helper (the real protocol, a real process) as
/// `DIR/bin/docker-credential-NAME`; its state is `DIR/bin/state`.
fn install_helper(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/docker-credential-file.sh");
    install_script(dir, name, &std::fs::read_to_string(script).unwrap())
}

fn install_script(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let path = bin.join(format!("docker-credential-{name}"));
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin.join("state")
}

fn write_config(cfg: &DockerConfig, text: &str) {
    std::fs::create_dir_all(cfg.path().parent().unwrap()).unwrap();
    std::fs::write(cfg.path(), text).unwrap();
}

#[test]
fn round_trip_in_the_file_as_docker_writes_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir);
    assert_eq!(cfg.get("localhost:5000").unwrap(), None);
    let cred = Credential::password("alice", "s3cret:with:colons");
    let stored = cfg.store("localhost:5000", &cred).unwrap();
    assert_eq!(stored, Stored::File(cfg.path().to_path_buf()));
    assert_eq!(cfg.get("localhost:5000").unwrap(), Some(cred));

    let doc = read_json(cfg.path());
    assert_eq!(
        doc["auths"]["localhost:5000"]["auth"],
        BASE64.encode("alice:s3cret:with:colons")
    );
    let text = std::fs::read_to_string(cfg.path()).unwrap();
    assert!(
        text.contains("\n\t\"auths\""),
        "tab-indented like docker: {text}"
    );
    let mode = std::fs::metadata(cfg.path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let dir_mode = std::fs::metadata(cfg.path().parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700);
    // No temp files left beside it.
    let names: Vec<_> = std::fs::read_dir(cfg.path().parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("config.json")]);

    assert!(cfg.erase("localhost:5000").unwrap());
    assert_eq!(cfg.get("localhost:5000").unwrap(), None);
    assert!(!cfg.erase("localhost:5000").unwrap());
}

#[test]
fn unknown_keys_and_other_registries_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir);
    write_config(
        &cfg,
        r#"{
            "auths": {"other.example:5000": {"auth": "Ym9iOnB3", "email": "b@example"}},
            "HttpHeaders": {"User-Agent": "x"},
            "psFormat": "table {{.ID}}",
            "plugins": {"a": {"b": [1, 2, {"c": null}]}}
        }"#,
    );
    cfg.store("localhost:5000", &Credential::password("a", "b"))
        .unwrap();
    let doc = read_json(cfg.path());
    assert_eq!(doc["HttpHeaders"]["User-Agent"], "x");
    assert_eq!(doc["psFormat"], "table {{.ID}}");
    assert_eq!(doc["plugins"]["a"]["b"][2]["c"], Value::Null);
    assert_eq!(doc["auths"]["other.example:5000"]["email"], "b@example");
    assert_eq!(
        cfg.get("other.example:5000").unwrap(),
        Some(Credential::password("bob", "pw"))
    );
    cfg.erase("localhost:5000").unwrap();
    let doc = read_json(cfg.path());
    assert_eq!(doc["psFormat"], "table {{.ID}}");
    assert!(doc["auths"].get("other.example:5000").is_some());
}

#[test]
fn hub_and_url_keys_are_normalised() {
    assert_eq!(server_key("docker.io"), INDEX_SERVER);
    assert_eq!(server_key("index.docker.io"), INDEX_SERVER);
    assert_eq!(server_key("https://index.docker.io/v1/"), INDEX_SERVER);
    assert_eq!(server_key("registry-1.docker.io"), INDEX_SERVER);
    assert_eq!(server_key("Localhost:5000"), "localhost:5000");
    assert_eq!(
        server_key("http://example.com:5000/v2/"),
        "example.com:5000"
    );
    assert_eq!(host_of("[::1]:5000"), "[::1]:5000");

    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir);
    cfg.store("docker.io", &Credential::password("hubuser", "hubpw"))
        .unwrap();
    let doc = read_json(cfg.path());
    assert!(doc["auths"].get(INDEX_SERVER).is_some(), "{doc}");
    assert_eq!(
        cfg.get("index.docker.io").unwrap(),
        Some(Credential::password("hubuser", "hubpw"))
    );

    // Keys written by other tools with a scheme or a path still match their host.
    write_config(
        &cfg,
        r#"{"auths": {
            "https://reg.example": {"auth": "dTE6cDE="},
            "http://other.example:5000/v2/": {"username": "u2", "password": "p2"}
        }}"#,
    );
    assert_eq!(
        cfg.get("reg.example").unwrap(),
        Some(Credential::password("u1", "p1"))
    );
    assert_eq!(
        cfg.get("other.example:5000").unwrap(),
        Some(Credential::password("u2", "p2"))
    );
    assert_eq!(
        cfg.get("other.example").unwrap(),
        None,
        "the port is part of the host"
    );
    assert!(cfg.erase("other.example:5000").unwrap());
    assert!(
        read_json(cfg.path())["auths"]
            .get("https://reg.example")
            .is_some()
    );
}

#[test]
fn identity_tokens_are_kept_apart_from_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir);
    let cred = Credential::identity_token("alice", "refresh-token-1");
    cfg.store("reg.example", &cred).unwrap();
    let doc = read_json(cfg.path());
    assert_eq!(
        doc["auths"]["reg.example"]["identitytoken"],
        "refresh-token-1"
    );
    assert_eq!(doc["auths"]["reg.example"]["auth"], BASE64.encode("alice:"));
    assert_eq!(cfg.get("reg.example").unwrap(), Some(cred));
}

#[test]
fn debug_and_errors_do_not_show_secrets() {
    let cred = Credential::password("alice", "hunter2");
    let shown = format!("{cred:?}");
    assert!(
        shown.contains("alice") && !shown.contains("hunter2"),
        "{shown}"
    );

    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir);
    // Not base64: the error names the file and key, not the content.
    write_config(&cfg, r#"{"auths": {"reg.example": {"auth": "hunter2!!"}}}"#);
    let err = cfg.get("reg.example").unwrap_err().to_string();
    assert!(
        err.contains("config.json") && err.contains("reg.example"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    write_config(&cfg, r#"{"auths": {"reg.example": {"auth": "hunter2"#);
    let err = cfg.get("reg.example").unwrap_err().to_string();
    assert!(
        err.contains("config.json") && !err.contains("hunter2"),
        "{err}"
    );
}

#[test]
fn credential_helper_get_store_erase() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir);
    let state = install_helper(&dir, "testfile");
    write_config(&cfg, r#"{"credsStore": "testfile", "auths": {}}"#);

    assert_eq!(
        cfg.get("localhost:5000").unwrap(),
        None,
        "helper has nothing yet"
    );
    let cred = Credential::password("alice", "pw-in-helper");
    let stored = cfg.store("localhost:5000", &cred).unwrap();
    assert_eq!(stored, Stored::Helper("docker-credential-testfile".into()));
    // The file keeps an empty entry, and no secret.
    let text = std::fs::read_to_string(cfg.path()).unwrap();
    assert!(!text.contains("pw-in-helper"), "{text}");
    assert_eq!(
        read_json(cfg.path())["auths"]["localhost:5000"],
        serde_json::json!({})
    );
    assert_eq!(cfg.get("localhost:5000").unwrap(), Some(cred));

    // An identity token goes to the helper as user name `<token>`.
    let token = Credential::identity_token("", "tok-1");
    cfg.store("docker.io", &token).unwrap();
    let saved = std::fs::read_to_string(state.join("https___index_docker_io_v1_.json")).unwrap();
    assert!(saved.contains(r#""Username":"<token>""#), "{saved}");
    assert_eq!(cfg.get("docker.io").unwrap(), Some(token));

    assert!(cfg.erase("localhost:5000").unwrap());
    assert_eq!(cfg.get("localhost:5000").unwrap(), None);
    assert!(
        read_json(cfg.path())["auths"]
            .get("localhost:5000")
            .is_none()
    );
    assert!(!cfg.erase("localhost:5000").unwrap());
    let log = std::fs::read_to_string(state.join("log")).unwrap();
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        [
            "get", "store", "get", "store", "get", "erase", "get", "erase"
        ]
    );
}

#[test]
fn cred_helpers_win_over_creds_store() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir);
    let a = install_helper(&dir, "a");
    write_config(
        &cfg,
        r#"{"credsStore": "missing", "credHelpers": {"https://reg.example": "a"}}"#,
    );
    cfg.store("reg.example", &Credential::password("u", "p"))
        .unwrap();
    assert!(a.join("reg_example.json").is_file());
    assert_eq!(
        cfg.get("reg.example").unwrap(),
        Some(Credential::password("u", "p"))
    );
    // Other hosts go to credsStore, which is not installed: the error names it.
    let err = cfg.get("other.example").unwrap_err().to_string();
    assert!(err.contains("docker-credential-missing"), "{err}");
}

#[test]
fn helper_failure_names_the_helper_not_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir);
    // Echoes its input (with the secret) and fails, as a careless helper might.
    install_script(&dir, "broken", "#!/bin/sh\ncat\necho\nexit 3\n");
    write_config(&cfg, r#"{"credsStore": "broken", "psFormat": "x"}"#);
    let before = std::fs::read(cfg.path()).unwrap();
    let err = cfg
        .store(
            "reg.example",
            &Credential::password("alice", "topsecret-42"),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("docker-credential-broken store"), "{err}");
    assert!(!err.contains("topsecret-42"), "{err}");
    assert_eq!(std::fs::read(cfg.path()).unwrap(), before, "file unchanged");

    let err = cfg.get("reg.example").unwrap_err().to_string();
    assert!(err.contains("docker-credential-broken get"), "{err}");
}

#[test]
fn a_helper_that_hangs_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir).with_helper_timeout(Duration::from_millis(300));
    install_script(&dir, "slow", "#!/bin/sh\nexec sleep 30\n");
    write_config(&cfg, r#"{"credsStore": "slow"}"#);
    let start = std::time::Instant::now();
    let err = cfg.get("reg.example").unwrap_err().to_string();
    assert!(
        err.contains("docker-credential-slow get") && err.contains("no answer"),
        "{err}"
    );
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn check_fails_as_the_first_read_would() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir);
    cfg.check().expect("a missing file is an empty config");
    write_config(&cfg, "  \n");
    cfg.check().expect("an empty file is an empty config");
    write_config(&cfg, r#"{"auths": {}}"#);
    cfg.check().unwrap();
    write_config(&cfg, "{\"auths\": {");
    let err = cfg.check().unwrap_err().to_string();
    assert!(err.contains("not valid JSON"), "{err}");
    assert!(err.contains(&cfg.path().display().to_string()), "{err}");
    write_config(&cfg, "[]");
    assert!(cfg.check().is_err());
}
