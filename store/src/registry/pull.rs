//! `pull`: an image from a registry into the store, as `docker pull` does it.
//!
//! Manifest (resolved to the platform), then the config blob (kept in memory until the
//! image is created), then every layer the store does not hold yet, a few at a time.
//! Each layer's body streams through a bounded channel into [`Store::add_packed_layer`]
//! on the blocking pool, which hashes it into a blob and commits it only when the digest
//! and the size check out; the layer is extracted, and its diff ID checked, when it is
//! first used ([`crate::packed`]), as containerd's content store and snapshots split
//! the two. A body that breaks is asked
//! for again from where it stopped (`Range`), below the reader, so the joined stream is
//! what gets verified; a registry that ignores the range makes the layer start over.
//! Only then are the manifest blob, the image, its tag and its RepoDigest recorded: a
//! failure leaves the store as it was, plus at most complete, verified layers (no image
//! uses them yet; the next GC removes them) and ingest scratch.

use std::collections::HashSet;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::Method;
use reqwest::header;
use tokio::sync::{Semaphore, mpsc};

use super::auth::repository_scope;
use super::error::RegistryError;
use super::manifest::{self, Resolved};
use super::progress::{Event, Progress, short_id};
use super::transport::{Client, Request, host_label, transport_error};
use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::images::NewImage;
use crate::platform::Platform;
use crate::reference::ImageRef;
use crate::store::Store;
use crate::unpack::LayerSource;

/// The largest image config accepted. Configs are a few KiB; docker has no explicit
/// cap, containerd reads them whole. 8 MiB leaves room for long histories.
pub const CONFIG_LIMIT: u64 = 8 << 20;

/// Chunks of a layer body in flight between the network and the writing thread.
const CHANNEL_DEPTH: usize = 16;

/// How to pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// `--platform`: the platform to pull, and a single-platform image for another
    /// one is refused. `None` pulls for this machine and takes a single-platform image
    /// as it is, as docker does without the flag.
    pub platform: Option<Platform>,
    /// Layers downloaded at once (docker's `max-concurrent-downloads`, 3 by default).
    pub max_concurrent: usize,
}

