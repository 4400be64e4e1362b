//! `/v1/agent/*`: service and check registration on the local agent, TTL check updates, and the
//! agent's own view (`self`, `members`, `services`, `checks`).

use std::collections::HashMap;

use http::Method;
use serde_json::json;

use crate::client::{escape, ConsulClient};
use crate::error::ConsulError;
use crate::query::{QueryOptions, WriteOptions};
use crate::types::{
    AgentCheckRegistration, AgentMember, AgentSelf, AgentService, AgentServiceRegistration,
    CheckStatus, HealthCheck,
};

impl ConsulClient {
    /// `GET /v1/agent/self`.
    pub async fn agent_self(&self) -> Result<AgentSelf, ConsulError> {
        Ok(self
            .query("/v1/agent/self", Vec::new(), &QueryOptions::default())
            .await?
            .0)
    }

    /// `GET /v1/agent/members` (LAN members; `wan` for the WAN pool).
    pub async fn agent_members(&self, wan: bool) -> Result<Vec<AgentMember>, ConsulError> {
        let params = if wan {
            vec![("wan".into(), "1".into())]
        } else {
            Vec::new()
        };
        Ok(self
            .query("/v1/agent/members", params, &QueryOptions::default())
            .await?
            .0)
    }

    /// `GET /v1/agent/services`: the agent's services by ID.
    pub async fn agent_services(&self) -> Result<HashMap<String, AgentService>, ConsulError> {
        Ok(self
            .query("/v1/agent/services", Vec::new(), &QueryOptions::default())
            .await?
            .0)
    }

    /// `GET /v1/agent/checks`: the agent's checks by ID.
    pub async fn agent_checks(&self) -> Result<HashMap<String, HealthCheck>, ConsulError> {
        Ok(self
            .query("/v1/agent/checks", Vec::new(), &QueryOptions::default())
            .await?
            .0)
    }

    /// `PUT /v1/agent/service/register`. With `replace_existing_checks`, checks of the service
    /// not in `reg` are removed.
    pub async fn agent_service_register(
        &self,
        reg: &AgentServiceRegistration,
        replace_existing_checks: bool,
        w: &WriteOptions,
    ) -> Result<(), ConsulError> {
        let params = if replace_existing_checks {
            vec![("replace-existing-checks".into(), "true".into())]
        } else {
            Vec::new()
        };
        self.put_json("/v1/agent/service/register", params, reg, w)
            .await?;
        Ok(())
    }

    /// `PUT /v1/agent/service/deregister/:service_id`.
    pub async fn agent_service_deregister(
        &self,
        service_id: &str,
        w: &WriteOptions,
    ) -> Result<(), ConsulError> {
        let path = format!("/v1/agent/service/deregister/{}", escape(service_id, false));
        self.write(Method::PUT, &path, Vec::new(), None, w).await?;
        Ok(())
    }

    /// `PUT /v1/agent/check/register`.
    pub async fn agent_check_register(
        &self,
        reg: &AgentCheckRegistration,
        w: &WriteOptions,
    ) -> Result<(), ConsulError> {
        self.put_json("/v1/agent/check/register", Vec::new(), reg, w)
            .await?;
        Ok(())
    }

    /// `PUT /v1/agent/check/deregister/:check_id`.
    pub async fn agent_check_deregister(
        &self,
        check_id: &str,
        w: &WriteOptions,
    ) -> Result<(), ConsulError> {
        let path = format!("/v1/agent/check/deregister/{}", escape(check_id, false));
        self.write(Method::PUT, &path, Vec::new(), None, w).await?;
        Ok(())
    }

    async fn ttl(
        &self,
        verb: &str,
        check_id: &str,
        note: &str,
        w: &WriteOptions,
    ) -> Result<(), ConsulError> {
        let path = format!("/v1/agent/check/{verb}/{}", escape(check_id, false));
        let params = if note.is_empty() {
            Vec::new()
        } else {
            vec![("note".into(), note.to_string())]
        };
        self.write(Method::PUT, &path, params, None, w).await?;
        Ok(())
    }

    /// `PUT /v1/agent/check/pass/:check_id?note=`.
    pub async fn agent_check_pass(
        &self,
        check_id: &str,
        note: &str,
        w: &WriteOptions,
    ) -> Result<(), ConsulError> {
        self.ttl("pass", check_id, note, w).await
    }

    /// `PUT /v1/agent/check/warn/:check_id?note=`.
    pub async fn agent_check_warn(
        &self,
        check_id: &str,
        note: &str,
        w: &WriteOptions,
    ) -> Result<(), ConsulError> {
        self.ttl("warn", check_id, note, w).await
    }

    /// `PUT /v1/agent/check/fail/:check_id?note=`.
    pub async fn agent_check_fail(
        &self,
        check_id: &str,
        note: &str,
        w: &WriteOptions,
    ) -> Result<(), ConsulError> {
        self.ttl("fail", check_id, note, w).await
    }

    /// `PUT /v1/agent/check/update/:check_id` with `{"Status", "Output"}`.
    pub async fn agent_check_update(
        &self,
        check_id: &str,
        status: CheckStatus,
        output: &str,
        w: &WriteOptions,
    ) -> Result<(), ConsulError> {
        let path = format!("/v1/agent/check/update/{}", escape(check_id, false));
        self.put_json(
            &path,
            Vec::new(),
            &json!({"Status": status.as_str(), "Output": output}),
            w,
        )
        .await?;
        Ok(())
    }
}
