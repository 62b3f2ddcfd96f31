//! GDT (kernel and user segments, TSS with an IST stack for #DF and the
//! ring-0 stack of the running thread), the IDT, exception and interrupt
//! entry stubs, and dispatch. Every trap from ring 3 (system calls
//! included, see `super::user`) goes to the user hook the kernel installs;
//! in ring 0, page faults go to the page-fault hook (the Möbius VMM), the
//! timer to the timer hook, and everything else, and every fault nobody
//! resolves, prints a diagnostic and ends the run with
//! [`GuestStatus::Exception`].
//!
//! Expected faults (tests probing a protection violation) use [`probe_read`] /
//! [`probe_write`]: a fault on their one memory instruction that the VMM does
//! not resolve resumes at a fix-up that returns `None`, like Linux's exception
//! tables.
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use x86_64::instructions::tables::{lgdt, lidt, load_tss};
use x86_64::registers::segmentation::{Segment, DS, ES, SS};
use x86_64::structures::gdt::SegmentSelector;
use x86_64::structures::tss::TaskStateSegment;
use x86_64::structures::DescriptorTablePointer;
use x86_64::VirtAddr;

use super::cpu;
use mobius_shared::exit::GuestStatus;

const IST_DOUBLE_FAULT: u16 = 0;
const IST_STACK_SIZE: usize = 16 * 1024;
const PAGE_FAULT: u64 = 14;
const GENERAL_PROTECTION: u64 = 13;
/// The local APIC timer's vector.
pub const TIMER_VECTOR: u64 = 32;
/// The local APIC's spurious-interrupt vector (low four bits set, as older
/// APICs require).
pub const SPURIOUS_VECTOR: u64 = 47;
/// The disks' completion vectors (MSIs from `mobius`'s virtio-blk
/// devices): `0x40 + i` for disk `i`.
pub const DISK_VECTORS: core::ops::Range<u64> = {
    let base = mobius_shared::virtio_mmio::DISK_VECTOR_BASE as u64;
    base..base + mobius_shared::virtio_mmio::MAX_DISKS as u64
};
/// Vectors with a stub: the 32 exceptions, then interrupts up to the last
/// disk vector (those between the spurious and the disk vectors have a stub
/// but no gate).
const VECTORS: usize = DISK_VECTORS.end as usize;
/// [`TrapFrame::vector`] of a system call (no IDT vector: `syscall`).
pub const SYSCALL_VECTOR: u64 = 0x100;

/// Registers saved by the entry stubs, lowest address first.
#[repr(C)]
#[derive(Debug, Clone)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

impl TrapFrame {
    /// Whether the trap came from ring 3.
    pub fn from_user(&self) -> bool {
        self.cs & 3 == 3
    }
}

/// A page-fault resolver: `(frame, cr2) -> resolved?`. On `true` the faulting
/// instruction is retried.
pub type PageFaultHook = fn(&TrapFrame, u64) -> bool;
/// What the kernel does with a trap from ring 3 (system call, fault,
/// interrupt): it may change the frame (the return values, or another
/// thread's state after a switch) before the return to ring 3.
pub type UserHook = fn(&mut TrapFrame);
/// What the kernel does with a timer interrupt taken in ring 0.
pub type TimerHook = fn(&mut TrapFrame);
/// What the kernel does with a device interrupt ([`DISK_VECTORS`]), from
/// ring 3 or ring 0; it must EOI the local APIC.
pub type DeviceHook = fn(u8);

static PAGE_FAULT_HOOK: AtomicUsize = AtomicUsize::new(0);
static USER_HOOK: AtomicUsize = AtomicUsize::new(0);
static TIMER_HOOK: AtomicUsize = AtomicUsize::new(0);
static DEVICE_HOOK: AtomicUsize = AtomicUsize::new(0);

/// Install the handler of device interrupts.
pub fn set_device_hook(hook: DeviceHook) {
    DEVICE_HOOK.store(hook as usize, Ordering::Release);
}

/// Whether `vector` is a device interrupt's.
pub fn is_device_vector(vector: u64) -> bool {
    DISK_VECTORS.contains(&vector)
}

