//! One stage's steps: the cache lookup, running a step on a miss (metadata, COPY/ADD,
//! RUN through [`RunStep`](super::RunStep)), and committing its intermediate image.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use rbuild_parser::instruction::{Chmod, Instruction, Network, Script, ShellOrExec};
use rbuild_parser::stages::Stage;
use rbuild_store::commit::CommittedLayer;
use rbuild_store::config::{ContainerConfig, History};
use rbuild_store::import::rfc3339_now;
use rbuild_store::{Digest, ImageConfig, NewImage, Store, platform};

use super::cache::{Inputs, MissReason, step_id};
use super::context::{self, Context};
use super::copy::{CopySpec, Previous, copy_into, mkdir_into};
use super::failure::{StepFailure, source_excerpt};
use super::progress::Progress;
use super::{BuildError, BuildOptions, NetworkMode, RunRequest, StageResult};
use crate::config_edit::ConfigEditor;

/// BuildKit's default PATH, given to images whose config has none.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The history comment BuildKit's Dockerfile frontend writes.
const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// What a stage's steps work with. Each stage built on its own thread has its own copy,
/// with its own store handle (a SQLite connection is used by one thread at a time).
#[derive(Clone)]
pub(super) struct Cx<'a> {
    pub store: &'a Store,
    pub opts: &'a BuildOptions<'a>,
    pub ctx: &'a Context,
    /// The Dockerfile's name for `NAME:LINE` in errors.
    pub file: String,
    /// The context and Dockerfile, identifying this build's cache notes.
    pub note_scope: String,
    /// The Dockerfile's lines, for the instruction as written.
    pub lines: &'a [String],
    pub proxy: BTreeMap<String, String>,
    /// Whether the "load build context" vertex was shown (once per build).
    pub context_loaded: &'a AtomicBool,
    /// Set when a stage of the build failed: the others stop at their next step.
    pub abort: &'a AtomicBool,
    /// What `RUN --mount from=` may name (images, then stages as they are built).
    pub mount_sources: super::run_mounts::MountSources,
    pub cached: usize,
    pub ran: usize,
    /// Results of the stages built so far, by stage index (`COPY --from`, `FROM stage`).
    pub stages: Vec<Option<StageResult>>,
    /// Images the build uses (FROM, `COPY --from`) by reference as written, resolved.
    pub images: BTreeMap<String, Digest>,
    /// `--cache-from`: caches consulted when the store has no image for a key.
    pub imported: &'a super::remote_cache::Imported<'a>,
    /// The step records this stage made or took, for `--cache-to`.
    pub records: Vec<super::remote_cache::CacheRecord>,
}

/// A stage while it is built.
struct State {
    result: StageResult,
    /// Whether this stage set CMD (then ENTRYPOINT keeps it).
    cmd_set: bool,
    /// ARGs the stage declared so far and their values.
    args: BTreeMap<String, Option<String>>,
}

/// The config of `FROM scratch`.
pub(super) fn scratch_config() -> ImageConfig {
    ImageConfig {
        architecture: platform::native_arch().to_string(),
        os: platform::native_os().to_string(),
        config: Some(ContainerConfig::default()),
        ..ImageConfig::default()
    }
}

/// A base image's config as a build starts from it: the image's own fields, without
/// what describes how *it* was made (legacy container fields, comment, author), and
/// without its ONBUILD triggers, which the stage runs first (the plan put them in its
/// steps) and does not pass on.
fn from_base(mut c: ImageConfig, epoch: Option<i64>) -> ImageConfig {
    if let Some(epoch) = epoch {
        clamp_history(&mut c, epoch);
    }
    c.container = None;
    c.container_config = None;
    c.docker_version = None;
    c.comment = None;
    c.author = None;
    let cc = c.config.get_or_insert_with(ContainerConfig::default);
    cc.on_build = None;
    let env = cc.env.get_or_insert_with(Vec::new);
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    c
}

