//! Watches driven by blocking queries: a background task re-reads with `?index=&wait=` and
//! delivers each new value, following Consul's blocking-query rules (see `blocking`). This is
//! what the template renderer consumes.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::blocking::{next_wait_index, Backoff, RateLimiter};
use crate::client::ConsulClient;
use crate::error::ConsulError;
use crate::query::{QueryMeta, QueryOptions};
use crate::types::{KvPair, ServiceEntry};

/// How a watch queries.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Base options of every read (datacenter, token, consistency, tags, near...). `wait_index`
    /// and `wait_time` are managed by the watch.
    pub query: QueryOptions,
    /// `?wait=` of each blocking read.
    pub wait: Duration,
    /// Minimum time between two reads (guards against tight loops).
    pub min_interval: Duration,
    /// First retry delay after an error.
    pub backoff_base: Duration,
    /// Longest retry delay after errors.
    pub backoff_max: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            query: QueryOptions::default(),
            wait: Duration::from_secs(300),
            min_interval: Duration::from_millis(50),
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
        }
    }
}

/// A value delivered by a watch, with the `X-Consul-Index` it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchUpdate<T> {
    pub index: u64,
    pub value: T,
}

/// A running watch. Values arrive through [`Watch::next`]: the first read, then every change
/// (a new index carrying the same value is not delivered again). Errors are delivered too and
/// the watch keeps retrying with back-off. Dropping the watch stops it.
#[derive(Debug)]
pub struct Watch<T> {
    rx: mpsc::Receiver<Result<WatchUpdate<T>, ConsulError>>,
    task: JoinHandle<()>,
}

impl<T> Drop for Watch<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<T: Clone + PartialEq + Send + 'static> Watch<T> {
    /// Runs `fetch` as a blocking-query loop. `fetch` gets the options of each read (with
    /// `wait_index`/`wait_time` set) and returns the value and Consul's query meta.
    pub fn spawn<F, Fut>(opts: WatchOptions, mut fetch: F) -> Watch<T>
    where
        F: FnMut(QueryOptions) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(T, QueryMeta), ConsulError>> + Send,
    {
        let (tx, rx) = mpsc::channel(1);
        let task = tokio::spawn(async move {
            let mut index = 0u64;
            let mut last: Option<T> = None;
            let mut backoff = Backoff::new(opts.backoff_base, opts.backoff_max);
            let mut limiter = RateLimiter::new(opts.min_interval);
            loop {
                limiter.wait().await;
                let mut q = opts.query.clone();
                q.wait_index = index;
                q.wait_time = Some(opts.wait);
                match fetch(q).await {
                    Ok((value, meta)) => {
                        backoff.reset();
                        index = next_wait_index(index, meta.last_index);
                        if last.as_ref() != Some(&value) {
                            last = Some(value.clone());
                            let update = WatchUpdate {
                                index: meta.last_index,
                                value,
                            };
                            if tx.send(Ok(update)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        let delay = backoff.next_delay();
                        tracing::warn!(error = %e, retry_in = ?delay, "consul watch read failed");
                        if tx.send(Err(e)).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        });
        Watch { rx, task }
    }

    /// The next value or error; `None` only if the watch task ended.
    pub async fn next(&mut self) -> Option<Result<WatchUpdate<T>, ConsulError>> {
        self.rx.recv().await
    }
}

impl ConsulClient {
    /// Watches every KV entry under `prefix`.
    pub fn watch_kv_prefix(&self, prefix: &str, opts: WatchOptions) -> Watch<Vec<KvPair>> {
        let (client, prefix) = (self.clone(), prefix.to_string());
        Watch::spawn(opts, move |q| {
            let (client, prefix) = (client.clone(), prefix.clone());
            async move { client.kv_list(&prefix, &q).await }
        })
    }

    /// Watches one KV key (`None` while it does not exist).
    pub fn watch_kv_key(&self, key: &str, opts: WatchOptions) -> Watch<Option<KvPair>> {
        let (client, key) = (self.clone(), key.to_string());
        Watch::spawn(opts, move |q| {
            let (client, key) = (client.clone(), key.clone());
            async move { client.kv_get(&key, &q).await }
        })
    }

    /// Watches the key names under `prefix` (`?keys`, optional `separator`).
    pub fn watch_kv_keys(
        &self,
        prefix: &str,
        separator: Option<&str>,
        opts: WatchOptions,
    ) -> Watch<Vec<String>> {
        let (client, prefix, sep) = (
            self.clone(),
            prefix.to_string(),
            separator.map(str::to_string),
        );
        Watch::spawn(opts, move |q| {
            let (client, prefix, sep) = (client.clone(), prefix.clone(), sep.clone());
            async move { client.kv_keys(&prefix, sep.as_deref(), &q).await }
        })
    }

    /// Watches the healthy view of a service (`/v1/health/service/:name`, `?passing` when
    /// `passing`; tags, near and datacenter from `opts.query`).
    pub fn watch_service(
        &self,
        name: &str,
        passing: bool,
        opts: WatchOptions,
    ) -> Watch<Vec<ServiceEntry>> {
        let (client, name) = (self.clone(), name.to_string());
        Watch::spawn(opts, move |q| {
            let (client, name) = (client.clone(), name.clone());
            async move { client.health_service(&name, passing, &q).await }
        })
    }

    /// Watches the catalog's service names and tags.
    pub fn watch_catalog_services(
        &self,
        opts: WatchOptions,
    ) -> Watch<HashMap<String, Vec<String>>> {
        let client = self.clone();
        Watch::spawn(opts, move |q| {
            let client = client.clone();
            async move { client.catalog_services(&q).await }
        })
    }
}
