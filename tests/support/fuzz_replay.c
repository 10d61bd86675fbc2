/* tests/support/fuzz_replay.c - see fuzz_replay.h. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_replay.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

uint32_t fuzz_rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)rng;
}

int fuzz_replay_dir(const char *dir, uint8_t *buf, size_t cap,
		    void (*mutate)(const uint8_t *p, size_t n))
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int files = 0;

	if (!d)
		return -1;
	while ((de = readdir(d))) {
		char path[4096];
		FILE *fp;
		size_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (!(fp = fopen(path, "rb")))
			continue;
		n = fread(buf, 1, cap, fp);
		fclose(fp);
		LLVMFuzzerTestOneInput(buf, n);
		mutate(buf, n);
		files++;
	}
	closedir(d);
	return files;
}

void fuzz_mutations(const uint8_t *p, size_t n, const char *special, int rounds)
{
	size_t ns = strlen(special);
	uint8_t *m = malloc(n + 64);

	for (int round = 0; round < rounds && m; round++) {
		size_t len = n;

		memcpy(m, p, n);
		for (int k = 0; k < 1 + (int)(fuzz_rnd() % 4) && len; k++) {
			size_t at = fuzz_rnd() % len;

			m[at] = fuzz_rnd() % 2 ? (uint8_t)special[fuzz_rnd() % ns]
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

void fuzz_random_inputs(uint8_t *buf, size_t max, const char *special, int count)
{
	size_t ns = strlen(special);

	for (int i = 0; i < count; i++) {
		size_t n = fuzz_rnd() % max;

		for (size_t k = 0; k < n; k++)
			buf[k] = fuzz_rnd() % 4 ? (uint8_t)special[fuzz_rnd() % ns]
					   : (uint8_t)('a' + fuzz_rnd() % 26);
		LLVMFuzzerTestOneInput(buf, n);
	}
}
