//! The ring-3 boundary: the `syscall` entry, the per-CPU block reached
//! through GS, kernel stacks and the context switch, FPU/SSE state.
//!
//! # System calls on both kinds of KVM
//!
//! LSTAR points at [`syscall_entry`], whose first instruction is `swapgs`.
//! On hardware KVM (and QEMU) `syscall` enters ring 0 there: the stub saves
//! the user stack pointer in the per-CPU block, switches to the thread's
//! kernel stack, builds the same frame a trap would (`TrapFrame` with
//! vector [`SYSCALL_VECTOR`]) and joins the common trap path. On kvm_pvm
//! (this project's development machine) `syscall` jumps to LSTAR *still in
//! ring 3*: fetching the stub from its supervisor-only page raises #PF (and
//! were the page user-executable, its `swapgs` would raise #GP). The trap
//! handler recognises either fault from ring 3 at exactly [`syscall_entry`]
//! and turns the frame into the same system-call frame
//! ([`syscall_from_trap`]): return address from RCX, flags from R11, as
//! `syscall` left them. Either way the kernel sees one
//! kind of frame and returns with `iretq`.
//!
//! # Per-CPU block
//!
//! In ring 0 the GS base is the [`PerCpu`] block (the user's GS base waits
//! in `KERNEL_GS_BASE`); `swapgs` exchanges them on every entry from and exit
//! to ring 3. One CPU today; the block is what a second one would need.
use core::arch::asm;

use super::trap::{TrapFrame, SYSCALL_VECTOR, USER_CODE32, USER_DATA};

const IA32_EFER: u32 = 0xC000_0080;
const IA32_STAR: u32 = 0xC000_0081;
const IA32_LSTAR: u32 = 0xC000_0082;
const IA32_FMASK: u32 = 0xC000_0084;
const IA32_FS_BASE: u32 = 0xC000_0100;
const IA32_GS_BASE: u32 = 0xC000_0101;
const IA32_KERNEL_GS_BASE: u32 = 0xC000_0102;
const EFER_SCE: u64 = 1;

/// RFLAGS bits `syscall` clears on entry (Linux's mask): TF, IF, DF, IOPL,
/// NT, AC — the stub runs with interrupts off until it is on its stack.
const SYSCALL_FLAGS_MASK: u64 = 0x4_7700;
/// RFLAGS bits a program may set for itself: CF, PF, AF, ZF, SF, DF, OF,
/// AC, ID. IF is always set in ring 3; TF, IOPL, NT, RF never.
const USER_FLAGS: u64 = 0x24_0CD5;
const FLAGS_IF: u64 = 0x200;
const FLAGS_RESERVED: u64 = 0x2;

/// The per-CPU block (GS base in ring 0). The stub reads it by offset.
#[repr(C)]
pub struct PerCpu {
    /// Its own address (offset 0).
    pub this: u64,
    /// Top of the running thread's kernel stack (offset 8).
    pub kernel_rsp: u64,
    /// Scratch: the user stack pointer at a `syscall` (offset 16).
    pub user_rsp: u64,
}

struct PerCpuCell(core::cell::UnsafeCell<PerCpu>);
// SAFETY: one CPU; written by the kernel with interrupts off.
unsafe impl Sync for PerCpuCell {}
static PERCPU: PerCpuCell = PerCpuCell(core::cell::UnsafeCell::new(PerCpu {
    this: 0,
    kernel_rsp: 0,
    user_rsp: 0,
}));

core::arch::global_asm!(
    r#"
    .section .text
    .global syscall_entry
syscall_entry:
    swapgs                       /* #GP here on kvm_pvm: see the module doc */
    movq %rsp, %gs:16
    movq %gs:8, %rsp
    pushq ${user_ss}
    pushq %gs:16
    pushq %r11
    pushq ${user_cs}
    pushq %rcx
    pushq $0
    pushq ${vector}
    jmp trap_save

    /* switch_stacks(save: *mut u64, next: u64): save the callee-saved
       registers and the stack pointer, continue on `next`'s stack. */
    .global switch_stacks
switch_stacks:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
"#,
    user_ss = const USER_DATA,
    user_cs = const super::trap::USER_CODE,
    vector = const SYSCALL_VECTOR,
    options(att_syntax)
);

