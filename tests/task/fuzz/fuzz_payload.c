/*
 * libFuzzer target for the task payload parsers, the base64 decoder and
 * the -args splitter. The first byte picks what the rest is fed to (mod
 * 6: create, execute, delete, split, file_put, file_get). Built with -Dfuzz=true
 * (clang); fuzz_replay.c runs the checked-in corpus through the same
 * function in every normal test run.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "aetherium/aetherium.h"
#include "internal.h"
#include "task/task.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_split(const char *s)
{
	char **argv = NULL;
	size_t argc = 0;

	if (aeth_args_split(&argv, &argc, s) == 0) {
		/* what we split must rebuild into a payload the worker accepts */
		cJSON *o = aeth__execute_payload_tree(
			"0b6f3f0e-4a43-4c1e-9d55-3c2f1e0a9b7d", "cmd",
			(const char *const *)argv);
		char *p = o ? cJSON_PrintUnformatted(o) : NULL;

		if (p && aeth__payload_validate("vm:execute", p, strlen(p)) != 0 &&
		    aeth_error_last_code() != AETH_ETOOBIG)
			abort();
		cJSON_Delete(o);
		free(p);
		aeth_strarray_free(argv);
	}
}

/* A file payload: what parses must carry a checked path and, for a put,
 * bytes that encode back to the same base64; the decoder alone must
 * agree with its own encoder. */
static void fuzz_file(const char *type, const char *s, size_t len)
{
	aeth__file_payload p;
	unsigned char *raw = NULL;
	size_t n = 0;
	int rc = !strcmp(type, "vm:file_put")
		 ? aeth__file_put_payload_parse(s, len, &p)
		 : aeth__file_get_payload_parse(s, len, &p);

	if (rc == 0) {
		if (p.path[0] != '/' || p.mode > 07777 ||
		    aeth__guest_path_check("p", p.path, strlen(p.path)) != 0)
			abort();
		aeth__file_payload_clear(&p);
	}
	if (aeth__base64_decode(&raw, &n, "fuzz", s, len, 1 << 20) == 0) {
		char *back = aeth__base64(raw, n);

		/* canonical input round trips; other input (unused bits set in
		 * the last character) must at least decode to the right size */
		if (!back || strlen(back) != len)
			abort();
		free(back);
		free(raw);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const types[] = {"vm:create", "vm:execute", "vm:delete",
					    NULL, "vm:file_put", "vm:file_get"};
	char *s;

	if (size == 0)
		return 0;
	s = malloc(size);
	if (!s)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	if (data[0] % 6 == 3) {
		fuzz_split(s);
	} else {
		const char *type = types[data[0] % 6];

		if (data[0] % 6 >= 4)
			fuzz_file(type, s, size - 1);
		aeth__payload_validate(type, s, size - 1);
		free(aeth__payload_vm_id(s, size - 1));
		free(aeth__utf8_sanitize(s, size - 1));
	}
	free(s);
	return 0;
}
