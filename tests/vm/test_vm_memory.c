/*
 * Memory a guest frees goes back to the host (docs/vm.md "Memory"), with
 * real guests (TCG here), booted cold and restored from a snapshot:
 * - its QEMU runs with the TCG translation cache the manager asked for
 *   (tcg_tb_mb) and a balloon device with free page reporting (a restored
 *   VM: when jailed, with aeth-jailer's --ram-discard private);
 * - the guest writes 80 MiB into a tmpfs file: its QEMU's resident memory
 *   grows; it deletes the file: within a minute (the guest reports free
 *   pages after ~2 s) QEMU's resident memory falls again by at least 32
 *   MiB of those 80.
 * No timing is tested: the drop has a generous deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>

#include "vmtest.h"
#include "aetherium/exec.h"

#define FILL_MIB 80
#define MIN_DROP_MIB 32
#define DROP_DEADLINE_MS 60000

static aeth_vmm *vmm, *snap_vmm;

static int group_setup(void **st)
{
	const char *img;

	(void)st;
	vmtest_setup();
	if (!(img = vmtest_image_dir()) ||
	    vmtest_vmm_open(&vmm, img, AETH_SNAPSHOTS_OFF, 16) != 0 ||
	    vmtest_vmm_open(&snap_vmm, img, AETH_SNAPSHOTS_AUTO, 16) != 0)
		return -1;
	return 0;
}

static int group_teardown(void **st)
{
	(void)st;
	aeth_vmm_free(vmm);
	aeth_vmm_free(snap_vmm);
	vmtest_cleanup();
	return 0;
}

/* Exit status of `sh -c script` in vm. */
static int sh(aeth_vm *vm, const char *script)
{
	const char *argv[] = {"sh", "-c", script, NULL};
	aeth_exec_options eo = AETH_EXEC_OPTIONS_INIT;
	aeth_exec_result *r = NULL;
	int code;

	eo.argv = argv;
	eo.timeout_ms = 60000;
	if (aeth_vm_exec(&r, vm, &eo) != 0)
		fail_msg("exec %s: %s", script, aeth_error_last());
	code = r->exit_code;
	if (code != 0)
		print_message("%s: exit %d: %.*s\n", script, code,
			      (int)r->stderr_len,
			      r->stderr_data ? r->stderr_data : "");
	aeth_exec_result_free(r);
	return code;
}

/* VmRSS of process pid, in MiB. */
static long rss_mib(int pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	assert_true(kb >= 0);
	return kb / 1024;
}

/* /proc/pid/cmdline with the NULs as spaces. */
static void cmdline(int pid, char *out, size_t n)
{
	char path[64];
	ssize_t got;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	got = read(fd, out, n - 1);
	close(fd);
	assert_true(got > 0);
	for (ssize_t i = 0; i < got; i++)
		if (!out[i])
			out[i] = ' ';
	out[got] = '\0';
}

/* Start a VM of m, check QEMU's command line, fill 80 MiB in the guest,
 * free it and wait for QEMU's RSS to fall. */
static void freed_memory_goes_back(aeth_vmm *m, const char *name,
				   aeth_origin origin)
{
	aeth_vm_options o = AETH_VM_OPTIONS_INIT;
	aeth_vm *vm = NULL;
	char cmd[8192], fill[160];
	long before, full, now;
	int64_t deadline;
	int pid;

	o.name = name;
	if (aeth_vm_create(&vm, m, &o) != 0 || aeth_vm_start(vm) != 0)
		fail_msg("VM %s: %s", name, aeth_error_last());
	assert_int_equal(aeth_vm_origin(vm), origin);
	pid = aeth_vm_pid(vm);
	assert_true(pid > 0);
	cmdline(pid, cmd, sizeof(cmd));
	if (!strstr(cmd, "tb-size=16") ||
	    !strstr(cmd, "virtio-balloon-device,free-page-reporting=on"))
		fail_msg("QEMU's command line lacks tb-size=16 or free page "
			 "reporting: %s", cmd);

	before = rss_mib(pid);
	snprintf(fill, sizeof(fill),
		 "mkdir -p /tmp/fill && mount -t tmpfs -o size=%dm fill /tmp/fill"
		 " && dd if=/dev/zero of=/tmp/fill/f bs=1M count=%d 2>/dev/null",
		 FILL_MIB + 8, FILL_MIB);
	assert_int_equal(sh(vm, fill), 0);
	full = rss_mib(pid);
	print_message("%s: QEMU RSS %ld MiB before, %ld MiB with %d MiB written\n",
		      name, before, full, FILL_MIB);
	assert_true(full - before >= FILL_MIB / 2);

	assert_int_equal(sh(vm, "rm /tmp/fill/f && umount /tmp/fill"), 0);
	deadline = aeth__now_ms() + DROP_DEADLINE_MS;
	while ((now = rss_mib(pid)) > full - MIN_DROP_MIB &&
	       aeth__now_ms() < deadline)
		aeth__sleep_ms(500);
	print_message("%s: QEMU RSS %ld MiB after the guest freed it\n", name, now);
	if (now > full - MIN_DROP_MIB)
		fail_msg("%s: QEMU's RSS is %ld MiB %d s after the guest freed %d "
			 "MiB (%ld MiB while it held them): free page reporting "
			 "gave nothing back", name, now, DROP_DEADLINE_MS / 1000,
			 FILL_MIB, full);
	/* still itself: a page given back reads as the guest expects */
	assert_int_equal(sh(vm, "echo alive >/tmp/x && grep -q alive /tmp/x"), 0);
	aeth_vm_delete(vm);
	aeth_vm_free(vm);
}

static void test_cold_vm_gives_back(void **st)
{
	(void)st;
	freed_memory_goes_back(vmm, "mem-cold", AETH_ORIGIN_COLD);
}

/* A restored VM's memory is a private mapping of the snapshot's sealed
 * memfd: what it wrote goes back too (the jail's --ram-discard). */
static void test_restored_vm_gives_back(void **st)
{
	const char *why = NULL;

	(void)st;
	if (aeth_vmm_jailed(&why, snap_vmm) != 1)
		fail_msg("the VMM jail is off here (%s): restored VMs give "
			 "memory back only jailed; run this test as root",
			 why ? why : "?");
	freed_memory_goes_back(snap_vmm, "mem-snap", AETH_ORIGIN_SNAPSHOT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cold_vm_gives_back),
		cmocka_unit_test(test_restored_vm_gives_back),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