pub(super) fn build_stage(
    cx: &mut Cx<'_>,
    progress: &Progress<'_>,
    stage: &Stage,
    base: StageResult,
    label: &str,
) -> Result<StageResult, BuildError> {
    let mut st = State {
        result: StageResult {
            image: base.image,
            config: from_base(base.config, cx.opts.source_date_epoch),
        },
        cmd_set: false,
        args: BTreeMap::new(),
    };
    let total = stage.steps.len() + 1;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, step) in stage.steps.iter().enumerate() {
        let location = format!("{}:{}", cx.file, step.start_line);
        // A trigger's line is the FROM's: say which trigger it was.
        let explain = |message: String| match &step.trigger {
            Some(t) => format!("ONBUILD trigger {:?} of {}: {message}", t.expression, t.of),
            None => message,
        };
        let fail = |message: String| BuildError::Step {
            location: location.clone(),
            message: explain(message),
        };
        if super::interrupt::requested() || cx.abort.load(Ordering::Relaxed) {
            return Err(fail("interrupted".to_string()));
        }
        let instr = &step.instruction;
        let is_copy = matches!(instr, Instruction::Copy(_) | Instruction::Add(_));
        if is_copy && !cx.context_loaded.swap(true, Ordering::Relaxed) {
            let v = progress.start("[internal] load build context");
            progress.log(&v, "transferring context: done");
            progress.done(v);
        }
        // BuildKit marks a base's triggers `[2/4] ONBUILD COPY . /app`.
        let onbuild = if step.trigger.is_some() {
            "ONBUILD "
        } else {
            ""
        };
        let vertex = format!("[{label}{}/{total}] {onbuild}{}", i + 2, step.text);
        let v = progress.start(vertex.clone());

        // The instruction as written, and which occurrence of it in the stage this is.
        let written = match &step.trigger {
            Some(t) => format!("ONBUILD {}", t.expression),
            None => cx
                .lines
                .get(step.start_line.saturating_sub(1)..step.end_line.min(cx.lines.len()))
                .map(|l| l.join("\n"))
                .unwrap_or_else(|| step.text.clone()),
        };
        let occurrence = seen.entry(written.clone()).or_default();
        *occurrence += 1;
        let note_key = step_id(&cx.note_scope, "", stage.index, &written, *occurrence);

        // ARG values are in force from their declaration on.
        if let Instruction::Arg(a) = instr {
            for def in &a.args {
                st.args.insert(def.name.clone(), def.default.clone());
            }
        }
        let env_names: Vec<String> = st
            .result
            .config
            .config
            .as_ref()
            .and_then(|c| c.env.as_ref())
            .into_iter()
            .flatten()
            .map(|kv| {
                kv.split_once('=')
                    .map_or(kv.as_str(), |(k, _)| k)
                    .to_string()
            })
            .collect();
        let args: BTreeMap<String, Option<String>> = match instr {
            Instruction::Arg(a) => a
                .args
                .iter()
                .map(|d| (d.name.clone(), d.default.clone()))
                .collect(),
            Instruction::Run(_) => step
                .args
                .iter()
                .map(|a| (a.name.clone(), a.value.clone()))
                .collect(),
            _ => step
                .used
                .iter()
                .filter(|n| st.args.contains_key(*n) && !env_names.contains(n))
                .map(|n| (n.clone(), st.args[n].clone()))
                .collect(),
        };

        // `COPY --from` is keyed on the files it reads, so reading them needs the source
        // on disk. It also has a key on the source's image ID (the same ID means the
        // same files), which other stores record in the caches they export: a source
        // taken from an imported cache and not fetched yet is tried by that key first,
        // so a hit needs none of its layers.
        let from_image = copy_from_image(cx, stage, step);
        let parent_id = st.result.image.clone();
        let by_image_key = from_image.as_ref().map(|src| {
            super::cache::copy_from_image_key(
                parent_id.as_ref(),
                &step.text,
                &args,
                src.as_ref(),
                cx.opts.source_date_epoch,
            )
        });
        if let (Some(k), Some(Some(src))) = (&by_image_key, &from_image)
            && !cx.opts.no_cache
            && cx.imported.is_pending(src)
        {
            match cx.imported.lookup(cx.store, k, parent_id.as_ref()) {
                Ok(Some((id, config))) => {
                    st.result = StageResult {
                        config,
                        image: Some(id.clone()),
                    };
                    cx.records.push(super::remote_cache::CacheRecord {
                        key: k.clone(),
                        image: id,
                        parent: parent_id,
                    });
                    progress.cached(&v);
                    cx.cached += 1;
                    continue;
                }
                Ok(None) => {}
                Err(e) => progress.warning(format!("{location}: {e}")),
            }
        }
        if let Some(src) = &from_image
            && let Err(message) = cx.imported.materialize(cx.store, src.as_ref())
        {
            progress.failed(v, &message);
            return Err(fail(message));
        }

        // COPY/ADD sources, read now: their digests are part of the key. Downloads
        // live in store scratch dirs until the step is done.
        let mut downloads = Scratch::default();
        let mut git_sources: Vec<(usize, super::git::Resolved)> = Vec::new();
        let selected = match instr {
            Instruction::Copy(c) if c.parents => match &c.from {
                Some(_) => from_view(cx, stage, step).and_then(|view| {
                    super::parents::select(&view, &c.srcs)
                        .map_err(|e| format!("{}: {e}", step.text))
                }),
                None => super::parents::select(cx.ctx, &c.srcs)
                    .map_err(|e| format!("{}: {e}", step.text)),
            }
            .map(Some),
            Instruction::Copy(c) if c.from.is_some() => {
                from_view(cx, stage, step).and_then(|view| {
                    let mut out = Vec::new();
                    for s in &c.srcs {
                        out.extend(view.select(s).map_err(|e| format!("{}: {e}", step.text))?);
                    }
                    Ok(Some(out))
                })
            }
            // BuildKit's words: COPY reads only the context (or --from).
            Instruction::Copy(c) if c.srcs.iter().any(|s| super::git::parse(s).is_some()) => {
                Err(format!("{}: source can't be a git ref for COPY", step.text))
            }
            Instruction::Copy(c) if c.srcs.iter().any(|s| is_remote(s)) => {
                Err(format!("{}: source can't be a URL for COPY", step.text))
            }
            Instruction::Copy(c) => select(cx.ctx, &c.srcs, &step.text).map(Some),
            Instruction::Add(a) => {
                let mut out = Vec::new();
                let mut result = Ok(());
                for src in &a.srcs {
                    let got = if let Some(parsed) = super::git::parse(src) {
                        // Resolved to a commit now (the key); fetched only on a miss.
                        parsed
                            .and_then(|g| {
                                super::git::resolve(g, a.keep_git_dir, a.checksum.as_deref())
                            })
                            .map(|r| {
                                progress
                                    .log(&v, format!("resolved {} to {}", r.describe(), r.commit));
                                git_sources.push((out.len(), r));
                                Vec::new()
                            })
                            .map_err(|e| format!("{}: {e}", step.text))
                    } else if is_remote(src) {
                        download(cx, src, a.checksum.as_deref(), &mut downloads.0)
                            .map(|s| vec![s])
                            .map_err(|e| format!("{}: {e}", step.text))
                    } else {
                        select(cx.ctx, std::slice::from_ref(src), &step.text)
                    };
                    // Excluded here already, so that the git sources' places in `out`
                    // stay right (the pass below then changes nothing).
                    let got = got.and_then(|s| {
                        if a.exclude.is_empty() {
                            Ok(s)
                        } else {
                            apply_exclude(s, &a.exclude)
                        }
                    });
                    match got {
                        Ok(s) => out.extend(s),
                        Err(e) => {
                            result = Err(e);
                            break;
                        }
                    }
                }
                result.map(|()| Some(out))
            }
            _ => Ok(None),
        };
        let exclude: &[String] = match instr {
            Instruction::Copy(c) => &c.exclude,
            Instruction::Add(a) => &a.exclude,
            _ => &[],
        };
        let selected = selected.and_then(|sel| match sel {
            Some(sel) if !exclude.is_empty() => apply_exclude(sel, exclude).map(Some),
            other => Ok(other),
        });
        // Taken before the sources are read: see `CopySpec::racy_after`.
        let racy_after = context::racy_after();
        // Heredoc sources, after the others (so git sources keep their places).
        let heredocs = match instr {
            Instruction::Copy(c) => c.heredocs.as_slice(),
            Instruction::Add(a) => a.heredocs.as_slice(),
            _ => &[],
        };
        let selected = selected.and_then(|sel| match sel {
            Some(mut sel) if !heredocs.is_empty() => {
                sel.extend(super::inline::materialize(
                    cx.store,
                    heredocs,
                    cx.opts.source_date_epoch,
                    &mut downloads.0,
                )?);
                Ok(Some(sel))
            }
            other => Ok(other),
        });
        let selected = selected.and_then(|sel| {
            let mut sources = match &sel {
                Some(s) => context::digests_cached(s, Some(&context_digests(cx)))
                    .map_err(|e| e.to_string())?,
                None => BTreeMap::new(),
            };
            // By host path, for the files whose path names them alone (an ADD download
            // is named after its URL and could share a name with a context file).
            let entries: Vec<&context::Entry> = sel
                .iter()
                .flatten()
                .flat_map(|s| std::iter::once(&s.top).chain(&s.children))
                .filter(|e| e.meta.is_file())
                .collect();
            let mut paths_of: HashMap<&str, Vec<&std::path::Path>> = HashMap::new();
            for e in &entries {
                let paths = paths_of.entry(e.rel.as_str()).or_default();
                if !paths.contains(&e.path.as_path()) {
                    paths.push(&e.path);
                }
            }
            let by_path: HashMap<PathBuf, String> = entries
                .iter()
                .filter(|e| paths_of[e.rel.as_str()].len() == 1)
                .filter_map(|e| Some((e.path.clone(), sources.get(&e.rel)?.clone())))
                .collect();
            for (_, r) in &git_sources {
                sources.insert(r.key_name(), r.key_value());
            }
            if let Instruction::Copy(c) = instr
                && let Some(from) = &c.from
            {
                // Content digests of the files read from the other stage or image, as
                // BuildKit keys `COPY --from` on content.
                sources = sources
                    .into_iter()
                    .map(|(k, v)| (format!("--from={from}:/{k}"), v))
                    .collect();
            }
            Ok((sel, sources, by_path))
        });
        let (selections, sources, digests) = match selected {
            Ok(x) => x,
            Err(message) => {
                progress.failed(v, &message);
                return Err(fail(message));
            }
        };
        let network = match instr {
            Instruction::Run(r) => match r.network {
                Some(Network::None) => NetworkMode::None,
                Some(Network::Host) => NetworkMode::Host,
                _ => cx.opts.network,
            },
            _ => cx.opts.network,
        };
        let inputs = Inputs {
            parent: st
                .result
                .image
                .as_ref()
                .map_or("scratch".to_string(), |d| d.to_string()),
            text: step.text.clone(),
            args,
            sources,
            extra: match instr {
                Instruction::Run(r) => match run_mount_key(cx, r) {
                    // The text leaves heredoc bodies out; the key must not.
                    Ok(mounts) => format!(
                        "network={}{mounts}{}",
                        network.as_str(),
                        heredoc_key(&r.heredocs)
                    ),
                    Err(message) => {
                        progress.failed(v, &message);
                        return Err(fail(message));
                    }
                },
                _ => String::new(),
            },
            epoch: cx.opts.source_date_epoch,
        };
        let key = inputs.key();
        // The records this step adds to an exported cache, once its image is known.
        let record = |image: &Digest| {
            let mut r = vec![super::remote_cache::CacheRecord {
                key: key.clone(),
                image: image.clone(),
                parent: parent_id.clone(),
            }];
            if let Some(k) = &by_image_key {
                r.push(super::remote_cache::CacheRecord {
                    key: k.clone(),
                    image: image.clone(),
                    parent: parent_id.clone(),
                });
            }
            r
        };
        let last_note = cx.store.cache_note(&note_key)?;
        let last: Option<Inputs> = last_note
            .as_deref()
            .and_then(|n| serde_json::from_str(n).ok());
        let note = serde_json::to_string(&inputs).expect("inputs serialize");

        if matches!(instr, Instruction::Cmd(_)) {
            st.cmd_set = true;
        }
        if !cx.opts.no_cache {
            // This store's cache first, then the imported ones (`--cache-from`).
            let hit = match cx.store.cache_get(&key)? {
                Some(id) if cx.store.image(&id)?.is_some() => Some((cx.store.config(&id)?, id)),
                _ => match cx.imported.lookup(cx.store, &key, parent_id.as_ref()) {
                    Ok(found) => found.map(|(id, config)| (config, id)),
                    Err(e) => {
                        progress.warning(format!("{location}: {e}; running the step"));
                        None
                    }
                },
            };
            if let Some((config, id)) = hit {
                st.result = StageResult {
                    config,
                    image: Some(id.clone()),
                };
                // Unchanged on a plain rebuild: not rewriting it saves a database commit
                // (an fsync) per cached step.
                if last_note.as_deref() != Some(note.as_str()) {
                    cx.store.set_cache_note(&note_key, &note)?;
                }
                cx.records.extend(record(&id));
                progress.cached(&v);
                cx.cached += 1;
                continue;
            }
        }
        let reason = if cx.opts.no_cache {
            MissReason::NoCache
        } else {
            inputs.miss_reason(last.as_ref())
        };
        progress.miss(&v, reason);
        // The step runs on its parent's files: an imported parent is fetched now.
        if let Err(message) = cx.imported.materialize(cx.store, parent_id.as_ref()) {
            progress.failed(v, &message);
            return Err(fail(message));
        }

        // A --link step's layer may come from an earlier build on another base.
        let link_key = super::link::active(instr).then(|| {
            let workdir = st
                .result
                .config
                .config
                .as_ref()
                .and_then(|c| c.working_dir.clone());
            super::link::key(&inputs, workdir.as_deref().unwrap_or("/"))
        });
        let reused = match &link_key {
            Some(k) if !cx.opts.no_cache => super::link::reuse(cx.store, k)?,
            _ => None,
        };
        if let Some(diff_id) = &reused {
            progress.log(
                &v,
                format!("reusing the --link layer {diff_id} from an earlier build"),
            );
        }

        let mut config = st.result.config.clone();
        let started = std::time::Instant::now();
        let mut output = |bytes: &[u8]| progress.output(&v, started.elapsed(), bytes);
        let executed = if let Some(diff_id) = reused {
            Ok(Some(diff_id))
        } else {
            let fetched = super::git::fetch_all(
                cx.store,
                selections,
                git_sources,
                |s| apply_exclude(s, exclude),
                &mut downloads.0,
            );
            let selections = match fetched {
                Ok(s) => s,
                Err(message) => {
                    progress.failed(v, &message);
                    return Err(fail(message));
                }
            };
            execute(
                cx,
                &mut st,
                &mut config,
                step,
                selections.as_deref(),
                &CopySite {
                    digests: &digests,
                    note_key: &note_key,
                    racy_after,
                },
                RunSite {
                    network,
                    location: &location,
                    output: &mut output,
                },
            )
            .map(|layer| layer.map(|l| l.diff_id))
        };
        drop(downloads);
        let layer = match executed {
            Ok(layer) => layer,
            Err(message) => {
                let tail = progress.tail(&v);
                progress.failed(v, &message);
                return Err(BuildError::Failed(Box::new(StepFailure {
                    location,
                    message: explain(message),
                    step: vertex,
                    tail,
                    source: source_excerpt(cx.lines, step.start_line, step.end_line),
                    parent: st.result.image.clone(),
                })));
            }
        };
        let created = created_now(cx.opts.source_date_epoch);
        config.created = Some(created.clone());
        if let Some(diff_id) = &layer {
            config.rootfs.diff_ids.push(diff_id.clone());
        }
        config.history.push(History {
            created: Some(created),
            created_by: Some(created_by(instr, &step.text, &config, &st.args)),
            comment: Some(HISTORY_COMMENT.to_string()),
            empty_layer: layer.is_none(),
            ..History::default()
        });
        let id = cx.store.create_image(
            &config.to_vec(),
            &NewImage {
                parent: st.result.image.clone(),
                manifest: None,
            },
        )?;
        cx.store.cache_put(&key, &id)?;
        cx.records.extend(record(&id));
        if let Some(k) = &link_key {
            cx.store.cache_put(k, &id)?;
        }
        cx.store.set_cache_note(&note_key, &note)?;
        st.result = StageResult {
            image: Some(id),
            config,
        };
        cx.ran += 1;
        progress.done(v);
    }
    Ok(st.result)
}

