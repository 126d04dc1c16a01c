//! JavaScript symbolication: minified stack frames resolved through source maps.
//!
//! Lookups go through relay's own source map index ([`index`]), a flat binary form of the
//! map built once per (minified file, source map) pair, kept on disk and read in place.
//! When the minified source is known, the index also carries the names of the enclosing
//! *scopes* (functions) of every position, so frames get the name of the function they are in,
//! not only the raw token name at the position.
//!
//! - [`index`]: the Source Map v3 decoder (JSON, VLQ `mappings`, index maps, Hermes/Metro
//!   function maps), the scope names, and the serialized index format.
//! - [`view`]: building an index ([`SourceMapView::build`]) and 1-based lookups in it.
//! - [`store`]: [`SourceMapStore`], a project's artifact directory (plain files and Sentry
//!   artifact bundles) with URL, `~/` and debug-id matching, backed by the on-disk cache.
//! - [`event`]: [`symbolicate_js_event`], the entry point the Symbolicator actor calls for
//!   each event: it rewrites every resolvable frame in place and sets a per-frame status.
//! - [`bundle`]: reading Sentry artifact bundles (`manifest.json` zip files).
//! - [`cache`]: the size-bounded on-disk cache of built source map caches (LRU by mtime).
//! - [`url`]: URL/path normalisation, `sourceMappingURL` and `debugId` discovery.
//!
//! # Positions
//!
//! Everything public here uses the SDK convention: **1-based lines and 1-based columns**, columns
//! counted in UTF-16 code units as JS engines report them. The index (like the format's
//! `mappings`) is 0-based for both; the conversion happens in [`SourceMapView::lookup`] only
//! ([`SourceMapView::lookup_raw`] is the 0-based lookup, for tools).
//!
//! # Wiring
//!
//! ```no_run
//! use relay_processing::sourcemap::{symbolicate_js_event, SourceMapStore};
//!
//! // Once per project (cheap to share: `SourceMapStore` is `Send + Sync`, wrap it in an `Arc`).
//! let store = SourceMapStore::open("/data/artifacts/42", "/data/cache/sourcemaps", 1 << 30)?;
//! // On the symbolication thread, per event:
//! let mut event: serde_json::Value = serde_json::from_str("{}")?;
//! let stats = symbolicate_js_event(&mut event, &store);
//! assert_eq!(stats.symbolicated, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod bundle;
pub mod cache;
mod error;
pub mod event;
pub mod index;
pub mod store;
pub mod url;
pub mod view;

pub use error::SourceMapError;
pub use event::{
    is_javascript_event, symbolicate_js_event, symbolicate_js_event_within, FrameStatus, JsLimits,
    JsStats,
};
pub use store::{ResolvedMap, ResolvedWith, SourceMapStore, StoreOptions};
pub use view::{Location, RawLocation, RawScope, Scope, SourceMapView};
