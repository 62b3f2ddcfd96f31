//! virtio over MMIO (virtio 1.x "modern" transport, register layout of the
//! virtio spec §4.2.2, [`mmio`]): the generic transport ([`transport`]) and
//! the devices behind it, the console (device ID 3) that carries the
//! guest's statistics frames and the block device (device ID 2) serving
//! `--disk` files.
pub mod block;
pub mod console;
pub mod disk;
pub mod mmio;
pub mod transport;

pub use console::VirtioConsole;
pub use transport::{MmioTransport, VirtioDevice};
