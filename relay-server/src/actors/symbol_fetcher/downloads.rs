//! The download side of the SymbolFetcher: one [`Downloader`] shared by the actor's jobs holds
//! the HTTP client, the download cache on disk, the negative cache, the cache budget and the
//! downloads running.
//!
//! A file is asked for with [`Downloader::get`]: from memory (found before, or remembered as
//! missing), else from the disk cache (the file, or a fresh `.missing` marker), else from the
//! server. Each file downloads once at a time (the events asking for it share the download),
//! at most [`MAX_CONCURRENT_DOWNLOADS`] at once.
//!
//! A download streams into a temporary file in the target directory, which is then renamed
//! into place (or unpacked into place, for a symstore cabinet) and identified; a file that is
//! no debug file counts as missing. Every download is bounded:
//! - in size, by `max_download_bytes`: a larger `Content-Length` is refused before the body is
//!   read, and the body is cut off the moment it passes the limit (a cabinet's packed and
//!   unpacked files count together);
//! - by the cache bound: its bytes are reserved from the [`CacheBudget`] as they arrive, and it
//!   stops when the cache and the downloads in progress would pass `max_cache_bytes`;
//! - in time, by `fetch_deadline_secs` from its first request (besides each source's
//!   `timeout_secs` per wait), so a download outlives the event that started it by at most
//!   that; waiting for one of the [`MAX_CONCURRENT_DOWNLOADS`] turns does not count.
//!
//! Whichever way a download stops, its partial files are deleted ([`PartialFile`]) and its
//! bytes given back. A file too large is remembered for `negative_cache_secs` (in memory
//! only, so a raised limit applies after a restart); a cut-off for time or for room counts as
//! a failure.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::{FutureExt, Shared};
use relay_core::config::SymbolicationConfig;
use relay_processing::symbolicate::{
    identify, is_cab, unpack_cab, unpacked_cab_size, DebugFile, ServerFile, UnpackError,
};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use super::budget::{CacheBudget, Refusal, Reservation};
use super::negative_cache::{self, Miss, NegativeCache};
use super::sources::Source;
use crate::metrics;

/// Files downloaded at once, over all sources and events.
pub const MAX_CONCURRENT_DOWNLOADS: usize = 16;

/// What asking for one file gave.
#[derive(Clone, Debug)]
pub(super) enum DownloadResult {
    /// On disk; these are its objects.
    Found(Arc<[DebugFile]>),
    /// The server does not have it (or it is no debug file).
    Missing,
    /// Timeout, server error, network error, no room in the cache: try again later.
    Failed,
    /// Larger than `max_download_bytes`: not asked for again for the negative-cache period.
    TooLarge,
}

/// A file of a source: the source's directory and the server path.
type FileKey = (Rc<str>, String);

/// A download several events may wait for.
pub(super) type SharedDownload = Shared<Pin<Box<dyn Future<Output = DownloadResult>>>>;

fn shared(result: impl Future<Output = DownloadResult> + 'static) -> SharedDownload {
    let boxed: Pin<Box<dyn Future<Output = DownloadResult>>> = Box::pin(result);
    boxed.shared()
}

/// The download cache, the negative cache and the HTTP client, shared by the actor's jobs.
pub(super) struct Downloader {
    client: reqwest::Client,
    cache_dir: PathBuf,
    budget: Arc<CacheBudget>,
    /// The longest one download may take (`fetch_deadline_secs`).
    deadline: Duration,
    permits: Arc<Semaphore>,
    /// Files on disk and identified.
    known: RefCell<HashMap<FileKey, Arc<[DebugFile]>>>,
    negative: RefCell<NegativeCache<FileKey>>,
    in_flight: RefCell<HashMap<FileKey, SharedDownload>>,
    tmp_counter: Cell<u64>,
}

