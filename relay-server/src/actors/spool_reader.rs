//! The SpoolReader: feeds the pipeline from the spool and releases delivered entries.
//!
//! It reads entries in order under two bounds, so that a slow pipeline or Kafka stops the
//! reader instead of growing memory:
//!
//! - at most `max_in_flight` entries are being processed: a slot is taken before an entry is
//!   read and travels with its envelope until the KafkaProducer has queued its messages in
//!   librdkafka (or the envelope's journey ends earlier). With several pipeline lanes the
//!   slots are split evenly between them, so that no lane takes them all while the others
//!   sleep;
//! - at most `delivery_window_bytes` of spooled entries are read and not yet released: taken
//!   once an entry is read, given back when it is released. It covers the wait for delivery
//!   reports, which holds no slot: otherwise `linger.ms` plus the broker's round trip would
//!   cap the throughput at `max_in_flight` envelopes per round trip.
//!
//! In forward mode the reader feeds the UpstreamForwarder instead of the Normalizer
//! ([`Entrance`]); an entry is released only once the upstream answered 2xx (or refused it for
//! good: a 4xx, counted as `invalid`, or a 429, counted as `rate_limited`).
//!
//! An entry refused by a full stage, or whose Kafka delivery (or forwarding) failed, is retried
//! with backoff (taking a slot again for each attempt); nothing is dropped. An invalid entry (which the
//! intake should have refused) or one older than `spool.max_entry_age_secs` is released with
//! a log line and a count in `relay_spool_dropped_total{reason}`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use chrono::Utc;
use relay_core::{DataCategory, Envelope, Outcome};
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::normalizer::{NormalizeEnvelope, Normalizer};
use super::outcomes::Outcomes;
use super::upstream_forwarder::{ForwardEnvelope, UpstreamForwarder};
use super::Mailbox;
use crate::managed::{ManagedEnvelope, Rejection, RequestMeta, Verdict};
use crate::metrics;
use crate::spool::entry::{self, EntryMeta};
use crate::spool::{EntryId, Spool, SpoolCursor};

/// Longest wait between retries of one entry, unless the settings say otherwise.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Where the reader hands the envelopes it reads.
#[derive(Clone)]
pub enum Entrance {
    /// The processing pipeline (Kafka mode): the lane's Normalizer.
    Process(Mailbox<Normalizer>),
    /// Forward mode: the UpstreamForwarder.
    Forward(Mailbox<UpstreamForwarder>),
}

impl Entrance {
    /// Sends without waiting; a full stage rejects the envelope (back-pressure).
    fn send(&self, envelope: ManagedEnvelope) {
        match self {
            Entrance::Process(normalizer) => normalizer.forward(NormalizeEnvelope(envelope)),
            Entrance::Forward(forwarder) => forwarder.forward(ForwardEnvelope(envelope)),
        }
    }
}

/// Settings of the reader.
#[derive(Clone)]
pub struct ReaderSettings {
    /// Entries being processed at once (until their messages are queued in librdkafka).
    pub max_in_flight: usize,
    /// Spooled bytes read and not yet released (including those awaiting delivery reports).
    pub delivery_window_bytes: usize,
    /// Pipeline lanes sharing the reader's cursor (at most `max_in_flight`).
    pub lanes: usize,
    /// First retry wait.
    pub retry_backoff: Duration,
    /// Longest retry wait.
    pub max_backoff: Duration,
    /// Entries older than this are dropped with a count and a log line.
    pub max_entry_age: Duration,
}

/// Feeds one pipeline lane from the spool; see the module docs.
///
/// With several lanes, each has its own reader, and the readers share one cursor and one set
/// of gates ([`SpoolReader::for_lane`]): an entry is read once, by whichever lane has a free
/// slot of its share first, and processed on that lane's thread from then on.
pub struct SpoolReader {
    lane: usize,
    spool: Arc<Spool>,
    cursor: Arc<Mutex<SpoolCursor>>,
    outcomes: Outcomes,
    pipeline: Entrance,
    gates: Gates,
    settings: ReaderSettings,
}

