//! `rbuild login` / `logout` against docker's config.json and a real credential helper
//! process. Each test has its own DOCKER_CONFIG and HOME, so ~/.docker is never touched.
//! (Checking the credentials with the registry before storing them comes with the
//! registry transport.)

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::{Run, TempDir};

/// A docker config dir, a HOME, a store root and a bin dir put first on PATH.
struct Env {
    dir: TempDir,
}

impl Env {
    fn new(tag: &str) -> Self {
        let dir = TempDir::new(tag);
        for sub in ["docker", "home", "root", "bin"] {
            std::fs::create_dir_all(dir.0.join(sub)).unwrap();
        }
        Env { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.0.join("docker/config.json")
    }

    fn json(&self) -> serde_json::Value {
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
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Run {
        use std::io::Write;
        let path = format!(
            "{}:{}",
            self.dir.0.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let root = self.dir.0.join("root");
        let mut all = vec!["--root", root.to_str().unwrap()];
        all.extend_from_slice(args);
        let mut child = Command::new(env!("CARGO_BIN_EXE_rbuild"))
            .args(&all)
            .env("DOCKER_CONFIG", self.dir.0.join("docker"))
            .env("HOME", self.dir.0.join("home"))
            .env("PATH", path)
            .env_remove("RBUILD_INSECURE_REGISTRIES")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting rbuild");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            let _ = pipe.write_all(input.as_bytes());
        }
        let out = child.wait_with_output().unwrap();
        Run {
            args: all.iter().map(|s| s.to_string()).collect(),
            status: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

#[track_caller]
fn assert_no_secret(run: &Run, secret: &str) {
    assert!(
        !run.stdout.contains(secret) && !run.stderr.contains(secret),
        "the secret appears in the output of rbuild {}:\n{}\n{}",
        run.args.join(" "),
        run.stdout,
        run.stderr
    );
}

fn base64(s: &str) -> String {
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

#[test]
fn login_password_stdin_writes_dockers_format_and_logout_removes_it() {
    let env = Env::new("login-stdin");
    let secret = "pw-stdin-Zq81";
    let run = env
        .run(
            &["login", "-u", "alice", "--password-stdin", "localhost:5000"],
            Some(&format!("{secret}\n")),
        )
        .success()
        .stdout_contains("Login Succeeded")
        .stderr_contains("stored unencrypted");
    assert_no_secret(&run, secret);
    assert!(
        !run.stderr.contains("--password via the CLI"),
        "{}",
        run.stderr
    );

    let doc = env.json();
    assert_eq!(
        doc["auths"]["localhost:5000"]["auth"],
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
        .run(&["logout", "localhost:5000"], None)
        .success()
        .stdout_contains("Removing login credentials for localhost:5000");
    assert_no_secret(&run, secret);
    assert!(env.json()["auths"].get("localhost:5000").is_none());
    assert!(
        !std::fs::read_to_string(env.config())
            .unwrap()
            .contains("YWxpY2U")
    );
    env.run(&["logout", "localhost:5000"], None)
        .success()
        .stdout_contains("Not logged in to localhost:5000");
}

#[test]
fn login_with_p_warns_and_defaults_to_docker_hub() {
    let env = Env::new("login-p");
    // Another tool's settings in the same file survive a login and a logout.
    std::fs::write(
        env.config(),
        r#"{"psFormat": "table {{.ID}}", "auths": {"other.example": {"auth": "dTE6cDE="}}}"#,
    )
    .unwrap();
    let secret = "pw-flag-Kx02";
    let run = env
        .run(&["login", "-u", "bob", "-p", secret], None)
        .success()
        .stdout_contains("Login Succeeded")
        .stderr_contains(
            "WARNING! Using --password via the CLI is insecure. Use --password-stdin.",
        );
    assert_no_secret(&run, secret);
    let doc = env.json();
    assert_eq!(
        doc["auths"]["https://index.docker.io/v1/"]["auth"],
        base64(&format!("bob:{secret}")),
        "{doc}"
    );
    assert_eq!(doc["psFormat"], "table {{.ID}}");

    env.run(&["logout"], None)
        .success()
        .stdout_contains("Removing login credentials for https://index.docker.io/v1/");
    let doc = env.json();
    assert!(doc["auths"].get("https://index.docker.io/v1/").is_none());
    assert_eq!(doc["auths"]["other.example"]["auth"], "dTE6cDE=");
    assert_eq!(doc["psFormat"], "table {{.ID}}");
}

#[test]
fn creds_store_helper_receives_store_and_erase() {
    let env = Env::new("login-helper");
    let state = env.install_helper("rbtest");
    std::fs::write(env.config(), r#"{"credsStore": "rbtest"}"#).unwrap();
    let secret = "pw-helper-Jt55";
    let run = env
        .run(
            &[
                "login",
                "--username",
                "carol",
                "--password-stdin",
                "127.0.0.1:5000",
            ],
            Some(secret),
        )
        .success()
        .stdout_contains("Login Succeeded");
    assert_no_secret(&run, secret);
    assert!(!run.stderr.contains("unencrypted"), "{}", run.stderr);

    let saved = std::fs::read_to_string(state.join("127_0_0_1_5000.json")).unwrap();
    assert!(
        saved.contains(secret) && saved.contains(r#""Username":"carol""#),
        "{saved}"
    );
    let text = std::fs::read_to_string(env.config()).unwrap();
    assert!(!text.contains(secret), "the file holds no secret: {text}");
    assert_eq!(env.json()["auths"]["127.0.0.1:5000"], serde_json::json!({}));

    let run = env
        .run(&["logout", "127.0.0.1:5000"], None)
        .success()
        .stdout_contains("Removing login credentials for 127.0.0.1:5000");
    assert_no_secret(&run, secret);
    assert!(!state.join("127_0_0_1_5000.json").exists());
    let log = std::fs::read_to_string(state.join("log")).unwrap();
    assert_eq!(log.lines().collect::<Vec<_>>(), ["store", "erase"]);
    assert_eq!(env.json()["credsStore"], "rbtest");
}

#[test]
fn helper_failure_names_the_helper_and_keeps_the_secret_out() {
    let env = Env::new("login-helper-fail");
    // A helper that echoes what it was given and fails.
    let helper = env.dir.0.join("bin/docker-credential-echoer");
    std::fs::write(&helper, "#!/bin/sh\ncat\nexit 1\n").unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(env.config(), r#"{"credsStore": "echoer"}"#).unwrap();
    let secret = "pw-echoed-Wm77";
    let run = env
        .run(
            &["login", "-u", "dave", "--password-stdin", "reg.example"],
            Some(secret),
        )
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
    use std::time::{Duration, Instant};
    assert!(
        Path::new("/usr/bin/script").exists(),
        "/usr/bin/script is missing: install Debian's bsdutils"
    );
    let env = Env::new("login-tty");
    let root = env.dir.0.join("root");
    let command = format!(
        "{} --root {} login localhost:5000",
        env!("CARGO_BIN_EXE_rbuild"),
        root.display()
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
        env.json()["auths"]["localhost:5000"]["auth"],
        base64("ttyuser:pw-tty-Hq31")
    );
}
