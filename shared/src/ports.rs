//! I/O ports the guest uses to talk to the host.

/// COM1, a 16550-compatible UART: the guest's serial console.
pub const COM1: u16 = 0x3f8;
/// Debug-exit port: a 32-bit `out` of value `v` ends the run with status `v`.
///
/// Same port as QEMU's `isa-debug-exit` default (`iobase=0xf4,iosize=4`); under
/// QEMU the process status is `(v << 1) | 1` instead.
pub const DEBUG_EXIT: u16 = 0xf4;
/// Width of the debug-exit port in bytes.
pub const DEBUG_EXIT_SIZE: u16 = 4;

/// Frame-discard port: a 32-bit `out` of a page frame number `pfn` asks the
/// host to drop the backing of guest-physical page `pfn << 12`, which then reads
/// as zeroes (the host uses `madvise(MADV_DONTNEED)`). This moves page zeroing
/// off the guest's (slow, emulated on kvm_pvm) ring-0 path. The guest uses it
/// only when the command line carries `discard=1`, so under a machine that does
/// not offer it (QEMU) nothing assumes a discarded frame is zero.
pub const DISCARD_FRAME: u16 = 0xf8;

/// Console-write port: a 32-bit `out` of the guest-physical address of a
/// buffer `{ len: u32 (little-endian), bytes: [u8; len] }` asks the host to
/// print those bytes on the console, exactly as if they had been written to
/// COM1 one by one. One exit per line instead of one per byte where the
/// hypervisor splits string I/O (kvm_pvm does), and no UART polling. The
/// guest uses it only when the boot parameters say the host offers it
/// ([`crate::boot_params::FLAG_CONSOLE`]); elsewhere (QEMU) it uses COM1.
pub const CONSOLE_WRITE: u16 = 0xfc;
/// Most bytes one console write may carry; a longer one is refused.
pub const CONSOLE_WRITE_MAX: u32 = 4096;

/// Console-write port for the error stream: the same buffer as
/// [`CONSOLE_WRITE`], printed on the host's standard error. A program's
/// file descriptor 2 goes here (its 1 goes to [`CONSOLE_WRITE`]).
pub const CONSOLE_WRITE_ERR: u16 = 0xf0;

/// Extended-state port: a 32-bit `out` asks the host to save or load the
/// vCPU's whole x87/SSE/AVX/AVX-512 state (`KVM_GET_XSAVE`/`KVM_SET_XSAVE`)
/// for one guest thread. The guest kernel switches threads; where ring 0
/// cannot run `xsave` (kvm_pvm kills the VM) and ring 3 can use AVX state
/// the kernel cannot see, this keeps every thread's registers its own.
/// Offered when the boot parameters carry [`crate::boot_params::FLAG_XSTATE`].
///
/// The value: bits 0..14 slot `a`, bits 14..28 slot `b`, bits 28..32 the
/// operation ([`XSTATE_SAVE`]...). Slots are numbered below
/// [`XSTATE_SLOTS`]; the host keeps at most that many states (4 KiB each).
pub const XSTATE: u16 = 0xf2;
/// The vCPU's state into slot `a`.
pub const XSTATE_SAVE: u32 = 1;
/// Slot `a` into the vCPU (a slot never saved holds the reset state).
pub const XSTATE_LOAD: u32 = 2;
/// Forget slot `a`.
pub const XSTATE_FREE: u32 = 3;
/// Slot `b` becomes a copy of slot `a`.
pub const XSTATE_COPY: u32 = 4;
/// The vCPU gets the reset state (a new program).
pub const XSTATE_RESET: u32 = 5;
/// Slots the host keeps (the guest's most threads).
pub const XSTATE_SLOTS: u32 = 1024;

/// The port value for `op` on slots `a` and `b`.
pub const fn xstate_value(op: u32, a: u32, b: u32) -> u32 {
    (op << 28) | ((b & 0x3fff) << 14) | (a & 0x3fff)
}

/// `(op, a, b)` of a port value.
pub const fn xstate_parts(value: u32) -> (u32, u32, u32) {
    (value >> 28, value & 0x3fff, (value >> 14) & 0x3fff)
}

/// Console-read port: a 32-bit `out` of the guest-physical address of a
/// buffer `{ cap: u32, len: u32, bytes: [u8; cap] }` asks the host for up to
/// `cap` bytes of its standard input (a program's descriptor 0). The host
/// waits for them, writes how many it read into `len` (0: end of input)
/// and the bytes after it. The guest stops while the host waits (one vCPU:
/// reading a terminal holds every process until a line comes). Offered when
/// the boot parameters carry [`crate::boot_params::FLAG_STDIN`]; elsewhere
/// standard input reads as empty.
pub const CONSOLE_READ: u16 = 0xec;
/// Most bytes one console read may ask for.
pub const CONSOLE_READ_MAX: u32 = 4096;
