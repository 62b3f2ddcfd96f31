//! The crate's top-level error, and its mapping to process exit statuses
//! ([`mobius_shared::exit::host`]).

use mobius_shared::exit::host;

use crate::boot::initramfs::InitramfsError;
use crate::boot::BootError;
use crate::vm::VmError;

/// Anything that stops a run before the guest could finish.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Boot(#[from] BootError),
    #[error(transparent)]
    Vm(#[from] VmError),
    /// The PROGRAM, a `--file`, `--env` or `--initrd` is unusable.
    #[error(transparent)]
    Initramfs(#[from] InitramfsError),
    /// A [`crate::RunHooks`] implementation failed (e.g. device setup).
    #[error("{0}")]
    Hook(Box<dyn std::error::Error + Send + Sync>),
    /// A `--disk` is unusable.
    #[error(transparent)]
    Disk(#[from] crate::devices::virtio::disk::DiskError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error("{0}")]
    Host(String),
}

impl Error {
    /// The `mobius` process exit status for this error.
    pub fn exit_status(&self) -> i32 {
        match self {
            Error::Boot(e) if e.is_usage() => host::USAGE,
            Error::Boot(e) if e.is_bad_kernel() => host::BAD_KERNEL,
            Error::Vm(e) if e.is_kvm_unavailable() => host::KVM_UNAVAILABLE,
            Error::Vm(VmError::MemorySize { .. }) => host::USAGE,
            Error::Initramfs(_) => host::USAGE,
            Error::Disk(_) => host::BAD_DISK,
            _ => host::HOST_ERROR,
        }
    }
}
