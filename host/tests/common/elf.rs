//! A tiny hand-assembled test kernel, built as an ELF file in memory, so that
//! the launcher's loader and run loop can be tested without the real guest.
//!
//! The code uses only encodings that mean the same in 32-bit protected mode and
//! in 64-bit mode, so one body serves both the PVH and the 64-bit entry.

pub const LOAD_ADDR: u64 = 0x10_0000;

/// Machine code: print `text` on COM1, then `out 0xf4, eax` with `status`, then `hlt`.
pub fn print_and_exit(text: &str, status: u32) -> Vec<u8> {
    let mut code = Vec::new();
    code.extend_from_slice(&[0x66, 0xba, 0xf8, 0x03]); // mov dx, 0x3f8
    for b in text.bytes() {
        code.extend_from_slice(&[0xb0, b, 0xee]); // mov al, b; out dx, al
    }
    code.extend_from_slice(&[0x66, 0xba, 0xf4, 0x00]); // mov dx, 0xf4
    code.push(0xb8); // mov eax, imm32
    code.extend_from_slice(&status.to_le_bytes());
    code.push(0xef); // out dx, eax
    code.push(0xf4); // hlt
    code
}

/// Machine code: `jmp $` forever.
pub fn spin() -> Vec<u8> {
    vec![0xeb, 0xfe]
}

/// Machine code: `hlt` without any status.
pub fn halt() -> Vec<u8> {
    vec![0xf4]
}

/// Machine code: `sti; hlt`: waiting for an interrupt no device will send.
pub fn halt_with_interrupts_on() -> Vec<u8> {
    vec![0xfb, 0xf4]
}

/// Machine code: enable the local APIC, arm its timer (one-shot, vector
/// 0x20) for `count` bus cycles (1 ns each in KVM at divide-by-1), then
/// `sti; hlt`. No IDT is loaded, so when the timer fires the machine
/// triple-faults. The APIC is at its reset base, 0xfee00000: mapped by the
/// long-mode entry's page tables (not under the PVH entry's flat mode...
/// which has paging off, so it is reachable there too).
pub fn apic_timer_then_halt(count: u32) -> Vec<u8> {
    let mut code = Vec::new();
    for (reg, value) in [
        (0xf0u32, 0x1ffu32), // SPIV: APIC on, spurious vector 0xff
        (0x3e0, 0xb),        // divide configuration: by 1
        (0x320, 0x20),       // LVT timer: vector 0x20, one-shot, unmasked
        (0x380, count),      // initial count: starts the timer
    ] {
        code.push(0xb8); // mov eax, imm32 (zero-extends in 64-bit mode)
        code.extend_from_slice(&(0xfee0_0000 + reg).to_le_bytes());
        code.extend_from_slice(&[0xc7, 0x00]); // mov dword [eax|rax], imm32
        code.extend_from_slice(&value.to_le_bytes());
    }
    code.extend_from_slice(&[0xfb, 0xf4]); // sti; hlt
    code
}

/// Machine code: `ud2` with no IDT loaded: a triple fault.
pub fn triple_fault() -> Vec<u8> {
    vec![0x0f, 0x0b]
}

/// Machine code: write `pfns` to the discard port, then print `text` and exit 0.
pub fn discard_then(pfns: &[u32], text: &str) -> Vec<u8> {
    let mut code = vec![0x66, 0xba, 0xf8, 0x00]; // mov dx, 0xf8
    for pfn in pfns {
        code.push(0xb8);
        code.extend_from_slice(&pfn.to_le_bytes());
        code.push(0xef); // out dx, eax
    }
    code.extend(print_and_exit(text, 0));
    code
}

/// Machine code: hand `text` to the console-write port (0xfc) as one
/// buffer, then the port each address of `bad`, then a buffer claiming
/// `too_long` bytes, then exit 0 (printing nothing on COM1).
pub fn console_write_then(text: &str, bad: &[u32], too_long: u32) -> Vec<u8> {
    let skip = 4 + text.len() + 4;
    assert!(skip < 128, "text too long for a short jump");
    let mut code = vec![0xeb, skip as u8]; // jmp over the two buffers
    let good = LOAD_ADDR as u32 + 2;
    code.extend_from_slice(&(text.len() as u32).to_le_bytes());
    code.extend_from_slice(text.as_bytes());
    let long = good + 4 + text.len() as u32;
    code.extend_from_slice(&too_long.to_le_bytes());
    code.extend_from_slice(&[0x66, 0xba, 0xfc, 0x00]); // mov dx, 0xfc
    for addr in [good].iter().chain(bad).chain([&long]) {
        code.push(0xb8); // mov eax, addr
        code.extend_from_slice(&addr.to_le_bytes());
        code.push(0xef); // out dx, eax
    }
    code.extend(print_and_exit("", 0));
    code
}

/// Machine code: read unknown port 0x80 and the MMIO byte at `addr` (below 4 GiB),
/// then print `text` and exit 0.
pub fn touch_unknown_then(addr: u32, text: &str) -> Vec<u8> {
    let mut code = vec![0xe4, 0x80]; // in al, 0x80
    code.extend_from_slice(&[0xe6, 0x80]); // out 0x80, al
    code.push(0xb8); // mov eax, addr
    code.extend_from_slice(&addr.to_le_bytes());
    code.extend_from_slice(&[0x8a, 0x00]); // mov al, [eax] (64-bit: [rax], zero-extended)
    code.extend(print_and_exit(text, 0));
    code
}

