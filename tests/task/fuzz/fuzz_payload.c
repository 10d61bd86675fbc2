/*
 * libFuzzer target for the task payload parsers and the -args splitter.
 * The first byte picks what the rest is fed to. Built with -Dfuzz=true
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const types[] = {"vm:create", "vm:execute", "vm:delete"};
	char *s;

	if (size == 0)
		return 0;
	s = malloc(size);
	if (!s)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	if (data[0] % 4 == 3) {
		fuzz_split(s);
	} else {
		const char *type = types[data[0] % 4];

		aeth__payload_validate(type, s, size - 1);
		free(aeth__payload_vm_id(s, size - 1));
		free(aeth__utf8_sanitize(s, size - 1));
	}
	free(s);
	return 0;
}
