//! Dispatch of the VMM fault workloads (`crate::scenarios`) by name.
use mobius_shared::exit::GuestStatus;

/// Run fault workload `name`, or `None` if there is no such workload.
pub fn run(_name: &str, _line: &str) -> Option<GuestStatus> {
    None
}
