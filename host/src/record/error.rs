//! Why `mobius record` or `mobius report` could not do what it was asked.
use std::path::PathBuf;

use mobius_shared::exit::host;

/// A data file that cannot be read as one.
#[derive(Debug, thiserror::Error)]
pub enum RecordFileError {
    #[error("cannot open: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("not a mobius record file (no MBRECORD magic)")]
    NotRecord,
    #[error("record file version {0}, this mobius reads version 1")]
    Version(u32),
    #[error("the record file is truncated (no trailer: was the recording interrupted?)")]
    Truncated,
    #[error("the record file is corrupt: {0}")]
    Corrupt(&'static str),
}

/// A `mobius record` / `mobius report` failure, with its exit status.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        source: RecordFileError,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("unknown --sort key '{0}' (area, process or symbol)")]
    BadSort(String),
    #[error(
        "no workload given: mobius record [options] -- WORKLOAD [KEY=VALUE...] | PROGRAM [ARGS...] (see mobius list)"
    )]
    NoWorkload,
    #[error(transparent)]
    Stat(#[from] crate::stats::StatError),
}

impl RecordError {
    /// The `mobius` process exit status for this error.
    pub fn exit_status(&self) -> i32 {
        match self {
            RecordError::File { .. } => host::BAD_RECORD_FILE,
            RecordError::Write { .. } => host::HOST_ERROR,
            RecordError::BadSort(_) | RecordError::NoWorkload => host::USAGE,
            RecordError::Stat(e) => e.exit_status(),
        }
    }
}
const _: () = assert!(super::file::VERSION == 1, "update the Version message");