/// Machine code: for i = n down to 1, write to port `0x1000 + i` and read
/// MMIO address `0xe000_0000 + 4 i` (each a distinct unknown one), then
/// print `text` and exit 0.
pub fn flood_unknown_then(n: u32, text: &str) -> Vec<u8> {
    let mut code = vec![0xb9]; // mov ecx, n
    code.extend_from_slice(&n.to_le_bytes());
    let body = [
        0x89, 0xca, // loop: mov edx, ecx
        0x81, 0xc2, 0x00, 0x10, 0x00, 0x00, // add edx, 0x1000
        0xee, // out dx, al
        0x89, 0xc8, // mov eax, ecx
        0xc1, 0xe0, 0x02, // shl eax, 2
        0x05, 0x00, 0x00, 0x00, 0xe0, // add eax, 0xe0000000
        0x8a, 0x00, // mov al, [eax] (64-bit: [rax], zero-extended)
        0xff, 0xc9, // dec ecx
    ];
    code.extend_from_slice(&body);
    code.extend_from_slice(&[0x75, (-(body.len() as i8 + 2)) as u8]); // jnz loop
    code.extend(print_and_exit(text, 0));
    code
}

/// Options of the generated ELF.
pub struct ElfSpec {
    pub class64: bool,
    pub machine: u16,
    pub load_addr: u64,
    /// Extra bytes of memory (bss) after the code.
    pub bss: u64,
    pub pvh_note: bool,
    pub code: Vec<u8>,
}

impl ElfSpec {
    pub fn new(code: Vec<u8>) -> Self {
        ElfSpec {
            class64: true,
            machine: 62,
            load_addr: LOAD_ADDR,
            bss: 0,
            pvh_note: true,
            code,
        }
    }

    /// Serialise: ELF header, two program headers (PT_LOAD, PT_NOTE), note, code.
    pub fn build(&self) -> Vec<u8> {
        const EHDR: usize = 64;
        const PHDR: usize = 56;
        let phnum = if self.pvh_note { 2 } else { 1 };
        let note_off = EHDR + PHDR * phnum;
        let note_len = if self.pvh_note { 12 + 4 + 8 } else { 0 };
        let code_off = (note_off + note_len + 15) & !15;
        let entry = self.load_addr;

        let mut f = Vec::new();
        f.extend_from_slice(b"\x7fELF");
        f.push(if self.class64 { 2 } else { 1 });
        f.push(1); // little endian
        f.push(1); // version
        f.extend_from_slice(&[0; 9]);
        f.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        f.extend_from_slice(&self.machine.to_le_bytes());
        f.extend_from_slice(&1u32.to_le_bytes());
        f.extend_from_slice(&entry.to_le_bytes());
        f.extend_from_slice(&(EHDR as u64).to_le_bytes()); // phoff
        f.extend_from_slice(&0u64.to_le_bytes()); // shoff
        f.extend_from_slice(&0u32.to_le_bytes()); // flags
        f.extend_from_slice(&(EHDR as u16).to_le_bytes());
        f.extend_from_slice(&(PHDR as u16).to_le_bytes());
        f.extend_from_slice(&(phnum as u16).to_le_bytes());
        f.extend_from_slice(&64u16.to_le_bytes()); // shentsize
        f.extend_from_slice(&0u16.to_le_bytes()); // shnum
        f.extend_from_slice(&0u16.to_le_bytes()); // shstrndx
        assert_eq!(f.len(), EHDR);

        let phdr = |f: &mut Vec<u8>,
                    ty: u32,
                    flags: u32,
                    off: u64,
                    addr: u64,
                    filesz: u64,
                    memsz: u64,
                    align: u64| {
            f.extend_from_slice(&ty.to_le_bytes());
            f.extend_from_slice(&flags.to_le_bytes());
            f.extend_from_slice(&off.to_le_bytes());
            f.extend_from_slice(&addr.to_le_bytes()); // vaddr
            f.extend_from_slice(&addr.to_le_bytes()); // paddr
            f.extend_from_slice(&filesz.to_le_bytes());
            f.extend_from_slice(&memsz.to_le_bytes());
            f.extend_from_slice(&align.to_le_bytes());
        };
        let code_len = self.code.len() as u64;
        phdr(
            &mut f,
            1,
            5,
            code_off as u64,
            self.load_addr,
            code_len,
            code_len + self.bss,
            16,
        );
        if self.pvh_note {
            phdr(
                &mut f,
                4,
                4,
                note_off as u64,
                0,
                note_len as u64,
                note_len as u64,
                4,
            );
            f.extend_from_slice(&4u32.to_le_bytes()); // namesz
            f.extend_from_slice(&8u32.to_le_bytes()); // descsz
            f.extend_from_slice(&18u32.to_le_bytes()); // XEN_ELFNOTE_PHYS32_ENTRY
            f.extend_from_slice(b"Xen\0");
            f.extend_from_slice(&entry.to_le_bytes());
        }
        f.resize(code_off, 0);
        f.extend_from_slice(&self.code);
        f
    }
}

/// Machine code: print `text` on COM1, then spin forever.
pub fn print_then_spin(text: &str) -> Vec<u8> {
    let mut code = vec![0x66, 0xba, 0xf8, 0x03]; // mov dx, 0x3f8
    for b in text.bytes() {
        code.extend_from_slice(&[0xb0, b, 0xee]); // mov al, b; out dx, al
    }
    code.extend(spin());
    code
}