impl Default for PullOptions {
    fn default() -> PullOptions {
        PullOptions {
            platform: None,
            max_concurrent: 3,
        }
    }
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct PullOutcome {
    /// The image ID (its config's digest).
    pub id: Digest,
    /// The digest docker prints after `Digest:` and records as the RepoDigest: the
    /// index's for a multi-platform image, else the manifest's.
    pub digest: Digest,
    /// What was pulled, with the default tag added when none was given.
    pub reference: ImageRef,
    /// Whether the reference now points at another image than before (or at all):
    /// `Downloaded newer image` rather than `Image is up to date`.
    pub updated: bool,
}

/// Pulls `reference` into the store at `root` and reports as docker does, ending with
/// `Status: Downloaded newer image for …` or `Status: Image is up to date for …`.
pub fn pull(
    root: &Path,
    client: &Client,
    reference: &ImageRef,
    opts: &PullOptions,
    progress: &dyn Progress,
) -> Result<PullOutcome, RegistryError> {
    let reference = reference.clone().with_default_tag();
    let store = Store::open(root)?;
    let _lock = store.write_lock()?;
    // Declared after the lock, so dropped before it: dropping the runtime waits for
    // the blocking tasks still storing layers after a failure.
    let rt = super::runtime()?;
    let outcome = rt.block_on(pull_image(&store, client, &reference, opts, progress))?;
    progress.event(Event::Message(status_line(
        outcome.updated,
        &reference.familiar(),
    )));
    Ok(outcome)
}

/// `pull -a`: every tag of `repository` (a reference without tag or digest), then one
/// status line for the repository, as docker does.
pub fn pull_all_tags(
    root: &Path,
    client: &Client,
    repository: &ImageRef,
    opts: &PullOptions,
    progress: &dyn Progress,
) -> Result<Vec<PullOutcome>, RegistryError> {
    let store = Store::open(root)?;
    let _lock = store.write_lock()?;
    let rt = super::runtime()?;
    let outcomes = rt.block_on(async {
        let tags =
            super::catalog::tags(client, repository.registry(), repository.repository()).await?;
        if tags.is_empty() {
            return Err(RegistryError::NotFound {
                host: repository.registry().to_string(),
                what: format!("tags of {}", repository.familiar_name()),
                detail: ": the repository has no tags".to_string(),
            });
        }
        let mut out = Vec::new();
        for tag in tags {
            let r = ImageRef::parse(&format!("{}:{tag}", repository.full_name()))
                .map_err(|e| RegistryError::Protocol(format!("tag {tag:?}: {e}")))?;
            out.push(pull_image(&store, client, &r, opts, progress).await?);
        }
        Ok(out)
    })?;
    let updated = outcomes.iter().any(|o| o.updated);
    progress.event(Event::Message(status_line(
        updated,
        &repository.familiar_name(),
    )));
    Ok(outcomes)
}

fn status_line(updated: bool, name: &str) -> String {
    if updated {
        format!("Status: Downloaded newer image for {name}")
    } else {
        format!("Status: Image is up to date for {name}")
    }
}

/// One image: everything but the final status line.
///
/// The caller holds the store's shared lock for the whole pull. Layers are recorded as
/// they complete but no image uses them until the end, and GC (which takes the lock
/// exclusively) removes whatever no image uses: it must not run in between. Shared
/// holders do not block each other, so builds, loads and other pulls go on
/// concurrently; only GC waits (`system prune`) or skips (`rmi`) while a pull is on the
/// wire, as it does for a build.
async fn pull_image(
    store: &Store,
    client: &Client,
    reference: &ImageRef,
    opts: &PullOptions,
    progress: &dyn Progress,
) -> Result<PullOutcome, RegistryError> {
    let shown_ref = match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => "latest".to_string(),
    };
    let want = opts.platform.clone().unwrap_or_else(Platform::native);
    let Resolved {
        top,
        manifest,
        parsed,
        ..
    } = manifest::resolve(client, reference, &want).await?;
    // After the manifest, as docker: a failed lookup prints only the error.
    progress.event(Event::Message(format!(
        "{shown_ref}: Pulling from {}",
        reference.repository()
    )));
    let name = reference.familiar();

    // The config, verified against the manifest before anything is written.
    let config_desc = parsed.config();
    let config_digest = Digest::try_from(config_desc.digest())
        .map_err(|e| RegistryError::Protocol(format!("{name}: manifest config digest: {e}")))?;
    // An image already here needs nothing from the registry but its manifest (docker
    // prints no layer lines then); its config is read back verified.
    let have = store.image(&config_digest)?.is_some() && store.blobs().contains(&config_digest);
    let config_bytes = if have {
        Bytes::from(
            store
                .blobs()
                .read(&config_digest)
                .map_err(crate::StoreError::from)?,
        )
    } else {
        fetch_config(client, reference, &config_digest, config_desc.size()).await?
    };
    let config = ImageConfig::from_slice(&config_bytes).map_err(|e| {
        RegistryError::Protocol(format!("{name}: image config {config_digest}: {e}"))
    })?;
    if let Some(p) = &opts.platform {
        check_platform(&config, p, &name)?;
    }
    let diff_ids = &config.rootfs.diff_ids;
    if diff_ids.len() != parsed.layers().len() {
        return Err(RegistryError::Protocol(format!(
            "{name}: the manifest lists {} layers but the config {} has {} diff IDs",
            parsed.layers().len(),
            config_digest,
            diff_ids.len()
        )));
    }

