//! Devices the kernel drives. The virtio console carries statistics frames to
//! the host; without one, callers fall back to the serial console. The
//! virtio-blk disks hold the file system mounted at `/mnt`.
pub mod mmio;
pub mod virtio_blk;
pub mod virtio_console;
pub mod virtqueue;

use spin::Mutex;

use virtio_console::Console;

static CONSOLE: Mutex<Option<Console>> = Mutex::new(None);

/// Find a virtio console and the disks among the windows the command line
/// announced (`virtio_mmio.device=`; several may be given, as QEMU's
/// microvm does).
pub fn init(windows: &[u64]) {
    let found = windows.iter().copied().find_map(Console::probe);
    *CONSOLE.lock() = found;
    virtio_blk::init(windows);
}

/// Send one statistics frame, given as its consecutive parts, over the
/// virtio console. Returns `false` when no virtio console is available, so
/// the caller falls back to serial.
pub fn send_frame(parts: &[&[u8]]) -> bool {
    match CONSOLE.try_lock() {
        Some(mut c) => c.as_mut().is_some_and(|c| c.send(parts)),
        None => false,
    }
}

/// Test mode: post bogus descriptors on the virtio console (see
/// [`Console::send_bogus`]). Returns whether a console was there and answered.
pub fn send_bogus_descriptors() -> bool {
    match CONSOLE.try_lock() {
        Some(mut c) => c.as_mut().is_some_and(|c| c.send_bogus()),
        None => false,
    }
}
