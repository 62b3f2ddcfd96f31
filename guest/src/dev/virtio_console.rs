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

use mobius_shared::virtio_mmio::{
    DESC_F_NEXT, DEVICE_FEATURES, DEVICE_FEATURES_SEL, DEVICE_ID, DEVICE_ID_CONSOLE,
    DRIVER_FEATURES, DRIVER_FEATURES_SEL, F_VERSION_1, MAGIC, MAGIC_VALUE, MMIO_VERSION,
    QUEUE_DESC_LOW, QUEUE_DEVICE_LOW, QUEUE_DRIVER_LOW, QUEUE_NOTIFY, QUEUE_NUM, QUEUE_NUM_MAX,
    QUEUE_READY, QUEUE_SEL, STATUS, STATUS_ACKNOWLEDGE, STATUS_DRIVER, STATUS_DRIVER_OK,
    STATUS_FEATURES_OK, VERSION,
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

/// An initialised device at `base`.
pub struct Console {
    base: usize,
    sent: u16,
}

fn reg(base: usize, off: u64) -> *mut u32 {
    (base + off as usize) as *mut u32
}

fn rd(base: usize, off: u64) -> u32 {
    // SAFETY: `base` is a virtio-mmio window announced by the host, reached
    // through the direct map; registers are 32-bit and aligned.
    unsafe { read_volatile(reg(base, off)) }
}

fn wr(base: usize, off: u64, v: u32) {
    // SAFETY: as for `rd`.
    unsafe { write_volatile(reg(base, off), v) }
}

fn wr64(base: usize, off: u64, v: u64) {
    wr(base, off, v as u32);
    wr(base, off + 4, (v >> 32) as u32);
}

impl Console {
    /// Probe and set up the device at `base`; `None` if it is not a modern
    /// virtio console or refuses our features.
    pub fn probe(base: u64) -> Option<Console> {
        // Only windows inside the identity-mapped first 4 GiB, above RAM,
        // aligned as virtio-mmio register blocks are (QEMU's microvm packs
        // its windows 512 bytes apart).
        if !(0xC000_0000..0x1_0000_0000).contains(&base) || !base.is_multiple_of(0x200) {
            return None;
        }
        if !crate::arch::x86_64::identity::map_device(base) {
            return None;
        }
        let b = crate::arch::x86_64::direct::phys_to_virt(base) as usize;
        if rd(b, MAGIC_VALUE) != MAGIC
            || rd(b, VERSION) != MMIO_VERSION
            || rd(b, DEVICE_ID) != DEVICE_ID_CONSOLE
        {
            return None;
        }
        wr(b, STATUS, 0);
        wr(b, STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
        wr(b, DEVICE_FEATURES_SEL, 1);
        if (u64::from(rd(b, DEVICE_FEATURES)) << 32) & F_VERSION_1 == 0 {
            return None; // no VIRTIO_F_VERSION_1
        }
        wr(b, DRIVER_FEATURES_SEL, 0);
        wr(b, DRIVER_FEATURES, 0);
        wr(b, DRIVER_FEATURES_SEL, 1);
        wr(b, DRIVER_FEATURES, (F_VERSION_1 >> 32) as u32);
        wr(
            b,
            STATUS,
            STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK,
        );
        if rd(b, STATUS) & STATUS_FEATURES_OK == 0 {
            return None;
        }
        wr(b, QUEUE_SEL, TRANSMIT_QUEUE);
        if rd(b, QUEUE_NUM_MAX) < u32::from(QSIZE) {
            return None;
        }
        let rings = addr_of!(RINGS) as u64;
        wr(b, QUEUE_NUM, u32::from(QSIZE));
        wr64(b, QUEUE_DESC_LOW, rings);
        // SAFETY: only addresses of fields are taken.
        unsafe {
            wr64(b, QUEUE_DRIVER_LOW, addr_of!(RINGS.avail_flags) as u64);
            wr64(b, QUEUE_DEVICE_LOW, addr_of!(RINGS.used_flags) as u64);
        }
        wr(b, QUEUE_READY, 1);
        wr(
            b,
            STATUS,
            STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK,
        );
        Some(Console { base: b, sent: 0 })
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
        wr(self.base, QUEUE_NOTIFY, TRANSMIT_QUEUE);
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
