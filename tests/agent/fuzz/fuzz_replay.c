/*
 * Runs the frame fuzz target over the committed corpus (argv[1]) plus
 * mutations of it and random garbage, in every build (no libFuzzer
 * needed): a crash or sanitizer report fails the test.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_replay.h"

static void mutate_and_run(const uint8_t *p, size_t n)
{
	uint8_t *m = malloc(n + 16);

	for (int round = 0; round < 200 && m; round++) {
		size_t len = n;

		memcpy(m, p, n);
		for (int k = 0; k < 1 + (int)(fuzz_rnd() % 4) && len; k++)
			m[fuzz_rnd() % len] = (uint8_t)fuzz_rnd();
		if (fuzz_rnd() % 4 == 0 && len)
			len = fuzz_rnd() % len; /* truncate */
		LLVMFuzzerTestOneInput(m, len);
	}
	free(m);
}

int main(int argc, char **argv)
{
	static uint8_t buf[1 << 16];
	int files;

	if (argc < 2 ||
	    (files = fuzz_replay_dir(argv[1], buf, sizeof(buf), mutate_and_run)) < 0) {
		fprintf(stderr, "usage: fuzz_replay CORPUS_DIR\n");
		return 2;
	}
	for (int i = 0; i < 2000; i++) {
		size_t n = fuzz_rnd() % 512;

		for (size_t k = 0; k < n; k++)
			buf[k] = (uint8_t)fuzz_rnd();
		if (n >= 3 && i % 2) { /* a plausible header start */
			buf[0] = 'A';
			buf[1] = 'E';
			buf[2] = 1;
		}
		LLVMFuzzerTestOneInput(buf, n);
	}
	printf("%d corpus files (+200 mutations each) and 2000 random "
	       "inputs: no crash\n", files);
	return files > 0 ? 0 : 1;
}