/// Store scratch directories a step downloads or checks out into, removed when the
/// step is done with them however it ends (cache hit, error or success).
#[derive(Default)]
struct Scratch(Vec<rbuild_store::commit::UpperDir>);

impl Drop for Scratch {
    fn drop(&mut self) {
        for d in self.0.drain(..) {
            let _ = d.remove();
        }
    }
}

/// Whether ADD would unpack this source: a tar, plain or gzip/bzip2/xz compressed
/// (recognised by its magic bytes, as Docker does).
fn is_archive(e: &context::Entry) -> bool {
    use std::io::Read;
    if !e.meta.is_file() {
        return false;
    }
    // Like Docker: an archive is what reads as a tar header once decompressed, so a
    // gzip file that holds no tar is copied as it is, not refused.
    let mut head = Vec::with_capacity(512);
    let read = super::untar::open(&e.path).and_then(|r| r.take(512).read_to_end(&mut head));
    read.is_ok() && (head.get(257..262) == Some(b"ustar") || tar_checksum_ok(&head))
}

/// Whether `head` is a tar header with a valid checksum (pre-POSIX tars have no
/// `ustar` magic; Docker recognises them by reading a header).
fn tar_checksum_ok(head: &[u8]) -> bool {
    if head.len() < 512 || head[0] == 0 {
        return false;
    }
    let field = String::from_utf8_lossy(&head[148..156]);
    let Ok(want) = u32::from_str_radix(field.trim_matches(|c: char| c == ' ' || c == '\0'), 8)
    else {
        return false;
    };
    let sum: u32 = head[..512]
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    sum == want
}

