//! Tests of virtio-blk: requests built by hand (descriptor table, available
//! ring, buffers) in a `GuestMemoryMmap`, executed by the [`Backend`]
//! directly, and the whole device (transport, worker thread, interrupt)
//! driven through its registers.
use std::io::Write as _;
use std::sync::mpsc;
use std::time::Duration;

use mobius_shared::virtio_mmio::*;
use vm_memory::{Address, GuestMemoryMmap};

use super::*;
use crate::devices::virtio::disk::{DiskConfig, FailRange};
use crate::devices::MmioDevice;

const MEM: u64 = 1 << 20;
const DESC: u64 = 0x1000;
const AVAIL: u64 = 0x3000;
const USED: u64 = 0x4000;
const HDR: u64 = 0x10000;
const DATA: u64 = 0x20000;
const STATUS_AT: u64 = 0x80000;
const QSIZE: u16 = 16;
const SECTORS: u64 = 64;
const R: u16 = 0;
const W: u16 = DESC_F_WRITE;

fn memory() -> GuestMemoryMmap {
    GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM as usize)]).expect("memory")
}

/// The disk's bytes: byte `i` is `i / 512 + i % 251`, so that every
/// sector differs.
fn pattern(len: u64) -> Vec<u8> {
    (0..len).map(|i| (i / 512 + i % 251) as u8).collect()
}

fn disk(writable: bool, fail: Vec<FailRange>) -> (tempfile::NamedTempFile, Arc<DiskImage>) {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(&pattern(SECTORS * 512)).expect("write");
    let config = DiskConfig {
        path: f.path().to_path_buf(),
        writable,
        root: false,
        fail,
    };
    let image = DiskImage::open(&config).expect("open");
    (f, Arc::new(image))
}

struct Rig {
    mem: GuestMemoryMmap,
    q: Queue,
    backend: Backend,
    counters: DiskCounters,
    avail: u16,
    file: tempfile::NamedTempFile,
}

impl Rig {
    fn new(writable: bool, fail: Vec<FailRange>) -> Rig {
        let mem = memory();
        let mut q = Queue::new(QUEUE_SIZE).expect("queue");
        q.set_size(QSIZE);
        q.set_desc_table_address(Some(DESC as u32), Some(0));
        q.set_avail_ring_address(Some(AVAIL as u32), Some(0));
        q.set_used_ring_address(Some(USED as u32), Some(0));
        q.set_ready(true);
        let (file, image) = disk(writable, fail);
        Rig {
            mem,
            q,
            backend: Backend::new(image, 0),
            counters: DiskCounters::default(),
            avail: 0,
            file,
        }
    }

    fn header(&self, kind: u32, sector: u64) {
        self.mem.write_obj(kind, GuestAddress(HDR)).unwrap();
        self.mem.write_obj(0u32, GuestAddress(HDR + 4)).unwrap();
        self.mem.write_obj(sector, GuestAddress(HDR + 8)).unwrap();
        // A status the device must overwrite.
        self.mem.write_obj(0xeeu8, GuestAddress(STATUS_AT)).unwrap();
    }

    /// Descriptors `0..` as a chain: (addr, len, flags besides NEXT).
    fn chain(&self, descs: &[(u64, u32, u16)]) {
        for (i, &(addr, len, flags)) in descs.iter().enumerate() {
            let next = if i + 1 < descs.len() { DESC_F_NEXT } else { 0 };
            write_desc(
                &self.mem,
                DESC,
                i as u16,
                addr,
                len,
                flags | next,
                i as u16 + 1,
            );
        }
    }

    /// The same as one indirect table (so that it may be longer than the
    /// queue).
    fn chain_indirect(&self, descs: &[(u64, u32, u16)]) {
        let table = 0x40000;
        for (i, &(addr, len, flags)) in descs.iter().enumerate() {
            let next = if i + 1 < descs.len() { DESC_F_NEXT } else { 0 };
            write_desc(
                &self.mem,
                table,
                i as u16,
                addr,
                len,
                flags | next,
                i as u16 + 1,
            );
        }
        let len = 16 * descs.len() as u32;
        write_desc(&self.mem, DESC, 0, table, len, DESC_F_INDIRECT, 0);
    }

