/*
 * Unit tests of the vm module that need no guest: records, defaults,
 * list/get/delete, unknown ids, missing image files, reap of dead VMs,
 * pid checks against reuse, the accelerator probe, the backoff of the
 * agent readiness loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "vmtest.h"
#include "vm/vm_internal.h"
#include "vm/backend.h"
#include "vm/handles.h"

static aeth_vmm *open_vmm(const char *image_dir)
{
	aeth_vmm_options o = AETH_VMM_OPTIONS_INIT;
	aeth_vmm *m = NULL;

	o.state_dir = vmtest_state_dir;
	o.image_dir = image_dir;
	o.accel = AETH_ACCEL_TCG;
	assert_int_equal(aeth_vmm_open(&m, &o), 0);
	return m;
}

static void test_create_get_list_delete(void **st)
{
	aeth_vmm *m = open_vmm("/nonexistent-image");
	aeth_vm_options vo = AETH_VM_OPTIONS_INIT;
	aeth_vm *vm = NULL, *again = NULL;
	char **ids = NULL;
	char dir[512];
	struct stat sb;

	(void)st;
	vo.name = "unit";
	vo.memory_mb = 128;
	vo.net = AETH_NET_USER;
	assert_int_equal(aeth_vm_create(&vm, m, &vo), 0);
	assert_true(aeth__uuid_valid(aeth_vm_id(vm)));
	assert_string_equal(aeth_vm_name(vm), "unit");
	assert_int_equal(aeth_vm_status(vm), AETH_VM_CREATING);
	assert_string_equal(aeth_vm_state_name(AETH_VM_CREATING), "creating");
	assert_int_equal(aeth_vm_memory_mb(vm), 128);
	assert_int_equal(aeth_vm_vcpus(vm), 1);
	assert_int_equal(aeth_vm_accel(vm), AETH_ACCEL_TCG);
	assert_string_equal(aeth_vm_backend(vm), "qemu");
	assert_string_equal(aeth_vm_kernel_path(vm), "/nonexistent-image/vmlinux");
	assert_non_null(strstr(aeth__vm_record_of(vm)->cmdline,
			       "aeth.ip=10.0.2.15/24 aeth.gw=10.0.2.2"));

	assert_int_equal(aeth_vm_get(&again, m, aeth_vm_id(vm)), 0);
	assert_string_equal(aeth_vm_name(again), "unit");
	assert_int_equal(aeth_vm_memory_mb(again), 128);
	assert_int_equal(aeth__vm_record_of(again)->net, AETH_NET_USER);
	aeth_vm_free(again);

	assert_int_equal(aeth_vm_list(&ids, m), 0);
	assert_non_null(ids[0]);
	assert_string_equal(ids[0], aeth_vm_id(vm));
	assert_null(ids[1]);
	aeth_strarray_free(ids);

	/* Starting without an image names the build script. */
	assert_int_equal(aeth_vm_start(vm), AETH_ENOTFOUND);
	assert_non_null(strstr(aeth_error_last(), "scripts/build-image.sh"));
	assert_non_null(strstr(aeth_error_last(), "/nonexistent-image/vmlinux"));
	assert_int_equal(aeth_vm_status(vm), AETH_VM_FAILED);

	snprintf(dir, sizeof(dir), "%s", aeth_vm_state_dir(vm));
	assert_int_equal(aeth_vm_delete(vm), 0);
	assert_int_equal(aeth_vm_status(vm), AETH_VM_DELETED);
	assert_int_not_equal(stat(dir, &sb), 0);
	aeth_vm_free(vm);
	assert_int_equal(aeth_vm_list(&ids, m), 0);
	assert_null(ids[0]);
	aeth_strarray_free(ids);
	aeth_vmm_free(m);
}

static void test_unknown_id(void **st)
{
	aeth_vmm *m = open_vmm(NULL);
	aeth_vm *vm = (aeth_vm *)1;

	(void)st;
	assert_int_equal(aeth_vm_get(&vm, m, "0b7f3c1e-8d0a-4b5e-9f00-123456789abc"),
			 AETH_ENOTFOUND);
	assert_null(vm);
	assert_non_null(strstr(aeth_error_last(), "no VM with id"));
	assert_int_equal(aeth_vm_get(&vm, m, "../../etc"), AETH_ENOTFOUND);
	assert_int_equal(aeth_vm_get(&vm, m, NULL), AETH_ENOTFOUND);
	aeth_vmm_free(m);
}

