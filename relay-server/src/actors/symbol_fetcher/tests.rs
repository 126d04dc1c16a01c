//! The SymbolFetcher against local HTTP servers (std `TcpListener` threads on 127.0.0.1:0)
//! serving the native fixtures in the Breakpad, symstore and debuginfod layouts.

use std::io::{BufRead, BufReader, Cursor, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use relay_core::config::{HttpSymbolSource, ProjectConfig, SymbolServerLayout};
use relay_core::envelope::{Item, ItemHeaders};
use relay_core::{Config, Envelope, ItemType};
use relay_processing::symbolicate::{symbolicate_minidump, FrameStatus, NativeCrash, ServerFile};
use serde_json::json;
use tokio::sync::mpsc;

use super::downloads::{DownloadResult, Downloader};
use super::sources::Source;
use super::*;
use crate::actors::{start_bounded, Mailbox};
use crate::managed::RequestMeta;

const XP_DEBUG_ID: &str = "5A9832E5287241C1838ED98914E9B7FF1";
const XP_TOP: [&str; 3] = [
    "`anonymous namespace'::CrashFunction test_app.cc:58",
    "main test_app.cc:65",
    "__tmainCRTStartup crt0.c:327",
];

fn native_dir() -> PathBuf {
    crate::test_support::fixtures().join("native")
}

/// What a test server does with each request.
#[derive(Clone)]
pub(crate) enum Behaviour {
    /// Serves the files below this directory; 404 for anything else.
    Files(PathBuf),
    /// Reads the request and never answers.
    Hang,
    /// Answers 200 with a body of zeros that never ends, as fast as the client reads it.
    Endless,
    /// Answers 200 with a body that never ends, one byte every 50 ms.
    Trickle,
    /// Answers 200 with this `Content-Length`, then sends nothing.
    Declared(u64),
}

/// A minimal HTTP/1.1 file server, one thread per connection; records request paths. Also
/// used by the pipeline tests (`endpoints/tests.rs`).
pub(crate) struct TestServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    /// Endless bodies the client stopped reading (closed the connection).
    closed: Arc<AtomicUsize>,
}

impl TestServer {
    pub(crate) fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(AtomicUsize::new(0));
        let (log, closes) = (requests.clone(), closed.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (behaviour, log, closes) = (behaviour.clone(), log.clone(), closes.clone());
                std::thread::spawn(move || serve(stream, &behaviour, &log, &closes));
            }
        });
        TestServer {
            addr,
            requests,
            closed,
        }
    }

    pub(crate) fn url(&self, prefix: &str) -> String {
        format!("http://{}/{prefix}", self.addr)
    }

    pub(crate) fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    fn closed(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }
}

fn serve(stream: TcpStream, behaviour: &Behaviour, log: &Mutex<Vec<String>>, closed: &AtomicUsize) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => return,
            Ok(_) if header == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    log.lock().unwrap().push(path.clone());
    let mut stream = stream;
    // Without a length the body ends when the connection does, which here is never.
    let unbounded = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
    match behaviour {
        Behaviour::Hang => {
            // Until the client gives up and closes the connection.
            let _ = reader.read(&mut [0u8; 1]);
        }
        Behaviour::Declared(length) => {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = reader.read(&mut [0u8; 1]);
        }
        Behaviour::Endless => {
            let zeros = vec![0u8; 64 * 1024];
            let _ = stream.write_all(unbounded);
            while stream.write_all(&zeros).is_ok() {}
            closed.fetch_add(1, Ordering::SeqCst);
        }
        Behaviour::Trickle => {
            let _ = stream.write_all(unbounded);
            while stream.write_all(b"x").is_ok() {
                std::thread::sleep(Duration::from_millis(50));
            }
            closed.fetch_add(1, Ordering::SeqCst);
        }
        Behaviour::Files(root) => {
            let file = root.join(path.trim_start_matches('/'));
            let response = match std::fs::read(&file) {
                Ok(body) if file.is_file() => {
                    let mut out = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    out.extend_from_slice(&body);
                    out
                }
                _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            };
            let _ = stream.write_all(&response);
        }
    }
}

