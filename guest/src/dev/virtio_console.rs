//! A polled virtio-mmio (modern, version 2) console driver, transmit only:
//! one descriptor chain and one notification per statistics frame.
//!
//! Our own rather than the virtio-drivers crate: we need one queue and no
//! interrupts, and every ring-0 instruction is emulated on kvm_pvm, so the
//! send path is a few ring writes and one MMIO write: the frame's parts go
//! out as chained descriptors pointing where they lie, never copied. The
//! rings are a static (physical == virtual here).
use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};
use core::sync::atomic::{fence, Ordering};

use super::mmio::Regs;
use mobius_shared::virtio_mmio::{
    DESC_F_NEXT, DEVICE_ID_CONSOLE, F_VERSION_1, QUEUE_DESC_LOW, QUEUE_DEVICE_LOW,
    QUEUE_DRIVER_LOW, QUEUE_NOTIFY, QUEUE_NUM, QUEUE_NUM_MAX, QUEUE_READY, QUEUE_SEL, STATUS,
    STATUS_ACKNOWLEDGE, STATUS_DRIVER, STATUS_DRIVER_OK, STATUS_FEATURES_OK,
};

const QSIZE: u16 = 4;
const TRANSMIT_QUEUE: u32 = 1;
/// Most parts one frame may have (one descriptor each).
pub const MAX_PARTS: usize = QSIZE as usize;

#[repr(C)]
#[derive(Clone, Copy)]
struct Desc {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

/// Split-ring memory for the transmit queue.
#[repr(C, align(4096))]
struct Rings {
    desc: [Desc; QSIZE as usize],
    avail_flags: u16,
    avail_idx: u16,
    avail_ring: [u16; QSIZE as usize],
    used_event: u16,
    _pad: [u16; 3],
    used_flags: u16,
    used_idx: u16,
    used_ring: [[u32; 2]; QSIZE as usize],
    avail_event: u16,
}

static mut RINGS: Rings = Rings {
    desc: [Desc {
        addr: 0,
        len: 0,
        flags: 0,
        next: 0,
    }; QSIZE as usize],
    avail_flags: 0,
    avail_idx: 0,
    avail_ring: [0; QSIZE as usize],
    used_event: 0,
    _pad: [0; 3],
    used_flags: 0,
    used_idx: 0,
    used_ring: [[0; 2]; QSIZE as usize],
    avail_event: 0,
};

/// An initialised device.
pub struct Console {
    regs: Regs,
    sent: u16,
}

impl Console {
    /// Probe and set up the device at `base`; `None` if it is not a modern
    /// virtio console or refuses our features.
    pub fn probe(base: u64) -> Option<Console> {
        let r = Regs::probe(base, DEVICE_ID_CONSOLE)?;
        r.negotiate(F_VERSION_1)?;
        r.wr(QUEUE_SEL, TRANSMIT_QUEUE);
        if r.rd(QUEUE_NUM_MAX) < u32::from(QSIZE) {
            return None;
        }
        let rings = addr_of!(RINGS) as u64;
        r.wr(QUEUE_NUM, u32::from(QSIZE));
        r.wr64(QUEUE_DESC_LOW, rings);
        // SAFETY: only addresses of fields are taken.
        unsafe {
            r.wr64(QUEUE_DRIVER_LOW, addr_of!(RINGS.avail_flags) as u64);
            r.wr64(QUEUE_DEVICE_LOW, addr_of!(RINGS.used_flags) as u64);
        }
        r.wr(QUEUE_READY, 1);
        r.wr(
            STATUS,
            STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK,
        );
        Some(Console { regs: r, sent: 0 })
    }

    /// Test mode: offer descriptors a broken or hostile guest could write
    /// (outside guest memory, an absurd length, a self-loop). The host must
    /// survive them, warn, and hand the buffers back.
    pub fn send_bogus(&mut self) -> bool {
        let bogus = [
            (0xffff_ffff_f000, 64u32, 0u16),
            (addr_of!(RINGS) as u64, u32::MAX, 0),
            (addr_of!(RINGS) as u64, 16, 1),
        ];
        bogus.iter().all(|&(addr, len, flags)| {
            let slot = self.sent % QSIZE;
            // SAFETY: as in `send`; only ring entries are written.
            unsafe {
                let r = &mut *addr_of_mut!(RINGS);
                r.desc[slot as usize] = Desc {
                    addr,
                    len,
                    flags,
                    next: slot,
                };
                r.avail_ring[slot as usize] = slot;
                fence(Ordering::SeqCst);
                write_volatile(addr_of_mut!(r.avail_idx), self.sent.wrapping_add(1));
                fence(Ordering::SeqCst);
            }
            self.notify_and_wait()
        })
    }

    fn notify_and_wait(&mut self) -> bool {
        self.regs.wr(QUEUE_NOTIFY, TRANSMIT_QUEUE);
        self.sent = self.sent.wrapping_add(1);
        for _ in 0..100_000 {
            // SAFETY: reading the device-written used index.
            if unsafe { read_volatile(addr_of!(RINGS.used_idx)) } == self.sent {
                return true;
            }
            core::hint::spin_loop();
        }
        false
    }

    /// Send one frame made of `parts` (at most [`MAX_PARTS`], each in
    /// identity-mapped memory): one descriptor chain, one notification, then
    /// wait (bounded) for the device to hand it back. The parts are read by
    /// the device in place during the notification.
    pub fn send(&mut self, parts: &[&[u8]]) -> bool {
        if parts.is_empty() || parts.len() > MAX_PARTS {
            return false;
        }
        let mut addrs = [0u64; MAX_PARTS];
        for (a, part) in addrs.iter_mut().zip(parts) {
            // The device reads physical memory: kernel data lies in the low
            // identity map or the direct map, both physically contiguous.
            match crate::arch::x86_64::direct::virt_to_phys(part.as_ptr() as u64) {
                Some(p) => *a = p,
                None => return false,
            }
        }
        let slot = self.sent % QSIZE;
        // SAFETY: single CPU; the device reads the descriptors only after the
        // notification below and has returned every earlier chain (we wait).
        unsafe {
            let r = &mut *addr_of_mut!(RINGS);
            let last = parts.len() - 1;
            for (i, part) in parts.iter().enumerate() {
                r.desc[i] = Desc {
                    addr: addrs[i],
                    len: part.len() as u32,
                    flags: if i < last { DESC_F_NEXT } else { 0 },
                    next: (i + 1) as u16,
                };
            }
            r.avail_ring[slot as usize] = 0;
            fence(Ordering::SeqCst);
            write_volatile(addr_of_mut!(r.avail_idx), self.sent.wrapping_add(1));
            fence(Ordering::SeqCst);
        }
        self.notify_and_wait()
    }
}
