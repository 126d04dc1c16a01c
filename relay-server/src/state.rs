//! What the HTTP handlers share: configuration, projects, quotas, outcomes, the spool and the
//! pipeline's gates. Built by the composition root (`service.rs`); kept apart from it so that
//! the handlers depend on this data, not on the code that starts the actors.
//!
//! The part built from the configuration ([`Settings`]) is replaced as a whole by a reload;
//! each request keeps the one it started with ([`RequestState`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix_web::{web, FromRequest, HttpRequest};
use arc_swap::ArcSwap;
use relay_core::config::{HttpSymbolSource, QuotaConfig};
use relay_core::Config;

use crate::actors::outcomes::Outcomes;
use crate::actors::spool_reader::{Gates, ReaderUse, SpoolReader};
use crate::actors::symbolicator::SymbolicatorGate;
use crate::endpoints::abuse::AbuseGuard;
use crate::endpoints::budget::InflightBudget;
use crate::metrics;
use crate::processing::{LiveProcessing, ProcessingSettings};
use crate::projects::Projects;
use crate::ratelimit::{RateLimiter, RedisQuotas};
use crate::spool::Spool;
use crate::symbols::{LiveSymbols, ProjectSymbolStores};
use crate::upstream::refusals::KeyRefusals;
use crate::upstream::UpstreamMemory;

/// What a config reload replaces: the configuration and what the intake builds from it (keys
/// and projects, quotas). A request takes the settings in force when it starts
/// ([`RequestState`]) and keeps them to its end.
pub struct Settings {
    /// The configuration in force: the file's projects and processing options; the sections
    /// a reload does not apply stay as the relay started with them ([`reloadable`]).
    pub config: Arc<Config>,
    /// Keys and projects allowed to send.
    pub projects: Projects,
    /// Enforces quotas (and, in forward mode, the upstream's limits) before anything is
    /// spooled; called by the handlers directly. Kept across reloads that leave every quota
    /// as it was (so reloads do not refill quotas); in forward mode, the limits in force
    /// (the upstream's) carry over to the new one ([`RateLimiter::with_quotas_of`]).
    pub rate_limiter: Arc<RateLimiter>,
    /// Quotas counted in Redis for the whole fleet, when `redis` is configured; the
    /// `rate_limiter` then holds the limits learned and takes over while Redis fails.
    pub redis_quotas: Option<Arc<RedisQuotas>>,
}

/// What the HTTP handlers share: the settings in force, outcomes, limits and the spool.
pub struct ServiceState {
    settings: ArcSwap<Settings>,
    processing: LiveProcessing,
    /// Keys the upstream refused recently (forward mode; empty otherwise).
    pub key_refusals: Arc<KeyRefusals>,
    /// Where outcomes are counted.
    pub outcomes: Outcomes,
    /// Per-client-IP request limiter and the bound on concurrent requests.
    pub abuse: AbuseGuard,
    /// The bytes of request bodies held at once, across requests.
    pub budget: InflightBudget,
    /// Where accepted envelopes go before the 200.
    pub spool: Arc<Spool>,
    /// The symbolicator gate, for its depth metric (none in forward mode).
    pub symbolicator: Option<SymbolicatorGate>,
    /// The symbol stores the pipeline symbolicates with (none in forward mode).
    symbols: Option<LiveSymbols>,
    reader_gates: Gates,
    accepting: AtomicBool,
}

impl ServiceState {
    /// The state of a relay whose pipeline is started: `outcomes` and `symbolicator` lead into
    /// it, `reader_gates` bound its spool readers, `processing` and `symbols` are the
    /// pipeline's settings and symbol stores (replaced on reload), `memory` is shared with the
    /// upstream forwarder (if any). Not accepting until [`Self::set_accepting`].
    pub fn new(
        config: Config,
        processing: LiveProcessing,
        outcomes: Outcomes,
        spool: Arc<Spool>,
        symbolicator: Option<(SymbolicatorGate, LiveSymbols)>,
        reader_gates: Gates,
        memory: UpstreamMemory,
    ) -> Self {
        let (symbolicator, symbols) = symbolicator.unzip();
        let settings = Settings {
            projects: Projects::new(&config.projects),
            rate_limiter: memory.rate_limiter,
            redis_quotas: config
                .redis
                .as_ref()
                .map(|redis| RedisQuotas::start(redis, &config.projects)),
            config: Arc::new(config),
        };
        ServiceState {
            key_refusals: memory.key_refusals,
            abuse: AbuseGuard::new(&settings.config.limits),
            budget: InflightBudget::new(settings.config.limits.max_inflight_bytes),
            settings: ArcSwap::from_pointee(settings),
            processing,
            outcomes,
            spool,
            symbolicator,
            symbols,
            reader_gates,
            accepting: AtomicBool::new(false),
        }
    }