/// Handle device interrupt `vector` (its hook, or just an EOI).
pub fn device_interrupt(vector: u64) {
    match DEVICE_HOOK.load(Ordering::Acquire) {
        0 => super::apic::eoi(),
        f => {
            // SAFETY: only `set_device_hook` stores non-zero values, and it
            // stores a `DeviceHook`.
            let hook = unsafe { core::mem::transmute::<usize, DeviceHook>(f) };
            hook(vector as u8);
        }
    }
}

/// Install the handler of every trap from ring 3.
pub fn set_user_hook(hook: UserHook) {
    USER_HOOK.store(hook as usize, Ordering::Release);
}

/// Install the handler of timer interrupts taken in ring 0.
pub fn set_timer_hook(hook: TimerHook) {
    TIMER_HOOK.store(hook as usize, Ordering::Release);
}

fn user_hook() -> Option<UserHook> {
    match USER_HOOK.load(Ordering::Acquire) {
        0 => None,
        // SAFETY: only `set_user_hook` stores non-zero values, and it stores
        // a `UserHook`.
        f => Some(unsafe { core::mem::transmute::<usize, UserHook>(f) }),
    }
}

fn timer_hook() -> Option<TimerHook> {
    match TIMER_HOOK.load(Ordering::Acquire) {
        0 => None,
        // SAFETY: only `set_timer_hook` stores non-zero values, and it
        // stores a `TimerHook`.
        f => Some(unsafe { core::mem::transmute::<usize, TimerHook>(f) }),
    }
}
static IN_PAGE_FAULT: AtomicBool = AtomicBool::new(false);

/// Whether a page fault taken in ring 0 is being resolved (it may not
/// sleep: its state is global).
pub fn in_kernel_page_fault() -> bool {
    IN_PAGE_FAULT.load(Ordering::Acquire)
}

/// Install the page-fault resolver (the VMM's fault path).
pub fn set_page_fault_hook(hook: PageFaultHook) {
    PAGE_FAULT_HOOK.store(hook as usize, Ordering::Release);
}

fn page_fault_hook() -> Option<PageFaultHook> {
    match PAGE_FAULT_HOOK.load(Ordering::Acquire) {
        0 => None,
        // SAFETY: only `set_page_fault_hook` stores non-zero values, and it
        // stores a `PageFaultHook`.
        f => Some(unsafe { core::mem::transmute::<usize, PageFaultHook>(f) }),
    }
}

core::arch::global_asm!(
    r#"
    .section .text.trap_stubs, "ax"
    /* Stub n sits at trap_stubs + 16 * n exactly (.org fails the build if a
       stub outgrows its 16 bytes), and linker.ld puts trap_stubs at
       TRAP_STUBS_ADDR: so the IDT is built at compile time. */
    .macro TRAP_NOERR n
    .org trap_stubs + \n * 16
trap_stub_\n:
    pushq $0
    pushq $\n
    jmp trap_common
    .endm
    .macro TRAP_ERR n
    .org trap_stubs + \n * 16
trap_stub_\n:
    pushq $\n
    jmp trap_common
    .endm

    .balign 512
    .global trap_stubs
trap_stubs:
    TRAP_NOERR 0
    TRAP_NOERR 1
    TRAP_NOERR 2
    TRAP_NOERR 3
    TRAP_NOERR 4
    TRAP_NOERR 5
    TRAP_NOERR 6
    TRAP_NOERR 7
    TRAP_ERR 8
    TRAP_NOERR 9
    TRAP_ERR 10
    TRAP_ERR 11
    TRAP_ERR 12
    TRAP_ERR 13
    TRAP_ERR 14
    TRAP_NOERR 15
    TRAP_NOERR 16
    TRAP_ERR 17
    TRAP_NOERR 18
    TRAP_NOERR 19
    TRAP_NOERR 20
    TRAP_ERR 21
    TRAP_NOERR 22
    TRAP_NOERR 23
    TRAP_NOERR 24
    TRAP_NOERR 25
    TRAP_NOERR 26
    TRAP_NOERR 27
    TRAP_NOERR 28
    TRAP_ERR 29
    TRAP_ERR 30
    TRAP_NOERR 31
    .irp n, 32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47
    TRAP_NOERR \n
    .endr
    .irp n, 48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,65,66
    TRAP_NOERR \n
    .endr

    /* Every trap: from ring 3 (the CS in the frame), take the kernel's GS
       base (the per-CPU block) and give it back on the way out. */
trap_common:
    testb $3, 24(%rsp)
    jz 1f
    swapgs
1:
    .global trap_save
trap_save:
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, %rdi
    cld
    call {dispatch}
    .global trap_return
trap_return:
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    testb $3, 24(%rsp)
    jz 2f
    swapgs
2:  addq $16, %rsp
    iretq

    .global probe_read_u8
probe_read_u8:
probe_read_insn:
    movzbq (%rdi), %rax
    ret
    .global probe_write_u8
probe_write_u8:
probe_write_insn:
    movb %sil, (%rdi)
    xorl %eax, %eax
    ret
probe_fixup:
    movq $-1, %rax
    ret

    .section .rodata
    .balign 8
    .global trap_stub_table
trap_stub_table:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,65,66
    .quad trap_stub_\n
    .endr
    .global probe_sites
probe_sites:
    .quad probe_read_insn
    .quad probe_write_insn
    .quad probe_fixup
"#,
    dispatch = sym trap_dispatch,
    options(att_syntax)
);

