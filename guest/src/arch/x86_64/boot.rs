//! The two ways into the kernel, both ending in `mobius_kernel_entry`
//! (defined by `kmain`, named here only as a link symbol so that nothing in
//! `arch` imports the boot code back).
//!
//! * `_start64`, the ELF entry: the `mobius` launcher (and any loader that
//!   enters 64-bit kernels directly) jumps here in long mode with its own
//!   identity page tables and `rsi` = `rbx` = the PVH `hvm_start_info`.
//! * `_start32`, named by the PVH ELF note (Xen note type 18,
//!   `XEN_ELFNOTE_PHYS32_ENTRY`): `mobius run --boot pvh` and QEMU enter here in
//!   flat 32-bit protected mode, paging off, `ebx` = start info. It builds
//!   identity page tables with 2 MiB pages over the RAM of the memory map
//!   (device windows are mapped later, by their drivers, through
//!   [`super::identity::map_device`]), enables long mode and joins `_start64`.
//!
//! Neither path zeroes `.bss`: both loaders hand over zeroed memory, and on
//! kvm_pvm every ring-0 instruction is emulated, so boot does as little as it can.
core::arch::global_asm!(
    r#"
    .section .note.Xen, "a", @note
    .balign 4
    .long 4                 /* namesz: "Xen\0" */
    .long 8                 /* descsz: 8-byte entry address */
    .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .quad _start32
    .balign 4

    .section .text.boot, "ax"
    .code32
    .global _start32
_start32:
    cli
    movl %ebx, %edi                    /* start info survives in edi */

    /* PML4[0] -> PDPT, PDPT[0..4] -> PD[0..4] */
    movl $boot_pdpt, %eax
    orl $0x3, %eax
    movl %eax, boot_pml4
    movl $boot_pd, %eax
    orl $0x3, %eax
    movl %eax, boot_pdpt
    addl $0x1000, %eax
    movl %eax, boot_pdpt + 8
    addl $0x1000, %eax
    movl %eax, boot_pdpt + 16
    addl $0x1000, %eax
    movl %eax, boot_pdpt + 24

    /* How many 2 MiB pages cover RAM: the highest end of a RAM entry of
       the memory map (start info version >= 1), rounded up. A RAM end at or
       past 4 GiB, or no memory map, maps all 2048. Only RAM is mapped here:
       each PD entry written costs ~5 emulated instructions on kvm_pvm, and
       RAM is a few dozen entries where 4 GiB is 2048. Device windows above
       RAM are mapped by the drivers that use them (`identity::map_device`). */
    movl $2048, %ecx
    cmpl $1, 4(%edi)                   /* start info version */
    jb 6f
    movl 40(%edi), %esi                /* memmap_paddr (below 4 GiB) */
    movl 48(%edi), %edx                /* memmap_entries */
    xorl %ecx, %ecx
5:  testl %edx, %edx
    jz 6f
    cmpl $1, 16(%esi)                  /* type: RAM */
    jne 7f
    movl 0(%esi), %eax
    addl 8(%esi), %eax
    movl 4(%esi), %ebx
    adcl 12(%esi), %ebx
    jnz 8f                             /* ends at or past 4 GiB */
    addl $0x1fffff, %eax
    jc 8f
    shrl $21, %eax
    cmpl %ecx, %eax
    jbe 7f
    movl %eax, %ecx
7:  addl $24, %esi
    decl %edx
    jmp 5b
8:  movl $2048, %ecx
6:  testl %ecx, %ecx
    jz 9f

    /* %ecx PD entries of 2 MiB from 0: present, writable, PS */
    movl $boot_pd, %edx
    movl $0x83, %eax
1:  movl %eax, (%edx)
    addl $0x200000, %eax
    addl $8, %edx
    decl %ecx
    jnz 1b
9:
    movl $boot_pml4, %eax
    movl %eax, %cr3
    movl %cr4, %eax
    orl $0x20, %eax                    /* PAE */
    movl %eax, %cr4
    movl $0xC0000080, %ecx             /* EFER */
    rdmsr
    orl $0x100, %eax                   /* LME */
    wrmsr
    movl %cr0, %eax
    orl $0x80010001, %eax              /* PG | WP | PE */
    movl %eax, %cr0
    lgdt boot_gdt_ptr
    ljmp $0x08, $2f

    .code64
2:  movl %edi, %esi                    /* zero-extends: rsi = start info */
    jmp 3f

    .global _start64
_start64:
    cli
    leaq boot_stack_top(%rip), %rsp    /* the loader's rsp is not ours */
    lgdt boot_gdt_ptr(%rip)
    pushq $0x08
    leaq 3f(%rip), %rax
    pushq %rax
    lretq
3:  movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorw %ax, %ax
    movw %ax, %fs
    movw %ax, %gs
    leaq boot_stack_top(%rip), %rsp
    xorl %ebp, %ebp
    movq %rsi, %rdi
    call mobius_kernel_entry
4:  hlt
    jmp 4b

    .section .rodata
    .balign 16
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff           /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff           /* 0x10: data */
boot_gdt_end:
    .balign 4
    .word 0
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .quad boot_gdt

    .section .bss
    .balign 4096
    .global boot_pml4
boot_pml4:  .skip 4096
boot_pdpt:  .skip 4096
boot_pd:    .skip 4096 * 4
boot_stack: .skip 64 * 1024
boot_stack_top:
"#,
    options(att_syntax)
);
