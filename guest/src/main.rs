//! Guest kernel entry binary. On the host target this is an empty program so
//! that `cargo build --workspace` works; the kernel proper is built for
//! `x86_64-unknown-none`.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {}
