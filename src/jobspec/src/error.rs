//! The one error type of the crate: every failure says where (file, line, column) and, for
//! semantic problems, which block (`group "cache" -> task "redis"`) it was found in.

use std::fmt;

/// Why a job file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobspecError {
    /// The text is not valid HCL. Displays as `<file>:<line>:<col>: <message>`.
    #[error("{file}:{line}:{col}: {message}")]
    Syntax {
        file: String,
        line: usize,
        col: usize,
        message: String,
    },
    /// The HCL is well formed but does not describe a valid job (unknown argument, wrong type,
    /// missing variable value, ...). Displays as `<file>:<line>:<col>: <path>: <message>`, the
    /// path being omitted when the problem is at the top level of the file.
    #[error("{file}:{line}:{col}: {}{message}", PathPrefix(path))]
    Invalid {
        file: String,
        line: usize,
        col: usize,
        /// The block path, e.g. `group "cache" -> task "redis"`; empty at the top level.
        path: String,
        message: String,
    },
    /// A JSON job that cannot be read. Line and column are 1-based, 0 when unknown.
    #[error("invalid JSON job (line {line}, column {col}): {message}")]
    Json {
        line: usize,
        col: usize,
        message: String,
    },
    /// Several problems found in one reading, in file order; displayed one per line.
    #[error("{}", Lines(.0))]
    Multiple(Vec<JobspecError>),
}

struct Lines<'a>(&'a [JobspecError]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

struct PathPrefix<'a>(&'a str);

impl fmt::Display for PathPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, "{}: ", self.0)
        }
    }
}

impl JobspecError {
    /// The 1-based line of the (first) problem (0 when unknown).
    pub fn line(&self) -> usize {
        match self {
            JobspecError::Syntax { line, .. }
            | JobspecError::Invalid { line, .. }
            | JobspecError::Json { line, .. } => *line,
            JobspecError::Multiple(all) => all.first().map_or(0, JobspecError::line),
        }
    }

    /// The 1-based column of the (first) problem (0 when unknown).
    pub fn column(&self) -> usize {
        match self {
            JobspecError::Syntax { col, .. }
            | JobspecError::Invalid { col, .. }
            | JobspecError::Json { col, .. } => *col,
            JobspecError::Multiple(all) => all.first().map_or(0, JobspecError::column),
        }
    }

    /// The message of the (first) problem, without location or path.
    pub fn message(&self) -> &str {
        match self {
            JobspecError::Syntax { message, .. }
            | JobspecError::Invalid { message, .. }
            | JobspecError::Json { message, .. } => message,
            JobspecError::Multiple(all) => all.first().map_or("", JobspecError::message),
        }
    }

    /// Every single problem, in order (one for a plain error).
    pub fn problems(&self) -> Vec<&JobspecError> {
        match self {
            JobspecError::Multiple(all) => all.iter().flat_map(JobspecError::problems).collect(),
            one => vec![one],
        }
    }

    /// `Ok` for no errors, the error itself for one, `Multiple` (flattened, in file order)
    /// for more.
    pub(crate) fn combine(errors: Vec<JobspecError>) -> Result<(), JobspecError> {
        let mut flat: Vec<JobspecError> = Vec::new();
        for e in errors {
            match e {
                JobspecError::Multiple(inner) => flat.extend(inner),
                one => flat.push(one),
            }
        }
        flat.sort_by_key(|e| (e.line(), e.column()));
        match flat.len() {
            0 => Ok(()),
            1 => Err(flat.remove(0)),
            _ => Err(JobspecError::Multiple(flat)),
        }
    }
}

/// Maps byte offsets of a source text to 1-based line and column (columns count characters).
#[derive(Debug, Clone)]
pub(crate) struct LineIndex<'a> {
    src: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { src, starts }
    }

    /// `(line, column)` of a byte offset, both 1-based.
    pub(crate) fn locate(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.src.len());
        let line = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.starts.get(line).copied().unwrap_or(0);
        let col = self
            .src
            .get(start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(offset - start);
        (line + 1, col + 1)
    }
}

/// Where a problem is: a byte offset into the file, or none (reported as 1:1).
pub(crate) type Pos = Option<usize>;

/// Everything needed to turn a position and a block path into a [`JobspecError`].
pub(crate) struct Reporter<'a> {
    pub(crate) file: &'a str,
    pub(crate) index: LineIndex<'a>,
}

impl<'a> Reporter<'a> {
    pub(crate) fn new(file: &'a str, src: &'a str) -> Self {
        Reporter {
            file,
            index: LineIndex::new(src),
        }
    }

    pub(crate) fn invalid(&self, pos: Pos, path: &str, message: impl Into<String>) -> JobspecError {
        let (line, col) = pos.map(|p| self.index.locate(p)).unwrap_or((1, 1));
        JobspecError::Invalid {
            file: self.file.to_string(),
            line,
            col,
            path: path.to_string(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_lines_and_columns() {
        let idx = LineIndex::new("ab\ncdé\nx");
        assert_eq!(idx.locate(0), (1, 1));
        assert_eq!(idx.locate(1), (1, 2));
        assert_eq!(idx.locate(3), (2, 1));
        assert_eq!(idx.locate(8), (3, 1));
    }

    #[test]
    fn displays_path_between_location_and_message() {
        let e = JobspecError::Invalid {
            file: "a.hcl".into(),
            line: 3,
            col: 5,
            path: "group \"g\"".into(),
            message: "boom".into(),
        };
        assert_eq!(e.to_string(), "a.hcl:3:5: group \"g\": boom");
    }
}
