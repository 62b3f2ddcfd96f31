//! Sending fault records to the host (`mobius record`, `record=N` on the
//! command line): the kernel's side of [`crate::mm::record`].
//!
//! The fault path only appends to the ring. The ring goes to the host, in
//! frames of [`MAX_RECORDS_PER_FRAME`] records over the virtio console (one
//! descriptor chain each: the 48-byte header and the records where they lie
//! in the ring), at the kernel's safe points: on the way back to ring 3
//! after any trap or system call, and between a built-in workload's steps,
//! when the ring is half full; whenever a process ends; and at the end of
//! the run, whose last frame is marked final. Faults between two safe points
//! that do not fit in the ring are dropped and counted (a system call that
//! faults many pages, with a small `record_ring=`). Without a virtio console
//! (QEMU) nothing can be sent: records are dropped, counted.
use mobius_shared::cmdline::BootOptions;
use mobius_shared::record::{DEFAULT_RING, FRAME_HEADER_LEN, MAX_RECORDS_PER_FRAME};

use crate::mm::record::{self, slot_bytes};
use crate::println;

// The host resolves a PIE's instruction pointers with the same load bias.
const _: () = assert!(crate::proc::exec::PIE_BASE == mobius_shared::record::PIE_LOAD_BIAS);

/// Start recording if the command line asks for it (`record=N`,
/// `record_ring=R`).
pub fn init(options: &BootOptions, tsc_khz: u64) {
    let Some(sample) = options.record else {
        return;
    };
    let ring = options.record_ring.unwrap_or(DEFAULT_RING);
    if !record::start(sample, ring, tsc_khz) {
        println!(
            "mobius-guest: record={sample} record_ring={ring}: cannot record (sample and ring must be at least 1, the ring at most {}, and fit in the heap)",
            mobius_shared::record::MAX_RING
        );
    }
}

/// A safe point: drain when the ring is half full. One load and a branch
/// otherwise.
#[inline]
pub fn safe_point() {
    if record::drain_wanted() {
        drain(false);
    }
}

/// A process ended: send what its faults left in the ring.
pub fn process_ended() {
    if record::on() {
        drain(false);
    }
}

/// The end of the run: send everything and the final counts.
pub fn finish() {
    if record::on() {
        drain(true);
    }
}

/// Send every waiting record; with `last`, end with a frame marked final
/// (possibly without records). Records that cannot be sent are dropped,
/// counted.
fn drain(last: bool) {
    let Some(mut guard) = record::try_ring() else {
        return;
    };
    let Some(ring) = guard.as_mut() else { return };
    loop {
        let n = ring.oldest(MAX_RECORDS_PER_FRAME).len();
        let final_frame = last && n == ring.len();
        if n == 0 && !final_frame {
            return;
        }
        let header = ring.next_header(n, final_frame).to_words();
        let records = slot_bytes(ring.oldest(MAX_RECORDS_PER_FRAME));
        let sent = if n == 0 {
            crate::dev::send_frame(&[header_bytes(&header)])
        } else {
            crate::dev::send_frame(&[header_bytes(&header), records])
        };
        if !sent {
            let all = ring.len();
            ring.discard(all);
            return;
        }
        ring.consume(n);
        if final_frame {
            return;
        }
    }
}

/// The wire bytes of a frame header's words (the guest is little-endian).
fn header_bytes(words: &[u64; FRAME_HEADER_LEN / 8]) -> &[u8] {
    const _: () = assert!(cfg!(target_endian = "little"));
    // SAFETY: an array of u64 is FRAME_HEADER_LEN initialised bytes, any of
    // which may be read as u8; the view borrows `words`.
    unsafe { core::slice::from_raw_parts(words.as_ptr().cast::<u8>(), FRAME_HEADER_LEN) }
}
