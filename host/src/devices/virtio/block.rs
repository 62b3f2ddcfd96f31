//! virtio-blk (device ID 2, virtio 1.x) over a `--disk` file: one request
//! queue, IN/OUT/FLUSH/GET_ID, served off the vCPU thread.
//!
//! The vCPU thread sees only the transport ([`MmioTransport`]): its
//! QUEUE_NOTIFY write wakes the disk's worker thread through an eventfd and
//! returns. The worker ([`Backend::process_queue`]) takes the available
//! chains, checks each ([`Backend::execute`]), reads or writes the file
//! with `pread64`/`pwrite64` (or `fdatasync`s it), puts the chains on the
//! used ring, sets bit 0 of InterruptStatus and sends the disk's vector as
//! an MSI straight into the local APIC ([`Irq`]; KVM's, split irqchip).
//!
//! The guest is untrusted. A request is answered `VIRTIO_BLK_S_IOERR`
//! (or `_UNSUPP` for an unknown type) and counted ([`DiskCounters`]), never
//! a panic or an access outside guest memory, when: its sectors run past
//! the end or `sector * 512 + len` overflows; it writes or flushes a
//! read-only disk; its chain has the wrong shape (device-readable after
//! device-writable descriptors, no header, data where there must be none,
//! more than [`SEG_MAX`] data segments or [`MAX_REQUEST_BYTES`] bytes, a
//! length that is not whole sectors, a GET_ID buffer that is not 20 bytes);
//! a buffer lies outside guest RAM. A chain whose last descriptor is not a
//! writable byte in RAM cannot be answered: it is handed back with length 0
//! and counted. One wake-up takes at most [`QUEUE_SIZE`] chains (the most a
//! driver can have outstanding), each of at most [`MAX_REQUEST_BYTES`].
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use mobius_shared::virtio_mmio::blk::*;
use mobius_shared::virtio_mmio::{DEVICE_ID_BLOCK, INT_USED_RING};
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

use super::disk::{DiskCounters, DiskImage};
use super::transport::{Context, MmioTransport, VirtioDevice};

/// Most bytes of data one request may move: [`SEG_MAX`] segments of
/// [`SIZE_MAX`] (offered to the driver as `seg_max` and `size_max`).
pub const MAX_REQUEST_BYTES: u64 = SEG_MAX as u64 * SIZE_MAX as u64;
/// Most descriptors walked in one chain: the header, [`SEG_MAX`] data
/// segments and the status, with room for a header or status split off.
pub const MAX_CHAIN: usize = SEG_MAX as usize + 4;

/// How a completion interrupt reaches the guest.
pub trait Irq: Send + 'static {
    /// Raise it; `false` if it could not be.
    fn trigger(&self) -> bool;
}

/// An MSI to APIC ID 0 with a fixed vector (`KVM_SIGNAL_MSI`).
pub struct Msi {
    pub vm: Arc<kvm_ioctls::VmFd>,
    pub vector: u8,
}

impl Irq for Msi {
    fn trigger(&self) -> bool {
        let msi = kvm_bindings::kvm_msi {
            // 0xFEE0_0000 | dest_apic_id << 12, destination APIC ID 0.
            address_lo: 0xfee0_0000,
            address_hi: 0,
            // Fixed delivery, edge-triggered: the vector alone.
            data: u32::from(self.vector),
            ..Default::default()
        };
        // 1: delivered; 0: the guest's APIC blocked it (masked), which is
        // the guest's business, not an error.
        self.vm.signal_msi(msi).is_ok()
    }
}

/// One segment of a request: guest address and length.
#[derive(Debug, Clone, Copy, Default)]
struct Seg {
    addr: u64,
    len: u32,
}

