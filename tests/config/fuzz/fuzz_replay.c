/*
 * Runs the config fuzz target over the committed corpus (argv[1]), plus
 * mutations of each file and random bytes, in every build (no libFuzzer
 * needed): a crash or sanitizer report fails the test (suite 'unit').
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_replay.h"

/* Bytes that mean something to YAML or to the config's checks. */
static const char special[] = ":-[]{}&*!|>'\"#%@`,?\t\n\r\\0 ~.=";

static void mutate_and_run(const uint8_t *p, size_t n)
{
	uint8_t *m = malloc(n + 64);

	for (int round = 0; round < 300 && m; round++) {
		size_t len = n;

		memcpy(m, p, n);
		for (int k = 0; k < 1 + (int)(fuzz_rnd() % 4) && len; k++) {
			size_t at = fuzz_rnd() % len;

			m[at] = fuzz_rnd() % 2 ? (uint8_t)special[fuzz_rnd() % (sizeof(special) - 1)]
					  : (uint8_t)fuzz_rnd();
		}
		if (fuzz_rnd() % 4 == 0 && len)
			len = fuzz_rnd() % len; /* truncate */
		if (fuzz_rnd() % 8 == 0 && len + 32 <= n + 64) { /* duplicate a slice */
			size_t from = len ? fuzz_rnd() % len : 0, k = fuzz_rnd() % 32;

			if (from + k > len)
				k = len - from;
			memmove(m + from + k, m + from, len - from);
			len += k;
		}
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
		fprintf(stderr, "usage: fuzz_config_replay CORPUS_DIR\n");
		return 2;
	}
	for (int i = 0; i < 1000; i++) { /* random text of YAML-ish bytes */
		size_t n = fuzz_rnd() % 256;

		for (size_t k = 0; k < n; k++)
			buf[k] = fuzz_rnd() % 4 ? (uint8_t)special[fuzz_rnd() % (sizeof(special) - 1)]
					   : (uint8_t)('a' + fuzz_rnd() % 26);
		LLVMFuzzerTestOneInput(buf, n);
	}
	printf("replayed %d corpus files with mutations\n", files);
	return files == 0;
}