fn source(url: String, layout: SymbolServerLayout, timeout_secs: u64) -> HttpSymbolSource {
    HttpSymbolSource {
        url,
        layout,
        timeout_secs,
    }
}

fn config(cache: &Path, sources: Vec<HttpSymbolSource>) -> Config {
    let mut config = Config {
        data_dir: cache.join("data"),
        ..Config::default()
    };
    config.symbolication.http_sources = sources;
    config.symbolication.cache_dir = Some(cache.to_owned());
    config
}

/// A fetcher under test: its mailbox, the stores it fills and where it forwards to.
struct Harness {
    mailbox: Mailbox<SymbolFetcher>,
    symbols: LiveSymbols,
    forwarded: mpsc::UnboundedReceiver<ManagedEnvelope>,
}

impl Harness {
    fn start(config: &Config) -> Self {
        let symbols = LiveSymbols::new(ProjectSymbolStores::load(config).unwrap());
        let (tx, forwarded) = mpsc::unbounded_channel();
        let (config, stores) = (config.clone(), symbols.clone());
        let mailbox = start_bounded(SymbolFetcher::MAILBOX, 16, move || {
            SymbolFetcher::forwarding_to(&config, stores, move |envelope| {
                let _ = tx.send(envelope);
            })
        });
        Harness {
            mailbox,
            symbols,
            forwarded,
        }
    }

    /// Sends one minidump event of `project` through the fetcher, then symbolicates it as the
    /// Symbolicator would.
    async fn run(&mut self, project: u64, dump: &str) -> NativeCrash {
        let bytes = std::fs::read(native_dir().join(dump)).unwrap();
        let mut headers = ItemHeaders::new(ItemType::Attachment);
        headers.attachment_type = Some("event.minidump".into());
        let envelope = Envelope {
            items: vec![Item::new(headers, bytes.clone())],
            ..Envelope::default()
        };
        let meta = RequestMeta::for_test(project);
        let (managed, _verdict) = ManagedEnvelope::new(envelope, meta, Some(json!({})), 0);
        self.mailbox.forward(FetchSymbols(managed));
        let forwarded = tokio::time::timeout(Duration::from_secs(60), self.forwarded.recv())
            .await
            .expect("the envelope is forwarded")
            .unwrap();
        forwarded.accept();
        let store = self.symbols.current().native_store(project).clone();
        tokio::task::spawn_blocking(move || symbolicate_minidump(&bytes, &store, None))
            .await
            .unwrap()
            .unwrap()
    }
}

fn top(crash: &NativeCrash, n: usize) -> Vec<String> {
    crash
        .crashing_thread()
        .expect("a crashing thread")
        .frames
        .iter()
        .take(n)
        .map(|frame| {
            format!(
                "{} {}:{}",
                frame.function.as_deref().unwrap_or("?"),
                frame.filename.as_deref().unwrap_or("?"),
                frame.lineno.map_or("?".into(), |l| l.to_string()),
            )
        })
        .collect()
}

fn crash_status(crash: &NativeCrash) -> FrameStatus {
    crash.crashing_thread().unwrap().frames[0].status
}