/// Why a request was refused (the counters keep the first).
type Refusal = (u8, &'static str);

const fn bad(why: &'static str) -> Refusal {
    (S_IOERR, why)
}

/// What executes requests: the disk file and what the run asked of it.
pub struct Backend {
    image: Arc<DiskImage>,
    id: [u8; ID_BYTES as usize],
    /// Bounce buffer for one segment at a time (at most [`SIZE_MAX`]).
    bounce: Vec<u8>,
}

impl Backend {
    pub fn new(image: Arc<DiskImage>, index: usize) -> Backend {
        let mut id = [0u8; ID_BYTES as usize];
        let name = format!("mobius-disk{index}");
        let n = name.len().min(id.len());
        id[..n].copy_from_slice(&name.as_bytes()[..n]);
        Backend {
            image,
            id,
            bounce: vec![0; SIZE_MAX as usize],
        }
    }

    /// Take every available chain of `q` (at most [`QUEUE_SIZE`]),
    /// execute it and put it on the used ring; how many were used.
    pub fn process_queue(
        &mut self,
        q: &mut Queue,
        mem: &GuestMemoryMmap,
        counters: &mut DiskCounters,
    ) -> usize {
        if !q.ready() || !q.is_valid(mem) {
            counters.bad_notifies = counters.bad_notifies.saturating_add(1);
            note(counters, "queue not ready or outside guest memory");
            return 0;
        }
        let mut used = 0;
        while used < usize::from(QUEUE_SIZE) {
            let Some(chain) = q.pop_descriptor_chain(mem) else {
                break;
            };
            let head = chain.head_index();
            let len = self.execute(mem, chain, counters);
            if q.add_used(mem, head, len).is_err() {
                counters.bad_notifies = counters.bad_notifies.saturating_add(1);
                note(counters, "used ring outside guest memory");
                break;
            }
            used += 1;
        }
        used
    }

    /// Execute one request made of `descs`; the used length (bytes written
    /// into the chain: data and status, 0 if no status could be written).
    pub fn execute(
        &mut self,
        mem: &GuestMemoryMmap,
        descs: impl Iterator<Item = virtio_queue::desc::split::Descriptor>,
        counters: &mut DiskCounters,
    ) -> u32 {
        let mut segs = [(Seg::default(), false); MAX_CHAIN];
        let mut n = 0;
        let mut too_long = false;
        for d in descs {
            if n == MAX_CHAIN {
                too_long = true;
                break;
            }
            segs[n] = (
                Seg {
                    addr: d.addr().0,
                    len: d.len(),
                },
                d.is_write_only(),
            );
            n += 1;
        }
        let segs = &segs[..n];
        // The status byte: the last byte of the last descriptor, which
        // must be device-writable and in RAM.
        let status_at = match segs.last() {
            Some(&(s, true)) if s.len > 0 && !too_long => s
                .addr
                .checked_add(u64::from(s.len) - 1)
                .filter(|&a| in_ram(mem, a, 1)),
            _ => None,
        };
        let Some(status_at) = status_at else {
            counters.bad_requests = counters.bad_requests.saturating_add(1);
            note(
                counters,
                if too_long {
                    "descriptor chain too long"
                } else {
                    "no writable status byte in guest RAM"
                },
            );
            return 0;
        };
        let (status, data_written) = match self.request(mem, segs) {
            Ok(written) => {
                counters.ok = counters.ok.saturating_add(1);
                (S_OK, written)
            }
            Err(Failure::Refused((status, why))) => {
                counters.bad_requests = counters.bad_requests.saturating_add(1);
                note(counters, why);
                (status, 0)
            }
            Err(Failure::Injected) => {
                counters.injected = counters.injected.saturating_add(1);
                (S_IOERR, 0)
            }
            Err(Failure::Io) => {
                counters.io_errors = counters.io_errors.saturating_add(1);
                (S_IOERR, 0)
            }
        };
        if mem.write_obj(status, GuestAddress(status_at)).is_err() {
            // Checked above; guest RAM does not shrink.
            return 0;
        }
        data_written.saturating_add(1)
    }

    /// Check and carry out the request; the data bytes written into guest
    /// memory.
    fn request(&mut self, mem: &GuestMemoryMmap, segs: &[(Seg, bool)]) -> Result<u32, Failure> {
        // Shape: device-readable descriptors, then device-writable ones.
        let readable = segs.iter().take_while(|(_, w)| !w).count();
        if segs[readable..].iter().any(|(_, w)| !w) {
            return Err(refuse("a device-readable descriptor after a writable one"));
        }
        if segs
            .iter()
            .any(|(s, _)| !in_ram(mem, s.addr, u64::from(s.len)))
        {
            return Err(refuse("buffer outside guest RAM"));
        }
        let (head, tail) = segs.split_at(readable);
        let (header, out_data) = split_bytes(head, u64::from(HEADER_LEN));
        if total(&header) < u64::from(HEADER_LEN) {
            return Err(refuse("request header shorter than 16 bytes"));
        }
        let mut raw = [0u8; HEADER_LEN as usize];
        let mut at = 0usize;
        for s in header.iter().filter(|s| s.len > 0) {
            let end = at + s.len as usize;
            mem.read_slice(&mut raw[at..end], GuestAddress(s.addr))
                .map_err(|_| refuse("buffer outside guest RAM"))?;
            at = end;
        }
        let kind = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let sector = u64::from_le_bytes([
            raw[8], raw[9], raw[10], raw[11], raw[12], raw[13], raw[14], raw[15],
        ]);
        // The writable bytes before the status byte.
        let writable = total_segs(tail).saturating_sub(1);
        let (in_data, _) = split_bytes(tail, writable);
        match kind {
            T_IN => {
                if total(&out_data) != 0 {
                    return Err(refuse("read request with device-readable data"));
                }
                let len = self.check_data(&in_data, sector)?;
                if self
                    .image
                    .fail
                    .iter()
                    .any(|r| r.meets(sector, len >> SECTOR_SHIFT))
                {
                    return Err(Failure::Injected);
                }
                self.read_into(mem, &in_data, sector)?;
                Ok(len as u32)
            }
            T_OUT => {
                if !self.image.writable {
                    return Err(refuse("write to a read-only disk"));
                }
                if writable != 0 {
                    return Err(refuse("write request with device-writable data"));
                }
                self.check_data(&out_data, sector)?;
                self.write_from(mem, &out_data, sector)?;
                Ok(0)
            }
            T_FLUSH => {
                if !self.image.writable {
                    return Err(refuse("flush of a read-only disk"));
                }
                if total(&out_data) != 0 || writable != 0 {
                    return Err(refuse("flush request with data"));
                }
                self.image.file.sync_data().map_err(|_| Failure::Io)?;
                Ok(0)
            }
            T_GET_ID => {
                if total(&out_data) != 0 || writable != u64::from(ID_BYTES) {
                    return Err(refuse("GET_ID buffer not 20 writable bytes"));
                }
                let mut at = 0usize;
                for s in in_data.iter() {
                    let end = at + s.len as usize;
                    mem.write_slice(&self.id[at..end], GuestAddress(s.addr))
                        .map_err(|_| refuse("buffer outside guest RAM"))?;
                    at = end;
                }
                Ok(ID_BYTES)
            }
            _ => Err(Failure::Refused((S_UNSUPP, "unknown request type"))),
        }
    }

    /// Check a data transfer of `data` at `sector`; its length in bytes.
    fn check_data(&self, data: &Segs, sector: u64) -> Result<u64, Failure> {
        if data.n > SEG_MAX as usize {
            return Err(refuse("more data segments than seg_max"));
        }
        let len = total(data);
        if len == 0 || !len.is_multiple_of(SECTOR_SIZE) {
            return Err(refuse("data length not a positive number of sectors"));
        }
        if len > MAX_REQUEST_BYTES {
            return Err(refuse("request larger than seg_max * size_max"));
        }
        let end = sector
            .checked_mul(SECTOR_SIZE)
            .and_then(|start| start.checked_add(len))
            .ok_or_else(|| refuse("sector * 512 + length overflows"))?;
        if end > self.image.sectors.saturating_mul(SECTOR_SIZE) {
            return Err(refuse("sectors past the end of the disk"));
        }
        Ok(len)
    }

    /// `pread64` the file at `sector` into the segments.
    fn read_into(
        &mut self,
        mem: &GuestMemoryMmap,
        data: &Segs,
        sector: u64,
    ) -> Result<(), Failure> {
        let mut offset = sector << SECTOR_SHIFT;
        for s in data.iter() {
            let mut done = 0u64;
            while done < u64::from(s.len) {
                let n = (u64::from(s.len) - done).min(SIZE_MAX as u64) as usize;
                let buf = &mut self.bounce[..n];
                self.image
                    .file
                    .read_exact_at(buf, offset)
                    .map_err(|_| Failure::Io)?;
                mem.write_slice(buf, GuestAddress(s.addr + done))
                    .map_err(|_| refuse("buffer outside guest RAM"))?;
                done += n as u64;
                offset += n as u64;
            }
        }
        Ok(())
    }

    /// `pwrite64` the segments to the file at `sector`.
    fn write_from(
        &mut self,
        mem: &GuestMemoryMmap,
        data: &Segs,
        sector: u64,
    ) -> Result<(), Failure> {
        let mut offset = sector << SECTOR_SHIFT;
        for s in data.iter() {
            let mut done = 0u64;
            while done < u64::from(s.len) {
                let n = (u64::from(s.len) - done).min(SIZE_MAX as u64) as usize;
                let buf = &mut self.bounce[..n];
                mem.read_slice(buf, GuestAddress(s.addr + done))
                    .map_err(|_| refuse("buffer outside guest RAM"))?;
                self.image
                    .file
                    .write_all_at(buf, offset)
                    .map_err(|_| Failure::Io)?;
                done += n as u64;
                offset += n as u64;
            }
        }
        Ok(())
    }
}

enum Failure {
    Refused(Refusal),
    Injected,
    Io,
}

fn refuse(why: &'static str) -> Failure {
    Failure::Refused(bad(why))
}

fn note(counters: &mut DiskCounters, why: &'static str) {
    if counters.first_bad.is_none() {
        counters.first_bad = Some(why);
    }
}

fn in_ram(mem: &GuestMemoryMmap, addr: u64, len: u64) -> bool {
    match usize::try_from(len) {
        Ok(0) => mem.address_in_range(GuestAddress(addr)),
        Ok(len) => {
            addr.checked_add(len as u64).is_some()
                && GuestMemoryBackend::check_range(mem, GuestAddress(addr), len)
        }
        Err(_) => false,
    }
}

/// Up to [`MAX_CHAIN`] segments, without allocating.
struct Segs {
    segs: [Seg; MAX_CHAIN],
    n: usize,
}

impl Segs {
    fn iter(&self) -> impl Iterator<Item = &Seg> {
        self.segs[..self.n].iter().filter(|s| s.len > 0)
    }
}

fn total(s: &Segs) -> u64 {
    s.iter().map(|s| u64::from(s.len)).sum()
}

fn total_segs(s: &[(Seg, bool)]) -> u64 {
    s.iter().map(|(s, _)| u64::from(s.len)).sum()
}

/// The first `bytes` of `segs`, and the rest (a segment may be split).
fn split_bytes(segs: &[(Seg, bool)], bytes: u64) -> (Segs, Segs) {
    let empty = || Segs {
        segs: [Seg::default(); MAX_CHAIN],
        n: 0,
    };
    let (mut a, mut b) = (empty(), empty());
    let mut left = bytes;
    for &(s, _) in segs {
        let take = u64::from(s.len).min(left);
        if take > 0 {
            a.segs[a.n] = Seg {
                addr: s.addr,
                len: take as u32,
            };
            a.n += 1;
            left -= take;
        }
        if take < u64::from(s.len) {
            b.segs[b.n] = Seg {
                addr: s.addr.saturating_add(take),
                len: s.len - take as u32,
            };
            b.n += 1;
        }
    }
    (a, b)
}

/// What the vCPU thread and the worker share.
struct Shared {
    /// The request queue as the driver set it up (from DRIVER_OK to reset).
    queue: Option<Queue>,
    interrupt: Option<Arc<AtomicU32>>,
    stop: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The vCPU side of a disk: configuration space, notifications, the worker.
pub struct BlockDevice {
    index: usize,
    /// Kept here too, so that the file is closed on this thread (the
    /// worker's filter has no `close`).
    image: Arc<DiskImage>,
    shared: Arc<Mutex<Shared>>,
    kick: Arc<EventFd>,
    counters: Arc<Mutex<DiskCounters>>,
    worker: Option<JoinHandle<()>>,
    /// Without a worker thread ([`BlockDevice::inline`]): the worker's
    /// state, run on the notifying thread.
    inline: Option<Box<Worker>>,
}

/// A disk on the bus: the transport with the block device behind it.
pub type VirtioBlock = MmioTransport<BlockDevice>;

/// How a worker confines itself once started (see [`crate::seccomp`]).
type WorkerFilter = Option<seccompiler::BpfProgram>;

impl BlockDevice {
    /// Disk `index` over `image`, its worker thread started (confined by
    /// its seccomp filter once running, with `confine`), completions raised
    /// with `irq`.
    pub fn spawn(
        index: usize,
        image: Arc<DiskImage>,
        mem: GuestMemoryMmap,
        irq: Box<dyn Irq>,
        confine: bool,
    ) -> std::io::Result<BlockDevice> {
        let kick = Arc::new(EventFd::new(libc::EFD_CLOEXEC)?);
        let shared = Arc::new(Mutex::new(Shared {
            queue: None,
            interrupt: None,
            stop: false,
        }));
        let counters = Arc::new(Mutex::new(DiskCounters::default()));
        let program = if confine {
            use std::os::fd::AsRawFd;
            let program =
                crate::seccomp::worker_program(kick.as_raw_fd()).map_err(std::io::Error::other)?;
            Some(program)
        } else {
            None
        };
        let worker = Worker {
            irq,
            backend: Backend::new(Arc::clone(&image), index),
            mem,
            shared: Arc::clone(&shared),
            kick: Arc::clone(&kick),
            counters: Arc::clone(&counters),
        };
        let handle = std::thread::Builder::new()
            .name(format!("disk{index}"))
            .spawn(move || worker.run(program))?;
        Ok(BlockDevice {
            index,
            image,
            shared,
            kick,
            counters,
            worker: Some(handle),
            inline: None,
        })
    }

    /// Disk `index` over `image` without a worker thread: each
    /// QUEUE_NOTIFY serves the queue on the notifying thread before it
    /// returns, as the worker's wake-up would. For fuzzing and tests
    /// (deterministic, and a panic is the caller's); runs use [`spawn`].
    ///
    /// [`spawn`]: BlockDevice::spawn
    pub fn inline(
        index: usize,
        image: Arc<DiskImage>,
        mem: GuestMemoryMmap,
        irq: Box<dyn Irq>,
    ) -> std::io::Result<BlockDevice> {
        let kick = Arc::new(EventFd::new(libc::EFD_CLOEXEC)?);
        let shared = Arc::new(Mutex::new(Shared {
            queue: None,
            interrupt: None,
            stop: false,
        }));
        let counters = Arc::new(Mutex::new(DiskCounters::default()));
        let worker = Worker {
            irq,
            backend: Backend::new(Arc::clone(&image), index),
            mem,
            shared: Arc::clone(&shared),
            kick: Arc::clone(&kick),
            counters: Arc::clone(&counters),
        };
        Ok(BlockDevice {
            index,
            image,
            shared,
            kick,
            counters,
            worker: None,
            inline: Some(Box::new(worker)),
        })
    }

    /// The eventfd the vCPU thread writes to wake the worker.
    pub fn kick_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.kick.as_raw_fd()
    }

    /// What the device counted so far.
    pub fn counters(&self) -> Arc<Mutex<DiskCounters>> {
        Arc::clone(&self.counters)
    }

    pub fn index(&self) -> usize {
        self.index
    }
}

impl VirtioDevice for BlockDevice {
    fn device_id(&self) -> u32 {
        DEVICE_ID_BLOCK
    }

    fn features(&self) -> u64 {
        let ro = if self.image.writable { 0 } else { F_RO };
        F_SIZE_MAX | F_SEG_MAX | F_FLUSH | ro
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE]
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let mut config = [0u8; CONFIG_LEN as usize];
        config[CONFIG_CAPACITY as usize..][..8].copy_from_slice(&self.image.sectors.to_le_bytes());
        config[CONFIG_SIZE_MAX as usize..][..4].copy_from_slice(&SIZE_MAX.to_le_bytes());
        config[CONFIG_SEG_MAX as usize..][..4].copy_from_slice(&SEG_MAX.to_le_bytes());
        for (i, b) in data.iter_mut().enumerate() {
            *b = offset
                .checked_add(i as u64)
                .and_then(|at| config.get(usize::try_from(at).ok()?))
                .copied()
                .unwrap_or(0);
        }
    }

    fn notify(&mut self, queue: u32, ctx: Context<'_>) {
        if queue != 0 || !ctx.driver_ok {
            let mut c = lock(&self.counters);
            c.bad_notifies = c.bad_notifies.saturating_add(1);
            note(&mut c, "notify of an unknown queue or before DRIVER_OK");
            return;
        }
        if let Some(worker) = self.inline.as_mut() {
            worker.serve();
            return;
        }
        // The worker takes it from here; a failed write (the counter full,
        // after 2^64 - 2 notifications) still leaves the worker awake.
        let _ = self.kick.write(1);
    }

    fn activate(&mut self, ctx: Context<'_>) {
        let queue = ctx
            .queues
            .first()
            .and_then(|q| Queue::try_from(q.state()).ok());
        if queue.is_none() {
            let mut c = lock(&self.counters);
            c.bad_notifies = c.bad_notifies.saturating_add(1);
            note(&mut c, "request queue unusable at DRIVER_OK");
        }
        let mut s = lock(&self.shared);
        s.queue = queue;
        s.interrupt = Some(Arc::clone(ctx.interrupt));
    }

    fn reset(&mut self) {
        // Waits for a batch in progress: after a reset nothing more is
        // written into guest memory.
        lock(&self.shared).queue = None;
    }
}

