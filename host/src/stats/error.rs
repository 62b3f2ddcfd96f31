//! Why `mobius stat` could not do what it was asked.
use std::path::PathBuf;

use mobius_shared::exit::host;

/// A `mobius stat` failure, with its exit status.
#[derive(Debug, thiserror::Error)]
pub enum StatError {
    #[error(
        "no workload given: mobius stat [options] -- WORKLOAD [KEY=VALUE...] | PROGRAM [ARGS...] (see mobius list)"
    )]
    NoWorkload,
    #[error("unknown workload '{0}' (see mobius list)")]
    UnknownWorkload(String),
    #[error("workload parameter '{0}' is not KEY=VALUE")]
    NotKeyValue(String),
    #[error("workload {workload} has no parameter '{key}' (see mobius list)")]
    UnknownParameter { workload: String, key: String },
    #[error("workload {workload}: {why}")]
    BadParameter { workload: String, why: String },
    #[error("--disk cannot be used with -r N > 1 yet (each run's disk workers would start under the seccomp filter)")]
    DisksWithRepeat,
    #[error("unknown event '{0}' (see mobius stat --list-events)")]
    UnknownEvent(String),
    #[error("cannot open {}: {source}", path.display())]
    OpenOutput {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the counters: {0}")]
    WriteOutput(std::io::Error),
    /// Packing the PROGRAM or booting the guest failed.
    #[error(transparent)]
    Run(#[from] crate::Error),
}

impl StatError {
    /// The `mobius` process exit status for this error.
    pub fn exit_status(&self) -> i32 {
        match self {
            StatError::OpenOutput { .. } | StatError::WriteOutput(_) => host::HOST_ERROR,
            StatError::Run(e) => e.exit_status(),
            _ => host::USAGE,
        }
    }
}

impl From<crate::boot::initramfs::InitramfsError> for StatError {
    fn from(e: crate::boot::initramfs::InitramfsError) -> Self {
        StatError::Run(e.into())
    }
}
