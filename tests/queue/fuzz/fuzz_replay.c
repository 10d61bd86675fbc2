/*
 * Runs the cluster reply fuzz target over the committed corpus
 * (argv[1]), plus mutations of each file and random RESP-ish bytes, in
 * every build (no libFuzzer needed): a crash, a sanitizer report or a
 * value out of range fails the test (suite 'unit').
 */
#include <stdint.h>
#include <stdio.h>

#include "fuzz_replay.h"

/* Bytes that mean something in RESP and in the replies' texts. */
static const char special[] = "*$:-+\r\n0123456789 {}[]:.?%MOVEDASK";

static void mutate_and_run(const uint8_t *p, size_t n)
{
	fuzz_mutations(p, n, special, 500);
}

int main(int argc, char **argv)
{
	static uint8_t buf[1 << 16];
	int files;

	if (argc < 2 ||
	    (files = fuzz_replay_dir(argv[1], buf, sizeof(buf), mutate_and_run)) < 0) {
		fprintf(stderr, "usage: fuzz_cluster_replay CORPUS_DIR\n");
		return 2;
	}
	fuzz_random_inputs(buf, 256, special, 2000);
	printf("replayed %d corpus files with mutations\n", files);
	return files == 0;
}
