//! The renderer's error: a parse error with the template name, line and column (as Go prints
//! them), or an execution error naming the action that failed.

/// A template that failed to parse or execute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template: {name}:{line}:{col}: {message}")]
    Parse {
        name: String,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("template: {name}:{line}:{col}: executing {name:?}: {message}")]
    Exec {
        name: String,
        line: usize,
        col: usize,
        message: String,
    },
}

impl TemplateError {
    /// The message without the position prefix.
    pub fn message(&self) -> &str {
        match self {
            TemplateError::Parse { message, .. } | TemplateError::Exec { message, .. } => message,
        }
    }
}
