//! One split virtqueue (virtio 1.2 §2.7) of [`QSIZE`] entries on the heap,
//! for drivers with requests in flight: post descriptor chains, take used
//! entries back. The caller decides which descriptors a chain uses.
use alloc::boxed::Box;
use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};
use core::sync::atomic::{fence, Ordering};

use super::mmio::Regs;
use mobius_shared::virtio_mmio::{
    QUEUE_DESC_LOW, QUEUE_DEVICE_LOW, QUEUE_DRIVER_LOW, QUEUE_NOTIFY, QUEUE_NUM, QUEUE_NUM_MAX,
    QUEUE_READY, QUEUE_SEL,
};

/// Entries of the queue (a power of two, as split rings need).
pub const QSIZE: u16 = 128;
const Q: usize = QSIZE as usize;

/// A descriptor.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Desc {
    pub addr: u64,
    pub len: u32,
    pub flags: u16,
    pub next: u16,
}

#[repr(C)]
struct Avail {
    flags: u16,
    idx: u16,
    ring: [u16; Q],
    used_event: u16,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct UsedElem {
    id: u32,
    len: u32,
}

#[repr(C, align(4))]
struct Used {
    flags: u16,
    idx: u16,
    ring: [UsedElem; Q],
    avail_event: u16,
}

/// The three parts of the ring in one page (4 KiB is enough for 128).
#[repr(C, align(4096))]
struct Rings {
    desc: [Desc; Q],
    avail: Avail,
    used: Used,
}

/// A queue: its rings and the driver's two indices.
pub struct Queue {
    rings: Box<Rings>,
    next_avail: u16,
    seen_used: u16,
}

fn phys<T>(p: *const T) -> Option<u64> {
    crate::arch::x86_64::direct::virt_to_phys(p as u64)
}

impl Queue {
    /// Rings for queue `index` of the device at `regs`, handed to it and
    /// made ready; `None` if the device offers fewer than [`QSIZE`] entries
    /// or the rings are not reachable physically.
    pub fn setup(regs: Regs, index: u32) -> Option<Queue> {
        regs.wr(QUEUE_SEL, index);
        if regs.rd(QUEUE_NUM_MAX) < u32::from(QSIZE) {
            return None;
        }
        let rings = Box::new(Rings {
            desc: [Desc::default(); Q],
            avail: Avail {
                flags: 0,
                idx: 0,
                ring: [0; Q],
                used_event: 0,
            },
            used: Used {
                flags: 0,
                idx: 0,
                ring: [UsedElem { id: 0, len: 0 }; Q],
                avail_event: 0,
            },
        });
        let desc = phys(addr_of!(rings.desc))?;
        let avail = phys(addr_of!(rings.avail))?;
        let used = phys(addr_of!(rings.used))?;
        regs.wr(QUEUE_NUM, u32::from(QSIZE));
        regs.wr64(QUEUE_DESC_LOW, desc);
        regs.wr64(QUEUE_DRIVER_LOW, avail);
        regs.wr64(QUEUE_DEVICE_LOW, used);
        regs.wr(QUEUE_READY, 1);
        Some(Queue {
            rings,
            next_avail: 0,
            seen_used: 0,
        })
    }

    /// Write descriptor `i` (below [`QSIZE`]).
    pub fn set_desc(&mut self, i: u16, d: Desc) {
        if let Some(slot) = self.rings.desc.get_mut(usize::from(i)) {
            *slot = d;
        }
    }

    /// Offer the chain starting at descriptor `head` to the device (it sees
    /// it once notified).
    pub fn push(&mut self, head: u16) {
        let at = usize::from(self.next_avail % QSIZE);
        self.rings.avail.ring[at] = head;
        self.next_avail = self.next_avail.wrapping_add(1);
        fence(Ordering::SeqCst);
        // SAFETY: a field of our own rings; volatile because the device
        // reads it.
        unsafe { write_volatile(addr_of_mut!(self.rings.avail.idx), self.next_avail) };
        fence(Ordering::SeqCst);
    }

    /// Tell the device (queue `index`) to look at the available ring.
    pub fn notify(&self, regs: Regs, index: u32) {
        regs.wr(QUEUE_NOTIFY, index);
    }

    /// Entries the device has handed back and the driver not yet taken;
    /// more than [`QSIZE`] means the device wrote a bogus index.
    pub fn pending_used(&self) -> u16 {
        // SAFETY: a field of our own rings, written by the device.
        let idx = unsafe { read_volatile(addr_of!(self.rings.used.idx)) };
        idx.wrapping_sub(self.seen_used)
    }

    /// Take the next used entry: (chain head id, bytes written).
    pub fn pop_used(&mut self) -> Option<(u32, u32)> {
        if self.pending_used() == 0 {
            return None;
        }
        fence(Ordering::SeqCst);
        let at = usize::from(self.seen_used % QSIZE);
        // SAFETY: an element of our own rings, written by the device.
        let e = unsafe { read_volatile(addr_of!(self.rings.used.ring[at])) };
        self.seen_used = self.seen_used.wrapping_add(1);
        Some((e.id, e.len))
    }

    /// Forget every used entry the device claims (after a bogus index).
    pub fn skip_used(&mut self) {
        // SAFETY: as in `pending_used`.
        self.seen_used = unsafe { read_volatile(addr_of!(self.rings.used.idx)) };
    }
}
