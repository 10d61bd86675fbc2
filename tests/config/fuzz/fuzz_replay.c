/*
 * Runs the config fuzz target over the committed corpus (argv[1]), plus
 * mutations of each file and random bytes, in every build (no libFuzzer
 * needed): a crash or sanitizer report fails the test (suite 'unit').
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)rng;
}

/* Bytes that mean something to YAML or to the config's checks. */
static const char special[] = ":-[]{}&*!|>'\"#%@`,?\t\n\r\\0 ~.=";

static void mutate_and_run(const uint8_t *p, size_t n)
{
	uint8_t *m = malloc(n + 64);

	for (int round = 0; round < 300 && m; round++) {
		size_t len = n;

		memcpy(m, p, n);
		for (int k = 0; k < 1 + (int)(rnd() % 4) && len; k++) {
			size_t at = rnd() % len;

			m[at] = rnd() % 2 ? (uint8_t)special[rnd() % (sizeof(special) - 1)]
					  : (uint8_t)rnd();
		}
		if (rnd() % 4 == 0 && len)
			len = rnd() % len; /* truncate */
		if (rnd() % 8 == 0 && len + 32 <= n + 64) { /* duplicate a slice */
			size_t from = len ? rnd() % len : 0, k = rnd() % 32;

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
	struct dirent *de;
	int files = 0;
	DIR *d;

	if (argc < 2 || !(d = opendir(argv[1]))) {
		fprintf(stderr, "usage: fuzz_config_replay CORPUS_DIR\n");
		return 2;
	}
	while ((de = readdir(d))) {
		char path[4096];
		FILE *fp;
		size_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", argv[1], de->d_name);
		if (!(fp = fopen(path, "rb")))
			continue;
		n = fread(buf, 1, sizeof(buf), fp);
		fclose(fp);
		LLVMFuzzerTestOneInput(buf, n);
		mutate_and_run(buf, n);
		files++;
	}
	closedir(d);
	for (int i = 0; i < 1000; i++) { /* random text of YAML-ish bytes */
		size_t n = rnd() % 256;

		for (size_t k = 0; k < n; k++)
			buf[k] = rnd() % 4 ? (uint8_t)special[rnd() % (sizeof(special) - 1)]
					   : (uint8_t)('a' + rnd() % 26);
		LLVMFuzzerTestOneInput(buf, n);
	}
	printf("replayed %d corpus files with mutations\n", files);
	return files == 0;
}
