//! Containers (`rbuild run`, `ps`, `rm`): a row in `containers` and a directory
//! `<root>/containers/<id>/` holding the snapshot's `upper/` and `work/` (and `merged/`
//! while it runs), which outlive the process so that `diff` and `commit` can read the
//! container's changes later. The row is written after the directory is made and
//! deleted before it is removed, so a row always names a whole directory.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use rusqlite::{OptionalExtension, params};

use crate::commit::UpperDir;
use crate::digest::Digest;
use crate::error::StoreError;
use crate::fsutil;
use crate::store::{Store, io_err};
use crate::unpack::now;

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Created,
    Running,
    Exited,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Running => "running",
            State::Exited => "exited",
        }
    }

    fn parse(s: &str) -> State {
        match s {
            "running" => State::Running,
            "exited" => State::Exited,
            _ => State::Created,
        }
    }
}

/// How a container runs, as `run` resolved it from the image and its flags. Kept in
/// `<dir>/config.json`, written before the row, so that whoever runs the container (a
/// foreground `run`, a detached monitor), `exec` (which starts commands with the same
/// environment and user) and `inspect` all read one description.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RunConfig {
    /// Entrypoint and command, as given to the process.
    pub args: Vec<String>,
    /// How many of `args` are the entrypoint (the image's or `--entrypoint`); the rest
    /// is the command, which `commit` records as docker does (`Cmd`, `created_by`).
    pub entrypoint_len: usize,
    /// `KEY=VALUE`: the image's, then `--env-file`, then `-e`.
    pub env: Vec<String>,
    /// Absolute; "/" when neither the image nor `-w` sets one.
    pub working_dir: String,
    /// As `USER` takes it; empty is root.
    pub user: String,
    pub hostname: String,
    /// `host` or `none`.
    pub network: String,
    /// `HOST:CTR[:ro|:rw]`, both absolute.
    pub binds: Vec<String>,
    /// Container paths (an optional `:options` suffix is ignored).
    pub tmpfs: Vec<String>,
    pub readonly_rootfs: bool,
    /// `-t`: the command's standard streams are a pseudo-terminal.
    pub tty: bool,
    /// `-i`: the command reads the caller's standard input.
    pub open_stdin: bool,
    /// `--rm`: the container goes when it exits.
    pub auto_remove: bool,
    /// `--add-host`: `HOST:IP` lines added to its `/etc/hosts`.
    pub extra_hosts: Vec<String>,
}

/// One container as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// 64 hex digits.
    pub id: String,
    pub name: String,
    pub image_id: Digest,
    pub created: i64,
    /// What runs: entrypoint and command, as given to the process.
    pub command: Vec<String>,
    pub state: State,
    pub exit_code: Option<i32>,
    /// The process that owns the running container: a foreground `rbuild run` or the
    /// monitor of a detached one.
    pub pid: Option<i32>,
    /// The host PID of the container's init (its PID 1) while it runs.
    pub init_pid: Option<i32>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

impl Container {
    /// The first 12 hex digits, as `ps` shows it.
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }
}

/// Docker's rule for `--name` (moby `daemon/names`): `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "eager", "fervent", "gifted", "happy", "jolly", "keen", "lucid", "modest",
    "nifty", "quirky", "serene", "tender", "vibrant", "zealous",
];
const NAMES: &[&str] = &[
    "babbage", "curie", "dijkstra", "euler", "fermat", "gauss", "hopper", "knuth", "lovelace",
    "noether", "pascal", "ritchie", "shannon", "thompson", "turing", "wozniak",
];

