//! Reproducible builds (issue 6, items 1 and 2): with `SOURCE_DATE_EPOCH`, the same
//! Dockerfile and context built in two stores in different directories, at different
//! times, under different umasks and with different context mtimes give the same image
//! ID, diff IDs and saved manifest; `--reproducible-check` names the first layer and
//! file of a build that is not reproducible.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::build::config;
use crate::build_run::{check_clean, interrupt, mounts_under, start_until_running};
use crate::util::{Run, TempDir, TestStore, json, p, run_command};

/// 2020-09-13T12:26:40Z.
const EPOCH: i64 = 1_600_000_000;
/// Older than the epoch: a file with this mtime keeps it.
const OLD: i64 = 1_000_000_000;

/// `rbuild --root STORE ARGS` in `dir` under `umask`, with `env` added.
fn rbuild_as(store: &TestStore, umask: &str, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = Command::new("sh");
    cmd.current_dir(store.root())
        .arg("-c")
        .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_rbuild"))
        .arg("--root")
        .arg(store.root());
    cmd.env_remove("SOURCE_DATE_EPOCH");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_command(cmd, args, None).0
}

fn set_mtime(path: &Path, secs: i64) {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64);
    // Not through a symlink: its own time.
    let ts = nix::sys::time::TimeSpec::new(secs, 0);
    if fs::symlink_metadata(path).unwrap().file_type().is_symlink() {
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            path,
            &ts,
            &ts,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
    } else {
        fs::File::open(path).unwrap().set_modified(t).unwrap();
    }
}