extern "C" {
    static trap_stub_table: [u64; VECTORS];
    static probe_sites: [u64; 3];
    fn probe_read_u8(addr: u64) -> i64;
    fn probe_write_u8(addr: u64, value: u64) -> i64;
}

/// Read a byte at `addr`, or `None` if the access faults and the VMM does
/// not resolve it (the fault is still counted by the VMM).
pub fn probe_read(addr: u64) -> Option<u8> {
    // SAFETY: the probe is a leaf function whose only memory access is
    // covered by the fix-up in `trap_dispatch`.
    let v = unsafe { probe_read_u8(addr) };
    u8::try_from(v).ok()
}

/// Write a byte at `addr`; `false` if the access faulted unresolved.
pub fn probe_write(addr: u64, value: u8) -> bool {
    // SAFETY: as for `probe_read`.
    unsafe { probe_write_u8(addr, value as u64) == 0 }
}

/// Selectors of the kernel GDT (the same code and data slots as the boot GDT
/// of `boot.rs` and of the host, so CS needs no reload when it is loaded).
pub const KERNEL_CODE: u16 = 0x08;
pub const KERNEL_DATA: u16 = 0x10;
/// User selectors (RPL 3) in Linux's layout, which `syscall`/`sysret`
/// imply through STAR (`super::user`): 32-bit code, data, 64-bit code.
pub const USER_CODE32: u16 = 0x23;
pub const USER_DATA: u16 = 0x2b;
pub const USER_CODE: u16 = 0x33;
const TSS_SELECTOR: u16 = 0x40;

/// The kernel GDT: null, kernel 64-bit code and data, an unused slot, user
/// 32-bit code, data and 64-bit code, an unused slot, and the two slots of
/// the TSS descriptor (written by [`init`]: its base is an address).
///
/// Plain words rather than the x86_64 crate's `GlobalDescriptorTable`: on
/// kvm_pvm every ring-0 instruction is emulated, and building and moving the
/// crate's tables through `Once`s cost ~600 instructions (~0.4 ms) of boot.
#[repr(C, align(16))]
struct Gdt([u64; 10]);
struct GdtCell(core::cell::UnsafeCell<Gdt>);
// SAFETY: written only during single-threaded boot (`init`).
unsafe impl Sync for GdtCell {}
static GDT: GdtCell = GdtCell(core::cell::UnsafeCell::new(Gdt([
    0,
    0x00af_9a00_0000_ffff, // 0x08: 64-bit code, DPL 0
    0x00cf_9200_0000_ffff, // 0x10: data
    0,
    0x00cf_fa00_0000_ffff, // 0x20: 32-bit code, DPL 3
    0x00cf_f200_0000_ffff, // 0x28: data, DPL 3
    0x00af_fa00_0000_ffff, // 0x30: 64-bit code, DPL 3
    0,
    0, // 0x40: TSS
    0,
])));

