//! The virtio console (device ID 3) as the guest's statistics channel: every
//! byte the guest puts on the transmit queue (queue 1) goes to the
//! [`SharedCollector`], which splits and decodes the frames.
//!
//! The guest is untrusted: descriptor addresses and lengths are checked by
//! virtio-queue against guest memory (a chain longer than the queue, a loop,
//! or an address outside RAM ends processing of that notification), the bytes
//! taken per notification are capped, and nothing here panics on guest input.
use mobius_shared::stats::MAX_FRAME_LEN;
use virtio_queue::QueueT;
use vm_memory::{Bytes, GuestMemoryMmap};

use super::mmio::*;
use super::transport::{Context, MmioTransport, VirtioDevice};
#[cfg(test)]
use crate::devices::MmioDevice;
use crate::stats::SharedCollector;

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

/// The console device; on the bus as a [`VirtioConsole`].
pub struct ConsoleDevice {
    sink: SharedCollector,
    pub counters: ConsoleCounters,
    warned: bool,
}

/// A virtio-mmio console: the transport with the console behind it.
pub type VirtioConsole = MmioTransport<ConsoleDevice>;

impl VirtioConsole {
    pub fn new(mem: GuestMemoryMmap, sink: SharedCollector) -> Self {
        MmioTransport::with_device(
            ConsoleDevice {
                sink,
                counters: ConsoleCounters::default(),
                warned: false,
            },
            mem,
        )
    }
}

impl VirtioDevice for ConsoleDevice {
    fn device_id(&self) -> u32 {
        DEVICE_ID_CONSOLE
    }

    /// Nothing beyond VERSION_1 (cols, rows, ports: not offered).
    fn features(&self) -> u64 {
        0
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_MAX, QUEUE_MAX]
    }

    fn notify(&mut self, queue: u32, ctx: Context<'_>) {
        self.notify_queue(queue as usize, ctx);
    }
}

impl ConsoleDevice {
    /// Take every available chain of the transmit queue.
    fn notify_queue(&mut self, queue: usize, ctx: Context<'_>) {
        self.counters.notifications = self.counters.notifications.saturating_add(1);
        if queue == RECEIVE_QUEUE {
            return;
        }
        let mem = ctx.mem;
        let q = match ctx.queues.get_mut(TRANSMIT_QUEUE) {
            Some(q) if queue == TRANSMIT_QUEUE && ctx.driver_ok => q,
            _ => {
                self.bad_queue("notify of an unknown queue or before DRIVER_OK");
                return;
            }
        };
        if !q.ready() || !q.is_valid(mem) {
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
        while let Some(chain) = q.pop_descriptor_chain(mem) {
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
            failed |= q.add_used(mem, head, 0).is_err();
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
        ctx.interrupt
            .fetch_or(INT_USED_RING, std::sync::atomic::Ordering::SeqCst);
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

#[cfg(test)]
#[path = "console_tests.rs"]
mod tests;