impl Downloader {
    /// A downloader filling `cache_dir`, with the limits of `config`.
    pub(super) fn new(cache_dir: PathBuf, config: &SymbolicationConfig) -> Self {
        let client = reqwest::Client::builder()
            .user_agent(concat!("relay/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the TLS backend initializes");
        Downloader {
            client,
            cache_dir,
            budget: Arc::new(CacheBudget::new(
                config.max_cache_bytes,
                config.max_download_bytes,
            )),
            deadline: Duration::from_secs(config.fetch_deadline_secs),
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT_DOWNLOADS)),
            known: RefCell::default(),
            negative: RefCell::new(NegativeCache::new(Duration::from_secs(
                config.negative_cache_secs,
            ))),
            in_flight: RefCell::default(),
            tmp_counter: Cell::new(0),
        }
    }

    /// The cache's size estimate, which every download draws on.
    pub(super) fn budget(&self) -> &Arc<CacheBudget> {
        &self.budget
    }

    /// The directories the cache size bound covers.
    pub(super) fn cache_roots(&self) -> Vec<PathBuf> {
        ["symcache", "cfi", "downloads"]
            .iter()
            .map(|d| self.cache_dir.join(d))
            .collect()
    }

    fn local_path(&self, source: &Source, file: &ServerFile) -> PathBuf {
        let mut path = self.cache_dir.join("downloads").join(&source.dir);
        path.extend(file.path.split('/'));
        path
    }

    /// Forgets files deleted by eviction.
    pub(super) fn forget_paths(&self, removed: &[PathBuf]) {
        self.known
            .borrow_mut()
            .retain(|_, files| !files.iter().any(|f| removed.contains(&f.path)));
    }

    /// The file from the cache, or downloaded (once, however many events wait for it).
    pub(super) fn get(self: &Rc<Self>, source: &Rc<Source>, file: &ServerFile) -> SharedDownload {
        let key: FileKey = (source.dir.as_str().into(), file.path.clone());
        if let Some(files) = self.known.borrow().get(&key) {
            return shared(futures::future::ready(DownloadResult::Found(files.clone())));
        }
        if self.negative.borrow().contains(&key) {
            return shared(futures::future::ready(DownloadResult::Missing));
        }
        if let Some(running) = self.in_flight.borrow().get(&key) {
            return running.clone();
        }
        let this = self.clone();
        let task_key = key.clone();
        let (source, file) = (source.clone(), file.clone());
        // A task of its own: it finishes (and fills the cache) even when the event that
        // started it has stopped waiting.
        let handle = actix::spawn(async move {
            let result = this.load(&source, &file).await;
            this.in_flight.borrow_mut().remove(&task_key);
            let mut negative = this.negative.borrow_mut();
            match &result {
                DownloadResult::Found(files) => {
                    this.known.borrow_mut().insert(task_key, files.clone());
                }
                // Too large stays too large: as long as a miss, so an endless body costs
                // `max_download_bytes` once per negative-cache period.
                DownloadResult::Missing | DownloadResult::TooLarge => {
                    negative.remember(task_key, Miss::Missing)
                }
                DownloadResult::Failed => negative.remember(task_key, Miss::Failed),
            }
            result
        });
        let download = shared(async move { handle.await.unwrap_or(DownloadResult::Failed) });
        self.in_flight.borrow_mut().insert(key, download.clone());
        download
    }

    /// From the disk cache, or from the server.
    async fn load(self: &Rc<Self>, source: &Source, file: &ServerFile) -> DownloadResult {
        let local = self.local_path(source, file);
        let cached = {
            let (local, ttl) = (local.clone(), self.negative.borrow().ttl());
            tokio::task::spawn_blocking(move || from_disk(&local, ttl)).await
        };
        match cached {
            Ok(Some(result)) => {
                metrics::count_symbol_download("cached");
                return result;
            }
            Ok(None) => {}
            Err(_) => return DownloadResult::Failed,
        }
        let Ok(_permit) = self.permits.clone().acquire_owned().await else {
            return DownloadResult::Failed;
        };
        let url = match source.url_of(file) {
            Ok(url) => url,
            Err(error) => {
                tracing::warn!(url = source.url, %error, "bad symbol source URL");
                return DownloadResult::Failed;
            }
        };
        let started = Instant::now();
        // Dropping the download at the deadline drops its partial file, which deletes it.
        let result = tokio::time::timeout(
            self.deadline,
            self.download(&url, source.timeout, &local, file.compressed),
        )
        .await
        .unwrap_or(Err(Failure::Deadline(self.deadline)));
        match result {
            Ok(files) => {
                metrics::count_symbol_download("found");
                tracing::debug!(%url, elapsed = ?started.elapsed(), "debug file downloaded");
                DownloadResult::Found(files.into())
            }
            Err(Failure::NotFound) => {
                metrics::count_symbol_download("missing");
                tracing::debug!(%url, "not on the symbol server");
                let _ =
                    tokio::task::spawn_blocking(move || negative_cache::write_marker(&local)).await;
                DownloadResult::Missing
            }
            Err(Failure::NotDebugFile) => {
                metrics::count_symbol_download("missing");
                tracing::info!(%url, "the symbol server's answer is no debug file");
                DownloadResult::Missing
            }
            Err(failure @ Failure::Refused(Refusal::FileTooLarge(_))) => {
                metrics::count_symbol_download("failed");
                tracing::info!(%url, %failure, "symbol download refused");
                DownloadResult::TooLarge
            }
            Err(failure) => {
                metrics::count_symbol_download("failed");
                tracing::info!(%url, %failure, "symbol download failed");
                DownloadResult::Failed
            }
        }
    }

    /// Downloads `url` into `local` (through a temporary file, unpacking a cabinet) and
    /// identifies it.
    async fn download(
        &self,
        url: &reqwest::Url,
        timeout: Duration,
        local: &Path,
        compressed: bool,
    ) -> Result<Vec<DebugFile>, Failure> {
        let request = self.client.get(url.clone()).send();
        let response = tokio::time::timeout(timeout, request)
            .await
            .map_err(|_| Failure::Timeout)??;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
            return Err(Failure::NotFound);
        }
        if !status.is_success() {
            return Err(Failure::Status(status.as_u16()));
        }
        let mut reservation = Reservation::new(self.budget.clone());
        // Refused before a byte of the body is read when the server says it is too large.
        if let Some(length) = response.content_length() {
            reservation.cover(length)?;
        }
        let dir = local.parent().ok_or(Failure::Io("no parent".into()))?;
        tokio::fs::create_dir_all(dir).await?;
        let n = self.tmp_counter.get();
        self.tmp_counter.set(n + 1);
        let tmp = PartialFile::new(dir.join(format!(".tmp-{}-{n}", std::process::id())));
        let size = stream_to(response, &tmp, timeout, &mut reservation).await?;
        // A body shorter than its reservation (never, unless the length header lied).
        reservation.give_back(reservation.bytes() - size);
        let local = local.to_owned();
        tokio::task::spawn_blocking(move || finish_download(tmp, &local, compressed, reservation))
            .await
            .map_err(|e| Failure::Io(e.to_string()))?
    }
}

