//! The virtio console (`mobius::devices::virtio::VirtioConsole`) driven by a
//! hostile guest: any sequence of register accesses, notifications, and
//! writes to guest memory (descriptor table, available ring, buffers), as
//! the tests in host/src/devices/virtio/console_tests.rs set a queue up.
//!
//! Checked: nothing panics or reads outside guest memory (ASan); the bytes
//! taken per notification stay within the device's caps; every transport
//! error the device counts reaches the collector; the collector keeps a
//! bounded number of snapshots and never decodes more frames than chains.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mobius::devices::virtio::mmio::*;
use mobius::devices::virtio::VirtioConsole;
use mobius::devices::MmioDevice;
use mobius::stats::StatsCollector;
use mobius_shared::stats::MAX_FRAME_LEN;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Guest RAM: small, so that random addresses often land in it.
const MEM: u64 = 64 * 1024;
/// The device's cap per notification (`MAX_BYTES_PER_NOTIFY`).
const MAX_BYTES_PER_NOTIFY: u64 = 64 * 1024;

#[derive(Arbitrary, Debug)]
enum Op {
    /// The driver's initialisation up to DRIVER_OK, with the transmit queue
    /// of `size` entries at these guest addresses.
    Setup {
        size: u16,
        desc: u32,
        avail: u32,
        used: u32,
        features_hi: u32,
    },
    /// Any register write (offset in words).
    Write { reg: u8, value: u32 },
    /// Any access of any size at any offset of the window.
    Raw { offset: u16, len: u8, write: bool },
    /// A register read.
    Read { reg: u8 },
    /// `QUEUE_NOTIFY` with any queue index.
    Notify { queue: u32 },
    /// Guest memory at `addr` (wrapping inside RAM) overwritten.
    Poke { addr: u16, bytes: Vec<u8> },
    /// Descriptor `index` of the table set up last.
    Desc {
        index: u8,
        addr: u32,
        len: u32,
        flags: u16,
        next: u16,
    },
    /// Put `head` on the available ring set up last and notify queue 1.
    Offer { head: u16 },
    /// A statistics frame's bytes at `addr` (a real frame, so that valid
    /// chains are reachable).
    Frame { addr: u16, histograms: bool },
}

/// Where the driver put its queue.
#[derive(Default)]
struct Driver {
    desc: u64,
    avail: u64,
    size: u16,
    avail_idx: u16,
}

fn reg(dev: &mut VirtioConsole, offset: u64, v: u32) {
    dev.write(offset, &v.to_le_bytes());
}

fn frame(histograms: bool) -> Vec<u8> {
    let mut s = mobius_shared::stats::Snapshot::new(1, 1000);
    s.faults[0].count = 3;
    if histograms {
        s.faults[0].histogram[4] = 3;
    }
    let mut buf = vec![0u8; MAX_FRAME_LEN];
    s.encode(&mut buf).expect("fits").to_vec()
}

fuzz_target!(|ops: Vec<Op>| {
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM as usize)])
        .expect("guest memory");
    let sink = StatsCollector::shared();
    let mut dev = VirtioConsole::new(mem.clone(), sink.clone());
    let mut driver = Driver::default();
    for op in ops.into_iter().take(256) {
        match op {
            Op::Setup {
                size,
                desc,
                avail,
                used,
                features_hi,
            } => {
                reg(&mut dev, STATUS, 0);
                reg(&mut dev, STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
                reg(&mut dev, DRIVER_FEATURES_SEL, 1);
                reg(&mut dev, DRIVER_FEATURES, features_hi);
                reg(
                    &mut dev,
                    STATUS,
                    STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK,
                );
                reg(&mut dev, QUEUE_SEL, 1);
                reg(&mut dev, QUEUE_NUM, u32::from(size));
                reg(&mut dev, QUEUE_DESC_LOW, desc);
                reg(&mut dev, QUEUE_DESC_HIGH, 0);
                reg(&mut dev, QUEUE_DRIVER_LOW, avail);
                reg(&mut dev, QUEUE_DRIVER_HIGH, 0);
                reg(&mut dev, QUEUE_DEVICE_LOW, used);
                reg(&mut dev, QUEUE_DEVICE_HIGH, 0);
                reg(&mut dev, QUEUE_READY, 1);
                reg(
                    &mut dev,
                    STATUS,
                    STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK,
                );
                driver = Driver {
                    desc: u64::from(desc),
                    avail: u64::from(avail),
                    size,
                    avail_idx: 0,
                };
            }
            Op::Write { reg: r, value } => reg(&mut dev, u64::from(r) * 4, value),
            Op::Raw { offset, len, write } => {
                let mut buf = vec![0xa5u8; usize::from(len % 9)];
                if write {
                    dev.write(u64::from(offset), &buf);
                } else {
                    dev.read(u64::from(offset), &mut buf);
                }
            }
            Op::Read { reg: r } => {
                let mut b = [0u8; 4];
                dev.read(u64::from(r) * 4, &mut b);
            }
            Op::Notify { queue } => reg(&mut dev, QUEUE_NOTIFY, queue),
            Op::Poke { addr, bytes } => {
                let at = u64::from(addr) % MEM;
                let n = bytes.len().min((MEM - at) as usize);
                mem.write_slice(&bytes[..n], GuestAddress(at))
                    .expect("inside RAM");
            }
            Op::Desc {
                index,
                addr,
                len,
                flags,
                next,
            } => {
                let mut d = [0u8; 16];
                d[..8].copy_from_slice(&u64::from(addr).to_le_bytes());
                d[8..12].copy_from_slice(&len.to_le_bytes());
                d[12..14].copy_from_slice(&flags.to_le_bytes());
                d[14..16].copy_from_slice(&next.to_le_bytes());
                let at = driver.desc + 16 * (u64::from(index) % u64::from(driver.size.max(1)));
                let _ = mem.write_slice(&d, GuestAddress(at));
            }
            Op::Offer { head } => {
                let slot = driver.avail + 4 + 2 * u64::from(driver.avail_idx % driver.size.max(1));
                let _ = mem.write_obj(head, GuestAddress(slot));
                driver.avail_idx = driver.avail_idx.wrapping_add(1);
                let _ = mem.write_obj(driver.avail_idx, GuestAddress(driver.avail + 2));
                reg(&mut dev, QUEUE_NOTIFY, 1);
            }
            Op::Frame { addr, histograms } => {
                let f = frame(histograms);
                let at = u64::from(addr) % MEM;
                let n = f.len().min((MEM - at) as usize);
                mem.write_slice(&f[..n], GuestAddress(at))
                    .expect("inside RAM");
            }
        }
    }

    let k = dev.counters;
    let c = sink.lock();
    assert!(k.bytes <= k.notifications * (MAX_BYTES_PER_NOTIFY + MAX_FRAME_LEN as u64));
    assert_eq!(c.errors().transport, k.bad_queue + k.bad_descriptors);
    let frame_results = c.decoded() + c.errors().total() - c.errors().transport;
    assert!(
        frame_results <= k.chains,
        "{frame_results} > {} chains",
        k.chains
    );
    assert!(c.notifications() <= k.notifications);
    assert!(c.retained() <= mobius::stats::MAX_RETAINED_SNAPSHOTS);
});
