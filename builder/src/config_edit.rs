//! Metadata instructions applied to a container config: what `import --change` does
//! now, and what the Dockerfile builder's CMD, ENV, LABEL, … steps will do.
//!
//! Semantics follow Docker and BuildKit (moby `builder/dockerfile/dispatchers.go`,
//! BuildKit `dockerfile2llb/convert.go`):
//! - shell-form CMD/ENTRYPOINT run under the config's SHELL, `["/bin/sh", "-c"]` by
//!   default; ENTRYPOINT clears an inherited CMD unless a CMD was set in this session;
//! - ENV and LABEL keys and values, and the words of USER, WORKDIR, VOLUME, EXPOSE and
//!   STOPSIGNAL, are expanded against the environment as it is at that point;
//! - EXPOSE stores `port/proto` (`tcp` by default), ranges as one entry per port;
//! - a relative WORKDIR is joined to the previous one (`/` when unset);
//! - HEALTHCHECK durations are nanoseconds, zero values left out;
//! - ONBUILD stores the trigger's text.

use std::collections::BTreeMap;

use rbuild_parser::instruction::{self, Healthcheck, Instruction, ShellOrExec};
use rbuild_parser::shell::Lexer;
use rbuild_parser::syntax;
use rbuild_store::config::{ContainerConfig, Empty, HealthConfig};

/// The instructions `docker commit --change` and `docker import --change` accept
/// (moby `builder/dockerfile/builder.go`, `validCommitCommands`).
pub const CHANGE_KEYWORDS: [&str; 11] = [
    "cmd",
    "entrypoint",
    "env",
    "expose",
    "healthcheck",
    "label",
    "onbuild",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

/// Why a change could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ConfigEditError {
    /// The change text is not a Dockerfile instruction (message with line and caret).
    #[error("{0}")]
    Syntax(#[from] rbuild_parser::ParseError),
    /// An instruction that changes more than the config (FROM, RUN, COPY, …), named in
    /// lower case as Docker's message does (`from is not a valid change command`).
    #[error("{0} is not a valid change command")]
    NotAllowed(String),
    /// A value that is invalid once expanded (a bad port, an unknown signal, …).
    #[error("{keyword}: {message}")]
    Invalid {
        keyword: &'static str,
        message: String,
    },
}

/// Applies instructions to a config in order, remembering what this session set.
#[derive(Debug)]
pub struct ConfigEditor<'a> {
    config: &'a mut ContainerConfig,
    escape: char,
    /// Whether a CMD was set here: then ENTRYPOINT keeps it (moby's `cmdSet`).
    cmd_set: bool,
}

