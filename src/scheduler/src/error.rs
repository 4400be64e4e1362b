//! The scheduler's errors: what went wrong with an evaluation, worded for an operator.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SchedulerError {
    /// The job (or evaluation) type has no scheduler in Caravan yet.
    #[error(
        "scheduler for job type {0:?} is not implemented yet in Caravan; only \"service\" and \"batch\" jobs can be scheduled"
    )]
    Unsupported(String),
    /// The type is not one Nomad knows.
    #[error("unknown job type {0:?}: expected service, batch, system or sysbatch")]
    UnknownType(String),
    /// The evaluation names no job.
    #[error("evaluation {0} has no job ID; nothing to schedule")]
    MissingJobId(String),
}