impl SpoolReader {
    /// Name of the reader's in-flight slots in metrics.
    pub const SLOTS: &'static str = "spool_reader";

    /// The first lane's reader of `spool`, feeding `pipeline`, with `settings.max_in_flight`
    /// slots (split between `settings.lanes`) and a window of `settings.delivery_window_bytes`.
    pub fn new(
        spool: Arc<Spool>,
        pipeline: Entrance,
        outcomes: Outcomes,
        settings: ReaderSettings,
    ) -> Self {
        metrics::set_mailbox_capacity(Self::SLOTS, settings.max_in_flight);
        SpoolReader {
            lane: 0,
            cursor: Arc::new(Mutex::new(spool.reader())),
            spool,
            outcomes,
            pipeline,
            gates: Gates::new(&settings),
            settings,
        }
    }

    /// The reader of lane `lane` (below `settings.lanes`): same spool cursor and window, the
    /// lane's share of the slots, feeding `pipeline`.
    pub fn for_lane(&self, lane: usize, pipeline: Entrance) -> Self {
        assert!(
            lane < self.gates.lane_slots.len(),
            "lane {lane} out of range"
        );
        SpoolReader {
            lane,
            spool: self.spool.clone(),
            cursor: self.cursor.clone(),
            outcomes: self.outcomes.clone(),
            pipeline,
            gates: self.gates.clone(),
            settings: self.settings.clone(),
        }
    }

    /// The reader's bounds, so that their use can be published.
    pub fn gates(&self) -> Gates {
        self.gates.clone()
    }
}

/// The window's size in permits for `delivery_window_bytes`: one per byte, at most `u32::MAX`
/// (the most one entry can take at once).
pub fn window_permits(delivery_window_bytes: usize) -> usize {
    delivery_window_bytes.min(u32::MAX as usize)
}

/// Lane `lane`'s share of `total` (slots, or work) split evenly between `lanes`: the first
/// `total % lanes` lanes take one more.
pub fn share(total: usize, lanes: usize, lane: usize) -> usize {
    total / lanes + usize::from(lane < total % lanes)
}

/// The window permits an entry of `bytes` takes from a window of `window_size` permits: one
/// per byte; an entry larger than the window takes all of it, and goes alone.
pub fn window_cost(bytes: usize, window_size: usize) -> u32 {
    bytes.clamp(1, window_size) as u32
}

impl Actor for SpoolReader {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let feed = feed(
            self.lane,
            self.spool.clone(),
            self.cursor.clone(),
            self.pipeline.clone(),
            self.outcomes.clone(),
            self.gates.clone(),
            self.settings.clone(),
        );
        ctx.spawn(feed.into_actor(self));
    }
}

/// The reader's two bounds; see the module docs.
#[derive(Clone)]
pub struct Gates {
    /// Entries being processed: each lane's share of the slots.
    lane_slots: Arc<[Arc<Semaphore>]>,
    max_in_flight: usize,
    /// Spooled bytes read and not yet released, one permit per byte.
    window: Arc<Semaphore>,
    window_size: usize,
    /// Entries read by each lane, of this relay alone (the metric is process-wide).
    lane_reads: Arc<[AtomicU64]>,
}

