//! Guest fault statistics on the host: collecting snapshot frames from the
//! guest (over the virtio console, or `mobius-stats:` serial lines), decoding
//! them within bounds, and presenting them like `perf stat`.
//!
//! The guest is untrusted: frames are capped at [`MAX_FRAME_LEN`] before
//! decoding, and every malformed, oversized or unknown-version frame is
//! counted in [`DecodeErrors`] and reported while the run goes on. Whatever
//! it sends, the host keeps at most [`MAX_RETAINED_SNAPSHOTS`] snapshots and
//! prints at most one `-I` line set per interval ([`interval`]).
pub mod budget;
pub mod catalogue;
pub mod collector;
pub mod command;
pub mod error;
pub mod errors;
pub mod events;
#[cfg(test)]
mod extremes;
pub mod format;
pub mod hooks;
pub mod interval;
pub mod output;
pub mod serial;

pub use collector::{SharedCollector, StatsCollector, MAX_RETAINED_SNAPSHOTS, SERIAL_PREFIX};
pub use error::StatError;
pub use errors::DecodeErrors;
pub use hooks::StatsHooks;
pub use mobius_shared::stats::{FaultKind, Snapshot, MAX_FRAME_LEN};
pub use serial::SerialStatsFilter;
