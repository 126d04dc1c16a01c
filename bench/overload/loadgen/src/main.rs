//! Open-loop HTTP/1.1 load generator for the relay benchmarks (bench/run.sh).
//!
//! ```text
//! loadgen --url http://127.0.0.1:3000/api/42/envelope/ --body body.bin --headers headers.json
//!         [--unique-ids] [--rate R] [--connections C] [--duration SECS | --count N]
//!         [--ids-out FILE] [--json-out FILE] [--timeout SECS]
//! ```
//!
//! - `--body`/`--headers`: a captured request (fixtures/sdk/*/body.bin and headers.json; the
//!   capture's `Host` and `Content-Length` are replaced).
//! - `--unique-ids`: the body is a gzip'd envelope; every request gets a fresh event id in
//!   place of the captured one (same length, so item `length`s stay right), recompressed with
//!   gzip level 1. That costs the generator a few microseconds per request.
//! - `--rate R`: request k is due at start + k/R (open loop); 0 = as fast as the connections
//!   go. A request whose connection is still busy goes out late; `late_sends` counts those more
//!   than 100 ms behind schedule, so "offered" versus "sent" shows when the generator (or the
//!   server) could not keep up.
//! - `--connections C`: keep-alive connections, each with one request in flight.
//!
//! Writes a JSON summary (stdout and `--json-out`): status counts, responses per status with and
//! without `Retry-After`, latency percentiles, rates; `--ids-out` gets the id of every 200.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Args {
    host: String,
    path: String,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
    unique_ids: bool,
    rate: f64,
    connections: usize,
    duration: Option<f64>,
    count: Option<u64>,
    ids_out: Option<String>,
    json_out: Option<String>,
    timeout: Duration,
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let (mut url, mut body, mut headers) = (None, None, None);
    let mut args = Args {
        host: String::new(),
        path: String::new(),
        body: Vec::new(),
        headers: Vec::new(),
        unique_ids: false,
        rate: 0.0,
        connections: 64,
        duration: None,
        count: None,
        ids_out: None,
        json_out: None,
        timeout: Duration::from_secs(30),
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => url = Some(value()),
            "--body" => body = Some(value()),
            "--headers" => headers = Some(value()),
            "--unique-ids" => args.unique_ids = true,
            "--rate" => args.rate = value().parse().expect("--rate"),
            "--connections" => args.connections = value().parse().expect("--connections"),
            "--duration" => args.duration = Some(value().parse().expect("--duration")),
            "--count" => args.count = Some(value().parse().expect("--count")),
            "--ids-out" => args.ids_out = Some(value()),
            "--json-out" => args.json_out = Some(value()),
            "--timeout" => {
                args.timeout = Duration::from_secs_f64(value().parse().expect("--timeout"))
            }
            other => panic!("unknown argument {other}"),
        }
    }
    let url = url.expect("--url is required");
    let rest = url.strip_prefix("http://").expect("--url must be http://");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    args.host = host.to_owned();
    args.path = if path.is_empty() {
        "/".to_owned()
    } else {
        path.to_owned()
    };
    args.body = std::fs::read(body.expect("--body is required")).expect("read --body");
    if let Some(file) = headers {
        let text = std::fs::read_to_string(file).expect("read --headers");
        let value: serde_json::Value = serde_json::from_str(&text).expect("--headers is JSON");
        for pair in value["headers"]
            .as_array()
            .expect("headers.json: headers array")
        {
            let (k, v) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
            if !k.eq_ignore_ascii_case("host") && !k.eq_ignore_ascii_case("content-length") {
                args.headers.push((k.to_owned(), v.to_owned()));
            }
        }
    }
    if args.duration.is_none() && args.count.is_none() {
        args.duration = Some(10.0);
    }
    args
}

/// Builds request bodies: the captured one, or one with a fresh event id each time.
struct BodyMaker {
    gzip: Vec<u8>,
    /// (decompressed envelope, byte offsets of the captured event id in it)
    template: Option<(Vec<u8>, Vec<usize>)>,
}

