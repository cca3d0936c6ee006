//! `rbuild build --progress`: JSON event lines, the live display on a terminal (run under
//! a pseudo-terminal by util-linux's `script`), and plain lines when not on one.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::build::{ctx_arg, setup};
use crate::util::TestStore;

/// Every line of a `--progress json` stderr, parsed; a line that is not a JSON object
/// fails the test.
fn events(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}\n{stderr}"));
            assert!(v.is_object(), "{l}");
            v
        })
        .collect()
}

/// The vertex whose `started` name ends with `suffix`.
fn vertex(events: &[Value], suffix: &str) -> u64 {
    events
        .iter()
        .find(|e| e["event"] == "started" && e["name"].as_str().unwrap().ends_with(suffix))
        .unwrap_or_else(|| panic!("no vertex {suffix:?} in {events:#?}"))["vertex"]
        .as_u64()
        .unwrap()
}

/// The events of one vertex, in order.
fn of(events: &[Value], id: u64) -> Vec<&Value> {
    events.iter().filter(|e| e["vertex"] == id).collect()
}

fn kinds(events: &[&Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn json_lines_for_a_miss_then_a_cached_rebuild() {
    let (store, ctx) = setup("progress-json");
    ctx.write("app.txt", "v1\n");
    ctx.write(
        "Dockerfile",
        "FROM busybox\nCOPY app.txt /app.txt\nRUN echo hello; printf 'no newline'\n",
    );
    let first = store
        .run(&["build", "--progress", "json", ctx_arg(&ctx)])
        .success();
    assert!(first.stdout.is_empty(), "{}", first.stdout);
    let all = events(&first.stderr);
    for e in &all {
        let time = e["time"].as_str().expect("every event has a time");
        // RFC 3339, UTC, milliseconds: 2026-12-02T10:00:00.123Z
        assert!(
            time.len() == 24 && time.ends_with('Z') && &time[10..11] == "T",
            "{time}"
        );
    }
    let run = vertex(&all, "RUN echo hello; printf 'no newline'");
    let ev = of(&all, run);
    assert_eq!(
        kinds(&ev),
        ["started", "miss", "output", "output", "done"],
        "{ev:#?}"
    );
    assert_eq!(ev[0]["name"], "[3/3] RUN echo hello; printf 'no newline'");
    assert_eq!(ev[1]["reason"], "first build");
    assert_eq!(ev[1]["kind"], "first_build");
    // Output comes in whole lines; the last one without its line break at the end.
    assert_eq!(ev[2]["line"], "hello");
    assert_eq!(ev[3]["line"], "no newline");
    let (t1, t2) = (ev[2]["elapsed"].as_f64(), ev[3]["elapsed"].as_f64());
    assert!(
        matches!((t1, t2), (Some(a), Some(b)) if 0.0 <= a && a <= b),
        "{ev:#?}"
    );
    let duration = ev[4]["duration"].as_f64().expect("duration is a number");
    assert!(duration >= t2.unwrap(), "{ev:#?}");
    // Every vertex that started ended, and the image was written.
    let started = all.iter().filter(|e| e["event"] == "started").count();
    let ended = all
        .iter()
        .filter(|e| e["event"] == "done" || e["event"] == "cached")
        .count();
    assert_eq!(started, ended, "{all:#?}");
    let export = vertex(&all, "exporting to image");
    assert!(
        of(&all, export).iter().any(|e| e["event"] == "log"
            && e["text"]
                .as_str()
                .unwrap()
                .starts_with("writing image sha256:")),
        "{all:#?}"
    );

    let again = store
        .run(&["build", "--progress", "json", ctx_arg(&ctx)])
        .success();
    let all = events(&again.stderr);
    let run = vertex(&all, "RUN echo hello; printf 'no newline'");
    assert_eq!(kinds(&of(&all, run)), ["started", "cached"]);

    ctx.write("app.txt", "v2\n");
    let changed = store
        .run(&["build", "--progress", "json", ctx_arg(&ctx)])
        .success();
    let all = events(&changed.stderr);
    let copy = of(&all, vertex(&all, "COPY app.txt /app.txt"));
    assert_eq!(copy[1]["event"], "miss");
    assert_eq!(copy[1]["reason"], "file app.txt changed");
    assert_eq!(copy[1]["kind"], "file_changed");
    assert_eq!(copy[1]["path"], "app.txt");
    let run = of(&all, vertex(&all, "RUN echo hello; printf 'no newline'"));
    assert_eq!(run[1]["kind"], "parent_changed");
}

#[test]
fn json_failed_run_says_the_exit_code() {
    let (store, ctx) = setup("progress-json-fail");
    ctx.write("Dockerfile", "FROM busybox\nRUN echo before; exit 7\n");
    let run = store
        .run(&["build", "--progress", "json", ctx_arg(&ctx)])
        .failure();
    // The error the binary prints last is not an event line.
    let lines: Vec<&str> = run.stderr.lines().collect();
    let (last, json) = lines.split_last().unwrap();
    assert!(last.starts_with("error: Dockerfile:2:"), "{}", run.stderr);
    let all = events(&json.join("\n"));
    let ev = of(&all, vertex(&all, "RUN echo before; exit 7"));
    assert_eq!(
        kinds(&ev),
        ["started", "miss", "output", "failed"],
        "{ev:#?}"
    );
    assert_eq!(ev[2]["line"], "before");
    let error = ev[3]["error"].as_str().unwrap();
    assert!(error.ends_with("exit code: 7"), "{error}");
    assert!(ev[3]["duration"].as_f64().is_some(), "{ev:#?}");
}

/// Runs `rbuild --root STORE ARGS` on a 120×40 pseudo-terminal and returns its exit
/// status and what the terminal received, escape sequences and carriage returns out.
fn in_terminal(store: &TestStore, args: &[&str]) -> (Option<i32>, String) {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut cmd = vec![
        quote(env!("CARGO_BIN_EXE_rbuild")),
        "--root".to_string(),
        quote(store.root().to_str().unwrap()),
    ];
    cmd.extend(args.iter().map(|a| quote(a)));
    let line = format!("stty rows 40 cols 120; {}", cmd.join(" "));
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .expect("running script(1): install util-linux's bsdutils (apt-get install bsdutils)");
    (out.status.code(), screen_text(&out.stdout))
}

/// The text of a terminal stream: CSI sequences (`ESC [ … letter`) and `\r` removed.
fn screen_text(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' if chars.peek() == Some(&'[') => {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// The display's final state: from the last header on.
fn final_state(screen: &str) -> &str {
    let at = screen
        .rfind("[+] Building")
        .unwrap_or_else(|| panic!("no [+] Building header:\n{screen}"));
    &screen[at..]
}

#[test]
fn terminal_display_shows_steps_output_and_the_failure() {
    let (store, ctx) = setup("progress-tty");
    ctx.write("app.txt", "v1\n");
    ctx.write(
        "Dockerfile",
        "FROM busybox\nCOPY app.txt /app.txt\nRUN echo tick; sleep 1; echo tock\n",
    );
    // `auto` on a terminal is the live display.
    let (status, screen) = in_terminal(&store, &["build", ctx_arg(&ctx)]);
    assert_eq!(status, Some(0), "{screen}");
    assert!(!screen.contains("#1 [internal]"), "plain lines:\n{screen}");
    // While the step ran, its output was under it.
    assert!(screen.contains(" => => # tick"), "{screen}");
    let end = final_state(&screen);
    let header = end.lines().next().unwrap();
    assert!(
        header.starts_with("[+] Building ") && header.ends_with(" (8/8) FINISHED"),
        "{end}"
    );
    let copy = end
        .lines()
        .find(|l| l.starts_with(" => [2/3] COPY app.txt /app.txt (cache miss: first build)"))
        .unwrap_or_else(|| panic!("no COPY line with its miss reason:\n{end}"));
    assert!(copy.trim_end().ends_with('s'), "{copy}");
    assert!(end.contains("\n => => writing image sha256:"), "{end}");
    // Output lines go when the step ends.
    assert!(!end.contains("# tock"), "{end}");

    let (status, screen) = in_terminal(&store, &["build", "--progress", "tty", ctx_arg(&ctx)]);
    assert_eq!(status, Some(0), "{screen}");
    let end = final_state(&screen);
    assert!(
        end.contains("\n => CACHED [2/3] COPY app.txt /app.txt "),
        "{end}"
    );
    assert!(
        end.contains("\n => CACHED [3/3] RUN echo tick; sleep 1; echo tock "),
        "{end}"
    );

    ctx.write(
        "Dockerfile",
        "FROM busybox\nCOPY app.txt /app.txt\nRUN for i in $(seq 1 12); do echo out $i; done; exit 3\n",
    );
    let (status, screen) = in_terminal(&store, &["build", "--progress", "tty", ctx_arg(&ctx)]);
    assert_eq!(status, Some(1), "{screen}");
    let end = final_state(&screen);
    assert!(!end.lines().next().unwrap().contains("FINISHED"), "{end}");
    assert!(
        end.contains("\n => ERROR [3/3] RUN for i in $(seq 1 12); do echo out $i; done; exit 3 (cache miss: first build) "),
        "{end}"
    );
    // BuildKit's error block: the step and its last lines, then the error.
    let block = end
        .split_once("\n------\n")
        .map(|x| x.1)
        .unwrap_or_else(|| panic!("{end}"));
    let lines: Vec<&str> = block.lines().collect();
    assert_eq!(
        lines[0],
        " > [3/3] RUN for i in $(seq 1 12); do echo out $i; done; exit 3:"
    );
    assert!(lines[1].ends_with(" out 3"), "{block}");
    assert!(lines[10].ends_with(" out 12"), "{block}");
    assert_eq!(lines[11], "------");
    assert_eq!(lines[12], "Dockerfile:3");
    let last = lines.last().unwrap();
    assert!(
        last.starts_with("error: Dockerfile:3: ") && last.ends_with("exit code: 3"),
        "{block}"
    );
}

#[test]
fn without_a_terminal_auto_is_plain_and_tty_is_refused() {
    let (store, ctx) = setup("progress-plain");
    ctx.write("Dockerfile", "FROM busybox\nRUN echo hi\n");
    let run = store.run(&["build", ctx_arg(&ctx)]).success();
    assert!(!run.stderr.contains("[+] Building"), "{}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(lines.contains(&"#5 [2/2] RUN echo hi"), "{}", run.stderr);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("#5 0.") && l.ends_with(" hi")),
        "{}",
        run.stderr
    );
    assert!(
        lines.iter().any(|l| l.starts_with("#5 DONE ")),
        "{}",
        run.stderr
    );

    store
        .run(&["build", "--progress", "tty", ctx_arg(&ctx)])
        .failure()
        .stderr_contains("--progress tty: standard error is not a terminal");
    // -q wins over any --progress: only the image ID.
    let quiet = store
        .run(&["build", "-q", "--progress", "json", ctx_arg(&ctx)])
        .success();
    assert!(quiet.stderr.is_empty(), "{}", quiet.stderr);
    assert!(
        quiet.stdout.trim().starts_with("sha256:"),
        "{}",
        quiet.stdout
    );
}
