/*
 * bench/vm/bench_vm.c - library boot to agent-ready, and the round trip of
 * running `true`, on the image in AETH_IMAGE_DIR (or the default).
 * Prints JSON: {"boot_ms":[...], "boot_median_ms":..., "exec_true_ms":[...],
 * "exec_true_median_ms":..., "accel":"tcg"}. bench/vm/compare.py runs it
 * next to bench/boot/bootrun.py (bare QEMU) and prints the ratios.
 *
 *   bench_vm [-n BOOTS] [-e EXECS] [-j on|off] [-s on|off]
 *
 * -j: the VMM jail (aeth-jailer: own uid, namespaces, cgroup), on by
 * default as for a worker run as root; off measures QEMU with its seccomp
 * filter only, for the cost of confinement (compare.py runs both).
 * -s on: snapshots (AETH_SNAPSHOTS_AUTO): the first start makes the
 * snapshot of the shape (a template boot), the others restore from it;
 * "origin" lists how each VM was made.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aetherium/aetherium.h"
#include "aetherium/exec.h"
#include "internal.h"
#include "vm/backend.h"

#include <cJSON.h>

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static double median(int64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_i64);
	return n % 2 ? (double)v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

static void print_list(const char *key, const int64_t *v, int n)
{
	printf("  \"%s\": [", key);
	for (int i = 0; i < n; i++)
		printf("%s%lld", i ? ", " : "", (long long)v[i]);
	printf("],\n");
}

/* The kernel command line the library gave the guest (its vm.json), so
 * that compare.py boots bare QEMU with exactly the same one. */
/* The QEMU command line the library used (its vm.json record). */
static char *read_cmdline(const char *state_dir)
{
	aeth__vm_record rec = {0};
	char *out = NULL;

	if (aeth__vm_record_load(&rec, state_dir) == 0 && rec.cmdline)
		out = strdup(rec.cmdline);
	aeth__vm_record_clear(&rec);
	return out;
}

static void print_json_string(const char *key, const char *value)
{
	cJSON *s = cJSON_CreateString(value);
	char *t = s ? cJSON_PrintUnformatted(s) : NULL;

	printf("  \"%s\": %s\n}\n", key, t ? t : "\"\"");
	free(t);
	cJSON_Delete(s);
}

int main(int argc, char **argv)
{
	aeth_vmm_options o = AETH_VMM_OPTIONS_INIT;
	aeth_vmm *m = NULL;
	int boots = 5, execs = 20, c, ne = 0;
	int64_t boot_ms[64], exec_ms[1024];
	char state[] = "/tmp/aeth-bench-XXXXXX";
	char *cmdline = NULL;

	char origin[64][16];

	while ((c = getopt(argc, argv, "n:e:j:s:")) != -1) {
		if (c == 'n')
			boots = atoi(optarg);
		else if (c == 'e')
			execs = atoi(optarg);
		else if (c == 'j' && (!strcmp(optarg, "on") || !strcmp(optarg, "off")))
			o.jail = !strcmp(optarg, "on") ? AETH_JAIL_ON : AETH_JAIL_OFF;
		else if (c == 's' && (!strcmp(optarg, "on") || !strcmp(optarg, "off")))
			o.snapshots = !strcmp(optarg, "on") ? AETH_SNAPSHOTS_AUTO
							    : AETH_SNAPSHOTS_OFF;
		else
			return 2;
	}
	if (boots < 1 || boots > 64 || execs < 1 || execs > 1024)
		return 2;
	if (!mkdtemp(state))
		return 1;
	o.state_dir = state;
	if (aeth_vmm_open(&m, &o) != 0) {
		fprintf(stderr, "bench_vm: %s\n", aeth_error_last());
		return 1;
	}
	for (int i = 0; i < boots; i++) {
		aeth_vm *vm = NULL;
		int64_t t0 = aeth__now_ms();

		if (aeth_vm_create(&vm, m, NULL) != 0 || aeth_vm_start(vm) != 0) {
			fprintf(stderr, "bench_vm: boot %d: %s\n", i,
				aeth_error_last());
			aeth_vmm_reap(NULL, m, 1);
			aeth__rm_rf(state);
			return 1;
		}
		boot_ms[i] = aeth__now_ms() - t0;
		snprintf(origin[i], sizeof(origin[i]), "%s",
			 aeth_origin_name(aeth_vm_origin(vm)));
		if (!cmdline)
			cmdline = read_cmdline(aeth_vm_state_dir(vm));
		fprintf(stderr, "boot %d: %lld ms (%s)\n", i, (long long)boot_ms[i],
			origin[i]);
		/* exec round trips on the first VM only (same every time). */
		for (int j = 0; i == 0 && j < execs; j++) {
			const char *tru[] = {"true", NULL};
			aeth_exec_options eo = AETH_EXEC_OPTIONS_INIT;
			aeth_exec_result *r = NULL;
			int64_t t1 = aeth__now_ms();

			eo.argv = tru;
			if (aeth_vm_exec(&r, vm, &eo) == 0)
				exec_ms[ne++] = aeth__now_ms() - t1;
			aeth_exec_result_free(r);
		}
		aeth_vm_delete(vm);
		aeth_vm_free(vm);
	}
	printf("{\n  \"accel\": \"%s\",\n  \"jailed\": %s,\n",
	       aeth_accel_name(aeth_vmm_accel(m)),
	       aeth_vmm_jailed(NULL, m) ? "true" : "false");
	print_list("boot_ms", boot_ms, boots);
	printf("  \"origin\": [");
	for (int i = 0; i < boots; i++)
		printf("%s\"%s\"", i ? ", " : "", origin[i]);
	printf("],\n");
	print_list("exec_true_ms", exec_ms, ne);
	printf("  \"boot_median_ms\": %.1f,\n", median(boot_ms, boots));
	printf("  \"exec_true_median_ms\": %.1f,\n",
	       ne ? median(exec_ms, ne) : -1.0);
	print_json_string("cmdline", cmdline ? cmdline : "");
	free(cmdline);
	aeth_vmm_free(m);
	aeth__rm_rf(state);
	return 0;
}
