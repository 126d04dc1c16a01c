//! Windowed issue aggregates: how many events each group (project, fingerprint) received in
//! each time window.
//!
//! Pure and clock-free: the caller passes the current time (Unix seconds, the relay's
//! clock) to [`Aggregator::add`] and [`Aggregator::flush`], so tests need no sleeps.
//!
//! - Windows are aligned to multiples of `window_secs` of that time: an event received at
//!   12:00:07 with 10 s windows counts in the window 12:00:00–12:00:10. `first_seen` and
//!   `last_seen` are the events' own timestamps.
//! - One window is open at a time. [`Aggregator::add`] closes the open window when `now`
//!   has moved past it and returns its aggregates; [`Aggregator::flush`] does the same on a
//!   timer (call it at [`Aggregator::next_flush_at`]); [`Aggregator::flush_all`] at
//!   shutdown. If the clock goes back, events count in the open window.
//! - Bounded memory: when the open window holds `max_groups_per_window` groups and an event
//!   of a new group arrives, the window's aggregates so far are returned first (a forced
//!   flush) and the window continues empty. A group can therefore appear more than once
//!   for the same window: consumers add the counts up.

use std::collections::BTreeMap;

use relay_core::EventId;
use serde_json::Value;

use crate::grouping::{self, Fingerprint};

/// The aggregator's settings are part of the configuration schema, in relay-core.
pub use relay_core::config::AggregatorConfig;

/// What the aggregator needs to know about one processed event.
#[derive(Clone, Debug, PartialEq)]
pub struct IssueEvent {
    /// The project the event belongs to.
    pub project_id: u64,
    /// The event's group: [`Fingerprint::hash`].
    pub group_id: String,
    /// The event's id.
    pub event_id: EventId,
    /// The event's (normalized) `timestamp`, Unix seconds.
    pub timestamp: f64,
    /// [`grouping::title`].
    pub title: String,
    /// [`grouping::culprit`].
    pub culprit: Option<String>,
    /// The event's `level`.
    pub level: String,
    /// The event's `platform`.
    pub platform: String,
}

impl IssueEvent {
    /// Reads a normalized event; `fingerprint` is its [`grouping::fingerprint`].
    pub fn from_event(
        project_id: u64,
        event_id: EventId,
        event: &Value,
        fingerprint: &Fingerprint,
    ) -> Self {
        let text = |key: &str, default: &str| {
            event
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or(default)
                .to_owned()
        };
        IssueEvent {
            project_id,
            group_id: fingerprint.hash.clone(),
            event_id,
            timestamp: event
                .get("timestamp")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
            title: grouping::title(event),
            culprit: grouping::culprit(event),
            level: text("level", "error"),
            platform: text("platform", "other"),
        }
    }
}

/// The counts of one group in one window. relay-server publishes each as a message of the
/// issues topic (its format is defined there, in `kafka/messages/issues.rs`).
#[derive(Clone, Debug, PartialEq)]
pub struct IssueAggregate {
    /// The project.
    pub project_id: u64,
    /// The group: the fingerprint hash (32 hex digits).
    pub group_id: String,
    /// Start of the window, Unix seconds (inclusive).
    pub window_start: f64,
    /// End of the window, Unix seconds (exclusive).
    pub window_end: f64,
    /// Events of the group counted in this window (since the last flush of it).
    pub count: u64,
    /// Earliest event timestamp among them, Unix seconds.
    pub first_seen: f64,
    /// Latest event timestamp among them, Unix seconds.
    pub last_seen: f64,
    /// Title of the first of them.
    pub title: String,
    /// Culprit of the first of them.
    pub culprit: Option<String>,
    /// The most severe level among them (`debug` < `info` < `warning` < `error` < `fatal`).
    pub level: String,
    /// Platform of the first of them.
    pub platform: String,
    /// Id of the first of them, to look one up.
    pub sample_event_id: EventId,
}

struct Window {
    start: f64,
    groups: BTreeMap<(u64, String), IssueAggregate>,
}

/// The windowed aggregator (see the module documentation).
pub struct Aggregator {
    config: AggregatorConfig,
    window: Option<Window>,
}

impl Aggregator {
    /// An empty aggregator.
    pub fn new(config: AggregatorConfig) -> Self {
        Aggregator {
            config,
            window: None,
        }
    }

    fn window_secs(&self) -> f64 {
        self.config.window_secs.max(1) as f64
    }

