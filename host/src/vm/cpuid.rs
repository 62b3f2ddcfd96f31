//! The guest's CPUID: KVM's supported table, minus what the guest kernel
//! cannot keep apart between its processes.
//!
//! The guest kernel switches a thread's FPU state with `fxsave64`/`fxrstor64`
//! (x87, MXCSR, xmm0-15) and nothing more: `xsave` in its ring 0 kills the
//! VM on kvm_pvm, where ring 0 is emulated (an emulation failure). Every
//! feature whose user-visible registers live beyond the legacy FXSAVE area
//! (ymm/zmm upper halves, opmask registers k0-7, AMX tiles, APX's r16-r31,
//! PKRU, MPX bounds, CET shadow-stack state) would then leak from one
//! process into the next at each context switch (seen on kvm_pvm: two
//! processes' ymm upper halves trade places), and on kvm_pvm ring 3 can run
//! AVX even with the guest's CR4.OSXSAVE clear while `xgetbv` returns the
//! host's XCR0. So the features are hidden: musl, glibc and Rust's
//! `is_x86_feature_detected!` then choose their SSE code. The list follows
//! the dependency table of Linux (`arch/x86/kernel/cpu/cpuid-deps.c`):
//! everything that depends on XSAVE, AVX or AVX-512, plus the VEX-only
//! F16C, AMD's XOP and FMA4, and the AVX-encoded SHA512/SM3/SM4.
//!
//! Left as they are: GFNI, AES-NI and PCLMULQDQ (legacy SSE encodings on
//! xmm registers), Intel PT (leaf 0x14: enabled only through ring-0 MSRs,
//! which this kernel never writes) and Key Locker (leaf 0x19: its wrapping
//! key is loaded in ring 0 and is not per-process register state).

use kvm_bindings::CpuId;

/// A register mask with the given bits set.
const fn bits(list: &[u32]) -> u32 {
    let mut mask = 0;
    let mut i = 0;
    while i < list.len() {
        mask |= 1 << list[i];
        i += 1;
    }
    mask
}

/// Leaf 1 ECX: FMA (12), XSAVE (26), OSXSAVE (27), AVX (28), F16C (29).
const LEAF1_ECX: u32 = bits(&[12, 26, 27, 28, 29]);

/// Leaf 7 subleaf 0 EBX: AVX2 (5), MPX (14), AVX512F (16), AVX512DQ (17),
/// AVX512IFMA (21), AVX512PF (26), AVX512ER (27), AVX512CD (28),
/// AVX512BW (30), AVX512VL (31).
const LEAF7_0_EBX: u32 = bits(&[5, 14, 16, 17, 21, 26, 27, 28, 30, 31]);

/// Leaf 7 subleaf 0 ECX: AVX512_VBMI (1), PKU (3), OSPKE (4),
/// AVX512_VBMI2 (6), CET shadow stack (7), VAES (9), VPCLMULQDQ (10),
/// AVX512_VNNI (11), AVX512_BITALG (12), AVX512_VPOPCNTDQ (14).
const LEAF7_0_ECX: u32 = bits(&[1, 3, 4, 6, 7, 9, 10, 11, 12, 14]);

/// Leaf 7 subleaf 0 EDX: AVX512_4VNNIW (2), AVX512_4FMAPS (3),
/// AVX512_VP2INTERSECT (8), AMX_BF16 (22), AVX512_FP16 (23),
/// AMX_TILE (24), AMX_INT8 (25).
const LEAF7_0_EDX: u32 = bits(&[2, 3, 8, 22, 23, 24, 25]);

/// Leaf 7 subleaf 1 EAX: SHA512 (0), SM3 (1), SM4 (2), AVX_VNNI (4),
/// AVX512_BF16 (5), AMX_FP16 (21), AVX_IFMA (23).
const LEAF7_1_EAX: u32 = bits(&[0, 1, 2, 4, 5, 21, 23]);

/// Leaf 7 subleaf 1 EDX: AVX_VNNI_INT8 (4), AVX_NE_CONVERT (5),
/// AMX_COMPLEX (8), AVX_VNNI_INT16 (10), AVX10 (19), APX_F (21).
const LEAF7_1_EDX: u32 = bits(&[4, 5, 8, 10, 19, 21]);

/// Leaf 0x8000_0001 ECX: XOP (11), FMA4 (16).
const LEAF_EXT1_ECX: u32 = bits(&[11, 16]);

/// Leaves that only describe hidden state, emptied (every subleaf): 0xD
/// (XSAVE components and sizes), 0x1D and 0x1E (AMX tiles), 0x24 (AVX10),
/// 0x29 (APX).
const EMPTIED_LEAVES: [u32; 5] = [0xd, 0x1d, 0x1e, 0x24, 0x29];

