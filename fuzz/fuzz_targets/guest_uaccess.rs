//! The guest's checks on system-call pointer arguments
//! (`mobius_guest::mm::uaccess`: every pointer a program passes goes
//! through `copy_from_user`, `copy_to_user` or `read_cstr`), run on the host
//! against the software MMU, over an address space of arbitrary areas:
//! read-write, read-only, kernel-only (no user bit), reserved, and a file
//! whose reads fail; and arbitrary pointers, in and around those areas or
//! anywhere in the 64-bit range.
//!
//! Checked against a model of the space: a copy succeeds exactly when every
//! byte is in a user area that allows the access; bytes read are what was
//! written before (zero where nothing was); a failed write changes only the
//! pages before the first page it may not write; `read_cstr` returns the
//! string, `TooLong` only when `max + 1` readable bytes hold no NUL, and
//! `Fault` only when an unreadable byte comes before any NUL. Nothing
//! panics, and the VMM's invariants hold at the end.
#![no_main]

use std::collections::BTreeMap;
use std::sync::Arc;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mobius_guest::mm::frame::{CpuZeroing, MemRegion};
use mobius_guest::mm::paging::PAGE_SIZE;
use mobius_guest::mm::soft_mmu::SoftMmu;
use mobius_guest::mm::stats::TickCounter;
use mobius_guest::mm::uaccess::{
    copy_from_user, copy_to_user, in_user_range, read_cstr, StringError,
};
use mobius_guest::mm::vmm::{
    FileBacking, FileError, MemFlags, SpaceId, Vmm, VmmConfig, VmmLock, USER_END, USER_START,
};

/// Where the areas go: 64 pages from here.
const WINDOW: u64 = USER_START + 0x10_0000;
const WINDOW_PAGES: u64 = 64;
/// Frames of RAM: more than the window and its page tables need, so that
/// every refusal comes from the pointer, never from a lack of frames.
const FRAMES: u64 = 256;

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    ReadWrite,
    ReadOnly,
    KernelOnly,
    Reserved,
    FailingFile,
}

