/*
 * libFuzzer target: arbitrary bytes as a config file (aeth_config_load
 * through a memfd, so no disk I/O), then as the "queue.weights" list of
 * aeth_config_set(). Any crash, leak or sanitizer report is a bug; errors
 * are expected and must carry a message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "aetherium/config.h"
#include "aetherium/error.h"

extern char **environ;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The developer's AETH_* settings would override the file: drop them. */
static void clear_aeth_env(void)
{
	for (char **e = environ; e && *e;) {
		if (strncmp(*e, "AETH_", 5) == 0) {
			char name[256];

			snprintf(name, sizeof(name), "%.*s",
				 (int)(strchr(*e, '=') ? strchr(*e, '=') - *e : 0), *e);
			unsetenv(name);
			e = environ;
			continue;
		}
		e++;
	}
}

static void check_error(int rc)
{
	const char *msg = aeth_error_last();

	if (rc != 0 && (!msg || !*msg))
		abort(); /* every failure must say why */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	char path[64], *text;
	aeth_config *cfg = NULL;
	int rc;

	if (fd < 0) {
		clear_aeth_env();
		fd = memfd_create("aeth-fuzz-config", 0);
		if (fd < 0)
			abort();
	}
	if (ftruncate(fd, 0) != 0 ||
	    (size && pwrite(fd, data, size, 0) != (ssize_t)size))
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	rc = aeth_config_load(&cfg, path);
	check_error(rc);
	if (rc != 0 && cfg)
		abort(); /* no half-built config on failure */
	if (rc != 0 && aeth_config_load(&cfg, NULL) != 0)
		abort();
	/* the same bytes as a "name=weight,..." list */
	if ((text = malloc(size + 1))) {
		size_t before = aeth_config_queue_count(cfg);

		memcpy(text, data, size);
		text[size] = '\0';
		rc = aeth_config_set(cfg, "queue.weights", text);
		check_error(rc);
		if (rc != 0 && aeth_config_queue_count(cfg) != before)
			abort(); /* a failed set changes nothing */
		free(text);
	}
	aeth_config_free(cfg);
	return 0;
}
