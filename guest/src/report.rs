//! What the kernel tells the host at the end of a run: a human summary of the
//! VMM's statistics on the console and one statistics snapshot (the wire
//! format of `mobius_shared::stats`), sent over the virtio console when the
//! host announced one, else as a `mobius-stats: <hex>` line on the serial port.
//!
//! A snapshot is a 128-byte header built here plus the VMM's counter and
//! histogram blocks sent where they lie (see `mm::stats`): about a hundred
//! ring-0 instructions, where encoding it cost thousands.
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use spin::Mutex;

use crate::arch::x86_64::tsc::{TSC_BOOT, TSC_KHZ, TSC_READY};
use crate::mm::kernel::{frames_before_vmm, vmm_if_started};
use crate::mm::vmm::{Access, FaultOutcome};
use crate::println;
use mobius_shared::procstats;
use mobius_shared::stats::{wire, FrameStats, NodeStats, SnapshotReason, MAX_FRAME_LEN};

/// Prefix of the serial fallback line carrying a hex-encoded snapshot frame.
pub const SERIAL_PREFIX: &str = "mobius-stats: ";

static LAST_UNRESOLVED: Mutex<Option<(u64, Access, FaultOutcome)>> = Mutex::new(None);
static SEQ: AtomicU32 = AtomicU32::new(0);
static RUN_ID: AtomicU64 = AtomicU64::new(0);
static CONSOLE_SUMMARY: AtomicBool = AtomicBool::new(false);
/// Periodic snapshots: interval in TSC cycles (0 = off) and when the next is due.
static INTERVAL_CYCLES: AtomicU64 = AtomicU64::new(0);
static NEXT_DUE: AtomicU64 = AtomicU64::new(u64::MAX);

/// Send a snapshot every `ms` milliseconds (`stats_interval_ms=`), checked
/// by [`maybe_periodic`]; needs the TSC frequency.
pub fn set_interval_ms(ms: u64) {
    let khz = TSC_KHZ.load(Ordering::Relaxed);
    if ms == 0 || khz == 0 {
        return;
    }
    let cycles = ms.saturating_mul(khz);
    INTERVAL_CYCLES.store(cycles, Ordering::Relaxed);
    NEXT_DUE.store(
        crate::arch::x86_64::cpu::rdtsc().saturating_add(cycles),
        Ordering::Relaxed,
    );
}

/// Called by workloads between steps: sends an interval snapshot when one is
/// due. Costs one `rdtsc` and a compare otherwise.
pub fn maybe_periodic() {
    crate::recorder::safe_point();
    let now = crate::arch::x86_64::cpu::rdtsc();
    if now < NEXT_DUE.load(Ordering::Relaxed) {
        return;
    }
    send_snapshot(SnapshotReason::Interval);
    // Due again one interval after this one was sent: a snapshot slower than
    // the interval must not make every later step send one.
    let cycles = INTERVAL_CYCLES.load(Ordering::Relaxed);
    let sent = crate::arch::x86_64::cpu::rdtsc();
    NEXT_DUE.store(sent.saturating_add(cycles), Ordering::Relaxed);
}

/// Print the human summary on the console too (`summary=1`). Off by default:
/// the host decodes the snapshot and prints its own, and every console byte
/// costs a VM exit.
pub fn set_console_summary(on: bool) {
    CONSOLE_SUMMARY.store(on, Ordering::Relaxed);
}

/// Remember the run id from the command line for every snapshot.
pub fn set_run_id(id: u64) {
    RUN_ID.store(id, Ordering::Relaxed);
}

/// Remember a kernel-mode fault the VMM could not resolve, for the diagnostic.
pub fn note_fault(addr: u64, access: Access, outcome: FaultOutcome) {
    if let Some(mut last) = LAST_UNRESOLVED.try_lock() {
        *last = Some((addr, access, outcome));
    }
}

/// Send a snapshot of the statistics now. Returns `false` (and sends
/// nothing) if the VMM is busy (a fault taken with its lock held).
pub fn send_snapshot(reason: SnapshotReason) -> bool {
    let Some(vmm) = vmm_if_started() else {
        send_before_vmm(reason);
        return true;
    };
    let Some(vmm) = vmm.try_lock() else {
        return false;
    };
    let stats = vmm.fault_stats();
    let histograms = stats.wire_histograms();
    let mut header = header(
        reason,
        vmm.frames().stats(),
        vmm.node_stats(),
        histograms.is_some(),
    );
    // The process block goes with the final snapshot of a run that ran
    // programs.
    let mut block_buf = [0u8; procstats::MAX_BLOCK_LEN];
    let block = match reason {
        SnapshotReason::Exit => crate::proc::task::process_block()
            .and_then(|b| b.write(&mut block_buf).ok())
            .map(|n| &block_buf[..n]),
        SnapshotReason::Interval => None,
    };
    header.process_block_len = block.map_or(0, <[u8]>::len);
    let words = header.to_words();
    let head = header_bytes(&words);
    let block = block.unwrap_or_default();
    match histograms {
        Some(h) => send_parts(&[head, stats.wire_counters(), h, block]),
        None => send_parts(&[head, stats.wire_counters(), block]),
    }
    true
}