/// The fixture: a tree with varied modes, symlinks and mtimes, and a Dockerfile that
/// copies it, runs commands that write files and directories, makes a WORKDIR and
/// copies a heredoc. `mtime` is given to every context entry but `old.txt`.
fn context(tag: &str, mtime: i64) -> TempDir {
    let ctx = TempDir::new(tag);
    ctx.write(
        "Dockerfile",
        "FROM base\n\
         COPY tree/ /app/\n\
         COPY tree/bin/tool.sh /opt/made/on/the/way/\n\
         WORKDIR /work/dir\n\
         RUN echo ran > out.txt && mkdir -p /var/made/deep && echo x > /var/made/deep/x \
             && ln -s out.txt link && chmod 0700 /var/made && rm /etc/group\n\
         COPY <<EOF /etc/motd\nhello\nEOF\n\
         ADD tree/sub /added/\n\
         ENV A=1\n\
         RUN echo second > /app/second\n",
    );
    let files: &[(&str, u32)] = &[
        ("tree/plain.txt", 0o644),
        ("tree/bin/tool.sh", 0o755),
        ("tree/secret", 0o600),
        ("tree/readonly", 0o444),
        ("tree/sub/deeper/file", 0o640),
        ("tree/old.txt", 0o644),
    ];
    for (name, mode) in files {
        let path = ctx.write(name, &format!("content of {name}\n"));
        fs::set_permissions(&path, fs::Permissions::from_mode(*mode)).unwrap();
    }
    fs::set_permissions(ctx.0.join("tree/sub"), fs::Permissions::from_mode(0o2775)).unwrap();
    std::os::unix::fs::symlink("plain.txt", ctx.0.join("tree/link")).unwrap();
    std::os::unix::fs::symlink("/nowhere", ctx.0.join("tree/dangling")).unwrap();
    // Deepest first, directories last: setting a time on an entry does not change its
    // parent's.
    let mut all: Vec<_> = walk(&ctx.0);
    all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for path in all {
        set_mtime(&path, mtime);
    }
    set_mtime(&ctx.0.join("tree/old.txt"), OLD);
    ctx
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if fs::symlink_metadata(&path).unwrap().is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

/// A store holding the same `base` image as every other one made by this function: the
/// first imports busybox, the others load its `save`.
fn store_with_base(tag: &str, from: Option<&TestStore>) -> TestStore {
    let store = TestStore::new(tag);
    match from {
        None => {
            store.busybox("base");
        }
        Some(other) => {
            let archive = store.root().join("base.tar");
            other.run(&["save", "-o", p(&archive), "base"]).success();
            store.run(&["load", "-i", p(&archive)]).success();
            fs::remove_file(&archive).unwrap();
        }
    }
    store
}

/// The saved archive's manifest digest (its OCI index's only entry).
fn saved_manifest(store: &TestStore, image: &str) -> String {
    let archive = store.root().join("out.tar");
    store.run(&["save", "-o", p(&archive), image]).success();
    let mut tar = tar::Archive::new(fs::File::open(&archive).unwrap());
    let mut index = None;
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some("index.json") {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            index = Some(json(&s));
        }
    }
    fs::remove_file(&archive).unwrap();
    let index = index.expect("index.json in the saved archive");
    index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn wait_for_the_next_second() {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap();
    std::thread::sleep(Duration::from_nanos(
        1_000_000_000 - u64::from(now.subsec_nanos()) + 10_000_000,
    ));
}

#[test]
fn source_date_epoch_gives_the_same_digests_in_two_stores() {
    let a = store_with_base("repro-a", None);
    let b = store_with_base("repro-b", Some(&a));
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Different context directories and mtimes (both newer than the epoch).
    let (ctx_a, ctx_b) = (
        context("repro-ctx-a", now - 5000),
        context("repro-ctx-b", now),
    );
    let epoch = EPOCH.to_string();
    let env = [("SOURCE_DATE_EPOCH", epoch.as_str())];
    let first = rbuild_as(&a, "022", &env, &["build", "-q", "-t", "app", p(&ctx_a.0)]).success();
    wait_for_the_next_second();
    // The flag wins over the variable: the variable says another epoch here.
    let second = rbuild_as(
        &b,
        "077",
        &[("SOURCE_DATE_EPOCH", "1")],
        &[
            "build",
            "-q",
            "--source-date-epoch",
            &epoch,
            "-t",
            "app",
            p(&ctx_b.0),
        ],
    )
    .success();
    let (ida, idb) = (first.stdout.trim(), second.stdout.trim());
    assert!(ida.starts_with("sha256:"), "{ida}");
    assert_eq!(ida, idb, "image IDs (config digests)");
    let (ca, cb) = (config(&a, "app"), config(&b, "app"));
    assert_eq!(ca["rootfs"]["diff_ids"], cb["rootfs"]["diff_ids"]);
    assert_eq!(ca, cb);
    assert_eq!(saved_manifest(&a, "app"), saved_manifest(&b, "app"));

    // Every time in the config is the epoch or older.
    assert_eq!(ca["created"], "2020-09-13T12:26:40Z");
    for h in ca["history"].as_array().unwrap() {
        let t = chrono::DateTime::parse_from_rfc3339(h["created"].as_str().unwrap()).unwrap();
        assert!(t.timestamp() <= EPOCH, "{h}");
    }
    // In the layers: newer mtimes clamped, older ones kept, modes as in the context
    // whatever the umask, directories RUN and WORKDIR made 0755 or as chmod'ed.
    let layers: Vec<String> = ca["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d.as_str()
                .unwrap()
                .trim_start_matches("sha256:")
                .to_string()
        })
        .collect();
    let find = |rel: &str| {
        layers
            .iter()
            .rev()
            .map(|l| b.root().join("layers").join(l).join("diff").join(rel))
            .find(|p| fs::symlink_metadata(p).is_ok())
            .unwrap_or_else(|| panic!("{rel} in no layer"))
    };
    let meta = |rel: &str| fs::symlink_metadata(find(rel)).unwrap();
    assert_eq!(meta("app/plain.txt").mtime(), EPOCH);
    assert_eq!(meta("app/old.txt").mtime(), OLD);
    assert_eq!(meta("app/link").mtime(), EPOCH);
    assert_eq!(meta("app/secret").mode() & 0o7777, 0o600);
    assert_eq!(meta("app/bin/tool.sh").mode() & 0o7777, 0o755);
    assert_eq!(meta("added/deeper/file").mode() & 0o7777, 0o640);
    assert_eq!(meta("etc/motd").mode() & 0o7777, 0o644);
    assert_eq!(meta("opt/made/on").mode() & 0o7777, 0o755);
    assert_eq!(meta("work/dir").mode() & 0o7777, 0o755);
    assert_eq!(meta("work/dir/out.txt").mode() & 0o7777, 0o644);
    assert_eq!(meta("var/made").mode() & 0o7777, 0o700);
    assert_eq!(meta("var/made/deep").mode() & 0o7777, 0o755);
    for rel in [
        "work/dir",
        "work/dir/out.txt",
        "var/made/deep/x",
        "app/second",
    ] {
        assert_eq!(meta(rel).mtime(), EPOCH, "{rel}");
    }

    // The epoch is part of the cache key: the same epoch hits every step, another one
    // none (its images carry other times), and gives another image.
    let again = rbuild_as(&a, "022", &env, &["build", "-q", p(&ctx_a.0)]).success();
    assert_eq!(again.stdout.trim(), ida);
    let other = rbuild_as(
        &a,
        "022",
        &[("SOURCE_DATE_EPOCH", "1600000001")],
        &["build", "--progress", "plain", "-t", "other", p(&ctx_a.0)],
    )
    .success();
    assert!(
        other.stderr.contains("SOURCE_DATE_EPOCH changed") && !other.stderr.contains("CACHED"),
        "{}",
        other.stderr
    );
    assert_ne!(config(&a, "other")["created"], ca["created"]);
    // A malformed epoch is an error, not a build dated now.
    rbuild_as(
        &a,
        "022",
        &[("SOURCE_DATE_EPOCH", "yesterday")],
        &["build", p(&ctx_a.0)],
    )
    .failure()
    .stderr_contains("SOURCE_DATE_EPOCH");
    check_clean(&a);
}

