//! The configured HTTP symbol servers as the fetcher uses them: each [`Source`] knows its
//! layout, its timeout, the URL of a file and the cache directory its downloads go to;
//! [`ProjectSources`] lists them per project (its own first, then the global ones).

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use relay_core::config::{HttpSymbolSource, SymbolServerLayout};
use relay_processing::symbolicate::cache::Fnv64;
use relay_processing::symbolicate::ServerFile;

use crate::symbols::HttpSources;

/// One configured HTTP source.
#[derive(Debug)]
pub(super) struct Source {
    pub(super) url: String,
    pub(super) layout: SymbolServerLayout,
    /// The longest wait for the connection, the headers or the next body chunk.
    pub(super) timeout: Duration,
    /// Directory name below `downloads/`: host and a hash of URL and layout.
    pub(super) dir: String,
}

impl Source {
    pub(super) fn new(config: &HttpSymbolSource) -> Self {
        let host = config
            .url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split(['/', ':', '@']).next())
            .unwrap_or("source")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .take(64)
            .collect::<String>();
        let mut hash = Fnv64::default();
        hash.write(config.url.trim_end_matches('/').as_bytes());
        hash.write(format!("{:?}", config.layout).as_bytes());
        Source {
            url: config.url.clone(),
            layout: config.layout,
            timeout: Duration::from_secs(config.timeout_secs),
            dir: format!("{host}-{:016x}", hash.0),
        }
    }

    /// The file's URL: each path component percent-encoded below the base URL.
    pub(super) fn url_of(&self, file: &ServerFile) -> Result<reqwest::Url, String> {
        let mut url = reqwest::Url::parse(&self.url).map_err(|e| e.to_string())?;
        url.path_segments_mut()
            .map_err(|()| "the URL cannot have a path".to_owned())?
            .pop_if_empty()
            .extend(file.path.split('/'));
        Ok(url)
    }
}

/// The HTTP sources per project: its own first, then the global ones.
pub(super) struct ProjectSources {
    global: Rc<[Rc<Source>]>,
    per_project: HashMap<u64, Rc<[Rc<Source>]>>,
}

impl ProjectSources {
    pub(super) fn new(sources: &HttpSources) -> Self {
        let global: Vec<Rc<Source>> = sources
            .global
            .iter()
            .map(|s| Rc::new(Source::new(s)))
            .collect();
        let per_project = sources
            .per_project
            .iter()
            .map(|(id, own)| {
                let own = own.iter().map(|s| Rc::new(Source::new(s)));
                (*id, own.chain(global.iter().cloned()).collect())
            })
            .collect();
        ProjectSources {
            global: global.into(),
            per_project,
        }
    }

    pub(super) fn for_project(&self, project_id: u64) -> Rc<[Rc<Source>]> {
        self.per_project
            .get(&project_id)
            .unwrap_or(&self.global)
            .clone()
    }
}