impl Drop for BlockDevice {
    fn drop(&mut self) {
        lock(&self.shared).stop = true;
        let _ = self.kick.write(1);
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// The worker thread's state.
struct Worker {
    /// First: fields drop in order, and the VM fd it may hold must close
    /// before the guest memory the VM still maps is unmapped.
    irq: Box<dyn Irq>,
    backend: Backend,
    mem: GuestMemoryMmap,
    shared: Arc<Mutex<Shared>>,
    kick: Arc<EventFd>,
    counters: Arc<Mutex<DiskCounters>>,
}

impl Worker {
    fn run(mut self, filter: WorkerFilter) {
        // Signals are the vCPU thread's business (the timeout, SIGINT and
        // SIGTERM must interrupt its KVM_RUN, not this thread's read).
        block_signals();
        if let Some(program) = filter {
            crate::seccomp::sigsys_label("disk");
            if let Err(e) = seccompiler::apply_filter(&program) {
                eprintln!("mobius: error: seccomp: cannot confine the disk worker: {e}");
                return;
            }
        }
        while self.kick.read().is_ok() {
            if !self.serve() {
                break;
            }
        }
    }

    /// One wake-up: serve the queue if the driver set one up, raise the
    /// interrupt if anything was used, add the batch's counts; `false`
    /// once the device is stopping.
    fn serve(&mut self) -> bool {
        let mut shared = lock(&self.shared);
        if shared.stop {
            return false;
        }
        let Some(queue) = shared.queue.as_mut() else {
            return true;
        };
        let mut batch = DiskCounters::default();
        let used = self.backend.process_queue(queue, &self.mem, &mut batch);
        if used > 0 {
            if let Some(interrupt) = &shared.interrupt {
                interrupt.fetch_or(INT_USED_RING, Ordering::SeqCst);
            }
            if !self.irq.trigger() {
                batch.irq_errors = batch.irq_errors.saturating_add(1);
            }
        }
        drop(shared);
        lock(&self.counters).add(&batch);
        true
    }
}

fn block_signals() {
    // SAFETY: `set` is a valid sigset_t, filled before use; blocking
    // signals in this thread affects no other thread.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        // Not the ones a fault, abort() or a seccomp trap raise in this
        // thread: those must reach their handlers (or kill as they do).
        for sig in [
            libc::SIGSYS,
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGILL,
            libc::SIGFPE,
            libc::SIGABRT,
        ] {
            libc::sigdelset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

#[cfg(test)]
#[path = "block_tests.rs"]
mod tests;