/// The TSS: the IST pointer of #DF and `rsp0`, the stack a trap from ring 3
/// lands on (the running thread's kernel stack); no I/O bitmap.
struct TssCell(core::cell::UnsafeCell<TaskStateSegment>);
// SAFETY: written only during single-threaded boot (`init`), then read by the CPU.
unsafe impl Sync for TssCell {}
static TSS: TssCell = TssCell(core::cell::UnsafeCell::new(TaskStateSegment::new()));

/// The two GDT words of an available 64-bit TSS at `base`.
fn tss_descriptor(base: u64) -> [u64; 2] {
    let limit = (core::mem::size_of::<TaskStateSegment>() - 1) as u64;
    let low = (limit & 0xffff)
        | ((base & 0xff_ffff) << 16)
        | (0x89 << 40) // present, type 9: available 64-bit TSS
        | ((limit >> 16) & 0xf) << 48
        | ((base >> 24) & 0xff) << 56;
    [low, base >> 32]
}

/// A 64-bit interrupt gate.
///
/// Our own 32-entry IDT rather than the x86_64 crate's 256-entry one: its
/// constructor is not `const`, and building and moving 4 KiB at boot cost
/// 12 M cycles (4.6 ms) under kvm_pvm, where ring 0 is emulated. This one is
/// built at compile time ([`IDT`]).
///
/// The 16 bytes as two words (offset 0..16, selector, IST, type and
/// attributes, offset 16..32; then offset 32..64), built with a few shifts:
/// each ring-0 instruction of boot is emulated on kvm_pvm.
#[repr(C, align(16))]
#[derive(Clone, Copy)]
struct Gate([u64; 2]);

impl Gate {
    const MISSING: Gate = Gate([0, 0]);
    /// Present, DPL 0, 64-bit interrupt gate.
    const INTERRUPT_GATE: u64 = 0x8e;

    const fn interrupt(handler: u64, selector: u16, ist: u8) -> Gate {
        Gate([
            (handler & 0xffff)
                | (selector as u64) << 16
                | (ist as u64) << 32
                | Self::INTERRUPT_GATE << 40
                | ((handler >> 16) & 0xffff) << 48,
            handler >> 32,
        ])
    }
}

/// The exception vectors that get a gate, with their IST slot (1-based, 0 =
/// none). Reserved vectors (9, 15, 22-27, 31) are never raised: no gate.
/// A list rather than a filtered loop over all 32: each ring-0 instruction
/// of boot is emulated on kvm_pvm.
const GATES: [(u8, u8); 29] = {
    let mut g = [(0u8, 0u8); 29];
    let mut i = 0;
    let mut v = 0u8;
    while v < VECTORS as u8 {
        let interrupt = v as u64 == TIMER_VECTOR
            || v as u64 == SPURIOUS_VECTOR
            || (v as u64 >= DISK_VECTORS.start && (v as u64) < DISK_VECTORS.end);
        if (v < 32 && !matches!(v, 9 | 15 | 22..=27 | 31)) || interrupt {
            // #PF has no IST stack: a fault from ring 3 runs on the thread's
            // kernel stack, where it may sleep (a page being read).
            let ist = match v as u64 {
                8 => IST_DOUBLE_FAULT as u8 + 1,
                _ => 0,
            };
            g[i] = (v, ist);
            i += 1;
        }
        v += 1;
    }
    g
};

/// Where linker.ld puts `trap_stubs` (first in `.text`, at the kernel's load
/// address; the link fails otherwise): the gates are then known at compile
/// time. `gates_match_stubs` checks them against the stubs' real addresses.
const TRAP_STUBS_ADDR: u64 = mobius_shared::layout::KERNEL_MIN_ADDR;

