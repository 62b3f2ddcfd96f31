//! Tests of the virtio console: the driver's side of the transport, by hand.
use super::*;
use crate::stats::StatsCollector;
use mobius_shared::stats::Snapshot;
use vm_memory::{Address, GuestAddress, GuestMemoryMmap};

const MEM: u64 = 1 << 20;
const DESC: u64 = 0x1000;
const AVAIL: u64 = 0x2000;
const USED: u64 = 0x3000;
const BUF: u64 = 0x10000;
const F_NEXT: u16 = 1;

struct Rig {
    mem: GuestMemoryMmap,
    dev: VirtioConsole,
    sink: SharedCollector,
    avail: u16,
}

impl Rig {
    fn new() -> Rig {
        let mem =
            GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM as usize)]).expect("memory");
        let sink = StatsCollector::shared();
        let dev = VirtioConsole::new(mem.clone(), sink.clone());
        Rig {
            mem,
            dev,
            sink,
            avail: 0,
        }
    }

    fn w(&mut self, off: u64, v: u32) {
        self.dev.write(off, &v.to_le_bytes());
    }

    fn r(&mut self, off: u64) -> u32 {
        let mut b = [0u8; 4];
        self.dev.read(off, &mut b);
        u32::from_le_bytes(b)
    }

    /// The driver's side of initialisation, up to DRIVER_OK.
    fn setup(&mut self, desc: u64, avail: u64, used: u64) {
        self.w(STATUS, 0);
        self.w(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
        self.w(DRIVER_FEATURES_SEL, 1);
        self.w(DRIVER_FEATURES, 1);
        self.w(
            STATUS,
            STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK,
        );
        self.w(QUEUE_SEL, 1);
        self.w(QUEUE_NUM, 8);
        self.w(QUEUE_DESC_LOW, desc as u32);
        self.w(QUEUE_DESC_HIGH, (desc >> 32) as u32);
        self.w(QUEUE_DRIVER_LOW, avail as u32);
        self.w(QUEUE_DRIVER_HIGH, (avail >> 32) as u32);
        self.w(QUEUE_DEVICE_LOW, used as u32);
        self.w(QUEUE_DEVICE_HIGH, (used >> 32) as u32);
        self.w(QUEUE_READY, 1);
        self.w(
            STATUS,
            STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK,
        );
    }

    fn desc(&self, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let at = GuestAddress(DESC + 16 * u64::from(i));
        self.mem.write_obj(addr, at).expect("in memory");
        self.mem
            .write_obj(len, at.unchecked_add(8))
            .expect("in memory");
        self.mem
            .write_obj(flags, at.unchecked_add(12))
            .expect("in memory");
        self.mem
            .write_obj(next, at.unchecked_add(14))
            .expect("in memory");
    }

    fn offer(&mut self, head: u16) {
        let slot = AVAIL + 4 + 2 * u64::from(self.avail % 8);
        self.mem
            .write_obj(head, GuestAddress(slot))
            .expect("in memory");
        self.avail = self.avail.wrapping_add(1);
        self.mem
            .write_obj(self.avail, GuestAddress(AVAIL + 2))
            .expect("in memory");
        self.w(QUEUE_NOTIFY, 1);
    }

    fn used_idx(&self) -> u16 {
        self.mem
            .read_obj(GuestAddress(USED + 2))
            .expect("in memory")
    }
}

fn frame() -> Vec<u8> {
    let mut buf = vec![0u8; mobius_shared::stats::MAX_FRAME_LEN];
    Snapshot::new(5, 1000)
        .encode(&mut buf)
        .expect("fits")
        .to_vec()
}

#[test]
fn identifies_as_a_modern_console() {
    let mut rig = Rig::new();
    assert_eq!(rig.r(MAGIC_VALUE), MAGIC);
    assert_eq!(rig.r(VERSION), 2);
    assert_eq!(rig.r(DEVICE_ID), 3);
    rig.w(DEVICE_FEATURES_SEL, 1);
    assert_eq!(rig.r(DEVICE_FEATURES), 1, "VIRTIO_F_VERSION_1");
}

#[test]
fn a_frame_split_over_two_descriptors_is_decoded() {
    let mut rig = Rig::new();
    rig.setup(DESC, AVAIL, USED);
    let f = frame();
    rig.mem
        .write_slice(&f, GuestAddress(BUF))
        .expect("in memory");
    let half = (f.len() / 2) as u32;
    rig.desc(0, BUF, half, F_NEXT, 1);
    rig.desc(1, BUF + u64::from(half), f.len() as u32 - half, 0, 0);
    rig.offer(0);
    assert_eq!(rig.used_idx(), 1);
    assert_eq!(rig.r(INTERRUPT_STATUS) & INT_USED_RING, INT_USED_RING);
    let c = rig.sink.lock();
    assert_eq!(c.decoded(), 1);
    assert_eq!(c.notifications(), 1);
}