impl<'a> ConfigEditor<'a> {
    pub fn new(config: &'a mut ContainerConfig) -> ConfigEditor<'a> {
        ConfigEditor {
            config,
            escape: '\\',
            cmd_set: false,
        }
    }

    /// Applies one typed instruction; only the metadata instructions are accepted.
    pub fn apply(&mut self, instr: &Instruction) -> Result<(), ConfigEditError> {
        let keyword = instr.keyword();
        if !CHANGE_KEYWORDS.contains(&keyword.to_lowercase().as_str()) {
            return Err(ConfigEditError::NotAllowed(keyword.to_lowercase()));
        }
        let invalid = |message: String| ConfigEditError::Invalid { keyword, message };
        let env = self.env_pairs();
        let lexer = Lexer::new(self.escape);
        let mut expand = |word: &str| -> Result<String, String> {
            lexer
                .expand_word(word, &env)
                .map(|e| e.value)
                .map_err(|e| e.to_string())
        };
        let instr = instr
            .expand(&mut expand)
            .map_err(|e| invalid(e.to_string()))?;
        self.apply_expanded(instr)
    }

    /// Whether a CMD was applied by this editor or the one it continues from.
    pub fn cmd_set(&self) -> bool {
        self.cmd_set
    }

    /// Continues a session in which a CMD was (or was not) already set: a build stage
    /// applies each instruction with its own editor, and ENTRYPOINT must still know.
    pub fn with_cmd_set(mut self, cmd_set: bool) -> Self {
        self.cmd_set = cmd_set;
        self
    }

    /// Applies one metadata instruction whose words are already expanded (the build
    /// planner expands with the stage's ARG and ENV scope; expanding again would read
    /// `$` in values as variables).
    pub fn apply_expanded(&mut self, instr: Instruction) -> Result<(), ConfigEditError> {
        let keyword = instr.keyword();
        if !CHANGE_KEYWORDS.contains(&keyword.to_lowercase().as_str()) {
            return Err(ConfigEditError::NotAllowed(keyword.to_lowercase()));
        }
        let invalid = |message: String| ConfigEditError::Invalid { keyword, message };
        let c = &mut *self.config;
        match instr {
            Instruction::Cmd(x) => {
                c.cmd = Some(command(&x.cmd, c.shell.as_deref()));
                self.cmd_set = true;
            }
            Instruction::Entrypoint(x) => {
                c.entrypoint = Some(command(&x.cmd, c.shell.as_deref()));
                if !self.cmd_set {
                    c.cmd = None;
                }
            }
            Instruction::Env(x) => {
                let env = c.env.get_or_insert_with(Vec::new);
                for p in &x.pairs {
                    set_env(env, &p.key, &p.value);
                }
            }
            Instruction::Label(x) => {
                let labels = c.labels.get_or_insert_with(BTreeMap::new);
                for p in x.pairs {
                    labels.insert(p.key, p.value);
                }
            }
            Instruction::Expose(x) => {
                let ports = c.exposed_ports.get_or_insert_with(BTreeMap::new);
                for spec in &x.ports {
                    for p in expose_ports(spec).map_err(invalid)? {
                        ports.insert(p, Empty {});
                    }
                }
            }
            Instruction::User(x) => c.user = Some(x.user),
            Instruction::Volume(x) => {
                let volumes = c.volumes.get_or_insert_with(BTreeMap::new);
                for p in x.paths {
                    if p.is_empty() {
                        return Err(invalid(
                            "VOLUME specified can not be an empty string".into(),
                        ));
                    }
                    volumes.insert(p, Empty {});
                }
            }
            Instruction::Workdir(x) => {
                let dir = workdir(c.working_dir.as_deref().unwrap_or("/"), &x.path)
                    .ok_or_else(|| invalid("cannot normalize nothing".into()))?;
                c.working_dir = Some(dir);
            }
            Instruction::Stopsignal(x) => {
                check_signal(&x.signal).map_err(invalid)?;
                c.stop_signal = Some(x.signal);
            }
            Instruction::Healthcheck(h) => c.healthcheck = Some(health(&h)),
            Instruction::Onbuild(x) => {
                c.on_build
                    .get_or_insert_with(Vec::new)
                    .push(x.expression.clone());
            }
            // Refused above.
            other => return Err(ConfigEditError::NotAllowed(other.keyword().to_lowercase())),
        }
        Ok(())
    }

    /// The config's `KEY=value` environment as pairs, for expansion.
    fn env_pairs(&self) -> Vec<(String, String)> {
        self.config
            .env
            .iter()
            .flatten()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv.clone(), String::new()),
            })
            .collect()
    }
}

/// Parses `changes` (each one Dockerfile instruction, as given to `--change`) and
/// applies them to `config` in order. Nothing is applied unless all of them parse and
/// are allowed; a value error stops at that change.
pub fn apply_changes(
    config: &mut ContainerConfig,
    changes: &[String],
) -> Result<(), ConfigEditError> {
    if changes.is_empty() {
        return Ok(());
    }
    // Docker parses the changes joined by newlines as one Dockerfile.
    let src = changes.join("\n");
    let df = syntax::parse(src.as_bytes(), "change")?;
    for node in &df.nodes {
        if !CHANGE_KEYWORDS.contains(&node.keyword.as_str()) {
            return Err(ConfigEditError::NotAllowed(node.keyword.clone()));
        }
    }
    let instrs = df
        .nodes
        .iter()
        .map(|n| instruction::from_node(n, &src).map_err(|d| d.in_file("change").into()))
        .collect::<Result<Vec<_>, ConfigEditError>>()?;
    let mut editor = ConfigEditor::new(config);
    editor.escape = df.escape;
    for i in &instrs {
        editor.apply(i)?;
    }
    Ok(())
}

