//! One line of text for an (expanded) instruction, as an outline or a build log shows it:
//! `COPY --from=build /app/out.txt ./out.txt`. Values that would not read back as one
//! word (empty, spaces, quotes, `$`) are quoted; heredoc bodies are left out.

use std::fmt::Write;
use std::time::Duration;

use crate::instruction::{
    Add, Chmod, Copy, Deferred, Healthcheck, Instruction, Mount, MountType, Network, Pair,
    Security, Sharing, ShellOrExec,
};

/// The instruction as one line.
pub fn render(instr: &Instruction) -> String {
    let mut out = instr.keyword().to_string();
    let mut word = |w: &str| {
        out.push(' ');
        out.push_str(w);
    };
    match instr {
        Instruction::From(f) => {
            if let Some(p) = &f.platform {
                word(&format!("--platform={}", quote(p)));
            }
            word(&quote(&f.image));
            if let Some(a) = &f.alias {
                word("AS");
                word(a);
            }
        }
        Instruction::Run(r) => {
            for m in &r.mounts {
                word(&format!("--mount={}", mount(m)));
            }
            if let Some(n) = r.network {
                word(&format!("--network={}", network(n)));
            }
            if let Some(s) = r.security {
                word(&format!("--security={}", security(s)));
            }
            word(&command(&r.cmd));
        }
        Instruction::Cmd(c) => word(&command(&c.cmd)),
        Instruction::Entrypoint(e) => word(&command(&e.cmd)),
        Instruction::Shell(s) => word(&json(&s.args)),
        Instruction::Env(e) => pairs(&e.pairs, &mut word),
        Instruction::Label(l) => pairs(&l.pairs, &mut word),
        Instruction::Arg(a) => {
            for def in &a.args {
                match &def.default {
                    Some(v) => word(&format!("{}={}", def.name, quote(v))),
                    None => word(&def.name),
                }
            }
        }
        Instruction::Copy(c) => copy(c, &mut word),
        Instruction::Add(a) => add(a, &mut word),
        Instruction::Maintainer(m) => word(&m.name),
        Instruction::Expose(e) => e.ports.iter().for_each(|p| word(&quote(p))),
        Instruction::Volume(v) => {
            if v.paths.iter().any(|p| needs_quotes(p)) {
                word(&json(&v.paths));
            } else {
                v.paths.iter().for_each(|p| word(p));
            }
        }
        Instruction::User(u) => word(&quote(&u.user)),
        Instruction::Workdir(w) => word(&quote(&w.path)),
        Instruction::Stopsignal(s) => word(&quote(&s.signal)),
        Instruction::Onbuild(o) => word(o.expression.lines().next().unwrap_or_default()),
        Instruction::Healthcheck(Healthcheck::None) => word("NONE"),
        Instruction::Healthcheck(Healthcheck::Cmd(h)) => {
            for (flag, d) in [
                ("interval", h.interval),
                ("timeout", h.timeout),
                ("start-period", h.start_period),
                ("start-interval", h.start_interval),
            ] {
                if !d.is_zero() {
                    word(&format!("--{flag}={}", duration(d)));
                }
            }
            if h.retries != 0 {
                word(&format!("--retries={}", h.retries));
            }
            word("CMD");
            word(&command(&h.test));
        }
    }
    out
}

fn pairs(pairs: &[Pair], word: &mut impl FnMut(&str)) {
    for p in pairs {
        word(&format!("{}={}", quote(&p.key), quote(&p.value)));
    }
}

fn copy(c: &Copy, word: &mut impl FnMut(&str)) {
    if let Some(f) = &c.from {
        word(&format!("--from={f}"));
    }
    common_flags(&c.chown, &c.chmod, c.link, &c.exclude, word);
    if c.parents {
        word("--parents");
    }
    sources(
        &c.srcs,
        c.heredocs.iter().map(|h| h.name.as_str()),
        &c.dest,
        word,
    );
}

fn add(a: &Add, word: &mut impl FnMut(&str)) {
    common_flags(&a.chown, &a.chmod, a.link, &a.exclude, word);
    if let Some(sum) = &a.checksum {
        word(&format!("--checksum={}", quote(sum)));
    }
    if let Some(k) = a.keep_git_dir {
        word(&format!("--keep-git-dir={k}"));
    }
    if let Some(u) = a.unpack {
        word(&format!("--unpack={u}"));
    }
    sources(
        &a.srcs,
        a.heredocs.iter().map(|h| h.name.as_str()),
        &a.dest,
        word,
    );
}

fn common_flags(
    chown: &Option<String>,
    chmod: &Option<Deferred<Chmod>>,
    link: bool,
    exclude: &[String],
    word: &mut impl FnMut(&str),
) {
    if let Some(c) = chown {
        word(&format!("--chown={}", quote(c)));
    }
    if let Some(c) = chmod {
        let text = c.get().map_or(c.raw.as_str(), Chmod::as_str);
        word(&format!("--chmod={}", quote(text)));
    }
    if link {
        word("--link");
    }
    for e in exclude {
        word(&format!("--exclude={}", quote(e)));
    }
}

fn sources<'a>(
    srcs: &[String],
    heredocs: impl Iterator<Item = &'a str>,
    dest: &str,
    word: &mut impl FnMut(&str),
) {
    srcs.iter().for_each(|s| word(&quote(s)));
    heredocs.for_each(|h| word(&format!("<<{h}")));
    word(&quote(dest));
}

