//! The virtio console (device ID 3) as the guest's statistics channel: every
//! byte the guest puts on the transmit queue (queue 1) goes to the
//! [`SharedCollector`], which splits and decodes the frames.
//!
//! The guest is untrusted: descriptor addresses and lengths are checked by
//! virtio-queue against guest memory (a chain longer than the queue, a loop,
//! or an address outside RAM ends processing of that notification), the bytes
//! taken per notification are capped, and nothing here panics on guest input.
use mobius_shared::stats::MAX_FRAME_LEN;
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestMemoryMmap};

use super::mmio::*;
use crate::devices::MmioDevice;
use crate::stats::SharedCollector;

const DEVICE_ID_CONSOLE: u32 = 3;
const VENDOR: u32 = 0x4942_4f4d; // "MOBI"
const QUEUE_MAX: u16 = 64;
const RECEIVE_QUEUE: usize = 0;
const TRANSMIT_QUEUE: usize = 1;
/// Most bytes taken from the guest per notification (a snapshot is < 8 KiB).
const MAX_BYTES_PER_NOTIFY: usize = 64 * 1024;
/// Most descriptors one chain may have: a frame is a handful of parts
/// (header, counters, histograms, process block); zero-length ones cost
/// time without bytes, so bytes alone do not bound the work.
pub const MAX_DESCRIPTORS_PER_CHAIN: usize = 64;
/// Most descriptors one notification walks, over all its chains; the rest
/// wait for the next notification.
pub const MAX_DESCRIPTORS_PER_NOTIFY: usize = 1024;

/// Counters the host reports (`mobius stat`: notifications per snapshot).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsoleCounters {
    pub notifications: u64,
    pub chains: u64,
    pub bytes: u64,
    /// Notifications whose queue was unusable (bad addresses, not ready).
    pub bad_queue: u64,
    /// Descriptors pointing outside guest memory.
    pub bad_descriptors: u64,
    /// Chains cut at [`MAX_DESCRIPTORS_PER_CHAIN`] (counted as bad), and
    /// notifications that stopped at [`MAX_DESCRIPTORS_PER_NOTIFY`].
    pub descriptor_caps: u64,
}

/// A virtio-mmio console device.
pub struct VirtioConsole {
    mem: GuestMemoryMmap,
    sink: SharedCollector,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    status: u32,
    queue_sel: u32,
    queues: [Queue; 2],
    interrupt_status: u32,
    pub counters: ConsoleCounters,
    warned: bool,
}

fn new_queue() -> Queue {
    // QUEUE_MAX is a power of two below the spec's limit: `new` cannot fail.
    Queue::new(QUEUE_MAX).unwrap_or_else(|_| unreachable!("valid queue size"))
}

impl VirtioConsole {
    pub fn new(mem: GuestMemoryMmap, sink: SharedCollector) -> Self {
        VirtioConsole {
            mem,
            sink,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            status: 0,
            queue_sel: 0,
            queues: [new_queue(), new_queue()],
            interrupt_status: 0,
            counters: ConsoleCounters::default(),
            warned: false,
        }
    }

    fn reset(&mut self) {
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.driver_features = 0;
        self.status = 0;
        self.queue_sel = 0;
        self.interrupt_status = 0;
        self.queues.iter_mut().for_each(QueueT::reset);
    }

    fn device_features() -> u64 {
        F_VERSION_1
    }

    fn queue(&mut self) -> Option<&mut Queue> {
        self.queues.get_mut(self.queue_sel as usize)
    }

    fn read_reg(&mut self, offset: u64) -> u32 {
        match offset {
            MAGIC_VALUE => MAGIC,
            VERSION => MMIO_VERSION,
            DEVICE_ID => DEVICE_ID_CONSOLE,
            VENDOR_ID => VENDOR,
            DEVICE_FEATURES => match self.device_features_sel {
                0 => Self::device_features() as u32,
                1 => (Self::device_features() >> 32) as u32,
                _ => 0,
            },
            QUEUE_NUM_MAX => self.queue().map_or(0, |q| u32::from(q.max_size())),
            QUEUE_READY => self.queue().map_or(0, |q| u32::from(q.ready())),
            INTERRUPT_STATUS => self.interrupt_status,
            STATUS => self.status,
            CONFIG_GENERATION => 0,
            _ => 0,
        }
    }