/// ADD of an `http(s)://` URL: downloads it into a store scratch dir (kept in
/// `downloads` until the step ends) as a file named after the URL's last path segment,
/// mode 0600 and mtime from `Last-Modified` as BuildKit does (else the epoch, or 0),
/// checking `--checksum`.
fn download(
    cx: &Cx<'_>,
    url: &str,
    checksum: Option<&str>,
    downloads: &mut Vec<rbuild_store::commit::UpperDir>,
) -> Result<context::Selection, String> {
    use sha2::{Digest as _, Sha256};
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;
    let shown = rbuild_store::download::redact(url);
    let name = reqwest_path_name(url);
    let dir = cx.store.new_upper_dir().map_err(|e| e.to_string())?;
    let path = dir.upper.join(&name);
    downloads.push(dir);
    let (mut body, last) =
        rbuild_store::download::open_with_last_modified(url).map_err(|e| e.to_string())?;
    let mut f = std::fs::File::create(&path).map_err(|e| format!("{shown}: {e}"))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = body.read(&mut buf).map_err(|e| format!("{shown}: {e}"))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        f.write_all(&buf[..n])
            .map_err(|e| format!("{shown}: {e}"))?;
    }
    let got = format!("sha256:{}", super::cache::hex(&h.finalize()));
    if let Some(want) = checksum
        && want != got
    {
        return Err(format!(
            "digest mismatch for {shown}: expected {want}, got {got}"
        ));
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| e.to_string())?;
    // Without a `Last-Modified`, the time of what the build makes (`copy::made_time`),
    // not of the download: the same bytes give the same layer.
    let t = last
        .as_deref()
        .and_then(|l| chrono::DateTime::parse_from_rfc2822(l).ok())
        .map(std::time::SystemTime::from)
        .unwrap_or_else(|| super::copy::made_time(cx.opts.source_date_epoch));
    f.set_modified(t).map_err(|e| e.to_string())?;
    drop(f);
    let meta = std::fs::symlink_metadata(&path).map_err(|e| e.to_string())?;
    Ok(context::Selection {
        top: context::Entry {
            rel: name,
            path,
            meta,
        },
        children: Vec::new(),
        keep_owner: false,
        remote: true,
    })
}