    /// Counts `event`, received at `now`; returns the aggregates this closed or flushed
    /// early (usually none).
    pub fn add(&mut self, event: IssueEvent, now: f64) -> Vec<IssueAggregate> {
        let secs = self.window_secs();
        let start = (now / secs).floor() * secs;
        let mut out = Vec::new();
        if self.window.as_ref().is_some_and(|w| w.start < start) {
            out.extend(self.flush_all());
        }
        let cap = self.config.max_groups_per_window.max(1);
        let window = self.window.get_or_insert_with(|| Window {
            start,
            groups: BTreeMap::new(),
        });
        let key = (event.project_id, event.group_id.clone());
        if !window.groups.contains_key(&key) && window.groups.len() >= cap {
            out.extend(std::mem::take(&mut window.groups).into_values());
        }
        let window_start = window.start;
        window
            .groups
            .entry(key)
            .and_modify(|aggregate| {
                aggregate.count += 1;
                aggregate.first_seen = aggregate.first_seen.min(event.timestamp);
                aggregate.last_seen = aggregate.last_seen.max(event.timestamp);
                if severity(&event.level) > severity(&aggregate.level) {
                    aggregate.level = event.level.clone();
                }
            })
            .or_insert_with(|| IssueAggregate {
                project_id: event.project_id,
                group_id: event.group_id.clone(),
                window_start,
                window_end: window_start + secs,
                count: 1,
                first_seen: event.timestamp,
                last_seen: event.timestamp,
                title: event.title.clone(),
                culprit: event.culprit.clone(),
                level: event.level.clone(),
                platform: event.platform.clone(),
                sample_event_id: event.event_id,
            });
        out
    }

    /// Returns the open window's aggregates when it has ended by `now`.
    pub fn flush(&mut self, now: f64) -> Vec<IssueAggregate> {
        match self.next_flush_at() {
            Some(end) if end <= now => self.flush_all(),
            _ => Vec::new(),
        }
    }

    /// Returns every aggregate, ended or not (at shutdown).
    pub fn flush_all(&mut self) -> Vec<IssueAggregate> {
        self.window
            .take()
            .map(|w| w.groups.into_values().collect())
            .unwrap_or_default()
    }

    /// When the open window ends (Unix seconds), if one is open.
    pub fn next_flush_at(&self) -> Option<f64> {
        self.window.as_ref().map(|w| w.start + self.window_secs())
    }

    /// Groups held in memory now (tests check the memory bound with it).
    #[cfg(test)]
    fn open_groups(&self) -> usize {
        self.window.as_ref().map_or(0, |w| w.groups.len())
    }
}

