/* tests/support/fuzz_replay.c - see fuzz_replay.h. */
#include <dirent.h>
#include <stdio.h>

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