#[test]
fn features_ok_needs_version_1() {
    let mut rig = Rig::new();
    rig.w(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    rig.w(
        STATUS,
        STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK,
    );
    assert_eq!(rig.r(STATUS) & STATUS_FEATURES_OK, 0);
}

#[test]
fn bogus_descriptors_never_panic_or_read_outside_memory() {
    let mut rig = Rig::new();
    rig.setup(DESC, AVAIL, USED);
    // Address past the end of memory, a huge length, a loop, a wrap.
    rig.desc(0, MEM + 0x1000, 64, 0, 0);
    rig.offer(0);
    rig.desc(1, BUF, u32::MAX, 0, 0);
    rig.offer(1);
    rig.desc(2, BUF, 16, F_NEXT, 2);
    rig.offer(2);
    rig.desc(3, u64::MAX - 8, 64, 0, 0);
    rig.offer(3);
    let c = rig.sink.lock();
    assert_eq!(c.decoded(), 0);
    assert!(c.bytes() <= MAX_BYTES_PER_NOTIFY as u64 * 4);
    assert!(c.errors().transport >= 1, "{:?}", c.errors());
}

/// A guest sending valid frames in a loop, then bogus descriptors in a
/// loop: the host keeps a fixed few snapshots and counts the rest.
#[test]
fn a_flood_of_frames_and_bad_descriptors_stays_bounded() {
    let mut rig = Rig::new();
    rig.setup(DESC, AVAIL, USED);
    let f = frame();
    rig.mem
        .write_slice(&f, GuestAddress(BUF))
        .expect("in memory");
    rig.desc(0, BUF, f.len() as u32, 0, 0);
    rig.desc(1, MEM + 0x1000, 64, 0, 0);
    const N: u64 = 100_000;
    for _ in 0..N {
        rig.offer(0);
    }
    for _ in 0..N {
        rig.offer(1);
    }
    let c = rig.sink.lock();
    assert_eq!(c.decoded(), N);
    assert!(c.retained() <= crate::stats::MAX_RETAINED_SNAPSHOTS);
    assert_eq!(c.errors().transport, N);
    assert_eq!(c.notifications(), 2 * N);
    assert_eq!(rig.dev.counters.bad_descriptors, N);
}

#[test]
fn rings_outside_memory_or_notify_before_ready_are_ignored() {
    let mut rig = Rig::new();
    rig.w(QUEUE_NOTIFY, 1);
    assert_eq!(rig.dev.counters.bad_queue, 1);
    rig.setup(MEM * 4, AVAIL, USED);
    rig.w(QUEUE_NOTIFY, 1);
    assert_eq!(rig.dev.counters.bad_queue, 2);
    rig.w(QUEUE_NOTIFY, 7);
    assert_eq!(rig.dev.counters.bad_queue, 3);
}

#[test]
fn writing_status_zero_resets() {
    let mut rig = Rig::new();
    rig.setup(DESC, AVAIL, USED);
    rig.w(STATUS, 0);
    assert_eq!(rig.r(STATUS), 0);
    rig.w(QUEUE_SEL, 1);
    assert_eq!(rig.r(QUEUE_READY), 0);
    // Odd sizes and offsets are ignored.
    rig.dev.write(STATUS + 1, &[1]);
    assert_eq!(rig.r(STATUS), 0);
}

/// Issue 12 item 3: an indirect table of 10,000 zero-length descriptors
/// costs at most the descriptor cap per notification, counted, whatever
/// its byte count (zero) says.
#[test]
fn a_storm_of_zero_length_descriptors_is_capped() {
    let mut rig = Rig::new();
    rig.setup(DESC, AVAIL, USED);
    const N: u16 = 10_000;
    let table = BUF;
    for i in 0..N {
        let at = GuestAddress(table + 16 * u64::from(i));
        let next = if i + 1 < N { F_NEXT } else { 0 };
        rig.mem.write_obj(BUF, at).expect("in memory");
        rig.mem
            .write_obj(0u32, at.unchecked_add(8))
            .expect("in memory");
        rig.mem
            .write_obj(next, at.unchecked_add(12))
            .expect("in memory");
        rig.mem
            .write_obj(i + 1, at.unchecked_add(14))
            .expect("in memory");
    }
    const F_INDIRECT: u16 = 4;
    rig.desc(0, table, 16 * u32::from(N), F_INDIRECT, 0);
    rig.offer(0);
    assert!(
        rig.dev.counters.descriptor_caps >= 1,
        "{:?}",
        rig.dev.counters
    );
    assert_eq!(rig.sink.lock().decoded(), 0);
}