static void test_bad_options(void **st)
{
	aeth_vmm_options o = AETH_VMM_OPTIONS_INIT;
	aeth_vm_options vo = AETH_VM_OPTIONS_INIT;
	aeth_vmm *m = NULL;
	aeth_vm *vm = NULL;

	(void)st;
	o.backend = "bhyve";
	o.state_dir = vmtest_state_dir;
	assert_int_equal(aeth_vmm_open(&m, &o), AETH_EINVALID);
	assert_non_null(strstr(aeth_error_last(), "bhyve"));
	m = open_vmm(NULL);
	vo.id = "not-a-uuid";
	assert_int_equal(aeth_vm_create(&vm, m, &vo), AETH_EINVALID);
	vo.id = NULL;
	vo.net = AETH_NET_TAP;
	assert_int_equal(aeth_vm_create(&vm, m, &vo), AETH_EINVALID);
	vo.net = AETH_NET_NONE;
	vo.id = "0b7f3c1e-8d0a-4b5e-9f00-123456789abd";
	assert_int_equal(aeth_vm_create(&vm, m, &vo), 0);
	aeth_vm_free(vm);
	assert_int_equal(aeth_vm_create(&vm, m, &vo), AETH_EEXISTS);
	assert_int_equal(aeth_vmm_reap(NULL, m, 1), 0);
	aeth_vmm_free(m);
}

static void test_record_roundtrip(void **st)
{
	aeth__vm_record r, l;
	char dir[256];

	(void)st;
	memset(&r, 0, sizeof(r));
	snprintf(dir, sizeof(dir), "%s/rec", vmtest_state_dir);
	assert_int_equal(aeth__mkdir_p(dir, 0700), 0);
	aeth__uuid_new(r.id);
	r.name = strdup("n \"quoted\"");
	r.backend = strdup("qemu");
	r.accel = AETH_ACCEL_KVM;
	r.vcpus = 2;
	r.memory_mb = 512;
	r.kernel_path = strdup("/k");
	r.state_dir = strdup(dir);
	r.state = AETH_VM_RUNNING;
	r.pid = 4242;
	r.pid_starttime = 123456789012ULL;
	r.net = AETH_NET_TAP;
	r.tap_name = strdup("tap0");
	assert_int_equal(aeth__vm_record_save(&r), 0);
	assert_int_equal(aeth__vm_record_load(&l, dir), 0);
	assert_string_equal(l.id, r.id);
	assert_string_equal(l.name, r.name);
	assert_int_equal(l.accel, AETH_ACCEL_KVM);
	assert_int_equal(l.vcpus, 2);
	assert_int_equal(l.memory_mb, 512);
	assert_int_equal(l.state, AETH_VM_RUNNING);
	assert_int_equal(l.pid, 4242);
	assert_true(l.pid_starttime == 123456789012ULL);
	assert_int_equal(l.net, AETH_NET_TAP);
	assert_string_equal(l.tap_name, "tap0");
	assert_null(l.initrd_path);
	aeth__vm_record_clear(&l);
	aeth__vm_record_clear(&r);
	assert_int_equal(aeth__vm_record_load(&l, "/nonexistent"), AETH_ENOTFOUND);
	aeth__rm_rf(dir);
}

/* The state dir's files are never followed through a symlink: a record
 * whose temp file or record is a link (planted by another user with write
 * access, or left by a mistake) fails instead of writing or reading the
 * target. */
static void test_record_no_symlinks(void **st)
{
	aeth__vm_record r, l;
	char dir[256], link[300], target[300];
	FILE *f;

	(void)st;
	memset(&r, 0, sizeof(r));
	snprintf(dir, sizeof(dir), "%s/reclink", vmtest_state_dir);
	snprintf(target, sizeof(target), "%s/reclink-target", vmtest_state_dir);
	assert_int_equal(aeth__mkdir_p(dir, 0700), 0);
	assert_non_null(f = fopen(target, "w"));
	fputs("untouched", f);
	fclose(f);
	snprintf(link, sizeof(link), "%s/vm.json.tmp", dir);
	assert_int_equal(symlink(target, link), 0);
	aeth__uuid_new(r.id);
	r.backend = strdup("qemu");
	r.state_dir = strdup(dir);
	assert_int_equal(aeth__vm_record_save(&r), AETH_EIO);
	assert_non_null(strstr(aeth_error_last(), "vm.json.tmp"));
	assert_non_null(f = fopen(target, "r"));
	assert_non_null(fgets(link, sizeof(link), f));
	fclose(f);
	assert_string_equal(link, "untouched");
	/* a record that is a link is not read */
	snprintf(link, sizeof(link), "%s/vm.json", dir);
	assert_int_equal(symlink(target, link), 0);
	assert_int_not_equal(aeth__vm_record_load(&l, dir), 0);
	aeth__vm_record_clear(&r);
	aeth__rm_rf(dir);
	unlink(target);
}

/* A dead VMM is reaped; a live process whose cmdline lacks the id is
 * never taken for the VMM (pid reuse). */