fn random_bytes(n: usize) -> Result<Vec<u8>, StoreError> {
    let mut buf = vec![0u8; n];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(io_err("reading /dev/urandom"))?;
    Ok(buf)
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Container, String)> {
    let image: String = r.get(2)?;
    let command: String = r.get(4)?;
    let state: String = r.get(5)?;
    Ok((
        Container {
            id: r.get(0)?,
            name: r.get(1)?,
            image_id: image.parse().unwrap_or_else(|_| Digest::of(b"")),
            created: r.get(3)?,
            command: serde_json::from_str(&command).unwrap_or_default(),
            state: State::parse(&state),
            exit_code: r.get(6)?,
            pid: r.get(7)?,
            started_at: r.get(8)?,
            finished_at: r.get(9)?,
            init_pid: r.get(10)?,
        },
        image,
    ))
}

/// Whether `pid` runs: exists and is not a zombie waiting for its parent to reap it
/// (proc(5), /proc/pid/stat: the state follows the command name in parentheses).
fn alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

const CONFIG_FILE: &str = "config.json";

/// How long a removed container's exit code is kept ([`Store::removed_exit_code`]).
const EXIT_KEPT_SECS: i64 = 3600;

const COLUMNS: &str = "id, name, image_id, created, command, state, exit_code, pid, started_at, finished_at, init_pid";

impl Store {
    fn containers_dir(&self) -> PathBuf {
        self.root().join("containers")
    }

    /// The directory holding a container's files.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }

    /// The snapshot directories of a container (`upper/`, `work/` under its dir).
    pub fn container_upper_dir(&self, id: &str) -> UpperDir {
        let root = self.container_dir(id);
        UpperDir {
            upper: root.join("upper"),
            work: root.join("work"),
            root,
        }
    }