#[actix_web::test]
async fn breakpad_server_symbolicates_the_xp_dump_and_is_asked_once() {
    let server = TestServer::start(Behaviour::Files(native_dir().join("rust-minidump")));
    let cache = tempfile::tempdir().unwrap();
    let config = config(
        cache.path(),
        vec![source(
            server.url("symbols"),
            SymbolServerLayout::Breakpad,
            5,
        )],
    );

    let mut fetcher = Harness::start(&config);
    let crash = fetcher.run(1, "rust-minidump/test.dmp").await;
    assert_eq!(top(&crash, 3), XP_TOP);
    let first = server.requests();
    assert!(
        first.contains(&format!("/symbols/test_app.pdb/{XP_DEBUG_ID}/test_app.sym")),
        "{first:?}"
    );
    // Every module was asked for once: the system DLLs got a 404.
    let mut unique = first.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), first.len(), "{first:?}");
    assert!(cache
        .path()
        .join("downloads")
        .read_dir()
        .unwrap()
        .next()
        .is_some());

    // The second event is served from memory: found files and misses.
    let crash = fetcher.run(1, "rust-minidump/test.dmp").await;
    assert_eq!(top(&crash, 3), XP_TOP);
    assert_eq!(server.requests(), first);

    // A restart (new stores, new fetcher) finds the downloads and the 404 markers on disk.
    let mut restarted = Harness::start(&config);
    let crash = restarted.run(1, "rust-minidump/test.dmp").await;
    assert_eq!(top(&crash, 3), XP_TOP);
    assert_eq!(server.requests(), first);
}

/// Writes `data` as a one-file MSZIP cabinet, as symstore's `_` files are.
fn write_cab(path: &Path, name: &str, data: &[u8]) {
    let mut builder = cab::CabinetBuilder::new();
    builder
        .add_folder(cab::CompressionType::MsZip)
        .add_file(name);
    let mut writer = builder.build(Cursor::new(Vec::new())).unwrap();
    while let Some(mut file) = writer.next_file().unwrap() {
        file.write_all(data).unwrap();
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, writer.finish().unwrap().into_inner()).unwrap();
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
}

#[actix_web::test]
async fn symstore_and_debuginfod_servers() {
    let native = native_dir();
    let root = tempfile::tempdir().unwrap();
    let symstore = root.path().join("symstore");
    // The XP dump's symbols only as a compressed `_` file (a cabinet holding the .sym).
    let xp_sym = std::fs::read(native.join(format!(
        "rust-minidump/symbols/test_app.pdb/{XP_DEBUG_ID}/test_app.sym"
    )))
    .unwrap();
    write_cab(
        &symstore.join(format!("test_app.pdb/{XP_DEBUG_ID}/test_app.pd_")),
        "test_app.pdb",
        &xp_sym,
    );
    // The Windows x86 PDB and PE, plain.
    copy(
        &native.join("windows-x86/crash.pdb"),
        &symstore.join("crash.pdb/3249D99D0C4049318610F4E4FB0B69361/crash.pdb"),
    );
    copy(
        &native.join("windows-x86/crash.exe"),
        &symstore.join("crash.exe/5AB380779000/crash.exe"),
    );
    // The Linux build by build id.
    let build_id = root
        .path()
        .join("debuginfod/buildid/f1c3bcc0279865fe3058404b2831d9e64135386c");
    copy(
        &native.join("linux-x86_64/crash.debug"),
        &build_id.join("debuginfo"),
    );
    copy(
        &native.join("linux-x86_64/crash"),
        &build_id.join("executable"),
    );

    let server = TestServer::start(Behaviour::Files(root.path().to_owned()));
    let cache = tempfile::tempdir().unwrap();
    let config = config(
        cache.path(),
        vec![
            source(server.url("symstore"), SymbolServerLayout::Symstore, 5),
            source(server.url("debuginfod/"), SymbolServerLayout::Debuginfod, 5),
        ],
    );
    let mut fetcher = Harness::start(&config);

    let crash = fetcher.run(1, "rust-minidump/test.dmp").await;
    assert_eq!(top(&crash, 3), XP_TOP);
    let requests = server.requests();
    assert!(requests.contains(&format!(
        "/symstore/test_app.pdb/{XP_DEBUG_ID}/test_app.pd_"
    )));

    let crash = fetcher.run(1, "windows-x86/windows.dmp").await;
    // With the PDB's inline frames: crash() and start() are inlined into main.
    assert_eq!(
        top(&crash, 3),
        [
            "`anonymous namespace'::crash() main.cpp:24",
            "`anonymous namespace'::start() main.cpp:28",
            "main(int, char**) main.cpp:35"
        ]
    );
    let main = &crash.crashing_thread().unwrap().frames[2];
    let exe = &crash.modules[main.module.unwrap()];
    assert!(exe.debug_path.as_ref().unwrap().ends_with("crash.pdb"));

    let crash = fetcher.run(1, "linux-x86_64/linux.dmp").await;
    assert_eq!(
        top(&crash, 3),
        ["crash main.cpp:23", "start main.cpp:27", "main main.cpp:35"]
    );
    let requests = server.requests();
    for path in [
        "/debuginfod/buildid/f1c3bcc0279865fe3058404b2831d9e64135386c/debuginfo",
        "/debuginfod/buildid/f1c3bcc0279865fe3058404b2831d9e64135386c/executable",
        "/symstore/crash.pdb/3249D99D0C4049318610F4E4FB0B69361/crash.pdb",
    ] {
        assert!(requests.iter().any(|r| r == path), "{path}: {requests:?}");
    }

    // All three again: no request.
    for dump in [
        "rust-minidump/test.dmp",
        "windows-x86/windows.dmp",
        "linux-x86_64/linux.dmp",
    ] {
        let crash = fetcher.run(1, dump).await;
        assert_eq!(crash_status(&crash), FrameStatus::Symbolicated, "{dump}");
    }
    assert_eq!(server.requests(), requests);
}