/// The expanded mount's options, or the raw text if it was never validated.
fn mount(m: &Deferred<Mount>) -> String {
    let Some(m) = m.get() else {
        return m.raw.clone();
    };
    let mut out = format!("type={}", m.kind);
    let mut opt = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            let _ = write!(out, ",{k}={v}");
        }
    };
    opt("from", m.from.clone());
    opt("source", m.source.clone());
    opt("target", m.target.clone());
    opt("id", m.id.clone());
    opt("sharing", m.sharing.map(|s| sharing(s).to_string()));
    opt("size", m.size.map(|s| s.to_string()));
    opt("env", m.env.clone());
    opt("mode", m.mode.map(|v| format!("{v:o}")));
    opt("uid", m.uid.map(|v| v.to_string()));
    opt("gid", m.gid.map(|v| v.to_string()));
    let default_ro = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
    if m.readonly != default_ro {
        out.push_str(if m.readonly { ",ro" } else { ",rw" });
    }
    if m.required {
        out.push_str(",required");
    }
    out
}

fn network(n: Network) -> &'static str {
    match n {
        Network::Default => "default",
        Network::None => "none",
        Network::Host => "host",
    }
}

fn security(s: Security) -> &'static str {
    match s {
        Security::Sandbox => "sandbox",
        Security::Insecure => "insecure",
    }
}

fn sharing(s: Sharing) -> &'static str {
    match s {
        Sharing::Shared => "shared",
        Sharing::Private => "private",
        Sharing::Locked => "locked",
    }
}

fn command(c: &ShellOrExec) -> String {
    match c {
        ShellOrExec::Shell(s) => s.clone(),
        ShellOrExec::Exec(v) => json(v),
    }
}

fn json(words: &[String]) -> String {
    serde_json::to_string(words).unwrap_or_default()
}

/// `90s`, `1500ms`: the largest unit that divides the duration.
fn duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.as_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}ns", d.as_nanos())
    }
}

fn needs_quotes(s: &str) -> bool {
    s.is_empty()
        || s.chars()
            .any(|c| c.is_whitespace() || "\"'\\$`".contains(c))
}

/// The value as it would be written to mean itself: bare when it is one plain word,
/// else in single quotes (nothing is special inside), else JSON-style double quotes.
fn quote(s: &str) -> String {
    if !needs_quotes(s) {
        s.to_string()
    } else if !s.contains('\'') {
        format!("'{s}'")
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instruction::from_dockerfile;
    use crate::syntax::parse;

    fn lines(df: &str) -> Vec<String> {
        let tree = parse(df.as_bytes(), "Dockerfile").unwrap();
        from_dockerfile(&tree, df)
            .unwrap()
            .iter()
            .map(|l| render(&l.inner))
            .collect()
    }

    #[test]
    fn renders_each_instruction_as_one_line() {
        let df = "FROM --platform=linux/arm64 alpine:3 AS Base\n\
                  RUN --mount=type=cache,target=/c,sharing=locked --network=none make\n\
                  RUN [\"echo\", \"a b\"]\n\
                  ENV A=1 B=\"x y\"\n\
                  LABEL k=''\n\
                  ARG X Y=2\n\
                  COPY --from=build --chown=1:2 --chmod=755 --link a b /dst/\n\
                  ADD --checksum=sha256:abc https://x/y /z\n\
                  EXPOSE 80/tcp 443\n\
                  VOLUME /a /b\n\
                  VOLUME [\"/with space\"]\n\
                  USER 1000:1000\n\
                  WORKDIR /app\n\
                  STOPSIGNAL SIGTERM\n\
                  ONBUILD RUN echo hi\n\
                  HEALTHCHECK --interval=30s --retries=3 CMD curl -f localhost\n\
                  HEALTHCHECK NONE\n\
                  SHELL [\"/bin/sh\", \"-c\"]\n\
                  CMD [\"cat\", \"/x\"]\n\
                  ENTRYPOINT run me\n\
                  MAINTAINER someone\n";
        assert_eq!(
            lines(df),
            [
                "FROM --platform=linux/arm64 alpine:3 AS base",
                "RUN --mount=type=cache,target=/c,sharing=locked --network=none make",
                "RUN [\"echo\",\"a b\"]",
                "ENV A=1 B='\"x y\"'",
                "LABEL k=\"''\"",
                "ARG X Y=2",
                "COPY --from=build --chown=1:2 --chmod=755 --link a b /dst/",
                "ADD --checksum=sha256:abc https://x/y /z",
                "EXPOSE 443 80/tcp",
                "VOLUME /a /b",
                "VOLUME [\"/with space\"]",
                "USER 1000:1000",
                "WORKDIR /app",
                "STOPSIGNAL SIGTERM",
                "ONBUILD RUN echo hi",
                "HEALTHCHECK --interval=30s --retries=3 CMD curl -f localhost",
                "HEALTHCHECK NONE",
                "SHELL [\"/bin/sh\",\"-c\"]",
                "CMD [\"cat\",\"/x\"]",
                "ENTRYPOINT run me",
                "MAINTAINER someone",
            ]
        );
    }

    #[test]
    fn heredoc_sources_and_mount_defaults() {
        let df = "FROM a\nCOPY <<EOF /x\nbody\nEOF\nRUN --mount=type=bind,from=b,rw --mount=type=tmpfs,target=/t,ro true\n";
        let got = lines(df);
        assert_eq!(got[1], "COPY <<EOF /x");
        assert_eq!(
            got[2],
            "RUN --mount=type=bind,from=b,rw --mount=type=tmpfs,target=/t,ro true"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("$HOME"), "'$HOME'");
        assert_eq!(quote("it's"), "\"it's\"");
        assert_eq!(duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(duration(Duration::from_nanos(7)), "7ns");
    }
}
