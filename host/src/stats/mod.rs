//! Guest fault statistics on the host: collecting snapshot frames from the
//! guest (over virtio, or `mobius-stats:` serial lines), decoding them
//! within bounds, and presenting them like `perf stat`.
//!
//! The guest is untrusted: frames are capped at [`MAX_FRAME_LEN`] before
//! decoding, and every malformed, oversized or unknown-version frame is
//! counted in [`DecodeErrors`] and reported while the run goes on.
pub mod catalogue;
pub mod collector;
pub mod command;
pub mod error;
pub mod events;
pub mod format;
pub mod hooks;
pub mod interval;
pub mod output;

pub use collector::{
    DecodeErrors, SerialStatsFilter, SharedCollector, StatsCollector, SERIAL_PREFIX,
};
pub use error::StatError;
pub use hooks::StatsHooks;
pub use mobius_shared::stats::{FaultKind, Snapshot, MAX_FRAME_LEN};
