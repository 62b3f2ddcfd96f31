//! x86-64 specifics: boot entries, CPU primitives, the serial console and
//! the host's console-write port, the PVH start info, GDT/IDT and traps, and
//! the page tables behind `mm::paging::Mmu`.
pub mod apic;
pub mod boot;
pub mod console_port;
pub mod cpu;
pub mod direct;
pub mod fpu;
pub mod identity;
pub mod paging;
pub mod serial;
pub mod start_info;
pub mod stdin;
pub mod trap;
pub mod tsc;
pub mod user;
