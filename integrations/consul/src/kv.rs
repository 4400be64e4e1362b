//! `/v1/kv/*`: get, list (`recurse`), keys (`keys`, `separator`), put (`flags`, `cas`) and
//! delete (`recurse`, `cas`).

use bytes::Bytes;
use http::Method;

use crate::client::{escape, ConsulClient};
use crate::error::ConsulError;
use crate::query::{QueryMeta, QueryOptions, WriteOptions};
use crate::types::KvPair;

fn kv_path(key: &str) -> String {
    format!("/v1/kv/{}", escape(key.trim_start_matches('/'), true))
}

impl ConsulClient {
    /// One key; `None` when it does not exist.
    pub async fn kv_get(
        &self,
        key: &str,
        q: &QueryOptions,
    ) -> Result<(Option<KvPair>, QueryMeta), ConsulError> {
        let path = kv_path(key);
        match self.query_raw(&path, Vec::new(), q).await? {
            (None, meta) => Ok((None, meta)),
            (Some(body), meta) => {
                let list: Vec<KvPair> = Self::decode(&Method::GET, &path, &body)?;
                Ok((list.into_iter().next(), meta))
            }
        }
    }

    /// Every entry under `prefix` (`?recurse`); empty when there is none.
    pub async fn kv_list(
        &self,
        prefix: &str,
        q: &QueryOptions,
    ) -> Result<(Vec<KvPair>, QueryMeta), ConsulError> {
        let path = kv_path(prefix);
        match self
            .query_raw(&path, vec![("recurse".into(), String::new())], q)
            .await?
        {
            (None, meta) => Ok((Vec::new(), meta)),
            (Some(body), meta) => Ok((Self::decode(&Method::GET, &path, &body)?, meta)),
        }
    }

    /// Key names under `prefix` (`?keys`); with a `separator`, keys are rolled up to it
    /// (`a/b/c` with separator `/` under `a/` lists `a/b/`).
    pub async fn kv_keys(
        &self,
        prefix: &str,
        separator: Option<&str>,
        q: &QueryOptions,
    ) -> Result<(Vec<String>, QueryMeta), ConsulError> {
        let path = kv_path(prefix);
        let mut params = vec![("keys".into(), String::new())];
        if let Some(sep) = separator {
            params.push(("separator".into(), sep.to_string()));
        }
        match self.query_raw(&path, params, q).await? {
            (None, meta) => Ok((Vec::new(), meta)),
            (Some(body), meta) => Ok((Self::decode(&Method::GET, &path, &body)?, meta)),
        }
    }

    async fn kv_put_inner(
        &self,
        key: &str,
        value: &[u8],
        flags: u64,
        cas: Option<u64>,
        w: &WriteOptions,
    ) -> Result<bool, ConsulError> {
        let path = kv_path(key);
        let mut params = Vec::new();
        if flags != 0 {
            params.push(("flags".into(), flags.to_string()));
        }
        if let Some(cas) = cas {
            params.push(("cas".into(), cas.to_string()));
        }
        let body = self
            .write(
                Method::PUT,
                &path,
                params,
                Some(Bytes::copy_from_slice(value)),
                w,
            )
            .await?;
        Self::decode(&Method::PUT, &path, &body)
    }

    /// Writes a key. Returns Consul's answer (`true` when written).
    pub async fn kv_put(
        &self,
        key: &str,
        value: &[u8],
        flags: u64,
        w: &WriteOptions,
    ) -> Result<bool, ConsulError> {
        self.kv_put_inner(key, value, flags, None, w).await
    }

    /// Check-and-set: writes only if the key's `ModifyIndex` is `cas` (0: only if absent).
    /// `false` means someone else changed the key first.
    pub async fn kv_cas(
        &self,
        key: &str,
        value: &[u8],
        flags: u64,
        cas: u64,
        w: &WriteOptions,
    ) -> Result<bool, ConsulError> {
        self.kv_put_inner(key, value, flags, Some(cas), w).await
    }

    /// Deletes one key (absent keys are fine).
    pub async fn kv_delete(&self, key: &str, w: &WriteOptions) -> Result<bool, ConsulError> {
        let path = kv_path(key);
        let body = self
            .write(Method::DELETE, &path, Vec::new(), None, w)
            .await?;
        Self::decode(&Method::DELETE, &path, &body)
    }

    /// Deletes a key only if its `ModifyIndex` is `cas`.
    pub async fn kv_delete_cas(
        &self,
        key: &str,
        cas: u64,
        w: &WriteOptions,
    ) -> Result<bool, ConsulError> {
        let path = kv_path(key);
        let body = self
            .write(
                Method::DELETE,
                &path,
                vec![("cas".into(), cas.to_string())],
                None,
                w,
            )
            .await?;
        Self::decode(&Method::DELETE, &path, &body)
    }

    /// Deletes every key under `prefix` (`?recurse`).
    pub async fn kv_delete_tree(
        &self,
        prefix: &str,
        w: &WriteOptions,
    ) -> Result<bool, ConsulError> {
        let path = kv_path(prefix);
        let body = self
            .write(
                Method::DELETE,
                &path,
                vec![("recurse".into(), String::new())],
                None,
                w,
            )
            .await?;
        Self::decode(&Method::DELETE, &path, &body)
    }
}