/// The IDT, complete in the kernel image: boot only loads it (filling 24
/// gates was ~75 emulated instructions on kvm_pvm).
static IDT: [Gate; VECTORS] = {
    let mut idt = [Gate::MISSING; VECTORS];
    let mut i = 0;
    while i < GATES.len() {
        let (vector, ist) = GATES[i];
        let stub = TRAP_STUBS_ADDR + 16 * vector as u64;
        idt[vector as usize] = Gate::interrupt(stub, KERNEL_CODE, ist);
        i += 1;
    }
    idt
};

/// An IST stack; only its address is used (the CPU writes it).
#[repr(align(16))]
struct Stack(#[allow(dead_code)] [u8; IST_STACK_SIZE]);
static mut DOUBLE_FAULT_STACK: Stack = Stack([0; IST_STACK_SIZE]);

fn stack_top(stack: *const Stack) -> VirtAddr {
    VirtAddr::from_ptr(stack) + IST_STACK_SIZE as u64
}

/// Load the kernel GDT, TSS and IDT.
pub fn init() {
    // SAFETY: boot is single-threaded and nothing else touches the TSS, the
    // GDT or the IDT; the stacks are statics used only as IST stacks.
    let (tss, gdt) = unsafe { (&mut *TSS.0.get(), &mut *GDT.0.get()) };
    tss.interrupt_stack_table[IST_DOUBLE_FAULT as usize] = stack_top(&raw const DOUBLE_FAULT_STACK);
    let [low, high] = tss_descriptor(TSS.0.get() as u64);
    gdt.0[8] = low;
    gdt.0[9] = high;
    let gdt_pointer = DescriptorTablePointer {
        limit: (core::mem::size_of::<Gdt>() - 1) as u16,
        base: VirtAddr::from_ptr(GDT.0.get()),
    };
    // SAFETY: the GDT is a static with the same code (0x08) and data (0x10)
    // descriptors as the one CS and SS came from, and a valid TSS descriptor.
    unsafe {
        lgdt(&gdt_pointer);
        SS::set_reg(SegmentSelector(KERNEL_DATA));
        DS::set_reg(SegmentSelector(KERNEL_DATA));
        ES::set_reg(SegmentSelector(KERNEL_DATA));
        load_tss(SegmentSelector(TSS_SELECTOR));
    }
    let pointer = DescriptorTablePointer {
        limit: (core::mem::size_of::<[Gate; VECTORS]>() - 1) as u16,
        base: VirtAddr::from_ptr(&raw const IDT),
    };
    // SAFETY: the IDT is an immutable static with valid gates.
    unsafe { lidt(&pointer) };
}

/// Whether every gate of the loaded IDT points at its vector's stub (from
/// the stub table, which `init` does not read), with the right IST slot and
/// the reserved vectors empty. For the in-guest tests.
pub fn gates_match_stubs() -> bool {
    // SAFETY: the stub table holds the 32 stubs' addresses.
    let (idt, stubs) = (&IDT, unsafe { &trap_stub_table });
    idt.iter().enumerate().all(|(v, gate)| {
        match GATES.iter().find(|&&(vector, _)| usize::from(vector) == v) {
            Some(&(_, ist)) => gate.0 == Gate::interrupt(stubs[v], KERNEL_CODE, ist).0,
            None => gate.0 == [0, 0],
        }
    })
}

/// Load an empty IDT: the next exception shuts the machine down (triple
/// fault). Used by the `triple-fault` workload to test the host's report.
pub fn load_empty_idt() {
    let pointer = DescriptorTablePointer {
        limit: 0,
        base: VirtAddr::zero(),
    };
    // SAFETY: deliberately leaves no handler; the caller wants a shutdown.
    unsafe { lidt(&pointer) };
}

extern "C" fn trap_dispatch(frame: &mut TrapFrame) {
    if frame.from_user() {
        // The address compare first: CR2 is read (an emulated instruction on
        // kvm_pvm) only for a fault at the syscall entry itself.
        let at_entry = (frame.vector == GENERAL_PROTECTION || frame.vector == PAGE_FAULT)
            && super::user::is_syscall_trap(frame);
        if at_entry && (frame.vector == GENERAL_PROTECTION || cpu::cr2() == frame.rip) {
            super::user::syscall_from_trap(frame);
        }
        match user_hook() {
            Some(hook) => hook(frame),
            None => fatal(frame, None, "trap from ring 3 with no process support"),
        }
        return;
    }
    match frame.vector {
        PAGE_FAULT => page_fault(frame),
        TIMER_VECTOR => match timer_hook() {
            Some(hook) => hook(frame),
            None => super::apic::eoi(),
        },
        SPURIOUS_VECTOR => {}
        v if is_device_vector(v) => device_interrupt(v),
        _ => fatal(frame, None, "unhandled exception"),
    }
}

/// Set the stack a trap from ring 3 lands on (TSS `rsp0`).
pub fn set_kernel_stack(top: u64) {
    // SAFETY: single CPU; the CPU reads rsp0 only on a trap from ring 3,
    // which cannot happen while the kernel runs this.
    unsafe { (*TSS.0.get()).privilege_stack_table[0] = VirtAddr::new_truncate(top) };
}

/// The name of an exception vector ("#GP general protection").
pub fn vector_name(vector: u64) -> &'static str {
    vector_names(vector)
}