#[actix_web::test]
async fn missing_and_hanging_sources_let_the_event_go_on() {
    let empty = tempfile::tempdir().unwrap();
    let missing = TestServer::start(Behaviour::Files(empty.path().to_owned()));
    let hanging = TestServer::start(Behaviour::Hang);
    let cache = tempfile::tempdir().unwrap();
    let config = config(
        cache.path(),
        vec![
            source(missing.url(""), SymbolServerLayout::Breakpad, 5),
            source(hanging.url(""), SymbolServerLayout::Breakpad, 1),
        ],
    );
    let mut fetcher = Harness::start(&config);
    let crash = fetcher.run(1, "rust-minidump/test.dmp").await;
    assert_eq!(crash_status(&crash), FrameStatus::MissingSymbol);
    assert!(!missing.requests().is_empty());
    assert_eq!(hanging.requests().len(), missing.requests().len());

    // Both are remembered: the 404s for `negative_cache_secs`, the timeouts for a while.
    let (asked_missing, asked_hanging) = (missing.requests(), hanging.requests());
    let crash = fetcher.run(1, "rust-minidump/test.dmp").await;
    assert_eq!(crash_status(&crash), FrameStatus::MissingSymbol);
    assert_eq!(missing.requests(), asked_missing);
    assert_eq!(hanging.requests(), asked_hanging);
}

#[actix_web::test]
async fn the_event_deadline_cuts_a_slow_fetch_short() {
    let hanging = TestServer::start(Behaviour::Hang);
    let cache = tempfile::tempdir().unwrap();
    let mut config = config(
        cache.path(),
        vec![source(hanging.url(""), SymbolServerLayout::Breakpad, 3600)],
    );
    config.symbolication.fetch_deadline_secs = 1;
    let mut fetcher = Harness::start(&config);
    let crash = fetcher.run(1, "rust-minidump/test.dmp").await;
    assert_eq!(crash_status(&crash), FrameStatus::MissingSymbol);
    assert!(!hanging.requests().is_empty());
}

#[actix_web::test]
async fn sources_are_per_project() {
    let server = TestServer::start(Behaviour::Files(native_dir().join("rust-minidump")));
    let cache = tempfile::tempdir().unwrap();
    let mut config = config(cache.path(), Vec::new());
    let project: ProjectConfig = serde_json::from_value(json!({
        "id": 42,
        "keys": [],
        "http_sources": [source(server.url("symbols"), SymbolServerLayout::Breakpad, 5)],
    }))
    .unwrap();
    config.projects.push(project);
    let mut fetcher = Harness::start(&config);
    // No source for project 1: forwarded at once, nothing asked.
    let crash = fetcher.run(1, "rust-minidump/test.dmp").await;
    assert_eq!(crash_status(&crash), FrameStatus::MissingSymbol);
    assert!(server.requests().is_empty());
    let crash = fetcher.run(42, "rust-minidump/test.dmp").await;
    assert_eq!(top(&crash, 3), XP_TOP);
    assert!(!server.requests().is_empty());
}

