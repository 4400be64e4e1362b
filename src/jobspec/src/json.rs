//! Reading a job in Nomad's API JSON: `{"Job": {...}}` (the `PUT /v1/jobs` payload) or a bare
//! Job object.

use crate::error::JobspecError;
use caravan_structs::Job;
use serde_json::Value as Json;

pub(crate) fn parse(src: &str) -> Result<Job, JobspecError> {
    let value: Json = serde_json::from_str(src).map_err(|e| JobspecError::Json {
        line: e.line(),
        col: e.column(),
        message: e.to_string(),
    })?;
    let job_value = match value {
        Json::Object(mut m) => match m.remove("Job") {
            Some(job @ Json::Object(_)) => job,
            Some(other) => {
                return Err(JobspecError::Json {
                    line: 0,
                    col: 0,
                    message: format!("\"Job\" must be an object, got {other}"),
                })
            }
            None => Json::Object(m),
        },
        other => {
            return Err(JobspecError::Json {
                line: 0,
                col: 0,
                message: format!("a job must be a JSON object, got {other}"),
            })
        }
    };
    let mut job_value = caravan_structs::strip_nulls(job_value);
    if let Json::Object(m) = &mut job_value {
        crate::canonical::apply(m);
    }
    let mut job: Job = serde_json::from_value(job_value).map_err(|e| JobspecError::Json {
        line: 0,
        col: 0,
        message: format!("invalid job: {e}"),
    })?;
    job.canonicalize();
    Ok(job)
}
