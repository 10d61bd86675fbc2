/*
 * Runs the frame fuzz target over the committed corpus (argv[1]) plus
 * mutations of it and random garbage, in every build (no libFuzzer
 * needed): a crash or sanitizer report fails the test.
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

static void mutate_and_run(const uint8_t *p, size_t n)
{
	uint8_t *m = malloc(n + 16);

	for (int round = 0; round < 200 && m; round++) {
		size_t len = n;

		memcpy(m, p, n);
		for (int k = 0; k < 1 + (int)(rnd() % 4) && len; k++)
			m[rnd() % len] = (uint8_t)rnd();
		if (rnd() % 4 == 0 && len)
			len = rnd() % len; /* truncate */
		LLVMFuzzerTestOneInput(m, len);
	}
	free(m);
}

int main(int argc, char **argv)
{
	static uint8_t buf[1 << 16];
	DIR *d;
	struct dirent *de;
	int files = 0;

	if (argc < 2 || !(d = opendir(argv[1]))) {
		fprintf(stderr, "usage: fuzz_replay CORPUS_DIR\n");
		return 2;
	}
	while ((de = readdir(d))) {
		char path[4096];
		FILE *fp;
		size_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", argv[1], de->d_name);
		fp = fopen(path, "rb");
		if (!fp)
			continue;
		n = fread(buf, 1, sizeof(buf), fp);
		fclose(fp);
		LLVMFuzzerTestOneInput(buf, n);
		mutate_and_run(buf, n);
		files++;
	}
	closedir(d);
	for (int i = 0; i < 2000; i++) {
		size_t n = rnd() % 512;

		for (size_t k = 0; k < n; k++)
			buf[k] = (uint8_t)rnd();
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
