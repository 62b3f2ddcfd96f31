/* cflags: -nostdlib -nostartfiles -fno-stack-protector */
/* exit0: the smallest program: exit(0) straight from _start, no libc, one
 * page of code. For spawn/exit cycles, where the kernel's own work is what
 * is measured. */
void _start(void)
{
	__asm__ volatile("mov $231, %eax\n\txor %edi, %edi\n\tsyscall\n\thlt");
	for (;;)
		;
}