    // Which layers to fetch: those not stored yet, each once.
    let mut jobs = Vec::new();
    let mut seen = HashSet::new();
    let mut blobs = Vec::new();
    for (desc, diff_id) in parsed.layers().iter().zip(diff_ids) {
        let digest = Digest::try_from(desc.digest())
            .map_err(|e| RegistryError::Protocol(format!("{name}: layer digest: {e}")))?;
        blobs.push(digest.clone());
        if !seen.insert(diff_id.clone()) {
            continue;
        }
        let id = short_id(&digest);
        if store.layer_size(diff_id)?.is_some() {
            if have {
                continue;
            }
            progress.event(Event::Status {
                id,
                status: "Already exists".into(),
            });
            continue;
        }
        progress.event(Event::Status {
            id,
            status: "Pulling fs layer".into(),
        });
        jobs.push(LayerJob {
            digest,
            size: desc.size(),
            diff_id: diff_id.clone(),
            media_type: desc.media_type().to_string(),
        });
    }
    let max = opts.max_concurrent.max(1);
    for job in jobs.iter().skip(max) {
        progress.event(Event::Status {
            id: short_id(&job.digest),
            status: "Waiting".into(),
        });
    }
    let gate = Semaphore::new(max);
    let root_buf = store.root().to_path_buf();
    let transfers = jobs.iter().map(|job| {
        let gate = &gate;
        let root = root_buf.clone();
        async move {
            let _permit = gate
                .acquire()
                .await
                .map_err(|_| RegistryError::Interrupted)?;
            fetch_layer(client, reference, job, root, progress).await
        }
    });
    // The first failure drops the other transfers: their readers see the stream end
    // early, and `add_packed_layer` refuses a blob shorter than promised.
    futures_util::future::try_join_all(transfers).await?;

    // Everything verified: now the records.
    store
        .blobs()
        .put(&manifest.bytes)
        .map_err(crate::StoreError::from)?;
    let id = store.create_image(
        &config_bytes,
        &NewImage {
            parent: None,
            manifest: Some(manifest.digest.clone()),
        },
    )?;
    let repo_digest = ImageRef::parse(&format!("{}@{}", reference.full_name(), top.digest))
        .map_err(|e| RegistryError::Protocol(format!("{name}: {e}")))?;
    let key = if reference.digest().is_some() {
        repo_digest.clone()
    } else {
        reference.clone()
    };
    let before = store.ref_target(&key)?;
    store.tag(&id, &key)?;
    store.tag(&id, &repo_digest)?;
    let (registry, repo) = (reference.registry(), reference.repository());
    store.record_blob_source(&config_digest, registry, repo)?;
    for b in &blobs {
        store.record_blob_source(b, registry, repo)?;
    }
    progress.event(Event::Message(format!("Digest: {}", top.digest)));
    Ok(PullOutcome {
        id: id.clone(),
        digest: top.digest,
        reference: reference.clone(),
        updated: before.as_ref() != Some(&id),
    })
}

/// With `--platform`, a single-platform image must be for it (docker: "image with
/// reference … was found but does not match the specified platform").
fn check_platform(config: &ImageConfig, want: &Platform, name: &str) -> Result<(), RegistryError> {
    if config.os.is_empty() && config.architecture.is_empty() {
        return Ok(());
    }
    let have = Platform::new(
        &config.os,
        &config.architecture,
        config.variant.as_deref().unwrap_or(""),
    );
    if want.rank(&have).is_some() {
        return Ok(());
    }
    Err(RegistryError::Unsupported(format!(
        "image with reference {name} was found but does not match the specified platform: wanted {want}, actual: {have}"
    )))
}

