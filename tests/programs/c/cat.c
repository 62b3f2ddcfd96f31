/* cat FILE...: copies each file to stdout with stdio; on any failure,
 * perror("cat: FILE") and exit 1 (glibc, static). */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	char buf[4096];
	size_t n;
	int i;

	for (i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");

		if (!f) {
			fprintf(stderr, "cat: ");
			perror(argv[i]);
			return 1;
		}
		while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
			if (fwrite(buf, 1, n, stdout) != n) {
				perror("cat: stdout");
				return 1;
			}
		}
		if (ferror(f)) {
			fprintf(stderr, "cat: ");
			perror(argv[i]);
			return 1;
		}
		fclose(f);
	}
	if (fflush(stdout) != 0) {
		perror("cat: stdout");
		return 1;
	}
	return 0;
}