impl BodyMaker {
    fn new(body: &[u8], unique: bool) -> Self {
        let template = unique.then(|| {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut plain)
                .expect("--unique-ids needs a gzip body");
            let key = b"\"event_id\":\"";
            let at = plain
                .windows(key.len())
                .position(|w| w == key)
                .expect("no event_id in the body")
                + key.len();
            let id = plain[at..at + 32].to_vec();
            let offsets = (0..plain.len() - 31)
                .filter(|&i| plain[i..i + 32] == id[..])
                .collect();
            (plain, offsets)
        });
        BodyMaker {
            gzip: body.to_vec(),
            template,
        }
    }

    fn make(&self) -> (Vec<u8>, Option<String>) {
        let Some((plain, offsets)) = &self.template else {
            return (self.gzip.clone(), None);
        };
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut plain = plain.clone();
        for &at in offsets {
            plain[at..at + 32].copy_from_slice(id.as_bytes());
        }
        let mut enc = flate2::write::GzEncoder::new(
            Vec::with_capacity(self.gzip.len() + 64),
            flate2::Compression::fast(),
        );
        enc.write_all(&plain).unwrap();
        (enc.finish().unwrap(), Some(id))
    }
}

#[derive(Default)]
struct Stats {
    statuses: BTreeMap<u16, u64>,
    with_retry_after: BTreeMap<u16, u64>,
    errors: BTreeMap<String, u64>,
    latencies_ok_us: Vec<u32>,
    latencies_all_us: Vec<u32>,
    ids: Vec<String>,
    mismatched_ids: u64,
    late_sends: u64,
}

impl Stats {
    fn merge(&mut self, other: Stats) {
        for (k, v) in other.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        for (k, v) in other.with_retry_after {
            *self.with_retry_after.entry(k).or_default() += v;
        }
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.latencies_ok_us.extend(other.latencies_ok_us);
        self.latencies_all_us.extend(other.latencies_all_us);
        self.ids.extend(other.ids);
        self.mismatched_ids += other.mismatched_ids;
        self.late_sends += other.late_sends;
    }
}

struct Response {
    status: u16,
    retry_after: bool,
    body: Vec<u8>,
    close: bool,
}

async fn roundtrip(
    stream: &mut TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> std::io::Result<Response> {
    stream.write_all(request).await?;
    buf.clear();
    let mut chunk = [0u8; 16384];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let httparse::Status::Complete(head_len) = response
            .parse(buf)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?
        else {
            continue;
        };
        let mut content_length = 0usize;
        let mut retry_after = false;
        let mut close = false;
        for h in response.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                content_length = std::str::from_utf8(h.value)
                    .unwrap_or("0")
                    .trim()
                    .parse()
                    .unwrap_or(0);
            } else if h.name.eq_ignore_ascii_case("retry-after") {
                retry_after = true;
            } else if h.name.eq_ignore_ascii_case("connection")
                && h.value.eq_ignore_ascii_case(b"close")
            {
                close = true;
            }
        }
        let status = response.code.unwrap_or(0);
        while buf.len() < head_len + content_length {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "closed in body",
                ));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        return Ok(Response {
            status,
            retry_after,
            body: buf[head_len..head_len + content_length].to_vec(),
            close,
        });
    }
}

fn answered_id(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    Some(value.get("id")?.as_str()?.replace('-', ""))
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank] as f64 / 1000.0
}