    /// Offer the chain at descriptor 0, let the backend take it; the
    /// status byte and the used length.
    fn submit(&mut self) -> (u8, u32) {
        let used = self.offer_and_process();
        assert_eq!(used, 1);
        let slot = u64::from((self.avail - 1) % QSIZE);
        let len: u32 = self
            .mem
            .read_obj(GuestAddress(USED + 4 + 8 * slot + 4))
            .unwrap();
        (self.mem.read_obj(GuestAddress(STATUS_AT)).unwrap(), len)
    }

    fn offer_and_process(&mut self) -> usize {
        let slot = AVAIL + 4 + 2 * u64::from(self.avail % QSIZE);
        self.mem.write_obj(0u16, GuestAddress(slot)).unwrap();
        self.avail = self.avail.wrapping_add(1);
        self.mem
            .write_obj(self.avail, GuestAddress(AVAIL + 2))
            .unwrap();
        self.backend
            .process_queue(&mut self.q, &self.mem, &mut self.counters)
    }

    /// A request of `kind` at `sector` with data descriptors `data`
    /// (readable for OUT, writable otherwise).
    fn request(&mut self, kind: u32, sector: u64, data: &[(u64, u32)]) -> (u8, u32) {
        self.header(kind, sector);
        let flag = if kind == blk::T_OUT { R } else { W };
        let mut descs = vec![(HDR, blk::HEADER_LEN, R)];
        descs.extend(data.iter().map(|&(a, l)| (a, l, flag)));
        descs.push((STATUS_AT, 1, W));
        self.chain(&descs);
        self.submit()
    }

    fn file_bytes(&self) -> Vec<u8> {
        std::fs::read(self.file.path()).unwrap()
    }

    fn mem_bytes(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.mem.read_slice(&mut v, GuestAddress(addr)).unwrap();
        v
    }
}

fn write_desc(
    mem: &GuestMemoryMmap,
    table: u64,
    i: u16,
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
) {
    let at = GuestAddress(table + 16 * u64::from(i));
    mem.write_obj(addr, at).unwrap();
    mem.write_obj(len, at.unchecked_add(8)).unwrap();
    mem.write_obj(flags, at.unchecked_add(12)).unwrap();
    mem.write_obj(next, at.unchecked_add(14)).unwrap();
}

const OK: u8 = blk::S_OK;
const IOERR: u8 = blk::S_IOERR;

#[test]
fn a_read_in_two_segments_lands_in_guest_memory() {
    let mut rig = Rig::new(false, vec![]);
    let (status, len) = rig.request(blk::T_IN, 3, &[(DATA, 512), (DATA + 0x4000, 1024)]);
    assert_eq!((status, len), (OK, 1536 + 1));
    let disk = pattern(SECTORS * 512);
    assert_eq!(rig.mem_bytes(DATA, 512), disk[3 * 512..4 * 512]);
    assert_eq!(rig.mem_bytes(DATA + 0x4000, 1024), disk[4 * 512..6 * 512]);
    assert_eq!(rig.counters.ok, 1);
    assert!(!rig.counters.any_failed());
}

#[test]
fn a_write_reaches_the_file_and_a_flush_succeeds() {
    let mut rig = Rig::new(true, vec![]);
    rig.mem
        .write_slice(&[0xab; 1024], GuestAddress(DATA))
        .unwrap();
    let (status, len) = rig.request(blk::T_OUT, 10, &[(DATA, 1024)]);
    assert_eq!((status, len), (OK, 1));
    let file = rig.file_bytes();
    assert!(file[10 * 512..12 * 512].iter().all(|&b| b == 0xab));
    assert_eq!(file[..10 * 512], pattern(10 * 512)[..]);
    assert_eq!(rig.request(blk::T_FLUSH, 0, &[]), (OK, 1));
    // The last sector is writable, and readable back.
    assert_eq!(rig.request(blk::T_OUT, SECTORS - 1, &[(DATA, 512)]).0, OK);
    assert_eq!(
        rig.request(blk::T_IN, SECTORS - 1, &[(DATA + 0x8000, 512)])
            .0,
        OK
    );
    assert_eq!(rig.mem_bytes(DATA + 0x8000, 512), vec![0xab; 512]);
    assert_eq!(rig.counters.ok, 4);
}

