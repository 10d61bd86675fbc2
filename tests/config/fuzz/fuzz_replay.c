/*
 * Runs the config fuzz target over the committed corpus (argv[1]), plus
 * mutations of each file and random bytes, in every build (no libFuzzer
 * needed): a crash or sanitizer report fails the test (suite 'unit').
 */
#include <stdint.h>
#include <stdio.h>

#include "fuzz_replay.h"

/* Bytes that mean something to YAML or to the config's checks. */
static const char special[] = ":-[]{}&*!|>'\"#%@`,?\t\n\r\\0 ~.=";

static void mutate_and_run(const uint8_t *p, size_t n)
{
	fuzz_mutations(p, n, special, 300);
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
	fuzz_random_inputs(buf, 256, special, 1000); /* YAML-ish text */
	printf("replayed %d corpus files with mutations\n", files);
	return files == 0;
}