    fn write_reg(&mut self, offset: u64, v: u32) {
        match offset {
            DEVICE_FEATURES_SEL => self.device_features_sel = v,
            DRIVER_FEATURES_SEL => self.driver_features_sel = v,
            DRIVER_FEATURES => match self.driver_features_sel {
                0 => self.driver_features = (self.driver_features & !0xffff_ffff) | u64::from(v),
                1 => {
                    self.driver_features =
                        (self.driver_features & 0xffff_ffff) | (u64::from(v) << 32)
                }
                _ => {}
            },
            QUEUE_SEL => self.queue_sel = v,
            QUEUE_NUM => {
                if let Some(q) = self.queue() {
                    q.set_size(v.min(u32::from(u16::MAX)) as u16);
                }
            }
            QUEUE_READY => {
                if let Some(q) = self.queue() {
                    q.set_ready(v == 1);
                }
            }
            QUEUE_DESC_LOW => self.set_addr(|q, v| q.set_desc_table_address(Some(v), None), v),
            QUEUE_DESC_HIGH => self.set_addr(|q, v| q.set_desc_table_address(None, Some(v)), v),
            QUEUE_DRIVER_LOW => self.set_addr(|q, v| q.set_avail_ring_address(Some(v), None), v),
            QUEUE_DRIVER_HIGH => self.set_addr(|q, v| q.set_avail_ring_address(None, Some(v)), v),
            QUEUE_DEVICE_LOW => self.set_addr(|q, v| q.set_used_ring_address(Some(v), None), v),
            QUEUE_DEVICE_HIGH => self.set_addr(|q, v| q.set_used_ring_address(None, Some(v)), v),
            QUEUE_NOTIFY => self.notify(v as usize),
            INTERRUPT_ACK => self.interrupt_status &= !v,
            STATUS => self.write_status(v),
            _ => {}
        }
    }

    fn set_addr(&mut self, f: impl FnOnce(&mut Queue, u32), v: u32) {
        if let Some(q) = self.queue() {
            f(q, v);
        }
    }

    /// The status state machine: 0 resets; FEATURES_OK only with VERSION_1
    /// negotiated and no feature the device does not offer.
    fn write_status(&mut self, v: u32) {
        if v == 0 {
            self.reset();
            return;
        }
        let mut v = v;
        if v & STATUS_FEATURES_OK != 0 && self.status & STATUS_FEATURES_OK == 0 {
            let ok = self.driver_features & F_VERSION_1 != 0
                && self.driver_features & !Self::device_features() == 0;
            if !ok {
                v &= !STATUS_FEATURES_OK;
            }
        }
        self.status = v;
    }

    fn driver_ok(&self) -> bool {
        self.status & STATUS_DRIVER_OK != 0 && self.status & STATUS_FEATURES_OK != 0
    }