    /// Records a new container of `image_id` (state `created`) and makes its directory
    /// holding `config`. `name` None picks a free docker-style `adjective_name`.
    pub fn create_container(
        &self,
        name: Option<&str>,
        image_id: &Digest,
        config: &RunConfig,
    ) -> Result<Container, StoreError> {
        let command = &config.args;
        if let Some(n) = name
            && !valid_name(n)
        {
            return Err(StoreError::InvalidContainerName(n.to_string()));
        }
        let id: String = random_bytes(32)?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let name = match name {
            Some(n) => n.to_string(),
            None => self.free_name()?,
        };
        let dirs = self.container_upper_dir(&id);
        fs::create_dir_all(self.containers_dir()).map_err(io_err("creating containers/"))?;
        fs::create_dir(&dirs.root).map_err(io_err(format!("creating {}", dirs.root.display())))?;
        for d in [&dirs.upper, &dirs.work] {
            let made = fs::create_dir(d)
                .and_then(|()| fs::set_permissions(d, fs::Permissions::from_mode(0o755)));
            if let Err(e) = made {
                let _ = fsutil::remove_tree(&dirs.root);
                return Err(io_err(format!("creating {}", d.display()))(e));
            }
        }
        let config_path = dirs.root.join(CONFIG_FILE);
        let written = serde_json::to_vec_pretty(config)
            .map_err(std::io::Error::other)
            .and_then(|json| fsutil::atomic_write(&config_path, &json));
        if let Err(e) = written {
            let _ = fsutil::remove_tree(&dirs.root);
            return Err(io_err(format!("writing {}", config_path.display()))(e));
        }
        let c = Container {
            id: id.clone(),
            name: name.clone(),
            image_id: image_id.clone(),
            created: now(),
            command: command.to_vec(),
            state: State::Created,
            exit_code: None,
            pid: None,
            init_pid: None,
            started_at: None,
            finished_at: None,
        };
        let res = self.conn.execute(
            "INSERT INTO containers (id, name, image_id, created, command, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                c.id,
                c.name,
                image_id.to_string(),
                c.created,
                serde_json::to_string(command).unwrap_or_else(|_| "[]".into()),
                State::Created.as_str()
            ],
        );
        if let Err(e) = res {
            let _ = fsutil::remove_tree(&dirs.root);
            if let Some(other) = self.container_by_name(&name)? {
                return Err(StoreError::ContainerConflict(format!(
                    "Conflict. The container name \"/{name}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                    other.id
                )));
            }
            return Err(e.into());
        }
        Ok(c)
    }

    /// `rename`: docker's checks and words; the name is the row's only, so a running
    /// container is renamed as well.
    pub fn rename_container(&self, id: &str, new: &str) -> Result<(), StoreError> {
        let new = new.strip_prefix('/').unwrap_or(new);
        if !valid_name(new) {
            return Err(StoreError::InvalidContainerName(new.to_string()));
        }
        let c = self.container(id)?;
        if c.name == new {
            return Err(StoreError::ContainerConflict(
                "Renaming a container with the same name as its current name".into(),
            ));
        }
        if let Err(e) = self.conn.execute(
            "UPDATE containers SET name = ?2 WHERE id = ?1",
            params![c.id, new],
        ) {
            if let Some(other) = self.container_by_name(new)? {
                return Err(StoreError::ContainerConflict(format!(
                    "Error when allocating new name: Conflict. The container name \"/{new}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                    other.id
                )));
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// The configuration the container was created with.
    pub fn run_config(&self, id: &str) -> Result<RunConfig, StoreError> {
        let path = self.container_dir(id).join(CONFIG_FILE);
        let bytes = fs::read(&path).map_err(io_err(format!("reading {}", path.display())))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| io_err(format!("reading {}", path.display()))(std::io::Error::other(e)))
    }

    fn free_name(&self) -> Result<String, StoreError> {
        loop {
            let r = random_bytes(3)?;
            let mut n = format!(
                "{}_{}",
                ADJECTIVES[r[0] as usize % ADJECTIVES.len()],
                NAMES[r[1] as usize % NAMES.len()]
            );
            if self.container_by_name(&n)?.is_some() {
                n.push_str(&(r[2] % 10).to_string());
            }
            if self.container_by_name(&n)?.is_none() {
                return Ok(n);
            }
        }
    }

    fn container_by_name(&self, name: &str) -> Result<Option<Container>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM containers WHERE name = ?1"),
                [name],
                row,
            )
            .optional()?
            .map(|(c, _)| c))
    }

    /// Every container, newest first (as `ps`).
    pub fn containers(&self) -> Result<Vec<Container>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM containers ORDER BY created DESC, rowid DESC"
        ))?;
        let mut rows = stmt
            .query_map([], row)?
            .map(|r| r.map(|(c, _)| c))
            .collect::<Result<Vec<_>, _>>()?;
        // A foreground run records the pid of its rbuild: if that process is gone (killed
        // outright), so is the container's (PR_SET_PDEATHSIG), and it has exited.
        for c in &mut rows {
            if c.state == State::Running && !c.pid.is_some_and(alive) {
                c.state = State::Exited;
                c.exit_code = Some(137);
                c.pid = None;
                c.init_pid = None;
            }
        }
        Ok(rows)
    }

    /// The containers using the image `id`.
    pub fn containers_of(&self, id: &Digest) -> Result<Vec<Container>, StoreError> {
        Ok(self
            .containers()?
            .into_iter()
            .filter(|c| &c.image_id == id)
            .collect())
    }

    /// By full ID, name (a leading `/` allowed, as docker) or unique ID prefix.
    pub fn container(&self, s: &str) -> Result<Container, StoreError> {
        let all = self.containers()?;
        if let Some(c) = all.iter().find(|c| c.id == s) {
            return Ok(c.clone());
        }
        let name = s.strip_prefix('/').unwrap_or(s);
        if let Some(c) = all.iter().find(|c| c.name == name) {
            return Ok(c.clone());
        }
        let by_prefix: Vec<&Container> = if s.is_empty() {
            Vec::new()
        } else {
            all.iter().filter(|c| c.id.starts_with(s)).collect()
        };
        match by_prefix.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(StoreError::NoSuchContainer(s.to_string())),
            _ => Err(StoreError::Ambiguous(format!(
                "Error response from daemon: multiple IDs found with provided prefix: {s}"
            ))),
        }
    }

    /// Records the container running, owned by process `pid`, unless it runs already
    /// (`Ok(false)`). A compare-and-swap on its row, so that two `start`s of one
    /// container cannot both mount its root; an owner that died (killed outright) is
    /// taken over, and the mounts it left are detached first.
    pub fn claim_container(&self, id: &str, pid: i32) -> Result<bool, StoreError> {
        let (state, owner): (String, Option<i32>) = self
            .conn
            .query_row(
                "SELECT state, pid FROM containers WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| StoreError::NoSuchContainer(id.to_string()))?;
        let stale = state == State::Running.as_str();
        if stale && owner.is_some_and(alive) {
            return Ok(false);
        }
        let claimed = self.conn.execute(
            "UPDATE containers SET state = 'running', pid = ?2, init_pid = NULL, started_at = ?3,
             exit_code = NULL, finished_at = NULL WHERE id = ?1 AND state = ?4 AND pid IS ?5",
            params![id, pid, now(), state, owner],
        )?;
        if claimed == 0 {
            return Ok(false);
        }
        if stale {
            let dir = self.container_dir(id);
            crate::mounts::detach_under(&dir)
                .map_err(io_err(format!("unmounting under {}", dir.display())))?;
        }
        Ok(true)
    }

    /// Gives back a container claimed by process `pid` without running it (`cp` into a
    /// stopped container mounts its root for a moment): its state and times as
    /// `before` had them.
    pub fn release_container(&self, before: &Container, pid: i32) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE containers SET state = ?3, pid = NULL, init_pid = NULL, exit_code = ?4,
             started_at = ?5, finished_at = ?6 WHERE id = ?1 AND pid = ?2",
            params![
                before.id,
                pid,
                before.state.as_str(),
                before.exit_code,
                before.started_at,
                before.finished_at
            ],
        )?;
        Ok(())
    }

    /// The exit code of container `id` (a full ID) if it exited and was removed within
    /// the last hour.
    pub fn removed_exit_code(&self, id: &str) -> Result<Option<i32>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT exit_code FROM container_exits WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Records the host PID of the running container's init.
    pub fn set_container_init_pid(&self, id: &str, init_pid: i32) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE containers SET init_pid = ?2 WHERE id = ?1",
            params![id, init_pid],
        )?;
        Ok(())
    }

    /// Records that the container's process ended with `exit_code`.
    pub fn set_container_exited(&self, id: &str, exit_code: i32) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE containers SET state = 'exited', pid = NULL, init_pid = NULL, exit_code = ?2,
             finished_at = ?3, started_at = COALESCE(started_at, ?3) WHERE id = ?1",
            params![id, exit_code, now()],
        )?;
        Ok(())
    }

    /// Deletes the row, then the directory. The caller must have stopped the process and
    /// unmounted its root.
    pub fn remove_container(&self, id: &str) -> Result<(), StoreError> {
        // Its exit code outlives it for an hour (`wait` on a `--rm` container); one
        // transaction, one fsync, as before the code was kept.
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "DELETE FROM container_exits WHERE removed_at < ?1",
            [now() - EXIT_KEPT_SECS],
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO container_exits (id, exit_code, removed_at)
             SELECT id, exit_code, ?2 FROM containers
             WHERE id = ?1 AND state = 'exited' AND exit_code IS NOT NULL",
            params![id, now()],
        )?;
        tx.execute("DELETE FROM containers WHERE id = ?1", [id])?;
        tx.commit()?;
        let dir = self.container_dir(id);
        // The root of a run whose rbuild was killed is still mounted: never remove
        // files through it.
        if dir.exists() {
            crate::mounts::detach_under(&dir)
                .map_err(io_err(format!("unmounting under {}", dir.display())))?;
        }
        match fsutil::remove_tree(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(io_err(format!("removing {}", dir.display()))(e))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn names_follow_docker() {
        for ok in ["ab", "web-1", "a.b_c", "0x"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "a", "-ab", "_ab", "a b", "a/b", "é1"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