#[actix_web::test]
async fn a_reload_gives_a_project_its_new_sources() {
    let server = TestServer::start(Behaviour::Files(native_dir().join("rust-minidump")));
    let cache = tempfile::tempdir().unwrap();
    let mut config = config(cache.path(), Vec::new());
    config.projects.push(ProjectConfig::new(42, Vec::new()));
    let mut fetcher = Harness::start(&config);
    let crash = fetcher.run(42, "rust-minidump/test.dmp").await;
    assert_eq!(crash_status(&crash), FrameStatus::MissingSymbol);
    assert!(server.requests().is_empty());

    config.projects[0].http_sources = vec![source(
        server.url("symbols"),
        SymbolServerLayout::Breakpad,
        5,
    )];
    fetcher
        .symbols
        .replace(ProjectSymbolStores::load(&config).unwrap());
    let crash = fetcher.run(42, "rust-minidump/test.dmp").await;
    assert_eq!(top(&crash, 3), XP_TOP);
    assert!(!server.requests().is_empty());
}

#[actix_web::test]
async fn the_cache_is_kept_under_its_bound() {
    let cache = tempfile::tempdir().unwrap();
    let old = cache.path().join("symcache/ID/old.symcache");
    let young = cache.path().join("cfi/ID/young.cfi");
    for (path, age) in [(&old, 7200), (&young, 0)] {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, vec![0u8; 600]).unwrap();
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(age))
            .unwrap();
    }
    let mut config = config(cache.path(), Vec::new());
    config.symbolication.max_cache_bytes = 1000;
    let _fetcher = Harness::start(&config);
    // The fetcher checks the bound when it starts.
    for _ in 0..100 {
        if !old.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!old.exists());
    assert!(young.exists());
}

