//! The guest kernel binary. Everything lives in the library (`kmain`, `arch`,
//! `mm`...); this file only makes sure the entry code is linked in. On the host
//! target it is an empty program so that `cargo build --workspace` works.
#![cfg_attr(target_os = "none", no_std, no_main)]

/// Reference the kernel entry so the linker keeps the library's boot code.
#[cfg(target_os = "none")]
#[used]
static KERNEL_ENTRY: extern "C" fn(u64) -> ! = mobius_guest::kmain::mobius_kernel_entry;

#[cfg(not(target_os = "none"))]
fn main() {}