/// The file name ADD gives a download: the URL path's last segment (BuildKit's
/// `__unnamed__` when there is none).
fn reqwest_path_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |x| x.1);
    let path = rest.split(['?', '#']).next().unwrap_or("");
    let path = path.split_once('/').map_or("", |x| x.1);
    match path.rsplit('/').next() {
        Some(n) if !n.is_empty() && n != "." && n != ".." => n.to_string(),
        _ => "__unnamed__".to_string(),
    }
}

/// `--exclude=PATTERN`: sources whose path (context-relative, or in the `--from`
/// root) matches a pattern, with `.dockerignore` syntax, are left out; a directory
/// left out takes its contents with it.
fn apply_exclude(
    sels: Vec<context::Selection>,
    patterns: &[String],
) -> Result<Vec<context::Selection>, String> {
    let m = rbuild_parser::dockerignore::Matcher::new(patterns.iter().map(String::as_str))
        .map_err(|e| format!("--exclude: {e}"))?;
    let out = |rel: &str| {
        let rel = rel.trim_start_matches('/');
        let mut prefix = String::new();
        rel.split('/').any(|c| {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(c);
            m.excluded(&prefix)
        })
    };
    Ok(sels
        .into_iter()
        .filter(|s| s.remote || !out(&s.top.rel))
        .map(|mut s| {
            // Inside a directory source, patterns also match relative to it (BuildKit
            // matches them against the path below the copied source).
            let top = format!("{}/", s.top.rel);
            let top_is_root = s.top.rel == ".";
            s.children.retain(|e| {
                let inner = if top_is_root {
                    Some(e.rel.as_str())
                } else {
                    e.rel.strip_prefix(&top)
                };
                !out(&e.rel) && !inner.is_some_and(&out)
            });
            s
        })
        .collect())
}

/// An `http(s)` URL to download (git sources are told apart first).
fn is_remote(src: &str) -> bool {
    rbuild_store::download::is_url(src)
}

/// What a RUN's heredoc bodies add to its key: each name with its body's digest.
fn heredoc_key(heredocs: &[rbuild_parser::syntax::Heredoc]) -> String {
    use sha2::{Digest as _, Sha256};
    heredocs
        .iter()
        .map(|h| {
            let sum = super::cache::hex(&Sha256::digest(h.content.as_bytes()));
            format!(";heredoc {}={sum}", h.name)
        })
        .collect()
}

/// Where content digests of context files are remembered between builds.
fn context_digests(cx: &Cx<'_>) -> std::path::PathBuf {
    cx.store.root().join("context-digests")
}

/// What a RUN's mounts add to its cache key, as BuildKit keys them: the contents of
/// bound context paths and the layers of bound stages and images (and of the stages
/// that seed caches). Cache, tmpfs and secret contents are not part of it (their flags
/// are, in the step's text). A bound context path that can't be read is an error
/// here, not a blank in the key (which could hit a stale entry).
fn run_mount_key(cx: &Cx<'_>, r: &rbuild_parser::instruction::Run) -> Result<String, String> {
    use rbuild_parser::instruction::MountType;
    let mut out = String::new();
    for m in r.mounts.iter().filter_map(|m| m.get()) {
        // A cache seeded `from=` a stage depends on that stage, as a bind does.
        let seeded_cache = m.kind == MountType::Cache && m.from.is_some();
        if m.kind != MountType::Bind && !seeded_cache {
            continue;
        }
        let src = m.source.as_deref().unwrap_or("/");
        match &m.from {
            None => {
                let sel = cx
                    .ctx
                    .select(src)
                    .map_err(|e| format!("--mount=type=bind,source={src}: {e}"))?;
                let digests = context::digests_cached(&sel, Some(&context_digests(cx)))
                    .map_err(|e| format!("--mount=type=bind,source={src}: {e}"))?;
                out.push_str(&format!(";bind {src}={digests:?}"));
            }
            Some(from) => {
                let layers = cx
                    .mount_sources
                    .get(&from.to_lowercase())
                    .or_else(|| cx.mount_sources.get(from));
                out.push_str(&format!(";bind {from}:{src}={layers:?}"));
            }
        }
    }
    Ok(out)
}

fn select(ctx: &Context, srcs: &[String], text: &str) -> Result<Vec<context::Selection>, String> {
    let mut out = Vec::new();
    for s in srcs {
        out.extend(ctx.select(s).map_err(|e| format!("{text}: {e}"))?);
    }
    Ok(out)
}

/// What a RUN needs to know of where it runs: its network, its `Dockerfile:LINE`, and
/// where its output goes.
struct RunSite<'a> {
    network: NetworkMode,
    location: &'a str,
    output: &'a mut dyn FnMut(&[u8]),
}

/// What a COPY/ADD needs besides its sources: their digests by host path, where this
/// step's notes are, and when the sources began to be read.
struct CopySite<'a> {
    digests: &'a HashMap<PathBuf, String>,
    note_key: &'a str,
    racy_after: i64,
}