/// Every regular file below `dir` (partial downloads, finished ones, markers).
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                files_below(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

/// A config whose only limit a never-ending download can meet is `max_download_bytes` or
/// `max_cache_bytes`: no source timeout, no deadline within the test's time.
fn unhurried(cache: &Path, server: &TestServer) -> Config {
    let mut config = config(
        cache,
        vec![source(server.url(""), SymbolServerLayout::Breakpad, 3600)],
    );
    config.symbolication.fetch_deadline_secs = 3600;
    config
}

#[actix_web::test]
async fn an_endless_body_stops_at_the_limit_leaves_nothing_and_is_not_asked_again() {
    let endless = TestServer::start(Behaviour::Endless);
    let cache = tempfile::tempdir().unwrap();
    let mut config = unhurried(cache.path(), &endless);
    config.symbolication.max_download_bytes = 1024 * 1024;
    let mut fetcher = Harness::start(&config);
    // Forwarded at all: only the size limit can end these downloads.
    let crash = fetcher.run(1, "rust-minidump/test.dmp").await;
    assert_eq!(crash_status(&crash), FrameStatus::MissingSymbol);
    let asked = endless.requests();
    assert!(!asked.is_empty());
    assert_eq!(
        files_below(&cache.path().join("downloads")),
        [] as [PathBuf; 0]
    );

    // Too large is remembered: the next event asks for nothing.
    let crash = fetcher.run(1, "rust-minidump/test.dmp").await;
    assert_eq!(crash_status(&crash), FrameStatus::MissingSymbol);
    assert_eq!(endless.requests(), asked);
}

#[actix_web::test]
async fn a_declared_length_over_the_limit_is_refused_before_the_body() {
    // Headers saying 10 GiB, then no body at all: only refusing on the header ends the wait.
    let declared = TestServer::start(Behaviour::Declared(10 << 30));
    let cache = tempfile::tempdir().unwrap();
    let config = unhurried(cache.path(), &declared);
    let mut fetcher = Harness::start(&config);
    let crash = fetcher.run(1, "rust-minidump/test.dmp").await;
    assert_eq!(crash_status(&crash), FrameStatus::MissingSymbol);
    assert!(!declared.requests().is_empty());
    assert_eq!(
        files_below(&cache.path().join("downloads")),
        [] as [PathBuf; 0]
    );
}

#[actix_web::test]
async fn downloads_count_against_the_cache_bound_as_they_arrive() {
    let endless = TestServer::start(Behaviour::Endless);
    let cache = tempfile::tempdir().unwrap();
    let mut config = unhurried(cache.path(), &endless);
    // Far below the default download limit: the cache bound stops them.
    config.symbolication.max_cache_bytes = 4 * 1024 * 1024;
    let mut fetcher = Harness::start(&config);
    let crash = fetcher.run(1, "rust-minidump/test.dmp").await;
    assert_eq!(crash_status(&crash), FrameStatus::MissingSymbol);
    assert_eq!(
        files_below(&cache.path().join("downloads")),
        [] as [PathBuf; 0]
    );
    // Remembered as failures.
    let asked = endless.requests();
    fetcher.run(1, "rust-minidump/test.dmp").await;
    assert_eq!(endless.requests(), asked);
}

/// A downloader of its own, to see each download's result.
struct OneDownload {
    downloader: Rc<Downloader>,
    source: Rc<Source>,
}

impl OneDownload {
    fn new(cache: &Path, server: &TestServer, edit: impl FnOnce(&mut Config)) -> Self {
        let mut config = unhurried(cache, server);
        edit(&mut config);
        let symbolication = &config.symbolication;
        OneDownload {
            downloader: Rc::new(Downloader::new(cache.to_owned(), symbolication)),
            source: Rc::new(Source::new(&symbolication.http_sources[0])),
        }
    }

    async fn get(&self, path: &str) -> DownloadResult {
        let file = ServerFile {
            role: FileRole::Debug,
            path: path.into(),
            compressed: false,
        };
        self.downloader.get(&self.source, &file).await
    }
}

#[actix_web::test]
async fn each_bound_ends_a_download_with_its_own_result_and_gives_its_bytes_back() {
    let endless = TestServer::start(Behaviour::Endless);
    let cache = tempfile::tempdir().unwrap();
    let limited = OneDownload::new(cache.path(), &endless, |config| {
        config.symbolication.max_download_bytes = 1024 * 1024;
    });
    assert!(matches!(
        limited.get("a/ID/a.sym").await,
        DownloadResult::TooLarge
    ));
    assert_eq!(limited.downloader.budget().used(), 0);

    let crowded = OneDownload::new(cache.path(), &endless, |config| {
        config.symbolication.max_cache_bytes = 2 * 1024 * 1024;
    });
    assert!(matches!(
        crowded.get("b/ID/b.sym").await,
        DownloadResult::Failed
    ));
    assert_eq!(crowded.downloader.budget().used(), 0);
    assert!(crowded.downloader.budget().check_due());
    assert_eq!(files_below(cache.path()), [] as [PathBuf; 0]);
}

#[actix_web::test]
async fn a_trickling_download_stops_at_the_fetch_deadline_and_leaves_nothing() {
    let trickle = TestServer::start(Behaviour::Trickle);
    let cache = tempfile::tempdir().unwrap();
    let slow = OneDownload::new(cache.path(), &trickle, |config| {
        config.symbolication.fetch_deadline_secs = 1;
    });
    // Nobody waits with a deadline of their own here: only the download's deadline ends it.
    assert!(matches!(
        slow.get("a/ID/a.sym").await,
        DownloadResult::Failed
    ));
    assert_eq!(files_below(cache.path()), [] as [PathBuf; 0]);
    assert_eq!(slow.downloader.budget().used(), 0);
    // The connection was dropped, not left to trickle on: the server's writes fail.
    for _ in 0..100 {
        if trickle.closed() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(trickle.closed(), 1);
}
