/*
 * Snapshots with real guests (TCG here), on a copy of the guest image in
 * the test's own state dir (never the shared image cache):
 * - two VMs restored from one snapshot are distinct machines: different
 *   /dev/urandom bytes, the host's wall clock (within 1 s), each its own
 *   host name and VM id;
 * - a rebuilt image (a new initramfs) invalidates the snapshot: the next
 *   VM comes from a new one, the old one is gone, and the guest sees the
 *   new initramfs;
 * - a snapshot that cannot be restored (its state file broken) costs a
 *   cold boot, not a failure.
 * At most 2 QEMU processes run at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/time.h>

#include "vmtest.h"
#include "aetherium/exec.h"
#include "vm/vm_internal.h"

static aeth_vmm *vmm;
static char img[128], snapdir[128];

static int copy_file(const char *from, const char *to)
{
	char buf[1 << 16];
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ssize_t n;
	int rc = in >= 0 && out >= 0 ? 0 : -1;

	while (rc == 0 && (n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			rc = -1;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return rc;
}

static int group_setup(void **st)
{
	const char *shared;
	char from[1100], to[200];

	(void)st;
	vmtest_setup();
	if (!(shared = vmtest_image_dir()))
		return -1;
	snprintf(img, sizeof(img), "%s/img", vmtest_state_dir);
	snprintf(snapdir, sizeof(snapdir), "%s/snapshots", vmtest_state_dir);
	mkdir(img, 0755);
	for (int i = 0; i < 2; i++) {
		const char *f = i ? "initrd.cpio" : "vmlinux";

		snprintf(from, sizeof(from), "%s/%s", shared, f);
		snprintf(to, sizeof(to), "%s/%s", img, f);
		if (copy_file(from, to) != 0) {
			fprintf(stderr, "cannot copy %s to %s\n", from, to);
			return -1;
		}
	}
	return vmtest_vmm_open(&vmm, img, AETH_SNAPSHOTS_AUTO, 0);
}

static int group_teardown(void **st)
{
	(void)st;
	aeth_vmm_free(vmm);
	vmtest_cleanup();
	return 0;
}

static aeth_vm *start(const char *name)
{
	aeth_vm_options o = AETH_VM_OPTIONS_INIT;
	aeth_vm *vm = NULL;

	o.name = name;
	if (aeth_vm_create(&vm, vmm, &o) != 0 || aeth_vm_start(vm) != 0)
		fail_msg("VM %s: %s", name, aeth_error_last());
	return vm;
}

/* stdout of `sh -c script` in vm (malloc'd). */
static char *sh(aeth_vm *vm, const char *script)
{
	const char *argv[] = {"sh", "-c", script, NULL};
	aeth_exec_options eo = AETH_EXEC_OPTIONS_INIT;
	aeth_exec_result *r = NULL;
	char *out;

	eo.argv = argv;
	eo.timeout_ms = 30000;
	if (aeth_vm_exec(&r, vm, &eo) != 0)
		fail_msg("exec %s: %s", script, aeth_error_last());
	assert_int_equal(r->exit_code, 0);
	out = strndup(r->stdout_data ? r->stdout_data : "", r->stdout_len);
	aeth_exec_result_free(r);
	return out;
}

static int64_t wall_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* The guest's wall clock minus the host's, in ms (busybox adjtimex
 * prints the time to the microsecond; the host's is the middle of the
 * exec that read it). */
static int64_t clock_skew_ms(aeth_vm *vm)
{
	int64_t before = wall_ms(), after;
	char *out = sh(vm, "adjtimex");
	const char *s = strstr(out, "time.tv_sec:"), *u = strstr(out, "time.tv_usec:");
	long long sec, usec;

	after = wall_ms();
	if (!s || !u || sscanf(s, "time.tv_sec: %lld", &sec) != 1 ||
	    sscanf(u, "time.tv_usec: %lld", &usec) != 1)
		fail_msg("no time in adjtimex's output: %s", out);
	free(out);
	return sec * 1000 + usec / 1000 - (before + after) / 2;
}

/* The snapshot directories (16 hex digits) in snapdir, comma-separated. */
static void snapshots(char *out, size_t n)
{
	DIR *d = opendir(snapdir);
	struct dirent *e;
	size_t used = 0;

	out[0] = '\0';
	while (d && (e = readdir(d)))
		if (strlen(e->d_name) == 16 &&
		    strspn(e->d_name, "0123456789abcdef") == 16)
			used += (size_t)snprintf(out + used, n - used, "%s%s",
						 used ? "," : "", e->d_name);
	if (d)
		closedir(d);
}

static const char *key_of(const aeth_vm *vm)
{
	return aeth__vm_record_of(vm)->snapshot;
}

