//! The server's snapshot operations behind `GET/PUT /v1/operator/snapshot`: save the state
//! as an archive, inspect one, and restore one (replacing the whole state).

use super::snapshot::{read_archive, write_archive, SnapshotMeta};
use super::TERM;
use crate::server::{Server, ServerError};
use crate::state::snapshot::StateImage;
use std::io::{Read, Write};

impl Server {
    /// Writes an archive of the state as it is now (`operator snapshot save`).
    pub fn snapshot_save(&self, w: impl Write) -> Result<SnapshotMeta, ServerError> {
        let tables = self.store.snapshot();
        write_archive(w, &StateImage::from_tables(&tables), TERM)
            .map_err(|e| ServerError::Internal(e.to_string()))
    }

    /// Reads and verifies an archive without touching the state (`operator snapshot
    /// inspect`, and the first step of a restore).
    pub fn snapshot_inspect(r: impl Read) -> Result<SnapshotMeta, ServerError> {
        read_archive(r, false)
            .map(|(m, _)| m)
            .map_err(|e| ServerError::BadRequest(e.to_string()))
    }

    /// Replaces the whole state with an archive's (`operator snapshot restore`). The restored
    /// state takes the index after both the archive's and the current one, so indexes only
    /// grow; on a durable server it becomes the only snapshot and the log is emptied first.
    /// A damaged or newer archive is refused and nothing changes. Returns the new index.
    pub fn snapshot_restore(&self, r: impl Read) -> Result<u64, ServerError> {
        let (meta, image) =
            read_archive(r, true).map_err(|e| ServerError::BadRequest(e.to_string()))?;
        let mut image =
            image.ok_or_else(|| ServerError::BadRequest("snapshot has no state".into()))?;
        let mut last = match self.log.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let index = (*last).max(meta.index) + 1;
        image.reindex(index);
        // Checked before anything is written: a table this build does not know is refused.
        let tables = image
            .clone()
            .into_tables(self.config.job_tracked_versions)
            .map_err(ServerError::BadRequest)?;
        if let Some(p) = &self.persist {
            p.install(&image).map_err(|e| {
                ServerError::Internal(format!("cannot persist the restored state: {e}"))
            })?;
        }
        self.store.restore(tables);
        *last = index;
        drop(last);
        tracing::warn!(
            snapshot = %meta.id,
            "state replaced by a restored snapshot (taken at index {}), now at index {index}",
            meta.index
        );
        self.restore_runtime();
        Ok(index)
    }
}
