//! Placeholder; the guest-building build script lands with the boot work.
fn main() {}