#[tokio::main]
async fn main() {
    let args = Arc::new(parse_args());
    let maker = Arc::new(BodyMaker::new(&args.body, args.unique_ids));
    let mut head = format!("POST {} HTTP/1.1\r\nHost: {}\r\n", args.path, args.host);
    for (k, v) in &args.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let head = Arc::new(head);
    let limit = match (args.count, args.duration) {
        (Some(n), _) => n,
        (None, Some(secs)) if args.rate > 0.0 => (secs * args.rate).ceil() as u64,
        _ => u64::MAX,
    };
    let deadline_secs = args.duration.unwrap_or(f64::INFINITY);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let total = Arc::new(Mutex::new(Stats::default()));
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let (args, maker, head, next, total) = (
            args.clone(),
            maker.clone(),
            head.clone(),
            next.clone(),
            total.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut stats = Stats::default();
            let mut stream: Option<TcpStream> = None;
            let mut buf = Vec::with_capacity(4096);
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= limit || start.elapsed().as_secs_f64() >= deadline_secs {
                    break;
                }
                if args.rate > 0.0 {
                    let due = start + Duration::from_secs_f64(k as f64 / args.rate);
                    let now = Instant::now();
                    if due > now {
                        tokio::time::sleep_until(due.into()).await;
                    } else if now - due > Duration::from_millis(100) {
                        stats.late_sends += 1;
                    }
                }
                let (body, id) = maker.make();
                let mut request = Vec::with_capacity(head.len() + body.len() + 32);
                request.extend_from_slice(head.as_bytes());
                request.extend_from_slice(
                    format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes(),
                );
                request.extend_from_slice(&body);
                let sent = Instant::now();
                if stream.is_none() {
                    match TcpStream::connect(&args.host).await {
                        Ok(s) => {
                            let _ = s.set_nodelay(true);
                            stream = Some(s);
                        }
                        Err(e) => {
                            *stats
                                .errors
                                .entry(format!("connect: {}", e.kind()))
                                .or_default() += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    }
                }
                let conn = stream.as_mut().expect("connected above");
                match tokio::time::timeout(args.timeout, roundtrip(conn, &request, &mut buf)).await
                {
                    Ok(Ok(response)) => {
                        let us = sent.elapsed().as_micros().min(u32::MAX as u128) as u32;
                        *stats.statuses.entry(response.status).or_default() += 1;
                        if response.retry_after {
                            *stats.with_retry_after.entry(response.status).or_default() += 1;
                        }
                        stats.latencies_all_us.push(us);
                        if response.status == 200 {
                            stats.latencies_ok_us.push(us);
                            match answered_id(&response.body) {
                                Some(answered) => {
                                    if id.as_ref().is_some_and(|id| *id != answered) {
                                        stats.mismatched_ids += 1;
                                    }
                                    if args.ids_out.is_some() {
                                        stats.ids.push(answered);
                                    }
                                }
                                None => stats.mismatched_ids += 1,
                            }
                        }
                        if response.close {
                            stream = None;
                        }
                    }
                    Ok(Err(e)) => {
                        *stats.errors.entry(format!("io: {}", e.kind())).or_default() += 1;
                        stream = None;
                    }
                    Err(_) => {
                        *stats.errors.entry("timeout".to_owned()).or_default() += 1;
                        stream = None;
                    }
                }
            }
            total.lock().unwrap().merge(stats);
        }));
    }
    for task in tasks {
        task.await.expect("worker panicked");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut stats = std::mem::take(&mut *total.lock().unwrap());
    stats.latencies_ok_us.sort_unstable();
    stats.latencies_all_us.sort_unstable();
    let answered: u64 = stats.statuses.values().sum();
    let ok = stats.statuses.get(&200).copied().unwrap_or(0);
    let lat = |v: &[u32]| {
        serde_json::json!({
            "p50_ms": percentile(v, 50.0), "p90_ms": percentile(v, 90.0),
            "p99_ms": percentile(v, 99.0), "max_ms": percentile(v, 100.0),
        })
    };
    let summary = serde_json::json!({
        "elapsed_s": elapsed,
        "offered_rate": if args.rate > 0.0 { args.rate } else { f64::NAN },
        "connections": args.connections,
        "answered": answered,
        "answered_per_s": answered as f64 / elapsed,
        "ok": ok,
        "ok_per_s": ok as f64 / elapsed,
        "statuses": stats.statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
        "with_retry_after": stats.with_retry_after.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
        "errors": stats.errors,
        "late_sends": stats.late_sends,
        "mismatched_ids": stats.mismatched_ids,
        "latency_ok": lat(&stats.latencies_ok_us),
        "latency_all": lat(&stats.latencies_all_us),
    });
    let text = serde_json::to_string_pretty(&summary).unwrap();
    println!("{text}");
    if let Some(path) = &args.json_out {
        std::fs::write(path, &text).expect("write --json-out");
    }
    if let Some(path) = &args.ids_out {
        let mut out = String::with_capacity(stats.ids.len() * 33);
        for id in &stats.ids {
            out.push_str(id);
            out.push('\n');
        }
        std::fs::write(path, out).expect("write --ids-out");
    }
}
