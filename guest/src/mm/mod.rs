//! Memory management: physical frames, the page-table abstraction, the Möbius
//! VMM and fault statistics.
//!
//! What the kernel calls (see `vmm` for the Möbius name table):
//!
//! * init: [`vmm::Vmm::new`] with a [`vmm::VmmConfig`] (PVH RAM regions,
//!   reserved ranges, a [`frame::FrameZeroing`] hook, a
//!   [`stats::CycleSource`]) and the arch [`paging::Mmu`]; keep the result in
//!   a `spin::Mutex` ([`vmm::VmmLock`]).
//! * page faults: [`fault::handle`]`(&lock, space, cr2, access)`.
//! * areas: `alloc`, `map`, `map_phys`, `map_file`, `map_image`,
//!   `alloc_callback`, `reserve`, `free`, `lookup`, `share`, `open_shared`,
//!   `map_shared`, `close_handle`, `unexport` on [`vmm::Vmm`].
//! * in-guest tests: [`selftest::run`] (pass/fail counts).
//! * idle: [`vmm::Vmm::zero_some`]; statistics: [`vmm::Vmm::fill_snapshot`].
//! * fault records (`mobius record`): [`record::start`]; the fault path
//!   appends to the ring behind [`record::on`], the kernel drains it.
pub mod fault;
pub mod frame;
pub mod heap;
#[cfg(target_os = "none")]
pub mod kernel;
pub mod paging;
pub mod record;
pub mod selftest;
pub mod soft_mmu;
pub mod stats;
pub mod uaccess;
pub mod vmm;