/// A snapshot while the VMM has not started: no fault, no node, every
/// usable frame free.
fn send_before_vmm(reason: SnapshotReason) {
    const NO_COUNTS: [u8; wire::COUNTERS_LEN] = [0; wire::COUNTERS_LEN];
    let header = header(reason, frames_before_vmm(), Default::default(), false);
    let words = header.to_words();
    send_parts(&[header_bytes(&words), &NO_COUNTS]);
}

/// The wire bytes of a header's words (the guest is little-endian, as the
/// wire format): a view, not a copy.
fn header_bytes(words: &[u64; wire::HEADER_LEN / 8]) -> &[u8] {
    const _: () = assert!(cfg!(target_endian = "little"));
    // SAFETY: an array of u64 is HEADER_LEN initialised bytes, any of which
    // may be read as u8; the view borrows `words`.
    unsafe { core::slice::from_raw_parts(words.as_ptr().cast::<u8>(), wire::HEADER_LEN) }
}

/// The header of a snapshot taken now.
fn header(
    reason: SnapshotReason,
    frames: FrameStats,
    nodes: NodeStats,
    histograms: bool,
) -> wire::Header {
    wire::Header {
        reason,
        seq: SEQ.fetch_add(1, Ordering::Relaxed),
        run_id: RUN_ID.load(Ordering::Relaxed),
        tsc_khz: TSC_KHZ.load(Ordering::Relaxed),
        tsc: crate::arch::x86_64::cpu::rdtsc(),
        tsc_boot: TSC_BOOT.load(Ordering::Relaxed),
        tsc_ready: TSC_READY.load(Ordering::Relaxed),
        frames,
        nodes,
        histograms,
        process_block_len: 0,
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Send one frame, given as its consecutive parts, to the host: over the
/// virtio console, else as one hex line on the serial console.
fn send_parts(parts: &[&[u8]]) {
    if crate::dev::send_frame(parts) {
        return;
    }
    // Hex in FIFO-sized pieces: one serial write per 8 bytes, not per digit.
    crate::print!("{SERIAL_PREFIX}");
    let mut hex = [0u8; 16];
    for chunk in parts.iter().flat_map(|p| p.chunks(8)) {
        for (i, b) in chunk.iter().enumerate() {
            hex[2 * i] = HEX[usize::from(b >> 4)];
            hex[2 * i + 1] = HEX[usize::from(b & 0xf)];
        }
        crate::arch::x86_64::serial::Serial::write_bytes(&hex[..2 * chunk.len()]);
    }
    println!();
}

/// Test mode (`bad-frames`): what a broken or hostile guest could send —
/// bad hex, frames too short for any layout, an oversized line, a bad magic, an
/// unknown wire version and a header without its counters. The host must count them, warn, and go on.
pub fn send_bad_frames() {
    println!("{SERIAL_PREFIX}zz");
    println!("{SERIAL_PREFIX}0");
    println!("{SERIAL_PREFIX}0700ff00");
    crate::print!("{SERIAL_PREFIX}");
    for _ in 0..(MAX_FRAME_LEN / 32 + 1) {
        crate::print!("0101010101010101010101010101010101010101010101010101010101010101");
    }
    println!();
    if crate::dev::send_bogus_descriptors() {
        println!("bad-frames: bogus virtio descriptors sent and returned");
    }
    // Frames with a good layout but a bad magic, an unknown version, and
    // a header without its counter block.
    let header = wire::Header {
        reason: SnapshotReason::Interval,
        seq: 0,
        run_id: 0,
        tsc_khz: 0,
        tsc: 0,
        tsc_boot: 0,
        tsc_ready: 0,
        frames: Default::default(),
        nodes: Default::default(),
        histograms: false,
        process_block_len: 0,
    };
    let mut head = [0u8; wire::HEADER_LEN];
    let counters = [0u8; wire::COUNTERS_LEN];
    header.write(&mut head);
    head[0] ^= 1;
    send_parts(&[&head, &counters]);
    header.write(&mut head);
    head[4..6].copy_from_slice(&u16::MAX.to_le_bytes());
    send_parts(&[&head, &counters]);
    header.write(&mut head);
    send_parts(&[&head]);
}

/// End of a normal run: the last fault records, summary and final snapshot.
pub fn final_report() {
    crate::recorder::finish();
    if CONSOLE_SUMMARY.load(Ordering::Relaxed) {
        if let Some(vmm) = vmm_if_started().and_then(|v| v.try_lock()) {
            let _ = vmm.write_summary(&mut crate::console::Console);
        }
    }
    send_snapshot(SnapshotReason::Exit);
}

/// End of a crashed run: what the VMM said about the fault, then the report.
pub fn fatal_report() {
    if let Some(Some((addr, access, outcome))) = LAST_UNRESOLVED.try_lock().map(|l| *l) {
        println!(
            "  VMM: fault at {addr:#x} ({}{}) not resolved: {outcome}",
            if access.user { "user " } else { "kernel " },
            if access.write { "write" } else { "read" }
        );
    }
    final_report();
}