#[test]
fn get_id_names_the_disk() {
    let mut rig = Rig::new(false, vec![]);
    let (status, len) = rig.request(blk::T_GET_ID, 0, &[(DATA, blk::ID_BYTES)]);
    assert_eq!((status, len), (OK, 21));
    let mut want = b"mobius-disk0".to_vec();
    want.resize(20, 0);
    assert_eq!(rig.mem_bytes(DATA, 20), want);
    // Not 20 bytes: refused.
    assert_eq!(rig.request(blk::T_GET_ID, 0, &[(DATA, 19)]).0, IOERR);
    assert_eq!(rig.request(blk::T_GET_ID, 0, &[(DATA, 21)]).0, IOERR);
    assert_eq!(rig.counters.bad_requests, 2);
}

#[test]
fn a_read_only_disk_refuses_writes_and_flushes() {
    let mut rig = Rig::new(false, vec![]);
    rig.mem
        .write_slice(&[0xab; 512], GuestAddress(DATA))
        .unwrap();
    assert_eq!(rig.request(blk::T_OUT, 0, &[(DATA, 512)]), (IOERR, 1));
    assert_eq!(rig.request(blk::T_FLUSH, 0, &[]), (IOERR, 1));
    assert_eq!(rig.file_bytes(), pattern(SECTORS * 512));
    assert_eq!(rig.counters.bad_requests, 2);
    assert_eq!(rig.counters.first_bad, Some("write to a read-only disk"));
    // Reads still work.
    assert_eq!(rig.request(blk::T_IN, 0, &[(DATA, 512)]).0, OK);
}

#[test]
fn sectors_past_the_end_or_overflowing_are_refused() {
    let mut rig = Rig::new(true, vec![]);
    for (kind, sector) in [
        (blk::T_IN, SECTORS),
        (blk::T_IN, SECTORS - 1), // 1024 bytes: one sector too many
        (blk::T_OUT, SECTORS - 1),
        (blk::T_IN, u64::MAX / 512),     // sector * 512 + len overflows
        (blk::T_IN, u64::MAX / 512 + 1), // sector * 512 overflows
        (blk::T_OUT, u64::MAX),
    ] {
        let (status, len) = rig.request(kind, sector, &[(DATA, 1024)]);
        assert_eq!((status, len), (IOERR, 1), "type {kind} sector {sector}");
    }
    assert_eq!(rig.counters.bad_requests, 6);
    assert_eq!(rig.file_bytes(), pattern(SECTORS * 512));
}

#[test]
fn unknown_types_are_unsupported() {
    let mut rig = Rig::new(true, vec![]);
    for kind in [2, 7, 11, 13, u32::MAX] {
        assert_eq!(rig.request(kind, 0, &[]), (blk::S_UNSUPP, 1), "type {kind}");
    }
    assert_eq!(rig.counters.bad_requests, 5);
    assert_eq!(rig.counters.first_bad, Some("unknown request type"));
}

#[test]
fn chains_of_the_wrong_shape_are_refused() {
    let mut rig = Rig::new(true, vec![]);
    // Readable after writable.
    rig.header(blk::T_IN, 0);
    rig.chain(&[
        (HDR, 16, R),
        (DATA, 512, W),
        (DATA + 512, 16, R),
        (STATUS_AT, 1, W),
    ]);
    assert_eq!(rig.submit(), (IOERR, 1));
    // A header of 8 bytes.
    rig.header(blk::T_IN, 0);
    rig.chain(&[(HDR, 8, R), (DATA, 512, W), (STATUS_AT, 1, W)]);
    assert_eq!(rig.submit(), (IOERR, 1));
    // No header at all.
    rig.chain(&[(DATA, 512, W), (STATUS_AT, 1, W)]);
    assert_eq!(rig.submit(), (IOERR, 1));
    // A read with device-readable data, a write with writable data.
    rig.header(blk::T_IN, 0);
    rig.chain(&[
        (HDR, 16, R),
        (DATA, 512, R),
        (DATA + 512, 512, W),
        (STATUS_AT, 1, W),
    ]);
    assert_eq!(rig.submit(), (IOERR, 1));
    rig.header(blk::T_OUT, 0);
    rig.chain(&[
        (HDR, 16, R),
        (DATA, 512, R),
        (DATA + 512, 512, W),
        (STATUS_AT, 1, W),
    ]);
    assert_eq!(rig.submit(), (IOERR, 1));
    // A flush with data.
    rig.header(blk::T_FLUSH, 0);
    rig.chain(&[(HDR, 16, R), (DATA, 512, R), (STATUS_AT, 1, W)]);
    assert_eq!(rig.submit(), (IOERR, 1));
    // Lengths that are not whole sectors, or nothing.
    assert_eq!(rig.request(blk::T_IN, 0, &[(DATA, 511)]), (IOERR, 1));
    assert_eq!(
        rig.request(blk::T_IN, 0, &[(DATA, 512), (DATA + 512, 100)]),
        (IOERR, 1)
    );
    assert_eq!(rig.request(blk::T_IN, 0, &[]), (IOERR, 1));
    assert_eq!(rig.request(blk::T_OUT, 0, &[]), (IOERR, 1));
    // More segments than seg_max (in an indirect table: longer than the
    // queue), and exactly seg_max.
    rig.header(blk::T_IN, 0);
    let mut descs = vec![(HDR, 16, R)];
    descs.extend((0..u64::from(blk::SEG_MAX)).map(|i| (DATA + 512 * i, 512, W)));
    descs.push((STATUS_AT, 1, W));
    rig.chain_indirect(&descs);
    assert_eq!(rig.submit(), (OK, 32 * 512 + 1));
    descs.insert(1, (DATA, 512, W));
    rig.chain_indirect(&descs);
    assert_eq!(rig.submit(), (IOERR, 1));
    assert_eq!(rig.counters.bad_requests, 11);
    assert_eq!(rig.counters.ok, 1);
    assert_eq!(rig.file_bytes(), pattern(SECTORS * 512));
}

