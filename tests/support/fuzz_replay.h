/*
 * tests/support/fuzz_replay.h - the parts the fuzz replay tests share
 * (tests/agent/fuzz, tests/config/fuzz): a fixed pseudo-random sequence
 * and the walk over a committed corpus. Each test keeps its own mutations.
 */
#ifndef AETH_TEST_FUZZ_REPLAY_H
#define AETH_TEST_FUZZ_REPLAY_H

#include <stddef.h>
#include <stdint.h>

/* The fuzz target the replay test links (built without libFuzzer). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* xorshift64 from a fixed seed: every run feeds the same inputs. */
uint32_t fuzz_rnd(void);

/*
 * Feed each file of `dir` (names not starting with '.'; its first `cap`
 * bytes, read into `buf`) to the target, then to mutate(buf, n). Returns
 * the number of files, or -1 if `dir` cannot be opened.
 */
int fuzz_replay_dir(const char *dir, uint8_t *buf, size_t cap,
		    void (*mutate)(const uint8_t *p, size_t n));

/*
 * Run the target on `rounds` mutations of p[0..n): one to four bytes
 * replaced (half of them by bytes of `special`), one in four truncated,
 * one in eight with a slice of up to 32 bytes duplicated.
 */
void fuzz_mutations(const uint8_t *p, size_t n, const char *special, int rounds);

/* Run the target on `count` random inputs of up to `max` bytes (< the
 * size of buf), three bytes in four from `special`, the rest letters. */
void fuzz_random_inputs(uint8_t *buf, size_t max, const char *special, int count);

#endif
