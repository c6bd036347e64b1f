//! What is wrong with a case file: the file, the line and column when known, and what.

use std::{fmt, path::PathBuf};

/// A case file that cannot be run, and why.
#[derive(Debug)]
#[non_exhaustive]
pub struct CaseFileError {
    /// The file (or directory) at fault.
    pub file: PathBuf,
    /// Its line (from 1), when known.
    pub line: Option<usize>,
    /// Its column (from 1), when known.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl CaseFileError {
    pub(crate) fn new(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        CaseFileError { file: file.into(), line: None, column: None, message: message.into(), source: None }
    }

    pub(crate) fn at(mut self, line: Option<usize>, column: Option<usize>) -> Self {
        self.line = line;
        self.column = column;
        self
    }

    pub(crate) fn caused_by(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }
}

impl fmt::Display for CaseFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for CaseFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|source| source as &(dyn std::error::Error + 'static))
    }
}
