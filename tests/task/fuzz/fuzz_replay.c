/*
 * Runs the payload fuzz target over the committed corpus (argv[1]), plus
 * mutations of each file in the bytes that mean something to JSON and to
 * -args splitting, in every build (no libFuzzer needed): a crash or
 * sanitizer report fails the test.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_replay.h"

static const char special[] = "{}[]\":,\\'\" $`\t\n0123456789.-eE";

static void mutate_and_run(const uint8_t *p, size_t n)
{
	uint8_t *m = malloc(n + 1);

	for (int round = 0; round < 200 && m && n > 1; round++) {
		size_t len = n;

		memcpy(m, p, n);
		/* keep the first byte: it picks the parser */
		for (int k = 0; k < 1 + (int)(fuzz_rnd() % 4); k++)
			m[1 + fuzz_rnd() % (len - 1)] = fuzz_rnd() % 2 ?
				(uint8_t)special[fuzz_rnd() % (sizeof(special) - 1)] :
				(uint8_t)fuzz_rnd();
		if (fuzz_rnd() % 4 == 0)
			len = 1 + fuzz_rnd() % (len - 1); /* truncate */
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
		fprintf(stderr, "usage: fuzz_payload_replay CORPUS_DIR\n");
		return 2;
	}
	printf("replayed %d files and their mutations\n", files);
	return files > 0 ? 0 : 1;
}