fn page_fault(frame: &mut TrapFrame) {
    let cr2 = cpu::cr2();
    if IN_PAGE_FAULT.swap(true, Ordering::AcqRel) {
        // A fault inside the fault path re-entered the same IST stack: the
        // outer frame is lost, so nothing can be resumed.
        fatal(frame, Some(cr2), "page fault inside the page-fault handler");
    }
    let resolved = page_fault_hook().is_some_and(|hook| hook(frame, cr2));
    IN_PAGE_FAULT.store(false, Ordering::Release);
    if resolved {
        return;
    }
    // SAFETY: `probe_sites` is defined in the asm above.
    let [read_site, write_site, fixup] = unsafe { probe_sites };
    if frame.rip == read_site || frame.rip == write_site {
        frame.rip = fixup;
        return;
    }
    fatal(frame, Some(cr2), "unresolved page fault");
}

fn fatal(frame: &TrapFrame, cr2: Option<u64>, what: &str) -> ! {
    crate::println!(
        "\nmobius-guest: {what}: vector {} ({}) error {:#x} rip {:#x} cr2 {:#x}",
        frame.vector,
        vector_name(frame.vector),
        frame.error_code,
        frame.rip,
        cr2.unwrap_or_else(cpu::cr2)
    );
    crate::println!(
        "  rax {:#018x} rbx {:#018x} rcx {:#018x} rdx {:#018x}\n  rsi {:#018x} rdi {:#018x} rbp {:#018x} rsp {:#018x}\n  r8  {:#018x} r9  {:#018x} r10 {:#018x} r11 {:#018x}\n  r12 {:#018x} r13 {:#018x} r14 {:#018x} r15 {:#018x}\n  cs {:#x} ss {:#x} rflags {:#x}",
        frame.rax, frame.rbx, frame.rcx, frame.rdx, frame.rsi, frame.rdi, frame.rbp, frame.rsp,
        frame.r8, frame.r9, frame.r10, frame.r11, frame.r12, frame.r13, frame.r14, frame.r15,
        frame.cs, frame.ss, frame.rflags
    );
    crate::report::fatal_report();
    cpu::exit(GuestStatus::Exception.code())
}

fn vector_names(vector: u64) -> &'static str {
    const NAMES: [&str; 22] = [
        "#DE divide error",
        "#DB debug",
        "NMI",
        "#BP breakpoint",
        "#OF overflow",
        "#BR bound range",
        "#UD invalid opcode",
        "#NM device not available",
        "#DF double fault",
        "coprocessor segment overrun",
        "#TS invalid TSS",
        "#NP segment not present",
        "#SS stack fault",
        "#GP general protection",
        "#PF page fault",
        "reserved",
        "#MF x87 error",
        "#AC alignment check",
        "#MC machine check",
        "#XM SIMD error",
        "#VE virtualization",
        "#CP control protection",
    ];
    NAMES.get(vector as usize).copied().unwrap_or("reserved")
}
