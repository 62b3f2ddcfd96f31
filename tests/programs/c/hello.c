/* hello: prints "hello, world" with stdio and exits 0 (glibc, static). */
#include <stdio.h>

int main(void)
{
	printf("hello, world\n");
	return 0;
}
