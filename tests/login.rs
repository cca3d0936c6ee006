//! `rbuild login` / `logout` against real registries (htpasswd, token and open ones from
//! [`crate::registry_util`]), docker's config.json and a real credential helper process.
//! Login checks the credentials with the registry before storing them, as docker does,
//! so every login here talks to a registry that exists. Each test has its own
//! DOCKER_CONFIG and HOME, so ~/.docker is never touched.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::registry_util::{Registry, RegistryAuth};
use crate::util::{Run, TempDir, run_command};

/// A docker config dir, a HOME, a store root and a bin dir put first on PATH.
pub struct Env {
    pub dir: TempDir,
}

impl Env {
    pub fn new(tag: &str) -> Self {
        let dir = TempDir::new(tag);
        for sub in ["docker", "home", "root", "bin"] {
            std::fs::create_dir_all(dir.0.join(sub)).unwrap();
        }
        Env { dir }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.0.join("docker/config.json")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.config()).unwrap()).unwrap()
    }

    /// The fixture helper as `docker-credential-NAME` on PATH; returns its state dir.
    fn install_helper(&self, name: &str) -> PathBuf {
        let target = self
            .dir
            .0
            .join("bin")
            .join(format!("docker-credential-{name}"));
        std::fs::copy(
            crate::util::root().join("fixtures/docker-credential-file.sh"),
            &target,
        )
        .unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
        self.dir.0.join("bin/state")
    }

    /// Runs `rbuild --root ROOT ARGS` with `stdin` (None: /dev/null, not a terminal).
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Run {
        self.run_env(args, stdin, &[])
    }

    /// [`Env::run`] with extra environment variables.
    pub fn run_env(&self, args: &[&str], stdin: Option<&str>, envs: &[(&str, &str)]) -> Run {
        let path = format!(
            "{}:{}",
            self.dir.0.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let root = self.dir.0.join("root");
        let mut all = vec!["--root", root.to_str().unwrap()];
        all.extend_from_slice(args);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rbuild"));
        cmd.env("DOCKER_CONFIG", self.dir.0.join("docker"))
            .env("HOME", self.dir.0.join("home"))
            .env("PATH", path)
            .env_remove("RBUILD_INSECURE_REGISTRIES")
            .env_remove("RBUILD_REGISTRY_TIMEOUT")
            .envs(envs.iter().copied());
        run_command(cmd, &all, stdin.map(str::as_bytes)).0
    }

    /// `rbuild login -u USER --password-stdin SERVER`.
    pub fn login(&self, server: &str, user: &str, password: &str) -> Run {
        self.run(
            &["login", "-u", user, "--password-stdin", server],
            Some(password),
        )
    }
}

#[track_caller]
pub fn assert_no_secret(run: &Run, secret: &str) {
    assert!(
        !run.stdout.contains(secret) && !run.stderr.contains(secret),
        "the secret appears in the output of rbuild {}:\n{}\n{}",
        run.args.join(" "),
        run.stdout,
        run.stderr
    );
}

