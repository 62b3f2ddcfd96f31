//! Guest fault statistics on the host: collecting snapshot frames from the
//! guest (over the virtio console, or `mobius-stats:` serial lines), decoding
//! them within bounds, and presenting them like `perf stat`.
//!
//! The guest is untrusted: frames are capped at [`MAX_FRAME_LEN`] before
//! decoding, and every malformed, oversized or unknown-version frame is
//! counted in [`DecodeErrors`] and reported while the run goes on. Whatever
//! it sends, the host keeps at most [`MAX_RETAINED_SNAPSHOTS`] snapshots and
//! prints at most one `-I` line set per interval ([`interval`]).
//!
//! The types a caller reads: a [`Snapshot`] (the guest's counters at one
//! moment: a [`FaultCounter`](mobius_shared::stats::FaultCounter) per
//! [`FaultKind`], frames, nodes), the [`StatsCollector`] that decodes them,
//! and [`events`], which turns a snapshot and a [`crate::RunOutcome`] into
//! `mobius stat`'s named counters. No KVM is needed to try them on a
//! snapshot made by hand:
//!
//! ```
//! use mobius::stats::{events, FaultKind, Snapshot, StatsCollector, MAX_FRAME_LEN};
//!
//! let mut snap = Snapshot::new(7, 2_000_000);
//! snap.faults[FaultKind::DemandZero.index()].count = 100;
//! snap.faults[FaultKind::Image.index()].count = 40;
//!
//! // The guest sends it as one wire-v3 frame; the collector decodes it.
//! let mut buf = vec![0u8; MAX_FRAME_LEN];
//! let frame = snap.encode(&mut buf).expect("fits");
//! let mut collector = StatsCollector::new();
//! collector.push_frame(frame);
//! let got = collector.final_snapshot().expect("decoded");
//! assert_eq!(got.total_faults(), 140);
//!
//! // The same counters under `mobius stat`'s (and perf's) names.
//! let names = ["page-faults", "major-faults", "minor-faults"].map(String::from);
//! let counted = events::select(&events::from_snapshot(got), &names);
//! let values: Vec<_> = counted.iter().map(|e| e.value).collect();
//! assert_eq!(values, [Some(140.0), Some(40.0), Some(100.0)]);
//! ```
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