static void test_reap_dead_and_pid_reuse(void **st)
{
	aeth_vmm *m = open_vmm(NULL);
	aeth_vm *vm = NULL;
	aeth__vm_record *r;
	char **reaped = NULL;
	pid_t child;
	int status;
	char id[40];

	(void)st;
	assert_int_equal(aeth_vm_create(&vm, m, NULL), 0);
	/* Pretend it ran as a process that has exited since. */
	child = fork();
	if (child == 0)
		_exit(0);
	waitpid(child, &status, 0);
	r = (aeth__vm_record *)aeth__vm_record_of(vm);
	r->state = AETH_VM_RUNNING;
	r->pid = child;
	assert_int_equal(aeth__vm_record_save(r), 0);
	assert_false(aeth__vm_pid_alive(getpid(), r->id, 0));
	assert_true(aeth__vm_pid_alive(getpid(), "test_vm_basic", 0));
	assert_false(aeth__vm_pid_alive(getpid(), "test_vm_basic", 1));
	snprintf(id, sizeof(id), "%s", r->id);
	aeth_vm_free(vm);

	/* get notices the dead VMM */
	assert_int_equal(aeth_vm_get(&vm, m, id), 0);
	assert_int_equal(aeth_vm_status(vm), AETH_VM_FAILED);
	assert_int_equal(aeth_vm_pid(vm), child);
	aeth_vm_free(vm);
	assert_int_equal(aeth_vmm_reap(&reaped, m, 0), 0);
	assert_non_null(reaped[0]);
	assert_null(reaped[1]);
	aeth_strarray_free(reaped);
	aeth_vmm_free(m);
}

/* A VM past its lifetime (ttl_s) is reaped, one within it is not; the
 * expiry survives the record (vm.json). */
static void test_reap_expired(void **st)
{
	aeth_vmm *m = open_vmm(NULL);
	aeth_vm_options o = AETH_VM_OPTIONS_INIT;
	aeth_vm *old = NULL, *young = NULL, *again = NULL;
	char **reaped = NULL, id[40];
	int64_t t0 = aeth__wall_ms();

	(void)st;
	o.ttl_s = 1;
	assert_int_equal(aeth_vm_create(&old, m, &o), 0);
	o.ttl_s = 3600;
	assert_int_equal(aeth_vm_create(&young, m, &o), 0);
	assert_true(aeth_vm_expires_ms(old) >= t0 + 1000 &&
		    aeth_vm_expires_ms(old) <= aeth__wall_ms() + 1000);
	snprintf(id, sizeof(id), "%s", aeth_vm_id(old));
	aeth_vm_free(old);
	assert_int_equal(aeth_vm_get(&again, m, id), 0); /* from vm.json */
	assert_true(aeth_vm_expires_ms(again) >= t0 + 1000);
	aeth_vm_free(again);
	usleep(1100 * 1000);
	assert_int_equal(aeth_vmm_reap(&reaped, m, 0), 0);
	assert_non_null(reaped[0]);
	assert_string_equal(reaped[0], id);
	assert_null(reaped[1]);
	aeth_strarray_free(reaped);
	assert_int_equal(aeth_vm_get(&again, m, id), AETH_ENOTFOUND);
	assert_int_equal(aeth_vm_delete(young), 0);
	aeth_vm_free(young);
	aeth_vmm_free(m);
}

static void test_accel_probe(void **st)
{
	aeth_accel_info info;
	struct stat sb;

	(void)st;
	info.version = 0;
	assert_int_equal(aeth_accel_probe(&info, NULL), AETH_EINVALID);
	info.version = AETH_ACCEL_INFO_VERSION;
	assert_int_equal(aeth_accel_probe(&info, NULL), 0);
	assert_true(info.recommended == AETH_ACCEL_KVM ||
		    info.recommended == AETH_ACCEL_TCG);
	assert_true(info.detail[0] != '\0');
	if (stat("/sys/module/kvm_pvm", &sb) == 0) {
		/* This project's machines: PVM must never be picked. */
		assert_true(info.kvm_pvm);
		assert_int_equal(info.recommended, AETH_ACCEL_TCG);
	}
	assert_string_equal(aeth_accel_name(AETH_ACCEL_TCG), "tcg");
}

/*
 * A VMM lives long: it must not keep fds of ours, also those above 1023
 * (a worker with many VMs and DB connections has them).
 */
