//! The command's environment and the paths `execve(2)` tries, computed before any
//! fork so the child only walks a prepared list (execvp(3) semantics, inside the root).

/// Docker's default `PATH` when the image and the RUN set none (moby `oci/defaults.go`).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn get<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter().rev().find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then_some(v)
    })
}

/// The environment the command receives: `env` as given (later duplicates win, as in
/// Docker), plus `PATH` and `HOME` when missing, as runc adds them.
pub fn final_env(env: &[String], home: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(env.len() + 2);
    for kv in env {
        let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
        out.retain(|o| o.split_once('=').map_or(o.as_str(), |(k, _)| k) != key);
        out.push(kv.clone());
    }
    if get(&out, "PATH").is_none() {
        out.push(format!("PATH={DEFAULT_PATH}"));
    }
    if get(&out, "HOME").is_none() {
        out.push(format!("HOME={}", home.unwrap_or("/")));
    }
    out
}

/// The paths to try for `argv0`, in order: itself when it contains a slash, else each
/// `PATH` entry joined with it (an empty entry means the working directory).
pub fn exec_candidates(argv0: &str, env: &[String]) -> Vec<String> {
    if argv0.contains('/') {
        return vec![argv0.to_string()];
    }
    let path = get(env, "PATH").unwrap_or(DEFAULT_PATH);
    path.split(':')
        .map(|dir| {
            if dir.is_empty() {
                argv0.to_string()
            } else {
                format!("{}/{argv0}", dir.trim_end_matches('/'))
            }
        })
        .collect()
}

/// `mkdir -p` as a list: every prefix of an absolute, normalised `cwd` (`.` dropped,
/// `..` popped, so the list never leaves `/`).
pub fn cwd_prefixes(cwd: &str) -> (String, Vec<String>) {
    let mut parts: Vec<&str> = Vec::new();
    for c in cwd.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut prefixes = Vec::with_capacity(parts.len());
    let mut cur = String::new();
    for p in &parts {
        cur.push('/');
        cur.push_str(p);
        prefixes.push(cur.clone());
    }
    let full = if cur.is_empty() { "/".to_string() } else { cur };
    (full, prefixes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn env_gets_defaults_and_last_duplicate_wins() {
        let e = final_env(&v(&["A=1", "B=2", "A=3"]), Some("/home/app"));
        assert_eq!(
            e,
            v(&[
                "B=2",
                "A=3",
                &format!("PATH={DEFAULT_PATH}"),
                "HOME=/home/app"
            ])
        );
        let e = final_env(&v(&["PATH=/x", "HOME=/h"]), Some("/home/app"));
        assert_eq!(e, v(&["PATH=/x", "HOME=/h"]));
        assert_eq!(final_env(&[], None)[1], "HOME=/");
    }

    #[test]
    fn candidates_follow_path() {
        let env = v(&["PATH=/usr/bin:/bin/::/opt"]);
        assert_eq!(
            exec_candidates("sh", &env),
            v(&["/usr/bin/sh", "/bin/sh", "sh", "/opt/sh"])
        );
        assert_eq!(exec_candidates("./run.sh", &env), v(&["./run.sh"]));
        assert_eq!(exec_candidates("/bin/sh", &env), v(&["/bin/sh"]));
        assert_eq!(exec_candidates("ls", &[]).len(), 6);
    }

    #[test]
    fn cwd_is_normalised_inside_root() {
        assert_eq!(cwd_prefixes(""), ("/".into(), vec![]));
        assert_eq!(
            cwd_prefixes("/a/./b//c/"),
            ("/a/b/c".into(), v(&["/a", "/a/b", "/a/b/c"]))
        );
        assert_eq!(cwd_prefixes("../../x/../y"), ("/y".into(), v(&["/y"])));
    }
}