#[test]
fn copy_only_layers_are_deterministic_without_an_epoch() {
    let a = store_with_base("repro-copy-a", None);
    let b = store_with_base("repro-copy-b", Some(&a));
    // A download without `Last-Modified`, once per build.
    let url = crate::util::serve(2, "200 OK", "", b"downloaded\n".to_vec());
    let mk = |tag: &str| {
        let ctx = context(tag, 1_650_000_000);
        ctx.write(
            "Dockerfile",
            &format!(
                "FROM base\nCOPY tree/ /app/\nCOPY tree/secret /new/parents/\nWORKDIR /w/x\n\
                 COPY <<EOF /etc/motd\nhi\nEOF\nADD implicit.tar /unpacked/\n\
                 ADD {url}/file.txt /dl/\n"
            ),
        );
        // An archive without entries for its directories: ADD makes them.
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_path("implicit/dir/file").unwrap();
        h.set_size(2);
        h.set_mode(0o644);
        h.set_mtime(1_500_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        tar.append(&h, &b"f\n"[..]).unwrap();
        fs::write(ctx.0.join("implicit.tar"), tar.into_inner().unwrap()).unwrap();
        set_mtime(&ctx.0.join("implicit.tar"), 1_650_000_000);
        ctx
    };
    let (ctx_a, ctx_b) = (mk("repro-copy-ctx-a"), mk("repro-copy-ctx-b"));
    rbuild_as(&a, "022", &[], &["build", "-t", "app", p(&ctx_a.0)]).success();
    wait_for_the_next_second();
    rbuild_as(&b, "077", &[], &["build", "-t", "app", p(&ctx_b.0)]).success();
    let (ca, cb) = (config(&a, "app"), config(&b, "app"));
    assert_eq!(ca["rootfs"]["diff_ids"], cb["rootfs"]["diff_ids"]);
    assert_eq!(ca["rootfs"]["diff_ids"].as_array().unwrap().len(), 7);
}

#[test]
fn reproducible_check_passes_or_names_the_first_differing_file() {
    let store = store_with_base("repro-check", None);
    let ctx = context("repro-check-ctx", 1_650_000_000);
    let epoch = EPOCH.to_string();
    let ok = rbuild_as(
        &store,
        "022",
        &[("SOURCE_DATE_EPOCH", epoch.as_str())],
        &["build", "--reproducible-check", "-t", "checked", p(&ctx.0)],
    )
    .success();
    let line = ok.stdout.trim();
    let id = line
        .strip_prefix("reproducible: ")
        .unwrap_or_else(|| panic!("{line}"));
    // The image is in the store, tagged; its digest is what a plain build gives.
    assert_eq!(config(&store, "checked")["created"], "2020-09-13T12:26:40Z");
    let plain = rbuild_as(
        &store,
        "022",
        &[("SOURCE_DATE_EPOCH", epoch.as_str())],
        &["build", "-q", p(&ctx.0)],
    )
    .success();
    assert_eq!(plain.stdout.trim(), id);
    // Its builds are independent: no cache in or out, and no outputs.
    let local = TempDir::new("repro-check-cache");
    for extra in [
        format!("--cache-to=type=local,dest={}", p(&local.0)),
        format!("--cache-from=type=local,src={}", p(&local.0)),
        format!("--output=type=local,dest={}", p(&local.0)),
    ] {
        let refused = store
            .run(&["build", "--reproducible-check", &extra, p(&ctx.0)])
            .failure();
        assert!(
            refused
                .stderr
                .contains("--reproducible-check cannot be combined"),
            "{extra}: {}",
            refused.stderr
        );
    }

    // A RUN that writes random bytes: the third layer (after busybox and the COPY).
    ctx.write(
        "Dockerfile",
        "FROM base\nCOPY tree/ /app/\nRUN head -c 64 /dev/urandom > /app/noise\nENV A=1\n",
    );
    let bad = rbuild_as(
        &store,
        "022",
        &[("SOURCE_DATE_EPOCH", epoch.as_str())],
        &[
            "build",
            "--reproducible-check",
            "-t",
            "unchecked",
            p(&ctx.0),
        ],
    )
    .failure();
    assert!(
        bad.stderr.contains("not reproducible")
            && bad.stderr.contains("layer 2 differs")
            && bad.stderr.contains("app/noise: content differs from byte"),
        "{}",
        bad.stderr
    );
    store.run(&["inspect", "unchecked"]).failure();

    // Without an epoch, a RUN's files carry the build's time: named by the check.
    ctx.write("Dockerfile", "FROM base\nRUN echo same > /same\n");
    let dated = rbuild_as(
        &store,
        "022",
        &[],
        &["build", "--reproducible-check", p(&ctx.0)],
    )
    .failure();
    assert!(
        dated.stderr.contains("layer 1 differs") && dated.stderr.contains("same: mtime"),
        "{}",
        dated.stderr
    );

    // A step that fails: the error, and no scratch store left either way.
    ctx.write("Dockerfile", "FROM base\nRUN exit 3\n");
    rbuild_as(
        &store,
        "022",
        &[],
        &["build", "--reproducible-check", p(&ctx.0)],
    )
    .failure()
    .stderr_contains("exit code: 3");
    let left: Vec<_> = fs::read_dir(store.root().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left in tmp/: {left:?}");
    assert!(mounts_under(store.root()).is_empty());
    check_clean(&store);
}

#[test]
fn an_interrupted_reproducible_check_leaves_no_scratch_store() {
    let store = store_with_base("repro-interrupt", None);
    let ctx = TempDir::new("repro-interrupt-ctx");
    ctx.write("Dockerfile", "FROM base\nRUN echo started; sleep 3608\n");
    // The first build's RUN is running in its scratch store: interrupt it there.
    let child = start_until_running(&store, &["build", "--reproducible-check", p(&ctx.0)]);
    let scratch: Vec<_> = fs::read_dir(store.root().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        scratch.iter().any(|n| n.starts_with("repro")),
        "{scratch:?}"
    );
    let (out, _) = interrupt(child);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(mounts_under(store.root()).is_empty());
    let left: Vec<_> = fs::read_dir(store.root().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left in tmp/: {left:?}");
    check_clean(&store);
}