/// Runs one step on a miss: changes `config`, and returns the layer it made, if any.
fn execute(
    cx: &Cx<'_>,
    st: &mut State,
    config: &mut ImageConfig,
    step: &rbuild_parser::stages::Step,
    selections: Option<&[context::Selection]>,
    copy_site: &CopySite<'_>,
    site: RunSite<'_>,
) -> Result<Option<CommittedLayer>, String> {
    let RunSite {
        network,
        location,
        output,
    } = site;
    let cc = config.config.get_or_insert_with(ContainerConfig::default);
    match &step.instruction {
        Instruction::Arg(_) => Ok(None),
        Instruction::Maintainer(m) => {
            config.author = Some(m.name.clone());
            Ok(None)
        }
        Instruction::Shell(s) => {
            cc.shell = Some(s.args.clone());
            Ok(None)
        }
        Instruction::Copy(c) => copy_layer(
            cx,
            config,
            selections.unwrap_or_default(),
            copy_site,
            &CopyArgs {
                srcs: &c.srcs,
                dest: &c.dest,
                chown: c.chown.as_deref(),
                chmod: c
                    .chmod
                    .as_ref()
                    .map(|d| d.get().cloned().ok_or(d.raw.clone())),
                keep_owner: c.from.is_some() && c.chown.is_none(),
                unpack: false,
                link: super::link::active(&step.instruction),
            },
        )
        .map(Some),
        Instruction::Add(a) => copy_layer(
            cx,
            config,
            selections.unwrap_or_default(),
            copy_site,
            &CopyArgs {
                srcs: &a.srcs,
                dest: &a.dest,
                chown: a.chown.as_deref(),
                chmod: a
                    .chmod
                    .as_ref()
                    .map(|d| d.get().cloned().ok_or(d.raw.clone())),
                keep_owner: false,
                unpack: a.unpack != Some(false),
                link: super::link::active(&step.instruction),
            },
        )
        .map(Some),
        Instruction::Run(run) => {
            let Some(runner) = cx.opts.runner else {
                return Err(format!(
                    "{}: RUN is not available in this build yet (no sandbox is configured)",
                    step.text
                ));
            };
            // BuildKit refuses it unless the daemon and the build grant the entitlement;
            // rbuild grants no entitlements, so it never runs a RUN unconfined.
            if run.security == Some(rbuild_parser::instruction::Security::Insecure) {
                return Err(
                    "RUN --security=insecure: granting entitlement security.insecure is not \
                     allowed (rbuild runs every RUN in its sandbox)"
                        .to_string(),
                );
            }
            let mut script_file = None;
            let shell = || {
                cc.shell
                    .clone()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
            };
            let cmd = match run.script() {
                None => match &run.cmd {
                    ShellOrExec::Exec(a) => a.clone(),
                    ShellOrExec::Shell(_) => unreachable!("a shell-form RUN has a script"),
                },
                Some(Script::Shell(text)) => {
                    let mut v = shell();
                    v.push(text.into_owned());
                    v
                }
                // BuildKit writes a `RUN <<EOF` script with a shebang to a file and has
                // the SHELL run that file (`/bin/sh -c /dev/pipes/EOF`).
                Some(Script::File { name, content }) => {
                    if name.contains('/') || name == "." || name == ".." {
                        return Err(format!("heredoc name {name:?} can't name a file"));
                    }
                    script_file = Some((name.to_string(), content.to_string()));
                    let mut v = shell();
                    v.push(format!("/dev/pipes/{name}"));
                    v
                }
            };
            let mut env = cc.env.clone().unwrap_or_default();
            for a in &step.args {
                if let Some(v) = &a.value
                    && !env
                        .iter()
                        .any(|e| e.split('=').next() == Some(a.name.as_str()))
                {
                    env.push(format!("{}={v}", a.name));
                }
            }
            for (k, v) in &cx.proxy {
                env.push(format!("{k}={v}"));
            }
            let req = RunRequest {
                location: location.to_string(),
                parent_layers: config.rootfs.diff_ids.clone(),
                config: cc,
                cmd,
                env,
                user: cc.user.clone().filter(|u| !u.is_empty()),
                workdir: cc.working_dir.clone().unwrap_or_else(|| "/".into()),
                network,
                mounts: run
                    .mounts
                    .iter()
                    .map(|m| {
                        m.get()
                            .cloned()
                            .ok_or_else(|| format!("invalid --mount={}", m.raw))
                    })
                    .collect::<Result<_, _>>()?,
                context: cx.ctx.root(),
                secrets: &cx.opts.secrets,
                mount_sources: &cx.mount_sources,
                instruction: run,
                clamp_mtime: cx.opts.source_date_epoch,
                script_file,
                output,
                abort: cx.abort,
            };
            runner.run(cx.store, req)
        }
        Instruction::Workdir(_) => {
            let mut editor = ConfigEditor::new(cc).with_cmd_set(st.cmd_set);
            editor
                .apply_expanded(step.instruction.clone())
                .map_err(|e| e.to_string())?;
            workdir_layer(cx, config)
        }
        other => {
            let mut editor = ConfigEditor::new(cc).with_cmd_set(st.cmd_set);
            editor
                .apply_expanded(other.clone())
                .map_err(|e| e.to_string())?;
            st.cmd_set = editor.cmd_set();
            Ok(None)
        }
    }
}

/// WORKDIR creates its directory when the image lacks it, as BuildKit does (a layer
/// with the directory, owned by the USER in force); `None` when it exists.
fn workdir_layer(cx: &Cx<'_>, config: &ImageConfig) -> Result<Option<CommittedLayer>, String> {
    let store = cx.store;
    let cc = config.config.clone().unwrap_or_default();
    let dir = cc.working_dir.unwrap_or_else(|| "/".into());
    let lower: Vec<_> = config
        .rootfs
        .diff_ids
        .iter()
        .rev()
        .cloned()
        .collect::<Vec<_>>();
    let lower = store.layer_trees(&lower).map_err(|e| e.to_string())?;
    let view = super::rootfs::RootView {
        layers: lower.clone(),
    };
    let owner = match cc.user.as_deref().filter(|u| !u.is_empty()) {
        Some(u) => view.chown_ids(u)?,
        None => (0, 0),
    };
    let dirs = store.new_upper_dir().map_err(|e| e.to_string())?;
    let epoch = cx.opts.source_date_epoch;
    let result = mkdir_into(&dirs.upper, &lower, &dir, owner, epoch).and_then(|made| {
        if made {
            layer_from_dir(store, &dirs.upper).map(Some)
        } else {
            Ok(None)
        }
    });
    let _ = dirs.remove();
    result
}

/// The flags and operands of a COPY/ADD, as [`copy_layer`] needs them.
struct CopyArgs<'a> {
    srcs: &'a [String],
    dest: &'a str,
    chown: Option<&'a str>,
    chmod: Option<Result<Chmod, String>>,
    /// Keep the sources' owners (`COPY --from` without `--chown`).
    keep_owner: bool,
    /// ADD: extract local tar archives into the destination.
    unpack: bool,
    /// `--link`: copied into an empty layer, blind to the image's files.
    link: bool,
}

