//! virtio over MMIO (virtio 1.x "modern" transport, register layout of the
//! virtio spec §4.2.2) and the console device (device ID 3) that carries the
//! guest's statistics frames.
pub mod console;
pub mod mmio;

pub use console::VirtioConsole;