    /// The settings in force now.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.load_full()
    }

    /// Puts the reloadable parts of `config` in force (see [`reloadable`]) for requests and
    /// envelopes that start from now on; returns the sections that changed but need a
    /// restart. Changed symbol sources are loaded first (their directories scanned, so this
    /// blocks); if they cannot be, nothing is put in force.
    pub fn reload(&self, config: Config) -> Result<Vec<String>, SymbolSourcesError> {
        let old = self.settings();
        let (config, not_applied) = reloadable(&old.config, config);
        if let Some(symbols) = &self.symbols {
            if symbol_sources(&old.config) != symbol_sources(&config) {
                let stores = ProjectSymbolStores::load(&config)
                    .map_err(|e| SymbolSourcesError(format!("{e:#}")))?;
                symbols.replace(stores);
            }
        }
        let same_quotas = quotas_of(&old.config) == quotas_of(&config);
        let rate_limiter = if same_quotas {
            old.rate_limiter.clone()
        } else if old.config.forwards() {
            // The upstream's limits stay in force, and the forwarder (holding the old
            // limiter) keeps adding them to the new one.
            Arc::new(old.rate_limiter.with_quotas_of(&config.projects))
        } else {
            Arc::new(RateLimiter::new(&config.projects))
        };
        if let Some(redis) = &old.redis_quotas {
            redis.set_projects(&config.projects);
        }
        self.processing.replace(ProcessingSettings::new(&config));
        self.settings.store(Arc::new(Settings {
            projects: Projects::new(&config.projects),
            rate_limiter,
            redis_quotas: old.redis_quotas.clone(),
            config: Arc::new(config),
        }));
        Ok(not_applied)
    }

    /// Updates the gauges that are read off semaphores rather than counted.
    pub fn publish_gate_depths(&self) {
        if let Some(symbolicator) = &self.symbolicator {
            symbolicator.publish_depth();
        }
        let reader = self.reader_use();
        metrics::mailbox_depth(SpoolReader::SLOTS).set(reader.slots as i64);
        metrics::set_delivery_window(reader.window_bytes, self.reader_gates.window_size());
        metrics::set_spool_pending(self.spool.pending_entries());
    }

    /// What the spool reader holds: slots of entries being processed, and window bytes of
    /// entries read and not yet released.
    pub fn reader_use(&self) -> ReaderUse {
        self.reader_gates.in_use()
    }

    /// Entries read so far by each pipeline lane of this relay (tests compare lanes without
    /// the process-wide metric, which every relay of the test process counts into).
    #[cfg(test)]
    pub fn lane_reads(&self) -> Vec<u64> {
        self.reader_gates.lane_reads()
    }

    /// Whether the relay takes events: it is accepting and the spool has room.
    pub fn is_ready(&self) -> bool {
        self.accepting.load(Ordering::Relaxed) && !self.spool.is_full()
    }

    /// Marks the relay as accepting (or not).
    pub fn set_accepting(&self, accepting: bool) {
        self.accepting.store(accepting, Ordering::Relaxed);
    }
}

/// What the quotas depend on: each project's organization and quotas.
fn quotas_of(config: &Config) -> Vec<(u64, Option<u64>, &[QuotaConfig])> {
    config
        .projects
        .iter()
        .map(|p| (p.id, p.organization, p.quotas.as_slice()))
        .collect()
}

/// Why a reload's symbol sources could not be put in force (e.g. a directory that cannot
/// be read).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SymbolSourcesError(String);

/// What a project's symbol stores are built from: whether it is in an organization (its
/// uploads), its symbol directories, HTTP sources and JavaScript artifact directory.
type SymbolSources<'a> = (
    bool,
    &'a [std::path::PathBuf],
    &'a [HttpSymbolSource],
    Option<&'a std::path::PathBuf>,
);

/// The symbol sources of every project, by id.
fn symbol_sources(config: &Config) -> std::collections::BTreeMap<u64, SymbolSources<'_>> {
    config
        .projects
        .iter()
        .map(|p| {
            let sources = (
                p.organization.is_some(),
                p.native_symbols.as_slice(),
                p.http_sources.as_slice(),
                p.js_artifacts.as_ref(),
            );
            (p.id, sources)
        })
        .filter(|(_, (org, native, http, js))| {
            *org || !native.is_empty() || !http.is_empty() || js.is_some()
        })
        .collect()
}