/// What a `COPY --from` step reads from: the planner resolved the name into one of the
/// stage's dependencies (`None`: scratch).
fn copy_from_dep<'s>(
    stage: &'s Stage,
    step: &rbuild_parser::stages::Step,
) -> Option<&'s rbuild_parser::stages::DependsOn> {
    use rbuild_parser::stages::Reason;
    // Triggers all sit on the FROM line, so the name tells their dependencies apart.
    let from = match &step.instruction {
        Instruction::Copy(c) => c.from.as_deref(),
        _ => None,
    };
    stage
        .deps
        .iter()
        .find(|d| {
            d.reason == Reason::CopyFrom
                && d.line == step.start_line
                && from.is_none_or(|f| f == d.written)
        })
        .map(|d| &d.on)
}

/// The image a `COPY --from` step reads (`None` for scratch or an empty stage); `None`
/// for any other step.
fn copy_from_image(
    cx: &Cx<'_>,
    stage: &Stage,
    step: &rbuild_parser::stages::Step,
) -> Option<Option<Digest>> {
    use rbuild_parser::stages::DependsOn;
    match &step.instruction {
        Instruction::Copy(c) if c.from.is_some() => {}
        _ => return None,
    }
    Some(match copy_from_dep(stage, step) {
        None => None,
        Some(DependsOn::Stage(j)) => cx.stages.get(*j)?.as_ref()?.image.clone(),
        Some(DependsOn::Image(r)) => cx.images.get(r).cloned(),
    })
}

/// The file system `COPY --from` reads: the stage's or image's layers (empty for
/// `scratch`).
fn from_view(
    cx: &Cx<'_>,
    stage: &Stage,
    step: &rbuild_parser::stages::Step,
) -> Result<super::rootfs::RootView, String> {
    use rbuild_parser::stages::DependsOn;
    let diff_ids = match copy_from_dep(stage, step) {
        None => Vec::new(),
        Some(DependsOn::Stage(j)) => cx
            .stages
            .get(*j)
            .and_then(|r| r.as_ref())
            .ok_or_else(|| format!("{}: stage {j} was not built before this one", step.text))?
            .config
            .rootfs
            .diff_ids
            .clone(),
        Some(DependsOn::Image(r)) => {
            let id = cx.images.get(r).ok_or_else(|| {
                format!(
                    "{}: image not found locally: {r} (pull, load or import it first)",
                    step.text
                )
            })?;
            cx.store
                .config(id)
                .map_err(|e| e.to_string())?
                .rootfs
                .diff_ids
        }
    };
    let top_first: Vec<Digest> = diff_ids.iter().rev().cloned().collect();
    Ok(super::rootfs::RootView {
        layers: cx
            .store
            .layer_trees(&top_first)
            .map_err(|e| e.to_string())?,
    })
}

/// The layer a COPY/ADD step made last time and what its files were copied from, kept
/// as a note beside the step's own (`<note key>/files`).
#[derive(serde::Serialize, serde::Deserialize)]
struct LayerFiles {
    layer: Digest,
    files: BTreeMap<String, String>,
}

fn layer_files_key(note_key: &str) -> String {
    format!("{note_key}/files")
}

/// The step's previous layer, if its note is readable and the layer is still stored
/// (the build's store lock keeps it so until the build ends).
fn previous_layer(cx: &Cx<'_>, note_key: &str) -> Option<Previous> {
    let note = cx.store.cache_note(&layer_files_key(note_key)).ok()??;
    let LayerFiles { layer, files } = serde_json::from_str(&note).ok()?;
    cx.store.layer_size(&layer).ok()??;
    let tree = cx.store.layer_dir(&layer);
    tree.is_dir().then_some(Previous { tree, files })
}

/// COPY/ADD from the context (or another stage's or image's files) into a new layer.
fn copy_layer(
    cx: &Cx<'_>,
    config: &ImageConfig,
    selections: &[context::Selection],
    site: &CopySite<'_>,
    args: &CopyArgs<'_>,
) -> Result<CommittedLayer, String> {
    let CopyArgs {
        srcs,
        dest,
        chown,
        ref chmod,
        keep_owner,
        unpack,
        link,
    } = *args;
    let chmod = chmod.clone();
    let store = cx.store;
    let lower: Vec<_> = config
        .rootfs
        .diff_ids
        .iter()
        .rev()
        .cloned()
        .collect::<Vec<_>>();
    let lower = store.layer_trees(&lower).map_err(|e| e.to_string())?;
    let chmod = match chmod {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(raw)) => Some(Chmod::parse(&raw).map_err(|e| e.to_string())?),
    };
    let dirs = store.new_upper_dir().map_err(|e| e.to_string())?;
    let upper = &dirs.upper;
    let mut staged = Vec::new();
    let result = (|| {
        // ADD extracts archives into the destination: each is unpacked into a private
        // staging directory whose contents are then copied like a directory's.
        let mut sels = Vec::with_capacity(selections.len());
        for sel in selections {
            if sel.remote || !(unpack && is_archive(&sel.top)) {
                sels.push(sel.clone());
                continue;
            }
            let stage = store.new_upper_dir().map_err(|e| e.to_string())?;
            let at = stage.upper.clone();
            staged.push(stage);
            super::untar::extract(&sel.top.path, &at, &sel.top.rel)?;
            let ctx = Context::new(
                at,
                rbuild_parser::dockerignore::Matcher::new(std::iter::empty::<&str>())
                    .expect("no patterns"),
            );
            let mut unpacked = ctx.select("").map_err(|e| e.to_string())?;
            for u in &mut unpacked {
                u.keep_owner = chown.is_none();
            }
            sels.extend(unpacked);
        }
        let selections = &sels[..];
        let view = super::rootfs::RootView {
            layers: lower.clone(),
        };
        let owner = match chown {
            Some(spec) if link => super::link::owner(spec)?,
            Some(spec) => view.chown_ids(spec)?,
            None => (0, 0),
        };
        // --link copies into an empty layer: nothing of the image is seen.
        let lower: &[std::path::PathBuf] = if link { &[] } else { &lower };
        let workdir = config
            .config
            .as_ref()
            .and_then(|c| c.working_dir.clone())
            .unwrap_or_else(|| "/".into());
        // `--no-cache` copies everything afresh (the files of the layer it makes are
        // still noted for the next build).
        let previous = if cx.opts.no_cache {
            None
        } else {
            previous_layer(cx, site.note_key)
        };
        let copied = copy_into(
            upper,
            lower,
            &CopySpec {
                selections,
                dest,
                workdir: &workdir,
                owner,
                keep_owner,
                chmod: chmod.as_ref(),
                multiple: srcs.len() > 1 || srcs.iter().any(|s| s.contains(['*', '?', '['])),
                digests: site.digests,
                previous: previous.as_ref(),
                racy_after: site.racy_after,
                clamp: cx.opts.source_date_epoch,
            },
        )?;
        let layer = store
            .add_layer_dir_sharing(upper, &copied.linked)
            .map_err(|e| e.to_string())?;
        // Only what a stored layer holds is ever noted.
        let note = LayerFiles {
            layer: layer.diff_id.clone(),
            files: copied.files,
        };
        let note = serde_json::to_string(&note).expect("layer files serialize");
        store
            .set_cache_note(&layer_files_key(site.note_key), &note)
            .map_err(|e| e.to_string())?;
        Ok(layer)
    })();
    let _ = dirs.remove();
    for s in staged {
        let _ = s.remove();
    }
    result
}