#[test]
fn the_header_and_status_may_share_descriptors_with_data() {
    let mut rig = Rig::new(false, vec![]);
    // Header and nothing else readable in one descriptor split in two;
    // data and status in one writable descriptor.
    rig.header(blk::T_IN, 1);
    rig.chain(&[(HDR, 10, R), (HDR + 10, 6, R), (DATA, 513, W)]);
    rig.mem.write_obj(0xeeu8, GuestAddress(DATA + 512)).unwrap();
    rig.submit();
    assert_eq!(
        rig.mem.read_obj::<u8>(GuestAddress(DATA + 512)).unwrap(),
        OK
    );
    assert_eq!(rig.mem_bytes(DATA, 512), pattern(2 * 512)[512..]);
}

#[test]
fn a_chain_without_a_writable_status_byte_is_handed_back_unanswered() {
    let mut rig = Rig::new(true, vec![]);
    rig.header(blk::T_IN, 0);
    // The status descriptor is device-readable.
    rig.chain(&[(HDR, 16, R), (DATA, 512, W), (STATUS_AT, 1, R)]);
    assert_eq!(rig.submit(), (0xee, 0));
    // Zero-length status descriptor.
    rig.chain(&[(HDR, 16, R), (DATA, 512, W), (STATUS_AT, 0, W)]);
    assert_eq!(rig.submit(), (0xee, 0));
    // The status byte outside guest RAM.
    rig.chain(&[(HDR, 16, R), (DATA, 512, W), (MEM, 1, W)]);
    assert_eq!(rig.submit(), (0xee, 0));
    rig.chain(&[(HDR, 16, R), (u64::MAX, 1, W)]);
    assert_eq!(rig.submit(), (0xee, 0));
    rig.chain(&[(HDR, 16, R), (u64::MAX - 8, u32::MAX, W)]);
    assert_eq!(rig.submit(), (0xee, 0));
    assert_eq!(rig.counters.bad_requests, 5);
    assert_eq!(
        rig.counters.first_bad,
        Some("no writable status byte in guest RAM")
    );
}

#[test]
fn buffers_outside_guest_ram_are_refused() {
    let mut rig = Rig::new(true, vec![]);
    for data in [
        (MEM, 512),
        (MEM - 256, 512),
        (u64::MAX - 255, 512),
        (DATA, MEM as u32), // a length that lies
    ] {
        assert_eq!(rig.request(blk::T_IN, 0, &[data]), (IOERR, 1), "{data:?}");
        assert_eq!(rig.request(blk::T_OUT, 0, &[data]), (IOERR, 1), "{data:?}");
    }
    // A length beyond what a chain may carry (2^32 bytes in all): the
    // chain ends there, without a status byte in RAM.
    assert_eq!(rig.request(blk::T_IN, 0, &[(DATA, u32::MAX)]), (0xee, 0));
    // The header outside RAM.
    rig.chain(&[(MEM + 4096, 16, R), (DATA, 512, W), (STATUS_AT, 1, W)]);
    assert_eq!(rig.submit(), (IOERR, 1));
    assert_eq!(rig.counters.bad_requests, 10);
    assert_eq!(rig.file_bytes(), pattern(SECTORS * 512));
}