    /// Take every available chain of the transmit queue.
    fn notify(&mut self, queue: usize) {
        self.counters.notifications = self.counters.notifications.saturating_add(1);
        if queue == RECEIVE_QUEUE {
            return;
        }
        if queue != TRANSMIT_QUEUE || !self.driver_ok() {
            self.bad_queue("notify of an unknown queue or before DRIVER_OK");
            return;
        }
        let mem = self.mem.clone();
        let q = &mut self.queues[TRANSMIT_QUEUE];
        if !q.ready() || !q.is_valid(&mem) {
            self.bad_queue("transmit queue not ready or outside guest memory");
            return;
        }
        // One chain is one statistics frame. The guest is untrusted: a chain
        // is read only up to MAX_FRAME_LEN bytes (longer ones are counted as
        // oversized, unread), and one notification takes at most
        // MAX_BYTES_PER_NOTIFY bytes in all.
        let mut frames: Vec<Result<Vec<u8>, usize>> = Vec::new();
        let mut used = Vec::new();
        let mut total = 0usize;
        let mut walked = 0usize;
        let mut capped = 0u64;
        let mut bad_descriptors = 0u64;
        while let Some(chain) = q.pop_descriptor_chain(&mem) {
            used.push(chain.head_index());
            self.counters.chains = self.counters.chains.saturating_add(1);
            let mut frame = Vec::new();
            let mut claimed = 0usize;
            let mut unreadable = false;
            let mut cut = false;
            for (i, desc) in chain.readable().enumerate() {
                walked += 1;
                if i >= MAX_DESCRIPTORS_PER_CHAIN || walked > MAX_DESCRIPTORS_PER_NOTIFY {
                    cut = true;
                    break;
                }
                claimed = claimed.saturating_add(desc.len() as usize);
                if claimed > MAX_FRAME_LEN {
                    break;
                }
                let start = frame.len();
                frame.resize(claimed, 0);
                if mem.read_slice(&mut frame[start..], desc.addr()).is_err() {
                    unreadable = true;
                    break;
                }
            }
            total += frame.len();
            if claimed > MAX_FRAME_LEN {
                frames.push(Err(claimed));
            } else if cut {
                // A chain cut at the cap is not a frame.
                capped += 1;
            } else if unreadable {
                bad_descriptors += 1;
            } else {
                frames.push(Ok(frame));
            }
            if total >= MAX_BYTES_PER_NOTIFY || walked >= MAX_DESCRIPTORS_PER_NOTIFY {
                break;
            }
        }
        let mut failed = false;
        for head in used {
            failed |= q.add_used(&mem, head, 0).is_err();
        }
        if failed {
            self.bad_queue("used ring outside guest memory");
        }
        if capped > 0 {
            self.counters.descriptor_caps = self.counters.descriptor_caps.saturating_add(capped);
            self.transport_error(
                "descriptor chain longer than the cap (64 per chain, 1024 per notification)",
                capped,
            );
        }
        if bad_descriptors > 0 {
            self.counters.bad_descriptors = self
                .counters
                .bad_descriptors
                .saturating_add(bad_descriptors);
            self.transport_error("descriptor outside guest memory", bad_descriptors);
        }
        self.counters.bytes = self.counters.bytes.saturating_add(total as u64);
        self.interrupt_status |= INT_USED_RING;
        let mut sink = self.sink.lock();
        sink.note_notification();
        for frame in frames {
            match frame {
                Ok(bytes) if !bytes.is_empty() => sink.push_frame(&bytes),
                Ok(_) => {}
                Err(len) => sink.reject_oversized(len),
            }
        }
    }

    fn bad_queue(&mut self, why: &str) {
        self.counters.bad_queue = self.counters.bad_queue.saturating_add(1);
        self.transport_error(why, 1);
    }

    /// Warn about the first unusable request; the collector counts them all
    /// and `mobius run`/`stat` sum them up at exit.
    fn transport_error(&mut self, why: &str, n: u64) {
        self.sink.lock().note_transport_errors(n);
        if !self.warned {
            self.warned = true;
            eprintln!("mobius: warning: virtio console: {why}; ignored (further ones counted, summed up at exit)");
        }
    }
}

impl MmioDevice for VirtioConsole {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        if offset >= CONFIG || data.len() != 4 || !offset.is_multiple_of(4) {
            // Config space (cols, rows, ports: not offered) and odd-sized reads.
            data.fill(0);
            return;
        }
        data.copy_from_slice(&self.read_reg(offset).to_le_bytes());
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let Ok(bytes) = <[u8; 4]>::try_from(data) else {
            return;
        };
        if offset < CONFIG && offset.is_multiple_of(4) {
            self.write_reg(offset, u32::from_le_bytes(bytes));
        }
    }
}

#[cfg(test)]
#[path = "console_tests.rs"]
mod tests;