#[derive(Arbitrary, Debug)]
struct AreaSpec {
    page: u8,
    pages: u8,
    kind: Kind,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Addr {
    /// Byte offset from the start of the window (may run past it).
    Window(u32),
    /// Anywhere (kernel half, non-canonical, near the top of the range).
    Raw(u64),
}

impl Addr {
    fn get(self) -> u64 {
        match self {
            Addr::Window(off) => WINDOW + u64::from(off % ((WINDOW_PAGES as u32 + 2) * 4096)),
            Addr::Raw(a) => a,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    Read { at: Addr, len: u16 },
    Write { at: Addr, data: Vec<u8> },
    Cstr { at: Addr, max: u16 },
}

#[derive(Arbitrary, Debug)]
struct Input {
    areas: Vec<AreaSpec>,
    ops: Vec<Op>,
}

/// A file whose every read fails.
struct Failing;

impl FileBacking for Failing {
    fn read_at(&self, _: u64, _: &mut [u8]) -> Result<usize, FileError> {
        Err(FileError)
    }
    fn len(&self) -> u64 {
        1 << 20
    }
}

/// What the model knows of the space.
#[derive(Default)]
struct Model {
    /// Kind of each page that an area covers.
    pages: BTreeMap<u64, Kind>,
    /// Bytes written so far (all else reads as zero).
    bytes: BTreeMap<u64, u8>,
}

impl Model {
    fn page_kind(&self, addr: u64) -> Option<Kind> {
        self.pages.get(&(addr & !(PAGE_SIZE - 1))).copied()
    }
    fn readable(&self, addr: u64) -> bool {
        matches!(self.page_kind(addr), Some(Kind::ReadWrite | Kind::ReadOnly))
    }
    fn writable(&self, addr: u64) -> bool {
        self.page_kind(addr) == Some(Kind::ReadWrite)
    }
    fn byte(&self, addr: u64) -> u8 {
        self.bytes.get(&addr).copied().unwrap_or(0)
    }
}

fn setup() -> (VmmLock<SoftMmu>, SpaceId) {
    let ram = [MemRegion::new(0, FRAMES * PAGE_SIZE)];
    let reserved = [MemRegion::new(0, 16 * PAGE_SIZE)];
    let config = VmmConfig {
        ram: &ram,
        reserved: &reserved,
        zeroing: Box::new(CpuZeroing),
        clock: Box::new(TickCounter::default()),
    };
    let vmm = Vmm::new(config, SoftMmu::new()).expect("init");
    let lock = spin::Mutex::new(vmm);
    let space = lock.lock().create_space().expect("space");
    (lock, space)
}

fn place(vmm: &VmmLock<SoftMmu>, space: SpaceId, a: &AreaSpec, model: &mut Model) {
    let page = u64::from(a.page) % WINDOW_PAGES;
    let pages = (u64::from(a.pages) % 8 + 1).min(WINDOW_PAGES - page);
    let base = WINDOW + page * PAGE_SIZE;
    let user_rw = MemFlags::USER | MemFlags::READ | MemFlags::WRITE;
    let mut vm = vmm.lock();
    let placed = match a.kind {
        Kind::ReadWrite => vm.alloc(space, pages, base, user_rw),
        Kind::ReadOnly => vm.alloc(space, pages, base, MemFlags::USER | MemFlags::READ),
        Kind::KernelOnly => vm.alloc(space, pages, base, MemFlags::READ | MemFlags::WRITE),
        Kind::Reserved => vm.reserve(space, pages, base),
        Kind::FailingFile => vm.map_file(space, Arc::new(Failing), 0, base, pages, user_rw),
    };
    if placed == Ok(base) {
        for p in 0..pages {
            model.pages.insert(base + p * PAGE_SIZE, a.kind);
        }
    }
}

/// Whether every byte of `[addr, addr + len)` passes `ok`.
fn all(addr: u64, len: u64, ok: impl Fn(u64) -> bool) -> bool {
    // One check per page: kinds are per page.
    let mut at = addr;
    let end = addr + len;
    while at < end {
        if !ok(at) {
            return false;
        }
        at = (at & !(PAGE_SIZE - 1)) + PAGE_SIZE;
    }
    true
}

fn read(vmm: &VmmLock<SoftMmu>, space: SpaceId, model: &Model, addr: u64, len: usize) {
    let mut out = vec![0xAAu8; len];
    let got = copy_from_user(vmm, space, addr, &mut out);
    let want = in_user_range(addr, len) && all(addr, len as u64, |a| model.readable(a));
    assert_eq!(got.is_ok(), want, "read of {len} at {addr:#x}");
    if want {
        for (i, b) in out.iter().enumerate() {
            assert_eq!(*b, model.byte(addr + i as u64), "byte {i} at {addr:#x}");
        }
    }
}

fn write(vmm: &VmmLock<SoftMmu>, space: SpaceId, model: &mut Model, addr: u64, data: &[u8]) {
    let got = copy_to_user(vmm, space, addr, data);
    let len = data.len() as u64;
    let fits = in_user_range(addr, data.len());
    let want = fits && all(addr, len, |a| model.writable(a));
    assert_eq!(got.is_ok(), want, "write of {len} at {addr:#x}");
    if !fits {
        return;
    }
    // Everything up to the first page it may not write was written.
    for (i, b) in data.iter().enumerate() {
        let a = addr + i as u64;
        if !model.writable(a) {
            break;
        }
        model.bytes.insert(a, *b);
    }
}

fn cstr(vmm: &VmmLock<SoftMmu>, space: SpaceId, model: &Model, addr: u64, max: usize) {
    let got = read_cstr(vmm, space, addr, max);
    // The first byte that is unreadable or NUL, scanning from `addr`.
    let mut stop = None;
    for i in 0..=max as u64 + 1 {
        let a = match addr.checked_add(i) {
            Some(a) if in_user_range(a, 1) && a < USER_END => a,
            _ => {
                stop = Some((i, false));
                break;
            }
        };
        if !model.readable(a) {
            stop = Some((i, false));
            break;
        }
        if model.byte(a) == 0 {
            stop = Some((i, true));
            break;
        }
    }
    match got {
        Ok(s) => {
            let Some((n, true)) = stop else {
                panic!("string at {addr:#x} read without its NUL: {stop:?}");
            };
            assert!(
                s.len() as u64 == n && s.len() <= max,
                "length {} at {addr:#x}",
                s.len()
            );
            for (i, b) in s.iter().enumerate() {
                assert_eq!(*b, model.byte(addr + i as u64));
            }
        }
        // More than `max` readable bytes before any NUL.
        Err(StringError::TooLong) => assert!(
            stop.is_none_or(|(n, _)| n > max as u64),
            "TooLong at {addr:#x} with {stop:?}, max {max}"
        ),
        // An unreadable byte within the limit, before any NUL.
        Err(StringError::Fault) => assert!(
            matches!(stop, Some((n, false)) if n <= max as u64),
            "Fault at {addr:#x} with {stop:?}, max {max}"
        ),
    }
}

fuzz_target!(|input: Input| {
    let (vmm, space) = setup();
    let mut model = Model::default();
    for a in input.areas.iter().take(16) {
        place(&vmm, space, a, &mut model);
    }
    for op in input.ops.iter().take(64) {
        match op {
            Op::Read { at, len } => read(&vmm, space, &model, at.get(), usize::from(*len) % 20_000),
            Op::Write { at, data } => write(&vmm, space, &mut model, at.get(), data),
            Op::Cstr { at, max } => cstr(&vmm, space, &model, at.get(), usize::from(*max) % 10_000),
        }
    }
    let vm = vmm.lock();
    vm.check_invariants(&BTreeMap::new())
        .unwrap_or_else(|e| panic!("invariant: {e}"));
});