/// Shell form runs under the image's SHELL (`/bin/sh -c` by default).
fn command(cmd: &ShellOrExec, shell: Option<&[String]>) -> Vec<String> {
    match cmd {
        ShellOrExec::Exec(args) => args.clone(),
        ShellOrExec::Shell(line) => {
            let mut v = match shell {
                Some(s) if !s.is_empty() => s.to_vec(),
                _ => vec!["/bin/sh".to_string(), "-c".to_string()],
            };
            v.push(line.clone());
            v
        }
    }
}

/// Replaces `key`'s entry in place, or appends one (BuildKit's `addEnv`).
fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
    {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

/// `80`, `80/udp`, `8000-8002/tcp` → `80/tcp`, … (go-connections `nat.ParsePortSpecs`
/// for a port without a host part).
fn expose_ports(spec: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto.to_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    if ports.contains(':') {
        return Err(format!(
            "invalid containerPort: {spec} (EXPOSE does not map host ports)"
        ));
    }
    let bad = || format!("invalid containerPort: {ports}");
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (a, b),
        None => (ports, ports),
    };
    let lo: u16 = lo.parse().map_err(|_| bad())?;
    let hi: u16 = hi.parse().map_err(|_| bad())?;
    if hi < lo {
        return Err(format!(
            "invalid range specified for container port: {ports}"
        ));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

/// moby's `normalizeWorkdir`: relative paths are joined to the current directory, and
/// the result is cleaned. `None` for an empty path.
fn workdir(current: &str, requested: &str) -> Option<String> {
    if requested.is_empty() {
        return None;
    }
    let joined = if requested.starts_with('/') {
        requested.to_string()
    } else {
        format!("/{current}/{requested}")
    };
    Some(clean_path(&joined))
}

/// Go's `path.Clean` for absolute paths.
fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            x => parts.push(x),
        }
    }
    format!("/{}", parts.join("/"))
}

/// moby's `signal.ParseSignal`: a number, or a Linux signal name with or without `SIG`.
fn check_signal(s: &str) -> Result<(), String> {
    const NAMES: [&str; 34] = [
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
        "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
        "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
    ];
    if let Ok(n) = s.parse::<u32>() {
        return if n == 0 || n > 64 {
            Err(format!("invalid signal: {s}"))
        } else {
            Ok(())
        };
    }
    let name = s.to_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    let rt = name
        .strip_prefix("RTMIN")
        .or_else(|| name.strip_prefix("RTMAX"))
        .is_some_and(|rest| {
            rest.is_empty()
                || rest
                    .strip_prefix(['+', '-'])
                    .is_some_and(|n| n.parse::<u8>().is_ok())
        });
    if NAMES.contains(&name) || rt {
        Ok(())
    } else {
        Err(format!("invalid signal: {s}"))
    }
}

fn health(h: &Healthcheck) -> HealthConfig {
    match h {
        Healthcheck::None => HealthConfig {
            test: Some(vec!["NONE".to_string()]),
            ..HealthConfig::default()
        },
        Healthcheck::Cmd(c) => {
            let test = match &c.test {
                ShellOrExec::Shell(line) => vec!["CMD-SHELL".to_string(), line.clone()],
                ShellOrExec::Exec(args) => {
                    let mut v = vec!["CMD".to_string()];
                    v.extend(args.iter().cloned());
                    v
                }
            };
            let nanos = |d: std::time::Duration| {
                let n = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
                (n != 0).then_some(n)
            };
            HealthConfig {
                test: Some(test),
                interval: nanos(c.interval),
                timeout: nanos(c.timeout),
                start_period: nanos(c.start_period),
                start_interval: nanos(c.start_interval),
                retries: (c.retries != 0).then_some(i64::from(c.retries)),
            }
        }
    }
}

#[cfg(test)]
mod tests;