/// GETs a small JSON blob whole, capped, and checks its digest and size.
pub(crate) async fn fetch_config(
    client: &Client,
    image: &ImageRef,
    digest: &Digest,
    size: u64,
) -> Result<Bytes, RegistryError> {
    let registry = image.registry();
    let what = format!("config {digest} of {}", image.familiar_name());
    if size > CONFIG_LIMIT {
        return Err(RegistryError::TooLarge {
            host: registry.to_string(),
            what,
            limit: CONFIG_LIMIT,
        });
    }
    let req = blob_request(client, image, digest, &what)?;
    let (_, bytes) = client.fetch(&req, &[200], CONFIG_LIMIT).await?;
    let actual = Digest::of(&bytes);
    if &actual != digest {
        return Err(RegistryError::DigestMismatch {
            expected: digest.clone(),
            actual,
        });
    }
    if bytes.len() as u64 != size {
        return Err(RegistryError::Protocol(format!(
            "{what}: the manifest says {size} bytes, the registry sent {}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

fn blob_request(
    client: &Client,
    image: &ImageRef,
    digest: &Digest,
    what: &str,
) -> Result<Request, RegistryError> {
    let registry = image.registry();
    let repo = image.repository();
    let url = client.url(registry, &format!("/v2/{repo}/blobs/{digest}"))?;
    Ok(Request::new(Method::GET, registry, url, what.to_string())
        .scope(repository_scope(repo, "pull")))
}

/// A layer to download.
pub(crate) struct LayerJob {
    pub(crate) digest: Digest,
    pub(crate) size: u64,
    pub(crate) diff_id: Digest,
    pub(crate) media_type: String,
}

/// Why feeding a layer's bytes stopped early.
enum FeedStop {
    /// The registry cannot continue where the body broke: start the layer again.
    Restart(String),
    /// The reader is gone: `add_packed_layer` failed, and its result says why.
    ReaderGone,
    Failed(RegistryError),
}

/// Downloads and stores one layer, restarting it from byte 0 when a broken body cannot
/// be resumed (bounded by the client's attempts).
pub(crate) async fn fetch_layer(
    client: &Client,
    image: &ImageRef,
    job: &LayerJob,
    root: PathBuf,
    progress: &dyn Progress,
) -> Result<(), RegistryError> {
    let id = short_id(&job.digest);
    let attempts = client.options().attempts.max(1);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHANNEL_DEPTH);
        let src = (
            job.digest.clone(),
            job.size,
            job.diff_id.clone(),
            job.media_type.clone(),
            root.clone(),
        );
        let store_task = tokio::task::spawn_blocking(move || {
            let (digest, size, diff_id, media_type, root) = src;
            // A Store holds a SQLite connection, which is not shared across threads:
            // this thread opens its own.
            let store = Store::open(&root)?;
            let what = format!("layer {digest}");
            store.add_packed_layer(
                ChannelReader {
                    rx,
                    cur: Bytes::new(),
                },
                &LayerSource {
                    what: &what,
                    digest: Some(&digest),
                    size: Some(size),
                    diff_id: Some(&diff_id),
                    media_type: Some(&media_type),
                },
            )
        });
        let fed = feed(client, image, job, &tx, progress).await;
        let stop = match fed {
            Ok(()) => None,
            Err(stop) => {
                // Make the reader fail rather than see a clean end of a short stream.
                let _ = tx.try_send(Err(io::Error::other("download interrupted")));
                Some(stop)
            }
        };
        drop(tx);
        if stop.is_none() {
            progress.event(Event::Status {
                id: id.clone(),
                status: "Verifying Checksum".into(),
            });
        }
        let stored = store_task
            .await
            .map_err(|e| RegistryError::Protocol(format!("layer {}: {e}", job.digest)))?;
        match stop {
            None => {
                stored?;
                progress.event(Event::Status {
                    id: id.clone(),
                    status: "Download complete".into(),
                });
                progress.event(Event::Status {
                    id,
                    status: "Pull complete".into(),
                });
                return Ok(());
            }
            Some(FeedStop::ReaderGone) => {
                stored?;
                return Err(RegistryError::Protocol(format!(
                    "layer {}: the store stopped reading",
                    job.digest
                )));
            }
            Some(FeedStop::Failed(e)) => return Err(e),
            Some(FeedStop::Restart(why)) => {
                if attempt >= attempts {
                    return Err(RegistryError::Protocol(format!(
                        "layer {}: {why}; gave up after {attempts} attempts",
                        job.digest
                    )));
                }
                let wait = client.backoff(attempt);
                progress.event(Event::Status {
                    id: id.clone(),
                    status: format!("Retrying in {} seconds", wait.as_secs().max(1)),
                });
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Streams the blob into `tx`, resuming with `Range` when the body breaks.
async fn feed(
    client: &Client,
    image: &ImageRef,
    job: &LayerJob,
    tx: &mpsc::Sender<io::Result<Bytes>>,
    progress: &dyn Progress,
) -> Result<(), FeedStop> {
    let id = short_id(&job.digest);
    let what = format!("layer {}", job.digest);
    let attempts = client.options().attempts.max(1);
    let mut offset = 0u64;
    let mut breaks = 0u32;
    loop {
        let mut req = blob_request(client, image, &job.digest, &what).map_err(FeedStop::Failed)?;
        if offset > 0 {
            req = req.header(header::RANGE, &format!("bytes={offset}-"));
        }
        let resp = client
            .send_expect(&req, &[200, 206])
            .await
            .map_err(FeedStop::Failed)?;
        let host = host_label(resp.url());
        if offset > 0 {
            if resp.status().as_u16() != 206 {
                return Err(FeedStop::Restart(format!(
                    "{host} does not resume downloads (answered {} to a range request)",
                    resp.status().as_u16()
                )));
            }
            let start = resp
                .headers()
                .get(header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(content_range_start);
            if start != Some(offset) {
                return Err(FeedStop::Restart(format!(
                    "{host} resumed at another offset than {offset}"
                )));
            }
        } else if resp.status().as_u16() != 200 {
            return Err(FeedStop::Failed(RegistryError::Protocol(format!(
                "{what}: {host} answered a partial body to a plain request"
            ))));
        }
        let mut body = resp.bytes_stream();
        let broke = loop {
            match body.next().await {
                None => break None,
                Some(Ok(chunk)) => {
                    offset += chunk.len() as u64;
                    if offset > job.size {
                        // More than the manifest promised: the digest cannot match, and
                        // an endless body must not fill the disk.
                        return Err(FeedStop::Failed(RegistryError::TooLarge {
                            host,
                            what,
                            limit: job.size,
                        }));
                    }
                    if tx.send(Ok(chunk)).await.is_err() {
                        return Err(FeedStop::ReaderGone);
                    }
                    progress.event(Event::Bytes {
                        id: id.clone(),
                        action: "Downloading",
                        current: offset,
                        total: job.size,
                    });
                }
                Some(Err(e)) => {
                    break Some(transport_error(
                        &e,
                        &host,
                        &what,
                        client.options().idle_timeout,
                    ));
                }
            }
        };
        if broke.is_none() && offset == job.size {
            return Ok(());
        }
        breaks += 1;
        if breaks >= attempts {
            let e = broke.unwrap_or_else(|| {
                RegistryError::Protocol(format!(
                    "{what}: {host} ended the body after {offset} of {} bytes",
                    job.size
                ))
            });
            return Err(FeedStop::Failed(e));
        }
        tokio::time::sleep(client.backoff(breaks)).await;
    }
}

/// The first byte of a `Content-Range: bytes START-END/TOTAL`.
fn content_range_start(v: &str) -> Option<u64> {
    let range = v.trim().strip_prefix("bytes")?.trim_start();
    range.split('-').next()?.trim().parse().ok()
}

/// The blocking side of a layer's byte channel, for `Store::add_packed_layer`.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_links() {
        assert_eq!(content_range_start("bytes 100-199/200"), Some(100));
        assert_eq!(content_range_start("bytes 0-0/1"), Some(0));
        assert_eq!(content_range_start("items 1-2"), None);
    }

    #[test]
    fn the_channel_reader_joins_chunks_and_passes_errors() {
        let (tx, rx) = mpsc::channel(4);
        tx.try_send(Ok(Bytes::from_static(b"ab"))).unwrap();
        tx.try_send(Ok(Bytes::from_static(b"cde"))).unwrap();
        drop(tx);
        let mut s = String::new();
        ChannelReader {
            rx,
            cur: Bytes::new(),
        }
        .read_to_string(&mut s)
        .unwrap();
        assert_eq!(s, "abcde");
        let (tx, rx) = mpsc::channel(4);
        tx.try_send(Ok(Bytes::from_static(b"ab"))).unwrap();
        tx.try_send(Err(io::Error::other("broken"))).unwrap();
        let mut v = Vec::new();
        let e = ChannelReader {
            rx,
            cur: Bytes::new(),
        }
        .read_to_end(&mut v)
        .unwrap_err();
        assert_eq!(e.to_string(), "broken");
    }

    #[test]
    fn platform_of_a_single_manifest() {
        let mut c = ImageConfig::from_slice(
            br#"{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
        )
        .unwrap();
        assert!(check_platform(&c, &Platform::new("linux", "arm64", "v8"), "x").is_ok());
        let e = check_platform(&c, &Platform::new("linux", "amd64", ""), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("wanted linux/amd64, actual: linux/arm64"), "{e}");
        c.architecture.clear();
        c.os.clear();
        assert!(check_platform(&c, &Platform::new("linux", "amd64", ""), "x").is_ok());
    }
}