extern "C" {
    fn syscall_entry();
    fn switch_stacks(save: *mut u64, next: u64);
    fn trap_return();
}

fn wrmsr(msr: u32, value: u64) {
    // SAFETY: the MSRs written here are architectural and the values valid.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32,
             options(nostack, preserves_flags))
    }
}

fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: reading an architectural MSR.
    unsafe {
        asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nostack, preserves_flags))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Set up `syscall` (EFER.SCE, STAR, LSTAR, FMASK), the per-CPU block in
/// GS, and SSE for ring 3 (CR0.EM off, CR0.MP, CR4.OSFXSR, OSXMMEXCPT).
/// Called once, when the first process starts (a run without programs
/// pays nothing).
pub fn init() {
    let percpu = PERCPU.0.get();
    // SAFETY: one CPU, interrupts off: nothing else uses the block yet.
    unsafe { (*percpu).this = percpu as u64 };
    wrmsr(IA32_EFER, rdmsr(IA32_EFER) | EFER_SCE);
    // sysret would load CS = STAR[63:48] + 16 and SS = + 8 (RPL 3): the
    // 32-bit user code selector is the base. syscall loads CS 0x08, SS 0x10.
    let star = (u64::from(USER_CODE32 & !3) << 48) | (u64::from(super::trap::KERNEL_CODE) << 32);
    wrmsr(IA32_STAR, star);
    wrmsr(IA32_LSTAR, syscall_entry as *const () as u64);
    wrmsr(IA32_FMASK, SYSCALL_FLAGS_MASK);
    wrmsr(IA32_GS_BASE, percpu as u64);
    wrmsr(IA32_KERNEL_GS_BASE, 0);
    // SAFETY: enabling SSE state for ring 3 changes nothing the kernel
    // uses (it is built without SSE).
    unsafe {
        asm!(
            "mov {t}, cr0", "and {t}, ~4", "or {t}, 2", "mov cr0, {t}",
            "mov {t}, cr4", "or {t}, 0x600", "mov cr4, {t}",
            "fninit",
            t = out(reg) _, options(nostack)
        )
    };
}

/// Whether a #PF or #GP from ring 3 is a `syscall` that arrived at LSTAR
/// without leaving ring 3 (kvm_pvm): it faults on the entry's first
/// instruction.
pub fn is_syscall_trap(frame: &TrapFrame) -> bool {
    frame.rip == syscall_entry as *const () as u64
}

/// Turn that fault's frame into the system-call frame the `syscall_entry`
/// stub builds on hardware: `syscall` put the return address in RCX and
/// the flags in R11.
pub fn syscall_from_trap(frame: &mut TrapFrame) {
    frame.vector = SYSCALL_VECTOR;
    frame.error_code = 0;
    frame.rip = frame.rcx;
    frame.rflags = user_flags(frame.r11);
}

/// The flags a program may have, from what it asked for.
pub fn user_flags(requested: u64) -> u64 {
    (requested & USER_FLAGS) | FLAGS_IF | FLAGS_RESERVED
}

/// Make `top` the kernel stack of the thread about to run: traps from ring
/// 3 (TSS rsp0) and system calls (the per-CPU block) land there.
pub fn set_kernel_stack(top: u64) {
    super::trap::set_kernel_stack(top);
    // SAFETY: one CPU, interrupts off.
    unsafe { (*PERCPU.0.get()).kernel_rsp = top };
}

/// Set the FS base (a thread's TLS pointer).
pub fn set_fs_base(base: u64) {
    wrmsr(IA32_FS_BASE, base);
}

/// The FS base.
pub fn fs_base() -> u64 {
    rdmsr(IA32_FS_BASE)
}

/// x87/SSE state (`fxsave64` layout, 512 bytes): a thread's registers
/// where programs can use no more than SSE. Ring-0 `xsave` is not
/// available everywhere (it kills the VM on kvm_pvm); where ring 3 can use
/// AVX anyway, the host's extended-state port keeps the whole state
/// instead (`arch::x86_64::fpu`).
#[repr(C, align(16))]
#[derive(Clone)]
pub struct FpuState(pub [u8; 512]);

