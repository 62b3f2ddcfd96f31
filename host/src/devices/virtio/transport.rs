//! The virtio-mmio transport (virtio 1.2 §4.2.2, modern layout only), one
//! per window, generic over the device behind it ([`VirtioDevice`]): the
//! register file, feature negotiation, the status state machine and queue
//! set-up (rust-vmm's `virtio-queue` [`Queue`]s). The device sees only
//! notifications, its configuration space and the queues once the driver
//! says DRIVER_OK.
//!
//! The guest is untrusted: every register access of any size at any offset
//! is answered (odd ones read as zero, are ignored when written), and
//! nothing here panics on what the guest writes.
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use virtio_queue::{Queue, QueueT};
use vm_memory::GuestMemoryMmap;

use super::mmio::*;
use crate::devices::MmioDevice;

/// What a device gets when the driver notifies it or finishes set-up.
pub struct Context<'a> {
    pub mem: &'a GuestMemoryMmap,
    /// The queues as the driver set them up (one per
    /// [`VirtioDevice::queue_max_sizes`] entry).
    pub queues: &'a mut [Queue],
    /// InterruptStatus; a device sets [`INT_USED_RING`] when it has used
    /// buffers (shared, so that a device's worker thread may set it).
    pub interrupt: &'a Arc<AtomicU32>,
    /// The driver has set DRIVER_OK (with FEATURES_OK).
    pub driver_ok: bool,
    /// The features the driver accepted.
    pub features: u64,
}

/// A virtio device behind a [`MmioTransport`].
pub trait VirtioDevice: Send {
    /// The virtio device ID (2: block, 3: console).
    fn device_id(&self) -> u32;
    /// The features offered; [`F_VERSION_1`] is added by the transport.
    fn features(&self) -> u64;
    /// The largest size of each queue the device has.
    fn queue_max_sizes(&self) -> &[u16];
    /// Configuration space at `offset` (from [`CONFIG`]); `data` must be
    /// filled. Default: nothing offered, reads as zero.
    fn read_config(&self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }
    /// The driver wrote `queue` to QueueNotify (any value, unchecked).
    fn notify(&mut self, queue: u32, ctx: Context<'_>);
    /// The driver set DRIVER_OK: the queues are as it will use them.
    fn activate(&mut self, _ctx: Context<'_>) {}
    /// The driver wrote 0 to Status: forget the queues.
    fn reset(&mut self) {}
}

/// The transport state of one virtio-mmio window, with its device `D`.
/// Dereferences to the device (its counters, for instance).
pub struct MmioTransport<D> {
    device: D,
    mem: GuestMemoryMmap,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    status: u32,
    queue_sel: u32,
    queues: Vec<Queue>,
    interrupt: Arc<AtomicU32>,
}

fn new_queue(max: u16) -> Queue {
    // A queue the spec allows (a power of two up to 32768); a device
    // offering another size gets the smallest.
    Queue::new(max)
        .or_else(|_| Queue::new(1))
        .unwrap_or_else(|_| unreachable!("a queue of one entry is valid"))
}

impl<D: VirtioDevice> MmioTransport<D> {
    pub fn with_device(device: D, mem: GuestMemoryMmap) -> Self {
        let queues = device
            .queue_max_sizes()
            .iter()
            .map(|&n| new_queue(n))
            .collect();
        MmioTransport {
            device,
            mem,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            status: 0,
            queue_sel: 0,
            queues,
            interrupt: Arc::new(AtomicU32::new(0)),
        }
    }

    pub fn device(&self) -> &D {
        &self.device
    }

    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// The Status register.
    pub fn status(&self) -> u32 {
        self.status
    }

    fn reset(&mut self) {
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.driver_features = 0;
        self.status = 0;
        self.queue_sel = 0;
        self.interrupt.store(0, Ordering::SeqCst);
        self.queues.iter_mut().for_each(QueueT::reset);
        self.device.reset();
    }

    fn device_features(&self) -> u64 {
        self.device.features() | F_VERSION_1
    }

    fn queue(&mut self) -> Option<&mut Queue> {
        self.queues.get_mut(self.queue_sel as usize)
    }

    fn driver_ok(&self) -> bool {
        self.status & STATUS_DRIVER_OK != 0 && self.status & STATUS_FEATURES_OK != 0
    }

    fn context(&mut self) -> (&mut D, Context<'_>) {
        let driver_ok = self.driver_ok();
        (
            &mut self.device,
            Context {
                mem: &self.mem,
                queues: &mut self.queues,
                interrupt: &self.interrupt,
                driver_ok,
                features: self.driver_features,
            },
        )
    }

    fn read_reg(&mut self, offset: u64) -> u32 {
        match offset {
            MAGIC_VALUE => MAGIC,
            VERSION => MMIO_VERSION,
            DEVICE_ID => self.device.device_id(),
            VENDOR_ID => VENDOR,
            DEVICE_FEATURES => match self.device_features_sel {
                0 => self.device_features() as u32,
                1 => (self.device_features() >> 32) as u32,
                _ => 0,
            },
            QUEUE_NUM_MAX => self.queue().map_or(0, |q| u32::from(q.max_size())),
            QUEUE_READY => self.queue().map_or(0, |q| u32::from(q.ready())),
            INTERRUPT_STATUS => self.interrupt.load(Ordering::SeqCst),
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
            QUEUE_NOTIFY => {
                let (device, ctx) = self.context();
                device.notify(v, ctx);
            }
            INTERRUPT_ACK => {
                self.interrupt.fetch_and(!v, Ordering::SeqCst);
            }
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
    /// negotiated and no feature the device does not offer; the device is
    /// activated when DRIVER_OK first appears after FEATURES_OK.
    fn write_status(&mut self, v: u32) {
        if v == 0 {
            self.reset();
            return;
        }
        let mut v = v;
        if v & STATUS_FEATURES_OK != 0 && self.status & STATUS_FEATURES_OK == 0 {
            let ok = self.driver_features & F_VERSION_1 != 0
                && self.driver_features & !self.device_features() == 0;
            if !ok {
                v &= !STATUS_FEATURES_OK;
            }
        }
        let was_ok = self.driver_ok();
        self.status = v;
        if self.driver_ok() && !was_ok {
            let (device, ctx) = self.context();
            device.activate(ctx);
        }
    }
}

impl<D: VirtioDevice> MmioDevice for MmioTransport<D> {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        if offset >= CONFIG {
            self.device.read_config(offset - CONFIG, data);
            return;
        }
        if data.len() != 4 || !offset.is_multiple_of(4) {
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

impl<D> Deref for MmioTransport<D> {
    type Target = D;
    fn deref(&self) -> &D {
        &self.device
    }
}

impl<D> DerefMut for MmioTransport<D> {
    fn deref_mut(&mut self) -> &mut D {
        &mut self.device
    }
}
