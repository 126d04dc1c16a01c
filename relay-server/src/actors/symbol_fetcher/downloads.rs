//! The download side of the SymbolFetcher: one [`Downloader`] shared by the actor's jobs holds
//! the HTTP client, the download cache on disk, the negative cache and the downloads running.
//!
//! A file is asked for with [`Downloader::get`]: from memory (found before, or remembered as
//! missing), else from the disk cache (the file, or a fresh `.missing` marker), else from the
//! server. A download streams into a temporary file in the target directory, which is then
//! renamed into place (or unpacked into place, for a symstore cabinet) and identified; a file
//! that is no debug file counts as missing. Each file downloads once at a time (the events
//! asking for it share the download), at most [`MAX_CONCURRENT_DOWNLOADS`] at once.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::{FutureExt, Shared};
use relay_processing::symbolicate::{identify, is_cab, unpack_cab, DebugFile, ServerFile};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use super::negative_cache::{self, Miss, NegativeCache};
use super::sources::Source;
use crate::metrics;

/// Files downloaded at once, over all sources and events.
pub const MAX_CONCURRENT_DOWNLOADS: usize = 16;

/// The longest a single file may download, however steadily it trickles in.
const MAX_DOWNLOAD_TIME: Duration = Duration::from_secs(600);

/// What asking for one file gave.
#[derive(Clone, Debug)]
pub(super) enum DownloadResult {
    /// On disk; these are its objects.
    Found(Arc<[DebugFile]>),
    /// The server does not have it (or it is no debug file).
    Missing,
    /// Timeout, server error, network error: try again later.
    Failed,
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
    pub(super) max_cache_bytes: u64,
    permits: Arc<Semaphore>,
    /// Files on disk and identified.
    known: RefCell<HashMap<FileKey, Arc<[DebugFile]>>>,
    negative: RefCell<NegativeCache<FileKey>>,
    in_flight: RefCell<HashMap<FileKey, SharedDownload>>,
    pub(super) bytes_since_evict: Cell<u64>,
    tmp_counter: Cell<u64>,
}

impl Downloader {
    pub(super) fn new(cache_dir: PathBuf, max_cache_bytes: u64, negative_ttl: Duration) -> Self {
        let client = reqwest::Client::builder()
            .user_agent(concat!("relay/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the TLS backend initializes");
        Downloader {
            client,
            cache_dir,
            max_cache_bytes,
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT_DOWNLOADS)),
            known: RefCell::default(),
            negative: RefCell::new(NegativeCache::new(negative_ttl)),
            in_flight: RefCell::default(),
            bytes_since_evict: Cell::new(0),
            tmp_counter: Cell::new(0),
        }
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
                DownloadResult::Missing => negative.remember(task_key, Miss::Missing),
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
        let result = tokio::time::timeout(
            MAX_DOWNLOAD_TIME,
            self.download(&url, source.timeout, &local, file.compressed),
        )
        .await
        .unwrap_or(Err(Failure::Timeout));
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
        let mut response = tokio::time::timeout(timeout, request)
            .await
            .map_err(|_| Failure::Timeout)??;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
            return Err(Failure::NotFound);
        }
        if !status.is_success() {
            return Err(Failure::Status(status.as_u16()));
        }
        let max_bytes = self.max_cache_bytes / 2;
        if response.content_length().is_some_and(|len| len > max_bytes) {
            return Err(Failure::TooLarge);
        }
        let dir = local.parent().ok_or(Failure::Io("no parent".into()))?;
        tokio::fs::create_dir_all(dir).await?;
        let n = self.tmp_counter.get();
        self.tmp_counter.set(n + 1);
        let tmp = dir.join(format!(".tmp-{}-{n}", std::process::id()));
        let written = async {
            let mut out = tokio::fs::File::create(&tmp).await?;
            let mut size = 0u64;
            while let Some(chunk) = tokio::time::timeout(timeout, response.chunk())
                .await
                .map_err(|_| Failure::Timeout)??
            {
                size += chunk.len() as u64;
                if size > max_bytes {
                    return Err(Failure::TooLarge);
                }
                out.write_all(&chunk).await?;
            }
            out.flush().await?;
            Ok(size)
        }
        .await;
        let size = match written {
            Ok(size) => size,
            Err(failure) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(failure);
            }
        };
        self.bytes_since_evict
            .set(self.bytes_since_evict.get() + size);
        let local = local.to_owned();
        tokio::task::spawn_blocking(move || finish_download(&tmp, &local, compressed, max_bytes))
            .await
            .map_err(|e| Failure::Io(e.to_string()))?
    }
}

/// Moves (or unpacks) the finished download into place and identifies it.
fn finish_download(
    tmp: &Path,
    local: &Path,
    compressed: bool,
    max_bytes: u64,
) -> Result<Vec<DebugFile>, Failure> {
    let mut head = [0u8; 4];
    let is_cabinet = compressed
        && std::fs::File::open(tmp)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
            .is_ok()
        && is_cab(&head);
    let result = if is_cabinet {
        let unpacked = tmp.with_extension("unpacked");
        unpack_cab(tmp, &unpacked, max_bytes)
            .map_err(|e| Failure::Io(e.to_string()))
            .and_then(|()| std::fs::rename(&unpacked, local).map_err(Failure::from))
            .inspect_err(|_| {
                let _ = std::fs::remove_file(&unpacked);
            })
    } else {
        std::fs::rename(tmp, local).map_err(Failure::from)
    };
    let _ = std::fs::remove_file(tmp);
    result?;
    let files = identify(local);
    if files.is_empty() {
        let _ = std::fs::remove_file(local);
        return Err(Failure::NotDebugFile);
    }
    negative_cache::remove_marker(local);
    Ok(files)
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
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("larger than the cache allows")]
    TooLarge,
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
