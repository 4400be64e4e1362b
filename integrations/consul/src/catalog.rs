//! `/v1/catalog/*` and `/v1/health/*`: service discovery and health, all usable as blocking
//! queries through [`QueryOptions`].

use std::collections::HashMap;

use crate::client::{escape, ConsulClient};
use crate::error::ConsulError;
use crate::query::{QueryMeta, QueryOptions};
use crate::types::{CatalogNode, CatalogService, HealthCheck, Node, ServiceEntry};

impl ConsulClient {
    /// `GET /v1/catalog/datacenters`.
    pub async fn catalog_datacenters(&self) -> Result<Vec<String>, ConsulError> {
        Ok(self
            .query(
                "/v1/catalog/datacenters",
                Vec::new(),
                &QueryOptions::default(),
            )
            .await?
            .0)
    }

    /// `GET /v1/catalog/services`: service names and their tags.
    pub async fn catalog_services(
        &self,
        q: &QueryOptions,
    ) -> Result<(HashMap<String, Vec<String>>, QueryMeta), ConsulError> {
        let (map, meta): (HashMap<String, Option<Vec<String>>>, _) =
            self.query("/v1/catalog/services", Vec::new(), q).await?;
        Ok((
            map.into_iter()
                .map(|(k, v)| (k, v.unwrap_or_default()))
                .collect(),
            meta,
        ))
    }

    /// `GET /v1/catalog/service/:name` (filters: `q.tags`, `q.near`, `q.datacenter`).
    pub async fn catalog_service(
        &self,
        name: &str,
        q: &QueryOptions,
    ) -> Result<(Vec<CatalogService>, QueryMeta), ConsulError> {
        let path = format!("/v1/catalog/service/{}", escape(name, false));
        let (list, meta): (Option<Vec<CatalogService>>, _) =
            self.query(&path, Vec::new(), q).await?;
        Ok((list.unwrap_or_default(), meta))
    }

    /// `GET /v1/catalog/nodes`.
    pub async fn catalog_nodes(
        &self,
        q: &QueryOptions,
    ) -> Result<(Vec<Node>, QueryMeta), ConsulError> {
        let (list, meta): (Option<Vec<Node>>, _) =
            self.query("/v1/catalog/nodes", Vec::new(), q).await?;
        Ok((list.unwrap_or_default(), meta))
    }

    /// `GET /v1/catalog/node/:node`; `None` for an unknown node.
    pub async fn catalog_node(
        &self,
        node: &str,
        q: &QueryOptions,
    ) -> Result<(Option<CatalogNode>, QueryMeta), ConsulError> {
        let path = format!("/v1/catalog/node/{}", escape(node, false));
        self.query(&path, Vec::new(), q).await
    }

    /// `GET /v1/health/service/:name`; `passing` adds `?passing` (only instances whose checks
    /// all pass). Tags, `near` and datacenter come from `q`.
    pub async fn health_service(
        &self,
        name: &str,
        passing: bool,
        q: &QueryOptions,
    ) -> Result<(Vec<ServiceEntry>, QueryMeta), ConsulError> {
        let path = format!("/v1/health/service/{}", escape(name, false));
        let params = if passing {
            vec![("passing".into(), String::new())]
        } else {
            Vec::new()
        };
        let (list, meta): (Option<Vec<ServiceEntry>>, _) = self.query(&path, params, q).await?;
        Ok((list.unwrap_or_default(), meta))
    }

    /// `GET /v1/health/checks/:service`.
    pub async fn health_checks(
        &self,
        service: &str,
        q: &QueryOptions,
    ) -> Result<(Vec<HealthCheck>, QueryMeta), ConsulError> {
        let path = format!("/v1/health/checks/{}", escape(service, false));
        let (list, meta): (Option<Vec<HealthCheck>>, _) = self.query(&path, Vec::new(), q).await?;
        Ok((list.unwrap_or_default(), meta))
    }

    /// `GET /v1/health/state/:state` (`any`, `passing`, `warning`, `critical`).
    pub async fn health_state(
        &self,
        state: &str,
        q: &QueryOptions,
    ) -> Result<(Vec<HealthCheck>, QueryMeta), ConsulError> {
        let path = format!("/v1/health/state/{}", escape(state, false));
        let (list, meta): (Option<Vec<HealthCheck>>, _) = self.query(&path, Vec::new(), q).await?;
        Ok((list.unwrap_or_default(), meta))
    }

    /// `GET /v1/health/node/:node`.
    pub async fn health_node(
        &self,
        node: &str,
        q: &QueryOptions,
    ) -> Result<(Vec<HealthCheck>, QueryMeta), ConsulError> {
        let path = format!("/v1/health/node/{}", escape(node, false));
        let (list, meta): (Option<Vec<HealthCheck>>, _) = self.query(&path, Vec::new(), q).await?;
        Ok((list.unwrap_or_default(), meta))
    }

    /// `GET /v1/status/leader`: the Raft leader's address (empty when there is none).
    pub async fn status_leader(&self) -> Result<String, ConsulError> {
        Ok(self
            .query("/v1/status/leader", Vec::new(), &QueryOptions::default())
            .await?
            .0)
    }

    /// `GET /v1/status/peers`: the Raft peers' addresses.
    pub async fn status_peers(&self) -> Result<Vec<String>, ConsulError> {
        Ok(self
            .query("/v1/status/peers", Vec::new(), &QueryOptions::default())
            .await?
            .0)
    }
}
