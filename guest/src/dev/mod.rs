//! Devices the kernel drives. The virtio console carries statistics frames to
//! the host; without one, callers fall back to the serial console. The
//! virtio-blk disks hold the file system mounted at `/mnt`.
pub mod mmio;
pub mod virtio_blk;
pub mod virtio_console;
pub mod virtqueue;

use alloc::vec::Vec;
use spin::Mutex;

use virtio_console::Console;

static CONSOLE: Mutex<Option<Console>> = Mutex::new(None);

/// Find a virtio console and the disks among the windows the command line
/// announced (`virtio_mmio.device=`; several may be given, as QEMU's
/// microvm does).
pub fn init(windows: &[u64]) {
    let found = windows
        .iter()
        .copied()
        .find_map(|w| Some((w, Console::probe(w)?)));
    let console = found.as_ref().map(|&(w, _)| w);
    *CONSOLE.lock() = found.map(|(_, c)| c);
    // Each register read is a VM exit: the console's window is not probed
    // again.
    virtio_blk::init(windows, console);
}

/// QEMU microvm's virtio-mmio transports: 24 windows of 512 bytes from
/// 0xFEB0_0000 (`hw/i386/microvm.c`); devices are plugged into the last
/// ones first.
const MICROVM_MMIO_BASE: u64 = 0xFEB0_0000;
const MICROVM_TRANSPORTS: u64 = 24;
const MICROVM_WINDOW: u64 = 0x200;

/// The virtio-mmio windows to probe when the kernel did not come from
/// `mobius` (no boot parameters; `mobius`'s own parse, `parsed`, is all
/// there is otherwise): those `parsed` holds (the guest's parse, at most
/// `MAX_VIRTIO_DEVICES`), every further `virtio_mmio.device=` word of
/// `line`, and QEMU microvm's transports, which QEMU announces only to
/// Linux kernels (it edits a bzImage's command line, not a PVH kernel's).
pub fn windows_without_host(line: &str, parsed: &[u64]) -> Vec<u64> {
    let mut all: Vec<u64> = parsed.to_vec();
    let announced = line
        .split(' ')
        .filter_map(|w| w.strip_prefix("virtio_mmio.device="))
        .filter_map(mobius_shared::cmdline::virtio_mmio_base);
    let microvm = (0..MICROVM_TRANSPORTS).map(|k| MICROVM_MMIO_BASE + k * MICROVM_WINDOW);
    for base in announced.chain(microvm) {
        if !all.contains(&base) {
            all.push(base);
        }
    }
    all
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