static void test_spawn_closes_high_fds(void **st)
{
	char log[512], buf[4096] = "";
	char *argv[] = {"/bin/sh", "-c", "ls /proc/self/fd; echo end", NULL};
	pid_t pid = 0;
	int high, low;
	ssize_t n = 0;
	struct rlimit rl;
	FILE *f;

	(void)st;
	/* fd 1500 needs a soft limit above it (often 1024): raise it to the
	 * hard limit, as a worker with many VMs would */
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur <= 1500 && rl.rlim_max > 1500) {
		rl.rlim_cur = rl.rlim_max;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	if (rl.rlim_cur <= 1500) {
		print_message("SKIPPED: the hard limit of open files is %llu, so no "
			      "fd 1500 can exist here\n", (unsigned long long)rl.rlim_max);
		skip();
	}
	high = dup2(2, 1500);
	low = dup2(2, 900);
	assert_int_equal(high, 1500);
	assert_int_equal(low, 900);
	snprintf(log, sizeof(log), "%s/spawn-fds.log", vmtest_state_dir);
	unlink(log);
	assert_int_equal(aeth__vm_spawn(argv, NULL, log, NULL, 0, &pid), 0);
	for (int i = 0; i < 500 && !strstr(buf, "end"); i++) {
		usleep(10000);
		f = fopen(log, "r");
		if (f) {
			n = (ssize_t)fread(buf, 1, sizeof(buf) - 1, f);
			buf[n > 0 ? n : 0] = '\0';
			fclose(f);
		}
	}
	close(high);
	close(low);
	assert_non_null(strstr(buf, "end"));
	if (strstr(buf, "\n900\n") || strstr(buf, "\n1500\n"))
		fail_msg("the spawned VMM inherited our fds:\n%s", buf);
	unlink(log);
}

/*
 * A fake backend whose guest closes every agent connection at once: the
 * readiness loop must back off between attempts instead of spinning
 * until the boot deadline.
 */
static int fake_connects;

static int fake_start(aeth__vm_record *r, int64_t deadline_ms)
{
	(void)r;
	(void)deadline_ms;
	return 0;
}

static int fake_connect(aeth__vm_record *r, int64_t deadline_ms, int *fd_out)
{
	int sv[2];

	(void)r;
	(void)deadline_ms;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return aeth__error_errno(AETH_ERROR, "socketpair");
	close(sv[1]); /* the "guest" hangs up at once */
	fake_connects++;
	*fd_out = sv[0];
	return 0;
}

static int fake_powerdown(aeth__vm_record *r, int64_t deadline_ms)
{
	(void)r;
	(void)deadline_ms;
	return 0;
}

static void fake_nop(aeth__vm_record *r) { (void)r; }
static bool fake_alive(const aeth__vm_record *r) { (void)r; return true; }

static const aeth__vm_backend fake_backend = {
	.name = "qemu", .start = fake_start, .agent_connect = fake_connect,
	.powerdown = fake_powerdown, .kill = fake_nop, .cleanup = fake_nop,
	.alive = fake_alive,
};

static void test_hello_retry_backs_off(void **st)
{
	char img[128], path[160];
	aeth_vmm *m;
	aeth_vm *vm = NULL;
	int64_t t0;

	(void)st;
	snprintf(img, sizeof(img), "%s/fake-image", vmtest_state_dir);
	assert_int_equal(aeth__mkdir_p(img, 0700), 0);
	snprintf(path, sizeof(path), "%s/vmlinux", img);
	fclose(fopen(path, "w"));
	snprintf(path, sizeof(path), "%s/initrd.cpio", img);
	fclose(fopen(path, "w"));
	m = open_vmm(img);
	assert_int_equal(aeth_vm_create(&vm, m, NULL), 0);
	vm->backend = &fake_backend;
	vm->rec.accel = AETH_ACCEL_KVM; /* no TCG boot retry */
	vm->rec.boot_timeout_ms = 500;
	free(vm->rec.rootfs_path);
	vm->rec.rootfs_path = NULL;
	fake_connects = 0;
	t0 = aeth__now_ms();
	assert_int_not_equal(aeth_vm_start(vm), 0);
	fprintf(stderr, "# %d connects in %lld ms: %s\n", fake_connects,
		(long long)(aeth__now_ms() - t0), aeth_error_last());
	/* Backoff 2 ms doubling to 50 ms: ~15 in 500 ms; a spin does
	 * thousands. */
	assert_true(fake_connects >= 2);
	assert_true(fake_connects <= 40);
	assert_int_equal(aeth_vm_delete(vm), 0);
	aeth_vm_free(vm);
	aeth_vmm_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_get_list_delete),
		cmocka_unit_test(test_unknown_id),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_record_roundtrip),
		cmocka_unit_test(test_record_no_symlinks),
		cmocka_unit_test(test_reap_dead_and_pid_reuse),
		cmocka_unit_test(test_reap_expired),
		cmocka_unit_test(test_accel_probe),
		cmocka_unit_test(test_spawn_closes_high_fds),
		cmocka_unit_test(test_hello_retry_backs_off),
	};

	vmtest_setup();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
