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

#endif