impl FpuState {
    /// The state after `fninit` with the default MXCSR (all exceptions
    /// masked), as a new process starts with.
    pub fn initial() -> FpuState {
        let mut s = FpuState([0; 512]);
        s.0[0] = 0x7f; // FCW 0x037f
        s.0[1] = 0x03;
        s.0[24] = 0x80; // MXCSR 0x1f80
        s.0[25] = 0x1f;
        s.0[28] = 0xff; // MXCSR_MASK 0xffff
        s.0[29] = 0xff;
        s
    }

    /// Save the CPU's x87/SSE registers here.
    pub fn save(&mut self) {
        // SAFETY: the area is 512 bytes, 16-byte aligned, ours.
        unsafe { asm!("fxsave64 [{}]", in(reg) self.0.as_mut_ptr(), options(nostack)) };
    }

    /// Load the CPU's x87/SSE registers from here.
    pub fn restore(&self) {
        // SAFETY: the area holds a state saved by `save` or `initial`
        // (reserved MXCSR bits clear).
        unsafe { asm!("fxrstor64 [{}]", in(reg) self.0.as_ptr(), options(nostack)) };
    }
}

/// Size of a thread's kernel stack.
pub const KERNEL_STACK_SIZE: usize = 16 * 1024;

/// A thread's kernel stack.
#[repr(C, align(16))]
pub struct KernelStack(pub [u8; KERNEL_STACK_SIZE]);

impl KernelStack {
    /// A zeroed stack, built in place on the heap: a 16 KiB value must
    /// never pass through the (16 KiB) kernel stack that creates it.
    pub fn new_boxed() -> alloc::boxed::Box<KernelStack> {
        let stack = alloc::boxed::Box::<KernelStack>::new_zeroed();
        // SAFETY: all-zero bytes are a valid `[u8; N]`.
        unsafe { stack.assume_init() }
    }

    pub fn top(&self) -> u64 {
        self.0.as_ptr() as u64 + KERNEL_STACK_SIZE as u64
    }
}

/// Lay out a new thread's kernel stack so that switching to it returns to
/// ring 3 with `frame`: the frame at the top, below it the return into the
/// trap exit path and six zero callee-saved registers. Returns the stack
/// pointer to switch to.
pub fn prepare_stack(stack: &mut KernelStack, frame: &TrapFrame) -> u64 {
    let frame_size = core::mem::size_of::<TrapFrame>();
    let top = stack.top();
    let frame_at = top - frame_size as u64;
    let ret_at = frame_at - 8;
    let sp = ret_at - 6 * 8;
    // SAFETY: all three writes lie inside `stack` (16 KiB, far more than
    // one frame and seven words), suitably aligned.
    unsafe {
        (frame_at as *mut TrapFrame).write(frame.clone());
        (ret_at as *mut u64).write(trap_return as *const () as u64);
        core::ptr::write_bytes(sp as *mut u64, 0, 6);
    }
    sp
}

/// Switch from the running context (its stack pointer saved in `*save`) to
/// the one whose stack pointer is `next`. Returns when something switches
/// back to `*save`.
///
/// # Safety
/// `next` must come from [`prepare_stack`] or from an earlier `switch`'s
/// `save`, on a stack that is still alive; interrupts must be off.
pub unsafe fn switch(save: *mut u64, next: u64) {
    // SAFETY: the caller vouches for `next`; `save` is written before the
    // switch.
    unsafe { switch_stacks(save, next) }
}

/// A frame that starts ring 3 at `rip` with stack `rsp`, interrupts on.
pub fn user_frame(rip: u64, rsp: u64) -> TrapFrame {
    TrapFrame {
        r15: 0,
        r14: 0,
        r13: 0,
        r12: 0,
        r11: 0,
        r10: 0,
        r9: 0,
        r8: 0,
        rbp: 0,
        rdi: 0,
        rsi: 0,
        rdx: 0,
        rcx: 0,
        rbx: 0,
        rax: 0,
        vector: 0,
        error_code: 0,
        rip,
        cs: u64::from(super::trap::USER_CODE),
        rflags: FLAGS_IF | FLAGS_RESERVED,
        rsp,
        ss: u64::from(USER_DATA),
    }
}