#[test]
fn injected_read_failures_are_counted_apart() {
    let fail = vec![
        FailRange { first: 4, last: 5 },
        FailRange {
            first: 40,
            last: 40,
        },
    ];
    let mut rig = Rig::new(true, fail);
    assert_eq!(rig.request(blk::T_IN, 0, &[(DATA, 2048)]).0, OK); // 0..=3
    assert_eq!(rig.request(blk::T_IN, 3, &[(DATA, 1024)]).0, IOERR); // 3..=4
    assert_eq!(rig.request(blk::T_IN, 5, &[(DATA, 512)]).0, IOERR);
    assert_eq!(rig.request(blk::T_IN, 6, &[(DATA, 512)]).0, OK);
    assert_eq!(rig.request(blk::T_IN, 39, &[(DATA, 1536)]).0, IOERR); // 39..=41
                                                                      // Writes of those sectors are not affected.
    assert_eq!(rig.request(blk::T_OUT, 4, &[(DATA, 512)]).0, OK);
    assert_eq!(rig.counters.injected, 3);
    assert_eq!(rig.counters.bad_requests, 0);
    assert_eq!(rig.counters.ok, 3);
    let report = crate::devices::virtio::disk::DiskReport {
        index: 1,
        path: "/d.img".into(),
        counters: rig.counters.clone(),
    };
    assert_eq!(
        report.warning().as_deref(),
        Some("mobius: warning: disk 1 (/d.img): 3 read failures injected")
    );
}

#[test]
fn the_work_of_one_notify_is_bounded() {
    let mut rig = Rig::new(true, vec![]);
    // An available index far ahead of what the queue can hold: nothing
    // is taken.
    rig.mem.write_obj(1000u16, GuestAddress(AVAIL + 2)).unwrap();
    assert_eq!(
        rig.backend
            .process_queue(&mut rig.q, &rig.mem, &mut rig.counters),
        0
    );
    // An indirect table of 10,000 descriptors: the chain is cut at
    // MAX_CHAIN and handed back unanswered.
    let mut rig = Rig::new(true, vec![]);
    let table = 0x40000;
    for i in 0..10_000u16 {
        write_desc(&rig.mem, table, i, DATA, 512, DESC_F_NEXT | W, i + 1);
    }
    write_desc(&rig.mem, DESC, 0, table, 16 * 10_000, DESC_F_INDIRECT, 0);
    assert_eq!(rig.offer_and_process(), 1);
    assert_eq!(rig.counters.bad_requests, 1);
    assert_eq!(rig.counters.first_bad, Some("descriptor chain too long"));
    // A queue not ready, or outside RAM: counted, nothing taken.
    rig.q.set_ready(false);
    assert_eq!(rig.offer_and_process(), 0);
    rig.q.set_ready(true);
    rig.q.set_desc_table_address(Some(0), Some(1));
    assert_eq!(rig.offer_and_process(), 0);
    assert_eq!(rig.counters.bad_notifies, 2);
}

#[test]
fn a_full_queue_is_answered_in_one_notify() {
    let mut rig = Rig::new(false, vec![]);
    rig.header(blk::T_IN, 0);
    rig.chain(&[(HDR, 16, R), (DATA, 512, W), (STATUS_AT, 1, W)]);
    for i in 0..QSIZE {
        let slot = AVAIL + 4 + 2 * u64::from(i);
        rig.mem.write_obj(0u16, GuestAddress(slot)).unwrap();
    }
    rig.mem.write_obj(QSIZE, GuestAddress(AVAIL + 2)).unwrap();
    let used = rig
        .backend
        .process_queue(&mut rig.q, &rig.mem, &mut rig.counters);
    assert_eq!(used, usize::from(QSIZE));
    assert_eq!(rig.counters.ok, u64::from(QSIZE));
}

/// The interrupt as a channel, for the device test.
struct ChannelIrq(Mutex<mpsc::Sender<()>>);

impl Irq for ChannelIrq {
    fn trigger(&self) -> bool {
        lock(&self.0).send(()).is_ok()
    }
}

fn reg(dev: &mut VirtioBlock, off: u64, v: u32) {
    dev.write(off, &v.to_le_bytes());
}

fn read_reg(dev: &mut VirtioBlock, off: u64) -> u32 {
    let mut b = [0u8; 4];
    dev.read(off, &mut b);
    u32::from_le_bytes(b)
}

