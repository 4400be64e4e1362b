//! Resolving an ID or ID prefix typed on the command line to one object of a list endpoint
//! (`/v1/allocations`, `/v1/evaluations`, `/v1/deployments`, `/v1/nodes`), the way Nomad's
//! CLI does: at least two characters, the UUID prefix sanitized, an exact ID winning, no
//! match an error, and several matches listed for the user to choose from (exit code 1).

use super::fail;
use crate::client::Client;
use crate::prefix::{narrow_to_prefix, sanitize_uuid_prefix};
use crate::Ctx;
use serde::de::DeserializeOwned;

/// One list endpoint and how its objects are named and shown when a prefix is resolved.
pub(crate) struct ListLookup<T> {
    /// The list endpoint, queried with `?prefix=`, e.g. `/v1/allocations`.
    pub endpoint: &'static str,
    /// What a failed list request is reported as, e.g. `Error querying allocation`.
    pub query_error: &'static str,
    /// The plural noun of "Prefix matched multiple {plural}".
    pub plural: &'static str,
    /// The ID of one listed object.
    pub id_of: fn(&T) -> &str,
    /// The error when nothing matches, given the typed ID and the sanitized prefix.
    pub no_match: fn(id: &str, prefix: &str) -> String,
    /// The table listing ambiguous matches.
    pub table: fn(&Ctx<'_>, &[T]) -> String,
}

impl<T: DeserializeOwned> ListLookup<T> {
    /// The one listed object `id` (an ID or prefix) names; on failure the error is printed
    /// and the exit code returned.
    pub(crate) async fn resolve(
        &self,
        ctx: &mut Ctx<'_>,
        client: &Client,
        id: &str,
    ) -> Result<T, i32> {
        if id.len() == 1 {
            ctx.ui
                .error("Identifier must contain at least two characters.");
            return Err(1);
        }
        let prefix = sanitize_uuid_prefix(id);
        let items: Vec<T> = match client
            .get(self.endpoint, &[("prefix", prefix.clone())], None)
            .await
        {
            Ok((items, _)) => items,
            Err(e) => return Err(fail(ctx, self.query_error, e)),
        };
        let mut items = narrow_to_prefix(items, id, &prefix, self.id_of);
        match items.len() {
            0 => {
                ctx.ui.error(&(self.no_match)(id, &prefix));
                Err(1)
            }
            1 => Ok(items.remove(0)),
            _ => {
                let table = (self.table)(ctx, &items);
                ctx.ui.error(&format!(
                    "Prefix matched multiple {}\n\n{table}",
                    self.plural
                ));
                Err(1)
            }
        }
    }
}