/// Writes the body into `tmp`, reserving its bytes before writing them; returns its size.
async fn stream_to(
    mut response: reqwest::Response,
    tmp: &PartialFile,
    timeout: Duration,
    reservation: &mut Reservation,
) -> Result<u64, Failure> {
    let mut out = tokio::fs::File::create(tmp.path()).await?;
    let mut size = 0u64;
    while let Some(chunk) = tokio::time::timeout(timeout, response.chunk())
        .await
        .map_err(|_| Failure::Timeout)??
    {
        size += chunk.len() as u64;
        reservation.cover(size)?;
        out.write_all(&chunk).await?;
    }
    out.flush().await?;
    Ok(size)
}

/// Moves (or unpacks) the finished download into place and identifies it; the file's bytes
/// stay reserved only when it is kept.
fn finish_download(
    tmp: PartialFile,
    local: &Path,
    compressed: bool,
    mut reservation: Reservation,
) -> Result<Vec<DebugFile>, Failure> {
    let mut head = [0u8; 4];
    let is_cabinet = compressed
        && std::fs::File::open(tmp.path())
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
            .is_ok()
        && is_cab(&head);
    if is_cabinet {
        let packed = reservation.bytes();
        let unpacked = PartialFile::new(tmp.path().with_extension("unpacked"));
        let size = unpacked_cab_size(tmp.path())?;
        // Packed and unpacked are both on disk until the packed one is deleted.
        reservation.cover(packed.saturating_add(size))?;
        unpack_cab(tmp.path(), unpacked.path(), size)?;
        drop(tmp);
        reservation.give_back(packed);
        unpacked.persist(local)?;
    } else {
        tmp.persist(local)?;
    }
    let files = identify(local);
    if files.is_empty() {
        let _ = std::fs::remove_file(local);
        return Err(Failure::NotDebugFile);
    }
    negative_cache::remove_marker(local);
    reservation.keep();
    Ok(files)
}

/// A file being written: deleted when dropped unless persisted, so a download that fails,
/// is refused or is dropped at its deadline leaves nothing behind.
#[derive(Debug)]
struct PartialFile(Option<PathBuf>);

impl PartialFile {
    fn new(path: PathBuf) -> Self {
        PartialFile(Some(path))
    }

    fn path(&self) -> &Path {
        self.0.as_deref().expect("not yet persisted")
    }

    /// Renames it to `dest`, which it then is.
    fn persist(mut self, dest: &Path) -> std::io::Result<()> {
        let path = self.0.take().expect("not yet persisted");
        std::fs::rename(&path, dest).inspect_err(|_| {
            let _ = std::fs::remove_file(&path);
        })
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        // Blocking, on whichever thread drops it, but only an unlink: a dropped download
        // must not leave its partial file for the next size check to find.
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A download cache hit (`Found`), a fresh miss marker (`Missing`), or `None`: ask the server.
fn from_disk(local: &Path, ttl: Duration) -> Option<DownloadResult> {
    if local.is_file() {
        let files = identify(local);
        if !files.is_empty() {
            return Some(DownloadResult::Found(files.into()));
        }
        let _ = std::fs::remove_file(local);
    }
    negative_cache::has_fresh_marker(local, ttl).then_some(DownloadResult::Missing)
}

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("not found")]
    NotFound,
    #[error("the answer is no debug file")]
    NotDebugFile,
    #[error("timed out")]
    Timeout,
    #[error("not done after the fetch deadline ({0:?})")]
    Deadline(Duration),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("{0}")]
    Io(String),
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Self {
        Failure::Io(error.to_string())
    }
}