/// The whole device: registers, the worker woken by QUEUE_NOTIFY, the
/// completion interrupt, InterruptStatus, reset and teardown.
#[test]
fn the_device_serves_requests_on_its_worker_and_interrupts() {
    let mem = memory();
    let (file, image) = disk(false, vec![]);
    let (tx, rx) = mpsc::channel();
    let device = BlockDevice::spawn(
        0,
        image,
        mem.clone(),
        Box::new(ChannelIrq(Mutex::new(tx))),
        false,
    )
    .expect("spawn");
    let counters = device.counters();
    let mut dev = VirtioBlock::with_device(device, mem.clone());
    assert_eq!(read_reg(&mut dev, MAGIC_VALUE), MAGIC);
    assert_eq!(read_reg(&mut dev, DEVICE_ID), DEVICE_ID_BLOCK);
    let features = u64::from(read_reg(&mut dev, DEVICE_FEATURES));
    assert_eq!(features & blk::F_RO, blk::F_RO, "a read-only disk says so");
    assert_eq!(features & blk::F_FLUSH, blk::F_FLUSH);
    // Configuration space: capacity, size_max, seg_max, at any width.
    let mut cap = [0u8; 8];
    dev.read(CONFIG + blk::CONFIG_CAPACITY, &mut cap);
    assert_eq!(u64::from_le_bytes(cap), SECTORS);
    assert_eq!(
        read_reg(&mut dev, CONFIG + blk::CONFIG_SEG_MAX),
        blk::SEG_MAX
    );
    assert_eq!(
        read_reg(&mut dev, CONFIG + blk::CONFIG_SIZE_MAX),
        blk::SIZE_MAX
    );
    assert_eq!(read_reg(&mut dev, CONFIG + 0xefc), 0);
    let mut far = [0xffu8; 2];
    dev.read(u64::MAX - 1, &mut far);
    assert_eq!(far, [0, 0]);

    // A notify before DRIVER_OK is counted, and nothing happens.
    reg(&mut dev, QUEUE_NOTIFY, 0);

    reg(&mut dev, STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    reg(&mut dev, DRIVER_FEATURES_SEL, 0);
    reg(&mut dev, DRIVER_FEATURES, (blk::F_RO | blk::F_FLUSH) as u32);
    reg(&mut dev, DRIVER_FEATURES_SEL, 1);
    reg(&mut dev, DRIVER_FEATURES, 1);
    reg(
        &mut dev,
        STATUS,
        STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK,
    );
    assert_ne!(read_reg(&mut dev, STATUS) & STATUS_FEATURES_OK, 0);
    reg(&mut dev, QUEUE_SEL, 0);
    assert_eq!(read_reg(&mut dev, QUEUE_NUM_MAX), u32::from(QUEUE_SIZE));
    reg(&mut dev, QUEUE_NUM, u32::from(QSIZE));
    reg(&mut dev, QUEUE_DESC_LOW, DESC as u32);
    reg(&mut dev, QUEUE_DRIVER_LOW, AVAIL as u32);
    reg(&mut dev, QUEUE_DEVICE_LOW, USED as u32);
    reg(&mut dev, QUEUE_READY, 1);
    reg(
        &mut dev,
        STATUS,
        STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK,
    );

    // One read of sector 7.
    mem.write_obj(blk::T_IN, GuestAddress(HDR)).unwrap();
    mem.write_obj(7u64, GuestAddress(HDR + 8)).unwrap();
    write_desc(&mem, DESC, 0, HDR, 16, DESC_F_NEXT, 1);
    write_desc(&mem, DESC, 1, DATA, 512, DESC_F_NEXT | W, 2);
    write_desc(&mem, DESC, 2, STATUS_AT, 1, W, 0);
    mem.write_obj(0u16, GuestAddress(AVAIL + 4)).unwrap();
    mem.write_obj(1u16, GuestAddress(AVAIL + 2)).unwrap();
    reg(&mut dev, QUEUE_NOTIFY, 0);
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the completion interrupt");
    assert_eq!(read_reg(&mut dev, INTERRUPT_STATUS), INT_USED_RING);
    assert_eq!(mem.read_obj::<u16>(GuestAddress(USED + 2)).unwrap(), 1);
    assert_eq!(mem.read_obj::<u8>(GuestAddress(STATUS_AT)).unwrap(), OK);
    let mut got = vec![0u8; 512];
    mem.read_slice(&mut got, GuestAddress(DATA)).unwrap();
    assert_eq!(got, pattern(8 * 512)[7 * 512..]);
    reg(&mut dev, INTERRUPT_ACK, INT_USED_RING);
    assert_eq!(read_reg(&mut dev, INTERRUPT_STATUS), 0);

    // A notify of another queue is counted.
    reg(&mut dev, QUEUE_NOTIFY, 1);
    // Reset: the worker forgets the queue; a notify then does nothing.
    reg(&mut dev, STATUS, 0);
    assert_eq!(read_reg(&mut dev, QUEUE_READY), 0);
    drop(dev); // stops and joins the worker
    let c = lock(&counters).clone();
    assert_eq!(c.ok, 1);
    assert_eq!(c.bad_notifies, 2);
    assert!(rx.try_recv().is_err(), "one interrupt for one request");
    drop(file);
}

/// The interrupt as a counter (no allocation: the worker may be confined).
struct CountingIrq(Arc<std::sync::atomic::AtomicUsize>);

impl Irq for CountingIrq {
    fn trigger(&self) -> bool {
        self.0.fetch_add(1, Ordering::SeqCst);
        true
    }
}

/// The worker under its own seccomp filter (`table::DISK_WORKER`): reads,
/// writes, flushes, refusals, the interrupt and its end make no call
/// outside it (one would end this test process with status 159).
#[test]
fn the_worker_runs_confined_by_its_filter() {
    let mem = memory();
    let (file, image) = disk(true, vec![FailRange { first: 9, last: 9 }]);
    let irqs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let device = BlockDevice::spawn(
        0,
        image,
        mem.clone(),
        Box::new(CountingIrq(Arc::clone(&irqs))),
        true,
    )
    .expect("spawn");
    let counters = device.counters();
    let mut dev = VirtioBlock::with_device(device, mem.clone());
    reg(&mut dev, STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    reg(&mut dev, DRIVER_FEATURES_SEL, 1);
    reg(&mut dev, DRIVER_FEATURES, 1);
    reg(
        &mut dev,
        STATUS,
        STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK,
    );
    reg(&mut dev, QUEUE_NUM, u32::from(QSIZE));
    reg(&mut dev, QUEUE_DESC_LOW, DESC as u32);
    reg(&mut dev, QUEUE_DRIVER_LOW, AVAIL as u32);
    reg(&mut dev, QUEUE_DEVICE_LOW, USED as u32);
    reg(&mut dev, QUEUE_READY, 1);
    reg(
        &mut dev,
        STATUS,
        STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK,
    );
    mem.write_slice(&[0x5a; 1024], GuestAddress(DATA)).unwrap();
    let requests: [(u32, u64, u32, u16); 6] = [
        (blk::T_OUT, 2, 1024, R),
        (blk::T_FLUSH, 0, 0, 0),
        (blk::T_IN, 2, 1024, W),
        (blk::T_GET_ID, 0, blk::ID_BYTES, W),
        (blk::T_IN, 9, 512, W),       // injected failure
        (blk::T_IN, SECTORS, 512, W), // past the end
    ];
    for (i, &(kind, sector, len, flags)) in requests.iter().enumerate() {
        let hdr = HDR + 32 * i as u64;
        let data = DATA + 0x2000 * i as u64;
        mem.write_obj(kind, GuestAddress(hdr)).unwrap();
        mem.write_obj(sector, GuestAddress(hdr + 8)).unwrap();
        let d = 0u16; // one request at a time: the same descriptors
        if len == 0 {
            write_desc(&mem, DESC, d, hdr, 16, DESC_F_NEXT, d + 2);
        } else {
            write_desc(&mem, DESC, d, hdr, 16, DESC_F_NEXT, d + 1);
            let data = if kind == blk::T_OUT { DATA } else { data };
            write_desc(&mem, DESC, d + 1, data, len, DESC_F_NEXT | flags, d + 2);
        }
        write_desc(&mem, DESC, d + 2, STATUS_AT + i as u64, 1, W, 0);
        mem.write_obj(d, GuestAddress(AVAIL + 4 + 2 * i as u64))
            .unwrap();
        mem.write_obj(i as u16 + 1, GuestAddress(AVAIL + 2))
            .unwrap();
        reg(&mut dev, QUEUE_NOTIFY, 0);
        // Wait for it to be used (one at a time, so that the order of the
        // file's write and read is the requests').
        let mut spins = 0u64;
        while mem.read_obj::<u16>(GuestAddress(USED + 2)).unwrap() != i as u16 + 1 {
            std::thread::yield_now();
            spins += 1;
            assert!(spins < 1 << 32, "request {i} never completed");
        }
    }
    let statuses: Vec<u8> = (0..6)
        .map(|i| mem.read_obj(GuestAddress(STATUS_AT + i)).unwrap())
        .collect();
    assert_eq!(statuses, [OK, OK, OK, OK, IOERR, IOERR]);
    let mut back = vec![0u8; 1024];
    mem.read_slice(&mut back, GuestAddress(DATA + 0x2000 * 2))
        .unwrap();
    assert_eq!(back, vec![0x5a; 1024]);
    assert!(irqs.load(Ordering::SeqCst) >= 1);
    drop(dev); // the worker's end, under its filter too
    let c = lock(&counters).clone();
    assert_eq!((c.ok, c.injected, c.bad_requests), (4, 1, 1));
    drop(file);
}

/// Without a worker thread (`BlockDevice::inline`, for the fuzz target):
/// the notify itself serves the queue, raises the interrupt and counts.
#[test]
fn an_inline_device_serves_requests_on_the_notify() {
    let mem = memory();
    let (file, image) = disk(false, vec![]);
    let irqs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let device = BlockDevice::inline(
        0,
        image,
        mem.clone(),
        Box::new(CountingIrq(Arc::clone(&irqs))),
    )
    .expect("device");
    let counters = device.counters();
    let mut dev = VirtioBlock::with_device(device, mem.clone());
    reg(&mut dev, STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    reg(&mut dev, DRIVER_FEATURES_SEL, 1);
    reg(&mut dev, DRIVER_FEATURES, 1);
    reg(
        &mut dev,
        STATUS,
        STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK,
    );
    reg(&mut dev, QUEUE_NUM, u32::from(QSIZE));
    reg(&mut dev, QUEUE_DESC_LOW, DESC as u32);
    reg(&mut dev, QUEUE_DRIVER_LOW, AVAIL as u32);
    reg(&mut dev, QUEUE_DEVICE_LOW, USED as u32);
    reg(&mut dev, QUEUE_READY, 1);
    reg(
        &mut dev,
        STATUS,
        STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK,
    );
    mem.write_obj(blk::T_IN, GuestAddress(HDR)).unwrap();
    mem.write_obj(3u64, GuestAddress(HDR + 8)).unwrap();
    write_desc(&mem, DESC, 0, HDR, 16, DESC_F_NEXT, 1);
    write_desc(&mem, DESC, 1, DATA, 512, DESC_F_NEXT | W, 2);
    write_desc(&mem, DESC, 2, STATUS_AT, 1, W, 0);
    mem.write_obj(0u16, GuestAddress(AVAIL + 4)).unwrap();
    mem.write_obj(1u16, GuestAddress(AVAIL + 2)).unwrap();
    reg(&mut dev, QUEUE_NOTIFY, 0);
    // Done when the write returns.
    assert_eq!(mem.read_obj::<u16>(GuestAddress(USED + 2)).unwrap(), 1);
    assert_eq!(mem.read_obj::<u8>(GuestAddress(STATUS_AT)).unwrap(), OK);
    assert_eq!(read_reg(&mut dev, INTERRUPT_STATUS), INT_USED_RING);
    assert_eq!(irqs.load(Ordering::SeqCst), 1);
    let mut got = vec![0u8; 512];
    mem.read_slice(&mut got, GuestAddress(DATA)).unwrap();
    assert_eq!(got, pattern(4 * 512)[3 * 512..]);
    // A write to this read-only disk: refused, counted.
    mem.write_obj(blk::T_OUT, GuestAddress(HDR)).unwrap();
    write_desc(&mem, DESC, 1, DATA, 512, DESC_F_NEXT, 2);
    mem.write_obj(0u16, GuestAddress(AVAIL + 6)).unwrap();
    mem.write_obj(2u16, GuestAddress(AVAIL + 2)).unwrap();
    reg(&mut dev, QUEUE_NOTIFY, 0);
    assert_eq!(mem.read_obj::<u8>(GuestAddress(STATUS_AT)).unwrap(), IOERR);
    drop(dev); // no thread to join
    let c = lock(&counters).clone();
    assert_eq!((c.ok, c.bad_requests), (1, 1));
    assert_eq!(c.first_bad, Some("write to a read-only disk"));
    drop(file);
}
