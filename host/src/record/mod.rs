//! `mobius record` and `mobius report`: the `perf record -e page-faults`
//! of a microVM.
//!
//! `record` boots the guest with `record=N record_ring=R`; the guest's
//! fault path appends one 48-byte record per fault (or one in N) to a
//! bounded ring, which the guest drains over the virtio console in frames
//! of their own ([`mobius_shared::record`], magic `MbRc`). The statistics
//! collector hands those frames to a [`sink::Sink`], which checks them and
//! streams their records into the data file ([`file`]); the host keeps
//! counts, never the records. `report` reads the file back and prints
//! faults and cycles by area, by process and by function ([`report`]), the
//! functions found in the programs' ELF symbols ([`elf`], [`v0`]), and
//! draws a heat map ([`svg`]).
pub mod command;
pub mod elf;
pub mod error;
pub mod file;
pub mod report;
pub mod sink;
pub mod svg;
pub mod v0;

pub use error::{RecordError, RecordFileError};