/// Stores a directory the store handed out ([`Store::new_upper_dir`]) as a layer: it
/// is renamed into place, not copied.
fn layer_from_dir(store: &Store, dir: &std::path::Path) -> Result<CommittedLayer, String> {
    store.add_layer_dir(dir).map_err(|e| e.to_string())
}

/// A step's `created`: now, or `SOURCE_DATE_EPOCH` when the build has one (BuildKit
/// writes the epoch itself there, not the build time).
fn created_now(epoch: Option<i64>) -> String {
    match epoch.and_then(|e| chrono::DateTime::from_timestamp(e, 0)) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        None => rfc3339_now(),
    }
}

/// Sets the `created` of the base image's history entries that are later than `epoch`
/// to it, as BuildKit's exporter does with `SOURCE_DATE_EPOCH`: a base rebuilt since
/// the epoch would otherwise carry its own build time into this image's history.
fn clamp_history(c: &mut ImageConfig, epoch: i64) {
    let clamped = created_now(Some(epoch));
    for h in &mut c.history {
        let later = h
            .created
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .is_some_and(|t| t.timestamp() > epoch);
        if later {
            h.created = Some(clamped.clone());
        }
    }
}

/// The history `created_by` of a step, as BuildKit writes it.
fn created_by(
    instr: &Instruction,
    text: &str,
    config: &ImageConfig,
    args: &BTreeMap<String, Option<String>>,
) -> String {
    let cc = config.config.clone().unwrap_or_default();
    let quoted = |v: &[String]| {
        let words: Vec<String> = v
            .iter()
            .map(|w| serde_json::to_string(w).expect("string serializes"))
            .collect();
        format!("[{}]", words.join(" "))
    };
    match instr {
        Instruction::Env(e) => {
            let kv: Vec<String> = e
                .pairs
                .iter()
                .map(|p| format!("{}={}", p.key, p.value))
                .collect();
            format!("ENV {}", kv.join(" "))
        }
        Instruction::Label(l) => {
            let kv: Vec<String> = l
                .pairs
                .iter()
                .map(|p| format!("{}={}", p.key, p.value))
                .collect();
            format!("LABEL {}", kv.join(" "))
        }
        Instruction::Cmd(_) => format!("CMD {}", quoted(cc.cmd.as_deref().unwrap_or_default())),
        Instruction::Entrypoint(_) => format!(
            "ENTRYPOINT {}",
            quoted(cc.entrypoint.as_deref().unwrap_or_default())
        ),
        // Go's `%v` of the port set: `map[80/tcp:{}]`.
        Instruction::Expose(e) => {
            let mut ports: Vec<String> = e
                .ports
                .iter()
                .map(|p| {
                    if p.contains('/') {
                        p.to_lowercase()
                    } else {
                        format!("{p}/tcp")
                    }
                })
                .collect();
            ports.sort();
            ports.dedup();
            let items: Vec<String> = ports.iter().map(|p| format!("{p}:{{}}")).collect();
            format!("EXPOSE map[{}]", items.join(" "))
        }
        Instruction::Volume(v) => format!("VOLUME [{}]", v.paths.join(" ")),
        Instruction::Shell(s) => format!("SHELL [{}]", s.args.join(" ")),
        Instruction::Workdir(_) => format!("WORKDIR {}", cc.working_dir.unwrap_or_default()),
        Instruction::Copy(_) | Instruction::Add(_) => format!("{text} # buildkit"),
        Instruction::Run(r) => {
            let set: Vec<String> = args
                .iter()
                .filter_map(|(k, v)| Some(format!("{k}={}", v.as_ref()?)))
                .collect();
            let prefix = if set.is_empty() {
                String::new()
            } else {
                format!("|{} {} ", set.len(), set.join(" "))
            };
            let cmd = match &r.cmd {
                ShellOrExec::Exec(a) => a.join(" "),
                ShellOrExec::Shell(line) => {
                    let mut sh = cc
                        .shell
                        .clone()
                        .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
                    sh.push(line.clone());
                    sh.join(" ")
                }
            };
            format!("RUN {prefix}{cmd} # buildkit")
        }
        _ => text.to_string(),
    }
}

/// The final image: the target stage's last image, with `--label`s set (a child image
/// without a history entry, as BuildKit applies them to the exported config).
pub(super) fn finish(
    store: &Store,
    last: StageResult,
    labels: &BTreeMap<String, String>,
    epoch: Option<i64>,
) -> Result<Digest, BuildError> {
    if labels.is_empty()
        && let Some(id) = last.image
    {
        return Ok(id);
    }
    let mut config = last.config;
    if !labels.is_empty() {
        let cc = config.config.get_or_insert_with(ContainerConfig::default);
        let l = cc.labels.get_or_insert_with(BTreeMap::new);
        for (k, v) in labels {
            l.insert(k.clone(), v.clone());
        }
    }
    if config.created.is_none() || epoch.is_some() {
        config.created = Some(created_now(epoch));
    }
    Ok(store.create_image(
        &config.to_vec(),
        &NewImage {
            parent: last.image,
            manifest: None,
        },
    )?)
}