pub fn base64(s: &str) -> String {
    // The tests' own encoder, so a bug in the one under test cannot hide itself.
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in s.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The registry's access log lines for rbuild's `GET /v2/` that it answered 200, once
/// there are at least `at_least` (the line is written just after the answer).
fn v2_ok_lines(reg: &Registry, at_least: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines: Vec<String> = reg
            .log()
            .lines()
            .filter(|l| l.contains("\"GET /v2/ HTTP/1.1\" 200") && l.contains("\"rbuild/"))
            .map(str::to_string)
            .collect();
        if lines.len() >= at_least || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn login_basic_to_an_htpasswd_registry_writes_dockers_format_and_logout_removes_it() {
    let reg = Registry::start(
        "login-basic",
        RegistryAuth::htpasswd("alice", "pw-stdin-Zq81"),
    );
    let env = Env::new("login-stdin");
    let secret = "pw-stdin-Zq81";
    let a = reg.addr.as_str();
    let run = env
        .login(a, "alice", &format!("{secret}\n"))
        .success()
        .stdout_contains("Login Succeeded")
        .stderr_contains("stored unencrypted");
    assert_no_secret(&run, secret);
    assert!(
        !run.stderr.contains("--password via the CLI"),
        "{}",
        run.stderr
    );
    // The registry let the user in.
    assert_eq!(v2_ok_lines(&reg, 1).len(), 1, "{}", reg.log());
    assert!(reg.log().contains("authorized request"), "{}", reg.log());

    let doc = env.json();
    assert_eq!(
        doc["auths"][a]["auth"],
        base64(&format!("alice:{secret}")),
        "{doc}"
    );
    assert_eq!(mode(&env.config()), 0o600);
    let text = std::fs::read_to_string(env.config()).unwrap();
    assert!(
        text.starts_with("{\n\t\""),
        "tab-indented like docker: {text}"
    );

    let run = env
        .run(&["logout", a], None)
        .success()
        .stdout_contains(&format!("Removing login credentials for {a}"));
    assert_no_secret(&run, secret);
    assert!(env.json()["auths"].get(a).is_none());
    assert!(
        !std::fs::read_to_string(env.config())
            .unwrap()
            .contains("YWxpY2U")
    );
    env.run(&["logout", a], None)
        .success()
        .stdout_contains(&format!("Not logged in to {a}"));
}

/// Bearer: the registry sends the client to its token server, which must receive the
/// user's credentials (and only there is the password checked).
#[test]
fn login_bearer_gets_a_token_as_the_user() {
    let secret = "pw-token-Rb40";
    let reg = Registry::start("login-token", RegistryAuth::token("alice", secret));
    let env = Env::new("login-token");
    let run = env
        .login(&reg.addr, "alice", secret)
        .success()
        .stdout_contains("Login Succeeded");
    assert_no_secret(&run, secret);
    let log = reg.token_requests();
    assert_eq!(log.len(), 1, "one token for the check: {log:#?}");
    assert_eq!(log[0].basic_user.as_deref(), Some("alice"), "{log:#?}");
    assert_eq!(log[0].status, 200, "{log:#?}");
    assert_eq!(
        log[0].service.as_deref(),
        Some(crate::token_server::SERVICE),
        "{log:#?}"
    );
    assert!(log[0].scopes.is_empty(), "docker asks no scope: {log:#?}");
    assert_eq!(
        env.json()["auths"][reg.addr.as_str()]["auth"],
        base64(&format!("alice:{secret}"))
    );
    // And the token was good: the registry answered /v2/ with 200.
    assert_eq!(v2_ok_lines(&reg, 1).len(), 1, "{}", reg.log());
}

/// A registry without auth lets anyone in: `docker login` says `Login Succeeded` and
/// stores the credentials, and so does rbuild.
#[test]
fn login_to_an_open_registry_succeeds_like_docker() {
    let reg = Registry::start("login-open", RegistryAuth::Anonymous);
    let env = Env::new("login-open");
    let secret = "pw-open-Tt93";
    let run = env
        .login(&reg.addr, "anyone", secret)
        .success()
        .stdout_contains("Login Succeeded");
    assert_no_secret(&run, secret);
    assert_eq!(
        env.json()["auths"][reg.addr.as_str()]["auth"],
        base64(&format!("anyone:{secret}"))
    );
    assert_eq!(v2_ok_lines(&reg, 1).len(), 1, "{}", reg.log());
}

#[test]
fn login_with_a_wrong_password_fails_and_stores_nothing() {
    let basic = Registry::start(
        "login-wrong-basic",
        RegistryAuth::htpasswd("alice", "right-Qa1"),
    );
    let token = Registry::start(
        "login-wrong-token",
        RegistryAuth::token("alice", "right-Qa1"),
    );
    for reg in [&basic, &token] {
        let env = Env::new("login-wrong");
        // A config written by someone else stays as it was, byte for byte.
        let before = r#"{"auths": {"other.example": {"auth": "dTE6cDE="}}}"#;
        std::fs::write(env.config(), before).unwrap();
        let wrong = "wrong-pw-Lk27";
        let run = env
            .login(&reg.addr, "alice", wrong)
            .failure()
            .stderr_contains("unauthorized")
            .stderr_contains(&reg.addr);
        crate::registry_transport::assert_clean(&run, &[wrong, &base64(&format!("alice:{wrong}"))]);
        assert!(!run.stdout.contains("Login Succeeded"), "{}", run.stdout);
        assert_eq!(std::fs::read_to_string(env.config()).unwrap(), before);
        // Without a config file, none is made.
        let env = Env::new("login-wrong-none");
        env.login(&reg.addr, "alice", wrong).failure();
        assert!(!env.config().exists(), "a failed login wrote config.json");
    }
    // The token server's own words reach the user.
    let env = Env::new("login-wrong-words");
    env.login(&token.addr, "alice", "wrong-pw-Lk27")
        .failure()
        .stderr_contains("incorrect username or password");
    // The token server was asked with the wrong password and said no.
    let log = token.token_requests();
    assert!(
        !log.is_empty() && log.iter().all(|r| r.status == 401),
        "{log:#?}"
    );
}

/// `-p` on a local registry: docker's warning, and other keys of the file survive a
/// login and a logout.
#[test]
fn login_with_p_warns_and_keeps_other_settings() {
    let secret = "pw-flag-Kx02";
    let reg = Registry::start("login-p", RegistryAuth::htpasswd("bob", secret));
    let env = Env::new("login-p");
    std::fs::write(
        env.config(),
        r#"{"psFormat": "table {{.ID}}", "auths": {"other.example": {"auth": "dTE6cDE="}}}"#,
    )
    .unwrap();
    let a = reg.addr.as_str();
    let run = env
        .run(&["login", "-u", "bob", "-p", secret, a], None)
        .success()
        .stdout_contains("Login Succeeded")
        .stderr_contains(
            "WARNING! Using --password via the CLI is insecure. Use --password-stdin.",
        );
    assert_no_secret(&run, secret);
    let doc = env.json();
    assert_eq!(
        doc["auths"][a]["auth"],
        base64(&format!("bob:{secret}")),
        "{doc}"
    );
    assert_eq!(doc["psFormat"], "table {{.ID}}");

    env.run(&["logout", a], None)
        .success()
        .stdout_contains(&format!("Removing login credentials for {a}"));
    let doc = env.json();
    assert!(doc["auths"].get(a).is_none());
    assert_eq!(doc["auths"]["other.example"]["auth"], "dTE6cDE=");
    assert_eq!(doc["psFormat"], "table {{.ID}}");
}

/// Without SERVER, login and logout mean Docker Hub. There is no network here, so the
/// login must fail (naming Docker Hub's API host, writing nothing); logout needs no
/// server and uses docker's key for Docker Hub.
#[test]
fn docker_hub_is_the_default_server() {
    let env = Env::new("login-hub");
    let secret = "pw-hub-Mm64";
    let start = Instant::now();
    // The idle timeout bounds a resolver that does not answer.
    let run = env
        .run_env(
            &["login", "-u", "bob", "-p", secret],
            None,
            &[("RBUILD_REGISTRY_TIMEOUT", "2")],
        )
        .failure();
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "login to Docker Hub took {:?}",
        start.elapsed()
    );
    assert!(
        run.stderr.contains("registry-1.docker.io") || run.stderr.contains("docker.io"),
        "the error names Docker Hub:\n{}",
        run.stderr
    );
    crate::registry_transport::assert_clean(&run, &[secret]);
    assert!(!env.config().exists(), "a failed login wrote config.json");

    env.run(&["logout"], None)
        .success()
        .stdout_contains("Not logged in to https://index.docker.io/v1/");
    std::fs::write(
        env.config(),
        r#"{"auths": {"https://index.docker.io/v1/": {"auth": "Ym9iOnB3"}, "other.example": {"auth": "dTE6cDE="}}}"#,
    )
    .unwrap();
    env.run(&["logout"], None)
        .success()
        .stdout_contains("Removing login credentials for https://index.docker.io/v1/");
    let doc = env.json();
    assert!(
        doc["auths"].get("https://index.docker.io/v1/").is_none(),
        "{doc}"
    );
    assert_eq!(doc["auths"]["other.example"]["auth"], "dTE6cDE=");
}

#[test]
fn creds_store_helper_receives_store_and_erase() {
    let secret = "pw-helper-Jt55";
    let reg = Registry::start("login-helper", RegistryAuth::htpasswd("carol", secret));
    let a = reg.addr.as_str();
    let state_file = format!("{}.json", a.replace(['.', ':'], "_"));
    let env = Env::new("login-helper");
    let state = env.install_helper("rbtest");
    std::fs::write(env.config(), r#"{"credsStore": "rbtest"}"#).unwrap();
    let run = env
        .run(
            &["login", "--username", "carol", "--password-stdin", a],
            Some(secret),
        )
        .success()
        .stdout_contains("Login Succeeded");
    assert_no_secret(&run, secret);
    assert!(!run.stderr.contains("unencrypted"), "{}", run.stderr);

    let saved = std::fs::read_to_string(state.join(&state_file)).unwrap();
    assert!(
        saved.contains(secret) && saved.contains(r#""Username":"carol""#),
        "{saved}"
    );
    let text = std::fs::read_to_string(env.config()).unwrap();
    assert!(!text.contains(secret), "the file holds no secret: {text}");
    assert_eq!(env.json()["auths"][a], serde_json::json!({}));

    // What the helper holds is what a later command sends: search gets in with it.
    crate::registry_transport::push_tiny(
        a,
        "helper/app",
        "1",
        Some(&crate::token_server::basic_auth("carol", secret)),
    );
    env.run(
        &["search", "--format", "{{.Name}}", &format!("{a}/helper")],
        None,
    )
    .success()
    .stdout_contains(&format!("{a}/helper/app"));

    let run = env
        .run(&["logout", a], None)
        .success()
        .stdout_contains(&format!("Removing login credentials for {a}"));
    assert_no_secret(&run, secret);
    assert!(!state.join(&state_file).exists());
    let log = std::fs::read_to_string(state.join("log")).unwrap();
    assert_eq!(log.lines().collect::<Vec<_>>(), ["store", "get", "erase"]);
    assert_eq!(env.json()["credsStore"], "rbtest");
}

#[test]
fn helper_failure_names_the_helper_and_keeps_the_secret_out() {
    let secret = "pw-echoed-Wm77";
    let reg = Registry::start("login-helper-fail", RegistryAuth::htpasswd("dave", secret));
    let env = Env::new("login-helper-fail");
    // A helper that echoes what it was given and fails.
    let helper = env.dir.0.join("bin/docker-credential-echoer");
    std::fs::write(&helper, "#!/bin/sh\ncat\nexit 1\n").unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(env.config(), r#"{"credsStore": "echoer"}"#).unwrap();
    let run = env
        .login(&reg.addr, "dave", secret)
        .failure()
        .stderr_contains("docker-credential-echoer store");
    assert_no_secret(&run, secret);
    assert!(!run.stdout.contains("Login Succeeded"));
    assert_eq!(
        std::fs::read_to_string(env.config()).unwrap(),
        r#"{"credsStore": "echoer"}"#
    );
}

#[test]
fn login_refuses_what_docker_refuses() {
    let env = Env::new("login-usage");
    env.run(&["login", "localhost:5000"], None)
        .failure()
        .stderr_contains("Cannot perform an interactive login from a non TTY device");
    env.run(&["login", "-u", "x", "localhost:5000"], None)
        .failure()
        .stderr_contains("Cannot perform an interactive login from a non TTY device");
    env.run(&["login", "--password-stdin", "localhost:5000"], Some("pw"))
        .failure()
        .stderr_contains("Must provide --username with --password-stdin");
    env.run(
        &[
            "login",
            "-u",
            "x",
            "-p",
            "y",
            "--password-stdin",
            "localhost:5000",
        ],
        Some("pw"),
    )
    .failure()
    .stderr_contains("--password and --password-stdin are mutually exclusive");
    env.run(
        &[
            "--insecure-registry",
            "http://x",
            "login",
            "-u",
            "x",
            "-p",
            "y",
        ],
        None,
    )
    .failure()
    .stderr_contains("should not contain '://'");
    assert!(!env.config().exists(), "nothing written by a refused login");
}

#[test]
fn broken_config_is_named_and_left_alone() {
    let env = Env::new("login-broken");
    std::fs::write(env.config(), "{\"auths\": {").unwrap();
    let secret = "pw-broken-Pp19";
    let run = env
        .run(
            &["login", "-u", "e", "--password-stdin", "reg.example"],
            Some(secret),
        )
        .failure()
        .stderr_contains(&env.config().display().to_string());
    assert_no_secret(&run, secret);
    assert_eq!(
        std::fs::read_to_string(env.config()).unwrap(),
        "{\"auths\": {"
    );
    env.run(&["logout", "reg.example"], None)
        .failure()
        .stderr_contains("not valid JSON");
}

/// On a terminal (a pty from util-linux `script`), login prompts for what is missing
/// and reads the password without echoing it.
#[test]
fn login_prompts_on_a_terminal_without_echoing_the_password() {
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};
    assert!(
        Path::new("/usr/bin/script").exists(),
        "/usr/bin/script is missing: install Debian's bsdutils"
    );
    let reg = Registry::start(
        "login-tty",
        RegistryAuth::htpasswd("ttyuser", "pw-tty-Hq31"),
    );
    let env = Env::new("login-tty");
    let root = env.dir.0.join("root");
    let command = format!(
        "{} --root {} login {}",
        env!("CARGO_BIN_EXE_rbuild"),
        root.display(),
        reg.addr
    );
    let mut child = Command::new("/usr/bin/script")
        .args(["-qec", &command, "/dev/null"])
        .env("DOCKER_CONFIG", env.dir.0.join("docker"))
        .env("HOME", env.dir.0.join("home"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let seen = Arc::new(Mutex::new(String::new()));
    let reader = {
        let seen = seen.clone();
        let mut out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let wait_for = |needle: &str| {
        let start = Instant::now();
        while !seen.lock().unwrap().contains(needle) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no {needle:?} from rbuild login; output so far:\n{}",
                seen.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let mut stdin = child.stdin.take().unwrap();
    wait_for("Username: ");
    stdin.write_all(b"ttyuser\n").unwrap();
    wait_for("Password: ");
    // rpassword prints the prompt just before it turns echo off; a person types slower
    // than that, and so does this test.
    std::thread::sleep(Duration::from_millis(500));
    stdin.write_all(b"pw-tty-Hq31\n").unwrap();
    wait_for("Login Succeeded");
    drop(stdin);
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let output = seen.lock().unwrap().clone();
    assert!(status.success(), "{output}");
    assert!(
        output.contains("ttyuser"),
        "the user name is echoed: {output}"
    );
    assert!(!output.contains("pw-tty-Hq31"), "password echoed: {output}");
    assert_eq!(
        env.json()["auths"][reg.addr.as_str()]["auth"],
        base64("ttyuser:pw-tty-Hq31")
    );
}