/// The configuration to run with after a reload to `new`: its projects (keys, quotas,
/// filters, PII, allowed origins, symbol sources) and `processing.normalize`; every other
/// section stays as in `old`. Also returns what differs in the sections kept, for the log.
pub fn reloadable(old: &Config, new: Config) -> (Config, Vec<String>) {
    let mut merged = old.clone();
    merged.processing.normalize = new.processing.normalize;
    let mut not_applied = Vec::new();
    let (old_value, new_value) = (
        serde_json::to_value(old).unwrap_or_default(),
        serde_json::to_value(&new).unwrap_or_default(),
    );
    if let (Some(old_map), Some(new_map)) = (old_value.as_object(), new_value.as_object()) {
        for (key, value) in new_map {
            let skip = key == "projects" || key == "processing";
            if !skip && old_map.get(key) != Some(value) {
                not_applied.push(key.clone());
            }
        }
    }
    if old.processing.aggregator != new.processing.aggregator {
        not_applied.push("processing.aggregator".to_owned());
    }
    merged.projects = new.projects;
    (merged, not_applied)
}

/// What one request works with: the shared state, and the settings in force when it started
/// (kept to its end, whatever reloads happen meanwhile). Extracted by the intake handlers.
pub struct RequestState {
    service: web::Data<ServiceState>,
    /// The settings this request runs under.
    pub settings: Arc<Settings>,
}

impl RequestState {
    /// The current settings of `service`.
    pub fn new(service: web::Data<ServiceState>) -> Self {
        RequestState {
            settings: service.settings(),
            service,
        }
    }
}

impl std::ops::Deref for RequestState {
    type Target = ServiceState;

    fn deref(&self) -> &ServiceState {
        &self.service
    }
}

impl FromRequest for RequestState {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let service = web::Data::<ServiceState>::from_request(req, payload).into_inner();
        std::future::ready(service.map(RequestState::new))
    }
}

#[cfg(test)]
mod tests {
    use relay_core::config::{KeyConfig, ProjectConfig};

    use super::*;

    fn project(id: u64, key: &str) -> ProjectConfig {
        ProjectConfig::new(id, vec![KeyConfig::Plain(key.to_owned())])
    }

    #[test]
    fn reload_takes_projects_and_keeps_what_needs_a_restart() {
        let old = Config {
            projects: vec![project(1, "a")],
            ..Config::default()
        };
        let mut new = Config {
            listen: "127.0.0.1:4000".into(),
            projects: vec![project(1, "b"), project(2, "c")],
            ..Config::default()
        };
        new.processing.normalize.max_breadcrumbs += 1;
        let (merged, not_applied) = reloadable(&old, new.clone());
        assert_eq!(merged.projects, new.projects, "keys and projects are taken");
        assert_eq!(merged.processing.normalize, new.processing.normalize);
        assert_eq!(merged.listen, old.listen, "the listener stays");
        assert_eq!(not_applied, ["listen"]);
    }

    #[test]
    fn reload_takes_symbol_sources_and_notices_their_changes_only() {
        let mut old = Config {
            projects: vec![project(1, "a")],
            ..Config::default()
        };
        old.projects[0].native_symbols = vec!["/srv/a".into()];
        let mut keys_only = old.clone();
        keys_only.projects[0]
            .keys
            .push(KeyConfig::Plain("b".into()));
        let (merged, _) = reloadable(&old, keys_only);
        assert_eq!(
            symbol_sources(&merged),
            symbol_sources(&old),
            "no new stores"
        );

        let mut new = old.clone();
        new.projects[0].native_symbols = vec!["/srv/b".into()];
        let source: HttpSymbolSource =
            serde_json::from_value(serde_json::json!({"url": "https://symbols.example.com"}))
                .unwrap();
        new.projects[0].http_sources = vec![source];
        let (merged, not_applied) = reloadable(&old, new.clone());
        assert_eq!(merged.projects, new.projects);
        assert!(not_applied.is_empty(), "{not_applied:?}");
        assert_ne!(symbol_sources(&merged), symbol_sources(&old));

        // A project put in an organization gets stores for its uploads.
        let mut organized = old.clone();
        organized.projects.push(project(2, "c"));
        assert_eq!(symbol_sources(&organized), symbol_sources(&old));
        organized.projects[1].organization = Some(9);
        assert_ne!(symbol_sources(&organized), symbol_sources(&old));
    }

    #[test]
    fn an_unchanged_file_reloads_without_remarks() {
        let old = Config {
            projects: vec![project(1, "a")],
            ..Config::default()
        };
        let (merged, not_applied) = reloadable(&old, old.clone());
        assert_eq!(merged, old);
        assert!(not_applied.is_empty());
    }
}