/// Hide from `cpuid` every feature with register state beyond what
/// `fxsave` keeps (see the module documentation).
pub fn hide_extended_state(cpuid: &mut CpuId) {
    for e in cpuid.as_mut_slice() {
        match (e.function, e.index) {
            (1, _) => e.ecx &= !LEAF1_ECX,
            (7, 0) => {
                e.ebx &= !LEAF7_0_EBX;
                e.ecx &= !LEAF7_0_ECX;
                e.edx &= !LEAF7_0_EDX;
            }
            (7, 1) => {
                e.eax &= !LEAF7_1_EAX;
                e.edx &= !LEAF7_1_EDX;
            }
            (0x8000_0001, _) => e.ecx &= !LEAF_EXT1_ECX,
            (f, _) if EMPTIED_LEAVES.contains(&f) => {
                (e.eax, e.ebx, e.ecx, e.edx) = (0, 0, 0, 0);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use kvm_bindings::kvm_cpuid_entry2;

    use super::*;

    fn entry(function: u32, index: u32, regs: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 {
            function,
            index,
            eax: regs,
            ebx: regs,
            ecx: regs,
            edx: regs,
            ..Default::default()
        }
    }

    fn find(c: &CpuId, function: u32, index: u32) -> kvm_cpuid_entry2 {
        *c.as_slice()
            .iter()
            .find(|e| e.function == function && e.index == index)
            .expect("entry present")
    }

    /// A CPU advertising everything: exactly the listed bits go, and what
    /// programs need for SSE (and the rest of the table) stays.
    #[test]
    fn hides_avx_xsave_and_their_state_and_nothing_else() {
        let all = u32::MAX;
        let mut c = CpuId::from_entries(&[
            entry(0, 0, 0x1d),
            entry(1, 0, all),
            entry(7, 0, all),
            entry(7, 1, all),
            entry(0xd, 0, all),
            entry(0xd, 1, all),
            entry(0xd, 2, all),
            entry(0x14, 0, all),
            entry(0x19, 0, all),
            entry(0x1d, 1, all),
            entry(0x8000_0001, 0, all),
        ])
        .expect("a small table");
        hide_extended_state(&mut c);

        let l1 = find(&c, 1, 0);
        for bit in [12, 26, 27, 28, 29] {
            assert_eq!(l1.ecx & 1 << bit, 0, "leaf 1 ECX bit {bit}");
        }
        // SSE3 (0), PCLMULQDQ (1), SSSE3 (9), SSE4.1/4.2 (19, 20),
        // POPCNT (23), AES (25), RDRAND (30); all of EDX (FXSR, SSE, SSE2).
        for bit in [0, 1, 9, 19, 20, 23, 25, 30] {
            assert_ne!(l1.ecx & 1 << bit, 0, "leaf 1 ECX bit {bit} kept");
        }
        assert_eq!((l1.eax, l1.ebx, l1.edx), (all, all, all));

        let l7 = find(&c, 7, 0);
        assert_eq!(l7.ebx, !LEAF7_0_EBX);
        for bit in [5, 16, 17, 21, 26, 27, 28, 30, 31] {
            assert_eq!(l7.ebx & 1 << bit, 0, "leaf 7 EBX bit {bit}");
        }
        // FSGSBASE (0), BMI1 (3), BMI2 (8), ERMS (9), ADX (19), SHA (29).
        for bit in [0, 3, 8, 9, 19, 29] {
            assert_ne!(l7.ebx & 1 << bit, 0, "leaf 7 EBX bit {bit} kept");
        }
        for bit in [1, 3, 4, 6, 7, 9, 10, 11, 12, 14] {
            assert_eq!(l7.ecx & 1 << bit, 0, "leaf 7 ECX bit {bit}");
        }
        assert_ne!(l7.ecx & 1 << 8, 0, "GFNI kept");
        assert_ne!(l7.ecx & 1 << 22, 0, "RDPID kept");
        for bit in [2, 3, 8, 22, 23, 24, 25] {
            assert_eq!(l7.edx & 1 << bit, 0, "leaf 7 EDX bit {bit}");
        }
        assert_eq!(l7.eax, all, "max subleaf kept");

        let l71 = find(&c, 7, 1);
        assert_eq!(l71.eax, !LEAF7_1_EAX);
        assert_eq!(l71.edx, !LEAF7_1_EDX);
        assert_ne!(l71.eax & 1 << 26, 0, "LAM kept");

        for index in 0..3 {
            let d = find(&c, 0xd, index);
            assert_eq!((d.eax, d.ebx, d.ecx, d.edx), (0, 0, 0, 0), "0xD.{index}");
        }
        let amx = find(&c, 0x1d, 1);
        assert_eq!((amx.eax, amx.ebx, amx.ecx, amx.edx), (0, 0, 0, 0));
        for leaf in [0x14, 0x19] {
            let l = find(&c, leaf, 0);
            assert_eq!((l.eax, l.ebx, l.ecx, l.edx), (all, all, all, all));
        }
        assert_eq!(find(&c, 0, 0).eax, 0x1d);

        let ext = find(&c, 0x8000_0001, 0);
        assert_eq!(ext.ecx, !bits(&[11, 16]));
        assert_eq!(ext.edx, all, "NX, LM, RDTSCP kept");
    }
}
