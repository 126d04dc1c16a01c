//! The most recently used source map views (and parse failures) kept open in memory.

use std::collections::HashMap;
use std::sync::Arc;

use super::super::SourceMapView;

/// A small LRU of built caches and of parse failures.
pub(super) struct MemoryCache {
    capacity: usize,
    tick: u64,
    entries: HashMap<String, (u64, Result<Arc<SourceMapView>, String>)>,
}

impl MemoryCache {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            tick: 0,
            entries: HashMap::new(),
        }
    }

    pub(super) fn get(&mut self, key: &str) -> Option<Result<Arc<SourceMapView>, String>> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(key).map(|(used, value)| {
            *used = tick;
            value.clone()
        })
    }

    pub(super) fn insert(&mut self, key: String, value: Result<Arc<SourceMapView>, String>) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.tick += 1;
        self.entries.insert(key, (self.tick, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_cache_drops_least_recently_used() {
        let mut cache = MemoryCache::new(2);
        cache.insert("a".into(), Err("a".into()));
        cache.insert("b".into(), Err("b".into()));
        assert!(cache.get("a").is_some());
        cache.insert("c".into(), Err("c".into()));
        assert!(cache.get("b").is_none());
        assert!(cache.get("a").is_some());
        assert!(cache.get("c").is_some());
    }
}