impl Gates {
    fn new(settings: &ReaderSettings) -> Self {
        let window_size = window_permits(settings.delivery_window_bytes);
        let lanes = settings.lanes.clamp(1, settings.max_in_flight);
        Gates {
            lane_slots: (0..lanes)
                .map(|lane| Arc::new(Semaphore::new(share(settings.max_in_flight, lanes, lane))))
                .collect(),
            max_in_flight: settings.max_in_flight,
            window: Arc::new(Semaphore::new(window_size)),
            window_size,
            lane_reads: (0..lanes).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// What the reader holds now.
    pub fn in_use(&self) -> ReaderUse {
        ReaderUse {
            slots: self.max_in_flight
                - self
                    .lane_slots
                    .iter()
                    .map(|s| s.available_permits())
                    .sum::<usize>(),
            window_bytes: self.window_size - self.window.available_permits(),
        }
    }

    /// The window's size in bytes (permits).
    pub fn window_size(&self) -> usize {
        self.window_size
    }

    /// Entries read so far by each lane of this relay, in lane order.
    #[cfg(test)]
    pub fn lane_reads(&self) -> Vec<u64> {
        self.lane_reads
            .iter()
            .map(|reads| reads.load(Ordering::Relaxed))
            .collect()
    }
}

/// The reader's bounds in use; see [`Gates::in_use`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReaderUse {
    /// Slots taken (entries being processed).
    pub slots: usize,
    /// Bytes of the delivery window taken (entries read and not yet released).
    pub window_bytes: usize,
}

/// The reader loop: take a slot, read the next entry, take its bytes from the delivery window,
/// hand it to a delivery task.
async fn feed(
    lane: usize,
    spool: Arc<Spool>,
    cursor: Arc<Mutex<SpoolCursor>>,
    pipeline: Entrance,
    outcomes: Outcomes,
    gates: Gates,
    settings: ReaderSettings,
) {
    let slots = gates.lane_slots[lane].clone();
    let entries_read = metrics::lane_entries(lane);
    let mut committed = spool.committed();
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        // A panic while reading (a bug) leaves at worst a cursor that reports a read error.
        let next = cursor
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .next_entry();
        match next {
            Ok(Some((id, payload))) => {
                entries_read.inc();
                gates.lane_reads[lane].fetch_add(1, Ordering::Relaxed);
                let bytes = window_cost(payload.len(), gates.window_size);
                let Ok(window) = gates.window.clone().acquire_many_owned(bytes).await else {
                    return;
                };
                let job = Delivery {
                    lane,
                    spool: spool.clone(),
                    pipeline: pipeline.clone(),
                    outcomes: outcomes.clone(),
                    settings: settings.clone(),
                    id,
                    slots: slots.clone(),
                    slot: Some(slot),
                    _window: window,
                };
                actix::spawn(async move {
                    job.run(payload).await;
                });
            }
            Ok(None) => {
                drop(slot);
                // Caught up with the writer: record the releases so far (a restart would
                // publish them again otherwise), then wait for the next commit.
                spool.write_releases();
                if committed.changed().await.is_err() {
                    return;
                }
            }
            Err(error) => {
                drop(slot);
                tracing::error!(%error, "spool: cannot read; retrying in 1s");
                actix_web::rt::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// One entry on its way through the pipeline, holding its bytes of the delivery window until
/// it is released, and a reader slot while it is processed.
struct Delivery {
    /// The lane that read the entry: the envelope's every attempt runs on it.
    lane: usize,
    spool: Arc<Spool>,
    pipeline: Entrance,
    outcomes: Outcomes,
    settings: ReaderSettings,
    id: EntryId,
    /// The lane's slots.
    slots: Arc<Semaphore>,
    /// The slot taken by the reader, for the first attempt; each retry takes a new one.
    slot: Option<OwnedSemaphorePermit>,
    _window: OwnedSemaphorePermit,
}

impl Delivery {
    async fn run(mut self, payload: Vec<u8>) {
        let (meta, envelope) = match entry::decode(payload) {
            Ok(parts) => parts,
            Err(error) => return self.drop_entry("corrupt", &error),
        };
        let age = Utc::now()
            .signed_duration_since(meta.received)
            .to_std()
            .unwrap_or_default();
        if age > self.settings.max_entry_age {
            return self.drop_entry("expired", &format!("entry is {}s old", age.as_secs()));
        }
        let mut backoff = self.settings.retry_backoff;
        for attempt in 0u32.. {
            let slot = match self.slot.take() {
                Some(slot) => slot,
                // Closed only when the reader stops; the entry stays spooled for the next run.
                None => match self.slots.clone().acquire_owned().await {
                    Ok(slot) => slot,
                    Err(_) => return,
                },
            };
            let (mut managed, verdict) = match managed_envelope(&meta, envelope.clone(), self.lane)
            {
                Ok(managed) => managed,
                Err(error) => {
                    // Answered 200 at intake, but its event does not parse (invalid UTF-8,
                    // nesting deeper than the parser's limit): counted like any invalid event.
                    self.track_invalid(&meta, &envelope);
                    return self.drop_entry("invalid", &error);
                }
            };
            managed.hold_slot(slot);
            let categories = item_categories(&managed.envelope);
            self.pipeline.send(managed);
            match verdict.await {
                Ok(Verdict::Accepted) => {
                    for item in &categories {
                        self.outcomes.track_item(
                            (meta.project_id, Some(&meta.public_key)),
                            item,
                            Outcome::Accepted,
                            None,
                        );
                    }
                    self.spool.release(self.id);
                    return;
                }
                Ok(Verdict::Rejected(Rejection::Filtered(filter))) => {
                    for item in &categories {
                        self.outcomes.track_item(
                            (meta.project_id, Some(&meta.public_key)),
                            item,
                            Outcome::Filtered,
                            Some(filter),
                        );
                    }
                    self.spool.release(self.id);
                    return;
                }
                Ok(Verdict::Rejected(Rejection::Invalid(reason))) => {
                    for item in &categories {
                        self.outcomes.track_item(
                            (meta.project_id, Some(&meta.public_key)),
                            item,
                            Outcome::Invalid,
                            Some("invalid_event"),
                        );
                    }
                    return self.drop_entry("invalid", &reason);
                }
                Ok(Verdict::Rejected(rejection @ Rejection::Overloaded { .. })) => {
                    // A full stage drains in milliseconds: come back soon, spread out so the
                    // waiting entries do not return in one wave.
                    let wait = overload_wait(self.id, attempt);
                    tracing::trace!(%rejection, ?wait, "spool: stage full; retrying entry");
                    metrics::count_spool_retry();
                    actix_web::rt::time::sleep(wait).await;
                }
                Ok(Verdict::Rejected(rejection @ Rejection::Delivery(_))) => {
                    // Kafka failed: back off exponentially, it may be down for a while.
                    tracing::debug!(%rejection, ?backoff, "spool: delivery failed; retrying entry");
                    metrics::count_spool_retry();
                    actix_web::rt::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.settings.max_backoff);
                }
                Ok(Verdict::Rejected(rejection @ Rejection::Upstream(_))) => {
                    // The upstream is down or failing: back off exponentially, with jitter so
                    // that the entries waiting for it do not all come back at once.
                    let wait = jittered(backoff, self.id, attempt);
                    tracing::debug!(%rejection, ?wait, "spool: forwarding failed; retrying entry");
                    metrics::count_spool_retry();
                    actix_web::rt::time::sleep(wait).await;
                    backoff = (backoff * 2).min(self.settings.max_backoff);
                }
                Ok(Verdict::Rejected(Rejection::UpstreamRefused(reason))) => {
                    for item in &categories {
                        self.outcomes.track_item(
                            (meta.project_id, Some(&meta.public_key)),
                            item,
                            Outcome::Invalid,
                            Some("upstream_refused"),
                        );
                    }
                    return self.drop_entry("upstream_refused", &reason);
                }
                Ok(Verdict::Rejected(Rejection::RateLimited(reason))) => {
                    for item in &categories {
                        self.outcomes.track_item(
                            (meta.project_id, Some(&meta.public_key)),
                            item,
                            Outcome::RateLimited,
                            Some(&reason),
                        );
                    }
                    // Expected while a quota is exhausted: counted, not logged one by one.
                    metrics::count_spool_dropped("rate_limited");
                    self.spool.release(self.id);
                    return;
                }
                Ok(Verdict::Rejected(rejection)) => {
                    return self.drop_entry("invalid", &rejection.to_string())
                }
                Err(_) => return self.drop_entry("internal", "the pipeline dropped the entry"),
            }
        }
    }

    /// Counts every item of a spooled envelope as `invalid` (`invalid_event`).
    fn track_invalid(&self, meta: &EntryMeta, bytes: &Bytes) {
        let Ok(envelope) = Envelope::parse(bytes.clone()) else {
            return;
        };
        for item in &item_categories(&envelope) {
            self.outcomes.track_item(
                (meta.project_id, Some(&meta.public_key)),
                item,
                Outcome::Invalid,
                Some("invalid_event"),
            );
        }
    }

    fn drop_entry(&self, reason: &'static str, detail: &str) {
        tracing::warn!(id = ?self.id, reason, detail, "spool: dropping entry");
        metrics::count_spool_dropped(reason);
        self.spool.release(self.id);
    }
}

/// How long an entry refused by a full stage waits: 5 to 50 ms, varied by entry and attempt
/// so that many refused entries come back spread out rather than together.
fn overload_wait(id: EntryId, attempt: u32) -> Duration {
    let mix = (id.segment
        ^ id.offset.rotate_left(17)
        ^ u64::from(attempt).wrapping_mul(0x9e37_79b9_7f4a_7c15))
    .wrapping_mul(0xff51_afd7_ed55_8ccd);
    Duration::from_millis(5 + (mix >> 60) * 3)
}

/// `backoff` with jitter: between half of it and all of it, varied by entry and attempt.
fn jittered(backoff: Duration, id: EntryId, attempt: u32) -> Duration {
    let mix = (id.segment ^ id.offset.rotate_left(29) ^ u64::from(attempt).rotate_left(47))
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let half = backoff / 2;
    // The top 10 bits of the mix: a fraction in 0..1024 of the other half.
    half + half.mul_f64((mix >> 54) as f64 / 1024.0)
}

/// The categories each item of the envelope counts towards.
fn item_categories(envelope: &Envelope) -> Vec<Vec<(DataCategory, u64)>> {
    envelope
        .items
        .iter()
        .map(|item| DataCategory::for_item(item.ty(), item.payload.len()))
        .collect()
}

/// Parses an event item's JSON.
///
/// Checks the UTF-8 of the whole payload first, in one pass, and parses it as a `str`: from
/// bytes, serde_json checks each string on its own, which made the parse about 20 % slower
/// (the same inputs are accepted either way: JSON text is UTF-8).
fn parse_event(payload: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(payload).map_err(|e| format!("event is not UTF-8: {e}"))?;
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// Rebuilds the pipeline's view of a spooled envelope read by lane `lane`.
fn managed_envelope(
    meta: &EntryMeta,
    bytes: Bytes,
    lane: usize,
) -> Result<(ManagedEnvelope, tokio::sync::oneshot::Receiver<Verdict>), String> {
    let mut envelope = Envelope::parse(bytes).map_err(|e| e.to_string())?;
    if envelope.headers.event_id.is_none() {
        envelope.headers.event_id = meta.event_id;
    }
    let event = match envelope.event_item() {
        Some(item) => Some(parse_event(&item.payload)?),
        None => None,
    };
    let request = RequestMeta {
        project_id: meta.project_id,
        public_key: meta.public_key.clone(),
        received: meta.received,
        client_ip: meta.client_ip,
        sdk: meta.sdk.clone(),
        sent_at: envelope
            .headers
            .sent_at
            .as_deref()
            .and_then(relay_processing::normalize::timestamps::parse_sent_at),
    };
    Ok(ManagedEnvelope::new(envelope, request, event, lane))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use chrono::Utc;
    use relay_core::envelope::{Item, ItemHeaders};
    use relay_core::{Envelope, ItemType};

    use super::{jittered, managed_envelope, parse_event, share};
    use crate::managed::Route;
    use crate::spool::entry::EntryMeta;
    use crate::spool::EntryId;

    #[test]
    fn the_route_is_decided_when_the_entry_is_read() {
        let meta = EntryMeta {
            project_id: 1,
            public_key: "k".into(),
            received: Utc::now(),
            event_id: None,
            client_ip: None,
            sdk: Default::default(),
        };
        let event = Item::new(ItemHeaders::new(ItemType::Event), &b"{}"[..]);
        let mut dump = ItemHeaders::new(ItemType::Attachment);
        dump.attachment_type = Some("event.minidump".into());
        let dump = Item::new(dump, &b"MDMP"[..]);
        let route = |items: Vec<Item>, lane| {
            let envelope = Envelope {
                items,
                ..Envelope::default()
            };
            let bytes = Bytes::from(envelope.to_vec());
            let (managed, _verdict) = managed_envelope(&meta, bytes, lane).unwrap();
            let route = managed.route;
            managed.accept();
            route
        };
        let native = |lane| Route { lane, native: true };
        assert_eq!(route(vec![event.clone(), dump.clone()], 1), native(1));
        assert_eq!(route(vec![event.clone(), dump.clone()], 0), native(0));
        let plain = Route {
            lane: 1,
            native: false,
        };
        assert_eq!(route(vec![event], 1), plain, "no minidump");
        assert_eq!(route(vec![dump], 1), plain, "a minidump without an event");
    }

    #[test]
    fn events_parse_as_from_bytes_and_bad_ones_are_refused() {
        let captures = crate::test_support::fixtures().join("sdk");
        let mut events = 0;
        for sdk in ["python", "node"] {
            for capture in std::fs::read_dir(captures.join(sdk)).unwrap() {
                let path = capture.unwrap().path().join("body.decompressed.bin");
                let Ok(body) = std::fs::read(&path) else {
                    continue;
                };
                for line in body.split(|&b| b == b'\n').filter(|l| l.starts_with(b"{")) {
                    let expected = serde_json::from_slice::<serde_json::Value>(line).unwrap();
                    assert_eq!(parse_event(line).unwrap(), expected, "{}", path.display());
                    events += 1;
                }
            }
        }
        assert!(events > 20, "read {events} JSON lines of the captures");
        assert!(parse_event(b"{\"message\": \"\xff\"}")
            .unwrap_err()
            .contains("UTF-8"));
        assert!(parse_event(b"{\"message\": ").is_err());
        assert_eq!(
            parse_event("{\"m\": \"caf\u{e9} \\u00e9\"}".as_bytes()).unwrap()["m"],
            "café é"
        );
    }

    #[test]
    fn jitter_stays_between_half_and_the_whole_backoff_and_varies() {
        let backoff = std::time::Duration::from_secs(8);
        let mut waits = std::collections::HashSet::new();
        for offset in 0..200u64 {
            let id = EntryId {
                segment: 3,
                offset: offset * 977,
            };
            for attempt in 0..3 {
                let wait = jittered(backoff, id, attempt);
                assert!(wait >= backoff / 2 && wait <= backoff, "{wait:?}");
                waits.insert(wait);
            }
        }
        assert!(waits.len() > 100, "only {} distinct waits", waits.len());
    }

    #[test]
    fn lane_shares_add_up_and_differ_by_at_most_one() {
        for total in [1, 2, 3, 7, 256, 257] {
            for lanes in 1..=total.min(9) {
                let shares: Vec<usize> = (0..lanes).map(|lane| share(total, lanes, lane)).collect();
                assert_eq!(shares.iter().sum::<usize>(), total, "{total} over {lanes}");
                let (min, max) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
                assert!(
                    max - min <= 1 && *min >= 1,
                    "{total} over {lanes}: {shares:?}"
                );
            }
        }
    }
}