static void test_restores_are_distinct(void **st)
{
	aeth_vm *a, *b;
	char *ra, *rb, *ha, *hb, list[256];

	(void)st;
	a = start("snap-a");
	b = start("snap-b");
	assert_int_equal(aeth_vm_origin(a), AETH_ORIGIN_SNAPSHOT);
	assert_int_equal(aeth_vm_origin(b), AETH_ORIGIN_SNAPSHOT);
	assert_string_equal(aeth_origin_name(aeth_vm_origin(b)), "snapshot");
	assert_true(aeth_vm_start_ms(b) > 0);
	assert_non_null(key_of(a));
	assert_string_equal(key_of(a), key_of(b));
	snapshots(list, sizeof(list));
	assert_string_equal(list, key_of(a));

	ra = sh(a, "head -c 32 /dev/urandom | od -An -tx1");
	rb = sh(b, "head -c 32 /dev/urandom | od -An -tx1");
	assert_true(strlen(ra) > 60);
	assert_string_not_equal(ra, rb);

	ha = sh(a, "hostname; cat /run/aetherium/vm-id");
	hb = sh(b, "hostname; cat /run/aetherium/vm-id");
	{
		char want[100];

		snprintf(want, sizeof(want), "%s\n%s\n", aeth_vm_id(a), aeth_vm_id(a));
		assert_string_equal(ha, want);
		snprintf(want, sizeof(want), "%s\n%s\n", aeth_vm_id(b), aeth_vm_id(b));
		assert_string_equal(hb, want);
	}
	for (int i = 0; i < 2; i++) {
		int64_t skew = clock_skew_ms(i ? b : a);

		if (skew < -1000 || skew > 1000)
			fail_msg("VM %d's clock is %lld ms off the host's", i,
				 (long long)skew);
	}
	free(ra);
	free(rb);
	free(ha);
	free(hb);
	aeth_vm_delete(a);
	aeth_vm_delete(b);
	aeth_vm_free(a);
	aeth_vm_free(b);
}

static void put_hex(FILE *f, unsigned long v)
{
	fprintf(f, "%08lX", v);
}

/* One newc entry (regular file), padded as the format wants. */
static void cpio_entry(FILE *f, const char *name, const char *data,
		       unsigned long mode)
{
	size_t nlen = strlen(name) + 1, dlen = strlen(data);
	unsigned long fields[13] = {1, mode, 0, 0, 1, 0, dlen, 0, 0, 0, 0, nlen, 0};
	size_t head = 110 + nlen;

	fputs("070701", f);
	for (int i = 0; i < 13; i++)
		put_hex(f, fields[i]);
	fwrite(name, 1, nlen, f);
	for (; head % 4; head++)
		fputc(0, f);
	fwrite(data, 1, dlen, f);
	for (; dlen % 4; dlen++)
		fputc(0, f);
}

/* "Rebuild" the image: a new initramfs file (new inode, new times), the
 * old archive followed by one holding a marker file. */
static void rebuild_initrd(void)
{
	char path[200], tmp[220];
	FILE *f;

	snprintf(path, sizeof(path), "%s/initrd.cpio", img);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	assert_int_equal(copy_file(path, tmp), 0);
	f = fopen(tmp, "a");
	assert_non_null(f);
	cpio_entry(f, "etc/aeth/snapshot-marker", "rebuilt\n", 0100644);
	cpio_entry(f, "TRAILER!!!", "", 0);
	for (long pos = ftell(f); pos % 512; pos++)
		fputc(0, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(rename(tmp, path), 0);
}

static void test_rebuild_invalidates(void **st)
{
	aeth_vm *c, *d;
	char before[256], after[256], *marker, old[17];

	(void)st;
	c = start("snap-c");
	assert_int_equal(aeth_vm_origin(c), AETH_ORIGIN_SNAPSHOT);
	snprintf(old, sizeof(old), "%s", key_of(c));
	snapshots(before, sizeof(before));
	assert_string_equal(before, old);
	marker = sh(c, "cat /etc/aeth/snapshot-marker 2>/dev/null; true");
	assert_string_equal(marker, "");
	free(marker);

	rebuild_initrd();
	d = start("snap-d");
	assert_int_equal(aeth_vm_origin(d), AETH_ORIGIN_SNAPSHOT);
	assert_string_not_equal(key_of(d), old);
	snapshots(after, sizeof(after));
	assert_string_equal(after, key_of(d)); /* the old one is gone */
	marker = sh(d, "cat /etc/aeth/snapshot-marker");
	assert_string_equal(marker, "rebuilt\n");
	free(marker);
	/* the VM made from the old one runs on */
	marker = sh(c, "echo still");
	assert_string_equal(marker, "still\n");
	free(marker);
	aeth_vm_delete(c);
	aeth_vm_delete(d);
	aeth_vm_free(c);
	aeth_vm_free(d);
}

static void test_broken_snapshot_boots_cold(void **st)
{
	aeth_vm *e;
	char list[256], state[300], *out;
	int fd;

	(void)st;
	snapshots(list, sizeof(list));
	assert_int_equal(strlen(list), 16);
	snprintf(state, sizeof(state), "%s/%s/state", snapdir, list);
	fd = open(state, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "not a migration stream", 22), 22);
	close(fd);
	e = start("snap-e");
	assert_int_equal(aeth_vm_origin(e), AETH_ORIGIN_COLD);
	assert_null(key_of(e));
	out = sh(e, "hostname");
	assert_true(strncmp(out, aeth_vm_id(e), 36) == 0);
	free(out);
	aeth_vm_delete(e);
	aeth_vm_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_restores_are_distinct),
		cmocka_unit_test(test_rebuild_invalidates),
		cmocka_unit_test(test_broken_snapshot_boots_cold),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