fn severity(level: &str) -> u8 {
    match level {
        "debug" => 0,
        "info" => 1,
        "warning" => 2,
        "error" => 3,
        "fatal" => 4,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T0: f64 = 1_795_632_900.0; // a window boundary for 10 s windows

    fn event(project_id: u64, group: &str, timestamp: f64, level: &str) -> IssueEvent {
        IssueEvent {
            project_id,
            group_id: group.to_owned(),
            event_id: EventId::new(),
            timestamp,
            title: format!("title {group}"),
            culprit: Some(format!("culprit {group}")),
            level: level.to_owned(),
            platform: "python".to_owned(),
        }
    }

    #[test]
    fn counts_per_group_within_a_window() {
        let mut agg = Aggregator::new(AggregatorConfig::default());
        let first = event(42, "a", T0 - 1.0, "warning");
        let sample = first.event_id;
        assert!(agg.add(first, T0 + 1.0).is_empty());
        assert!(agg
            .add(event(42, "a", T0 + 2.0, "error"), T0 + 2.0)
            .is_empty());
        assert!(agg
            .add(event(42, "a", T0 + 0.5, "info"), T0 + 3.0)
            .is_empty());
        assert!(agg
            .add(event(42, "b", T0 + 4.0, "error"), T0 + 4.0)
            .is_empty());
        assert!(agg
            .add(event(7, "a", T0 + 4.0, "error"), T0 + 4.0)
            .is_empty());
        assert_eq!(agg.open_groups(), 3);
        assert_eq!(agg.next_flush_at(), Some(T0 + 10.0));
        assert!(agg.flush(T0 + 9.9).is_empty());

        let out = agg.flush(T0 + 10.0);
        assert_eq!(out.len(), 3);
        let a = out
            .iter()
            .find(|x| x.project_id == 42 && x.group_id == "a")
            .unwrap();
        assert_eq!(a.count, 3);
        assert_eq!((a.first_seen, a.last_seen), (T0 - 1.0, T0 + 2.0));
        assert_eq!((a.window_start, a.window_end), (T0, T0 + 10.0));
        assert_eq!(a.level, "error");
        assert_eq!(a.title, "title a");
        assert_eq!(a.sample_event_id, sample);
        assert_eq!(agg.open_groups(), 0);
        assert!(agg.flush(T0 + 20.0).is_empty());
    }

    #[test]
    fn a_new_window_closes_the_previous_one_and_counts_add_up() {
        let mut agg = Aggregator::new(AggregatorConfig::default());
        let mut published = Vec::new();
        // 30 events of 3 kinds over 25 seconds, one every 0.83 s.
        for i in 0..30 {
            let now = T0 + i as f64 * 25.0 / 30.0;
            let group = ["a", "b", "c"][i % 3];
            published.extend(agg.add(event(1, group, now, "error"), now));
        }
        published.extend(agg.flush(T0 + 30.0));
        let windows: std::collections::BTreeSet<u64> =
            published.iter().map(|a| a.window_start as u64).collect();
        assert_eq!(windows.len(), 3, "{published:?}");
        for group in ["a", "b", "c"] {
            let total: u64 = published
                .iter()
                .filter(|a| a.group_id == group)
                .map(|a| a.count)
                .sum();
            assert_eq!(total, 10, "{group}");
        }
    }

    #[test]
    fn the_group_cap_forces_a_flush() {
        let mut agg = Aggregator::new(AggregatorConfig {
            window_secs: 10,
            max_groups_per_window: 2,
        });
        assert!(agg.add(event(1, "a", T0, "error"), T0).is_empty());
        assert!(agg.add(event(1, "b", T0, "error"), T0).is_empty());
        assert!(agg.add(event(1, "a", T0, "error"), T0).is_empty());
        let forced = agg.add(event(1, "c", T0, "error"), T0 + 1.0);
        assert_eq!(
            forced
                .iter()
                .map(|a| (a.group_id.as_str(), a.count))
                .collect::<Vec<_>>(),
            [("a", 2), ("b", 1)]
        );
        assert_eq!(agg.open_groups(), 1);
        agg.add(event(1, "a", T0, "error"), T0 + 2.0);
        let rest = agg.flush_all();
        assert_eq!(
            rest.iter()
                .map(|a| (a.group_id.as_str(), a.count))
                .collect::<Vec<_>>(),
            [("a", 1), ("c", 1)]
        );
        assert!(rest.iter().all(|a| a.window_start == T0));
    }

    #[test]
    fn a_clock_going_back_counts_in_the_open_window() {
        let mut agg = Aggregator::new(AggregatorConfig::default());
        agg.add(event(1, "a", T0, "error"), T0 + 15.0);
        assert!(agg.add(event(1, "a", T0, "error"), T0 + 2.0).is_empty());
        let out = agg.flush(T0 + 20.0);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].window_start, out[0].count), (T0 + 10.0, 2));
    }

    #[test]
    fn reads_normalized_events() {
        let event_json = json!({
            "event_id": "8be12c149f1d40de8c80ed204da87a62",
            "timestamp": T0 + 1.5,
            "level": "error",
            "platform": "python",
            "exception": {"values": [{"type": "ZeroDivisionError", "value": "division by zero",
                "stacktrace": {"frames": [{"function": "inner_fail", "module": "__main__", "in_app": true}]}}]},
        });
        let fingerprint = grouping::fingerprint(&event_json);
        let id: EventId = "8be12c149f1d40de8c80ed204da87a62".parse().unwrap();
        let issue_event = IssueEvent::from_event(42, id, &event_json, &fingerprint);
        assert_eq!(issue_event.title, "ZeroDivisionError: division by zero");
        let mut agg = Aggregator::new(AggregatorConfig::default());
        agg.add(issue_event, T0 + 2.0);
        let out = agg.flush_all();
        assert_eq!(
            out,
            [IssueAggregate {
                project_id: 42,
                group_id: fingerprint.hash,
                window_start: T0,
                window_end: T0 + 10.0,
                count: 1,
                first_seen: T0 + 1.5,
                last_seen: T0 + 1.5,
                title: "ZeroDivisionError: division by zero".into(),
                culprit: Some("__main__ in inner_fail".into()),
                level: "error".into(),
                platform: "python".into(),
                sample_event_id: id,
            }]
        );
        let config: AggregatorConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config, AggregatorConfig::default());
    }
}
