/*
 * The firecracker backend through the public VM and exec API: lifecycle,
 * errors and cleanup.
 *
 * Runs against the real `firecracker` when it is on PATH, /dev/kvm works
 * and AETH_FC_TEST_REAL is not 0 (it then needs the guest image of
 * scripts/build-image.sh in AETH_IMAGE_DIR); otherwise against the strict
 * stand-in of tests/firecracker/standin/, with the aeth-agent running as a
 * local process behind its hybrid vsock. It prints which one it uses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aetherium/aetherium.h"
#include "internal.h"
#include "vm/backend.h"
#include "vm/vm_internal.h"
#include "fc_files.h"

static char state_dir[64];
static char files_dir[64];
static char jail_base[64]; /* the jailer's --chroot-base-dir */
static char binary[512];
static char kernel[300], initrd[300], calls_log[128];
static bool real_fc;

/* Kill every VMM recorded under the state dir, then remove the dirs. */
static void cleanup_all(void)
{
	aeth_vmm_options o = AETH_VMM_OPTIONS_INIT;
	aeth_vmm *m = NULL;

	if (!state_dir[0])
		return;
	o.backend = "firecracker";
	o.state_dir = state_dir;
	o.firecracker_binary = binary;
	if (aeth_vmm_open(&m, &o) == 0) {
		aeth_vmm_reap(NULL, m, 1);
		aeth_vmm_free(m);
	}
	aeth__rm_rf(state_dir);
	aeth__rm_rf(files_dir);
	if (jail_base[0]) {
		aeth__cgroup_host h;
		char cg[600];

		aeth__rm_rf(jail_base);
		aeth__cgroup_probe(&h);
		for (int i = 0; i < 3 && h.version; i++) {
			snprintf(cg, sizeof(cg), "%s/aetherium-fctest",
				 i == 0 ? h.memory : i == 1 ? h.cpu : h.pids);
			rmdir(cg); /* test_jailer's parent cgroup, once empty */
		}
	}
	state_dir[0] = '\0';
}

static void on_signal(int sig)
{
	cleanup_all();
	signal(sig, SIG_DFL);
	raise(sig);
}

static bool on_path(const char *name)
{
	const char *path = getenv("PATH");
	char buf[4096];

	while (path && *path) {
		size_t n = strcspn(path, ":");

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, name);
		if (access(buf, X_OK) == 0)
			return true;
		path += n + (path[n] == ':');
	}
	return false;
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static int group_setup(void **state)
{
	const char *root = getenv("AETH_SOURCE_ROOT");
	const char *build = getenv("AETH_BUILD_ROOT");
	const char *want_real = getenv("AETH_FC_TEST_REAL");
	char guest[600];

	(void)state;
	if (!root || !build) {
		fprintf(stderr, "AETH_SOURCE_ROOT/AETH_BUILD_ROOT not set: run through meson test\n");
		return -1;
	}
	strcpy(state_dir, "/tmp/aeth-fcv-XXXXXX");
	strcpy(files_dir, "/tmp/aeth-fcf-XXXXXX");
	strcpy(jail_base, "/tmp/aeth-fcj-XXXXXX");
	if (!mkdtemp(state_dir) || !mkdtemp(files_dir) || !mkdtemp(jail_base))
		return -1;
	atexit(cleanup_all);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	/* kvm_pvm (our CI machines) runs no stock guest kernel: no real run. */
	real_fc = on_path("firecracker") && access("/dev/kvm", R_OK | W_OK) == 0 &&
		  access("/sys/module/kvm_pvm", F_OK) != 0 &&
		  !(want_real && strcmp(want_real, "0") == 0);
	if (real_fc) {
		const char *img = getenv("AETH_IMAGE_DIR");
		char def[256];

		if (!img) {
			snprintf(def, sizeof(def), "%s/.cache/aetherium/image",
				 getenv("HOME") ? getenv("HOME") : "");
			img = def;
		}
		snprintf(binary, sizeof(binary), "firecracker");
		snprintf(kernel, sizeof(kernel), "%s/vmlinux", img);
		snprintf(initrd, sizeof(initrd), "%s/initrd.cpio", img);
		fprintf(stderr, "\n*** test_fc_vm: using the REAL firecracker from PATH "
				"(image %s) ***\n\n", kernel);
		return 0;
	}
	snprintf(binary, sizeof(binary), "%s/tests/firecracker/standin/firecracker", root);
	snprintf(kernel, sizeof(kernel), "%s/vmlinux", files_dir);
	snprintf(initrd, sizeof(initrd), "%s/initrd.cpio", files_dir);
	snprintf(calls_log, sizeof(calls_log), "%s/calls.jsonl", files_dir);
	fc_write_file(kernel, "stand-in kernel\n");
	fc_write_file(initrd, "stand-in initrd\n");
	snprintf(guest, sizeof(guest), "%s/agent/aeth-agent --stdio", build);
	setenv("AETH_FC_STANDIN_GUEST", guest, 1);
	setenv("AETH_FC_STANDIN_LOG", calls_log, 1);
	fprintf(stderr, "\n*** test_fc_vm: no usable firecracker here (not on PATH, no "
			"/dev/kvm, or kvm_pvm): using the STAND-IN %s with the agent %s ***\n\n",
		binary, guest);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	cleanup_all();
	return 0;
}

/* Every test starts from a clean call log and default stand-in knobs. */
static int setup(void **state)
{
	(void)state;
	if (calls_log[0])
		unlink(calls_log);
	unsetenv("AETH_FC_STANDIN_NEVER_LISTEN");
	unsetenv("AETH_FC_STANDIN_NO_SOCKET");
	unsetenv("AETH_FC_STANDIN_IGNORE_CAD");
	return 0;
}

/* A firecracker manager on the test's files; with `jailer`, VMs start
 * under it (chroots below jail_base, cgroups below aetherium-fctest). */
static aeth_vmm *open_vmm_jailed(unsigned int boot_timeout_ms, const char *jailer)
{
	aeth_vmm_options o = AETH_VMM_OPTIONS_INIT;
	aeth_vmm *m = NULL;

	o.backend = "firecracker";
	o.state_dir = state_dir;
	o.firecracker_binary = binary;
	o.kernel_path = kernel;
	o.initrd_path = initrd;
	o.boot_timeout_ms = boot_timeout_ms;
	if (jailer) {
		o.cgroup_parent = "aetherium-fctest";
		o.firecracker_jailer = jailer;
		o.firecracker_chroot_base = jail_base;
	}
	if (aeth_vmm_open(&m, &o) != 0)
		fail_msg("aeth_vmm_open: %s", aeth_error_last());
	assert_string_equal(aeth_vmm_backend(m), "firecracker");
	return m;
}

static aeth_vmm *open_vmm(unsigned int boot_timeout_ms)
{
	return open_vmm_jailed(boot_timeout_ms, NULL);
}

static void assert_no_leftovers(const char *vm_state_dir, pid_t pid, const char *id)
{
	struct stat st;

	if (pid > 0)
		assert_false(aeth__vm_pid_alive(pid, id, 0));
	assert_int_equal(stat(vm_state_dir, &st), -1);
	assert_int_equal(count_entries(state_dir) <= 1, 1); /* at most "vms" */
}

static void test_lifecycle(void **state)
{
	aeth_vmm *m = open_vmm(20000);
	aeth_vm *vm = NULL;
	aeth_exec_options eo = AETH_EXEC_OPTIONS_INIT;
	const char *argv[] = {"echo", "hello from firecracker", NULL};
	aeth_exec_result *res = NULL;
	char *dir, *id, *log, *cmdline;
	const aeth__vm_record *rec;
	struct stat st;
	pid_t pid;
	int rc;

	int64_t t0, t1, t2, t3;

	(void)state;
	assert_int_equal(aeth_vm_create(&vm, m, NULL), 0);
	assert_string_equal(aeth_vm_backend(vm), "firecracker");
	t0 = aeth__now_ms();
	rc = aeth_vm_start(vm);
	t1 = aeth__now_ms();
	if (rc != 0)
		fail_msg("aeth_vm_start: %s", aeth_error_last());
	assert_int_equal(aeth_vm_status(vm), AETH_VM_RUNNING);
	pid = aeth_vm_pid(vm);
	assert_true(pid > 0);
	id = strdup(aeth_vm_id(vm));
	dir = strdup(aeth_vm_state_dir(vm));
	/* The VMM was started with --id <vm id> so a later process can tell it. */
	assert_true(aeth__vm_pid_alive(pid, id, 0));
	assert_int_equal(stat(aeth_vm_api_socket(vm), &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	rec = aeth__vm_record_of(vm);
	cmdline = rec->cmdline;
	assert_non_null(strstr(cmdline, "aeth.channel=vsock"));
	assert_non_null(strstr(cmdline, "aeth.port=1024"));
	assert_null(strstr(cmdline, "virtio-serial"));

	eo.argv = argv;
	t2 = aeth__now_ms();
	rc = aeth_vm_exec(&res, vm, &eo);
	t3 = aeth__now_ms();
	if (rc != 0)
		fail_msg("aeth_vm_exec: %s", aeth_error_last());
	assert_int_equal(res->exit_code, 0);
	assert_string_equal(res->stdout_data, "hello from firecracker\n");
	aeth_exec_result_free(res);

	{
		int64_t s0 = aeth__now_ms();

		assert_int_equal(aeth_vm_stop(vm, 5000), 0);
		print_message("timings (%s): start %lld ms, exec echo %lld ms, stop %lld ms\n",
			      real_fc ? "real firecracker" : "stand-in", (long long)(t1 - t0),
			      (long long)(t3 - t2), (long long)(aeth__now_ms() - s0));
	}
	assert_int_equal(aeth_vm_status(vm), AETH_VM_STOPPED);
	assert_false(aeth__vm_pid_alive(pid, id, 0));
	assert_int_equal(aeth_vm_delete(vm), 0);
	assert_no_leftovers(dir, pid, id);

	if (!real_fc) {
		const char *p;

		log = fc_slurp(calls_log);
		p = strstr(log, "\"path\": \"/machine-config\", \"body\": {\"vcpu_count\": 1, \"mem_size_mib\": 256}, \"status\": 204");
		assert_non_null(p);
		p = strstr(p, "\"path\": \"/boot-source\", \"body\": {\"kernel_image_path\"");
		assert_non_null(p);
		p = strstr(p, "\"path\": \"/vsock\", \"body\": {\"guest_cid\": ");
		assert_non_null(p);
		/* the console to serial.log, rate-limited (2 KiB/s after 1 MiB) */
		p = strstr(p, "\"path\": \"/serial\", \"body\": {\"serial_out_path\": ");
		assert_non_null(p);
		assert_non_null(strstr(p, "/serial.log\", \"rate_limiter\": {\"size\": 2048, "
				    "\"refill_time\": 1000, \"one_time_burst\": 1048576}}, "
				    "\"status\": 204"));
		p = strstr(p, "{\"action_type\": \"InstanceStart\"}, \"status\": 204");
		assert_non_null(p);
		assert_non_null(strstr(p, "\"result\": \"OK\""));
		assert_null(strstr(log, "\"status\": 400"));
		assert_null(strstr(log, "/drives/")); /* no rootfs asked for */
		free(log);
	}
	free(id);
	free(dir);
	aeth_vm_free(vm);
	aeth_vmm_free(m);
}

/* <files_dir>/rootfs.ext4: a sparse file whose few bytes end at `size`
 * (the stand-in only opens it). */
static void make_sparse_rootfs(char *path, size_t n, off_t size)
{
	int fd;

	snprintf(path, n, "%s/rootfs.ext4", files_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "ext4", 4, size - 4), 4);
	close(fd);
}

static void test_rootfs_copy_per_vm(void **state)
{
	aeth_vmm *m = open_vmm(20000);
	aeth_vm_options vo = AETH_VM_OPTIONS_INIT;
	aeth_vm *a = NULL, *b = NULL;
	char rootfs[160], *ca, *cb;
	const aeth__vm_record *ra, *rb;

	(void)state;
	if (real_fc)
		skip(); /* needs a rootfs image; the stand-in only opens the file */
	make_sparse_rootfs(rootfs, sizeof(rootfs), 32L << 20);
	vo.rootfs_path = rootfs;
	assert_int_equal(aeth_vm_create(&a, m, &vo), 0);
	assert_int_equal(aeth_vm_create(&b, m, &vo), 0);
	if (aeth_vm_start(a) != 0 || aeth_vm_start(b) != 0)
		fail_msg("start: %s", aeth_error_last());
	ra = aeth__vm_record_of(a);
	rb = aeth__vm_record_of(b);
	/* Each VM writes its own copy, never the image itself. */
	assert_non_null(ra->overlay_path);
	assert_non_null(rb->overlay_path);
	assert_string_not_equal(ra->overlay_path, rb->overlay_path);
	assert_ptr_equal(strstr(ra->overlay_path, ra->state_dir), ra->overlay_path);
	assert_int_equal(access(ra->overlay_path, R_OK | W_OK), 0);
	{
		char *log = fc_slurp(calls_log), want[512];

		snprintf(want, sizeof(want), "\"path\": \"/drives/rootfs\", \"body\": {\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\", \"is_root_device\": true, \"is_read_only\": false}, \"status\": 204",
			 ra->overlay_path);
		assert_non_null(strstr(log, want));
		free(log);
	}
	/* Distinct guest CIDs (>= 3). */
	{
		char pa[256], pb[256];
		unsigned long cida, cidb;

		snprintf(pa, sizeof(pa), "%s/guest_cid", ra->state_dir);
		snprintf(pb, sizeof(pb), "%s/guest_cid", rb->state_dir);
		ca = fc_slurp(pa);
		cb = fc_slurp(pb);
		cida = strtoul(ca, NULL, 10);
		cidb = strtoul(cb, NULL, 10);
		assert_true(cida >= 3 && cidb >= 3);
		assert_true(cida != cidb);
		free(ca);
		free(cb);
	}
	assert_int_equal(aeth_vm_delete(a), 0);
	assert_int_equal(aeth_vm_delete(b), 0);
	assert_int_equal(access(rootfs, R_OK), 0); /* the image stays */
	aeth_vm_free(a);
	aeth_vm_free(b);
	aeth_vmm_free(m);
}

/* Get the running VM `id` from manager m (a new one: as after a worker
 * restart) and run `echo word` in it. */
static aeth_vm *reattach_echo(aeth_vmm *m, const char *id, const char *word)
{
	aeth_exec_options eo = AETH_EXEC_OPTIONS_INIT;
	const char *argv[] = {"echo", word, NULL};
	aeth_exec_result *res = NULL;
	aeth_vm *vm = NULL;
	char want[128];

	assert_int_equal(aeth_vm_get(&vm, m, id), 0);
	assert_int_equal(aeth_vm_status(vm), AETH_VM_RUNNING);
	eo.argv = argv;
	if (aeth_vm_exec(&res, vm, &eo) != 0)
		fail_msg("exec after reattach: %s", aeth_error_last());
	snprintf(want, sizeof(want), "%s\n", word);
	assert_string_equal(res->stdout_data, want);
	aeth_exec_result_free(res);
	return vm;
}

/* A second manager (as after a worker restart) finds the running VM by
 * its record, checks the pid is still this VM's firecracker (--id) and
 * reconnects to the agent through the hybrid vsock. */
static void test_reattach(void **state)
{
	aeth_vmm *m = open_vmm(20000), *m2;
	aeth_vm *vm = NULL, *again = NULL;
	char id[37];
	int pid;

	(void)state;
	assert_int_equal(aeth_vm_create(&vm, m, NULL), 0);
	if (aeth_vm_start(vm) != 0)
		fail_msg("aeth_vm_start: %s", aeth_error_last());
	strcpy(id, aeth_vm_id(vm));
	pid = aeth_vm_pid(vm);
	aeth_vm_free(vm); /* the VMM keeps running */
	aeth_vmm_free(m);

	m2 = open_vmm(20000);
	again = reattach_echo(m2, id, "still here");
	assert_int_equal(aeth_vm_pid(again), pid);
	assert_int_equal(aeth_vm_delete(again), 0);
	assert_false(aeth__vm_pid_alive(pid, id, 0));
	aeth_vm_free(again);
	aeth_vmm_free(m2);
}

/* The backend's own power-down (vm.c's fallback when the agent cannot
 * shut the guest down): SendCtrlAltDel ends the VMM; a guest that ignores
 * it leaves AETH_ETIMEOUT at the deadline, and kill() ends it. */
static void test_powerdown_fallback(void **state)
{
	const aeth__vm_backend *be = &aeth__vm_backend_firecracker;
	aeth_vmm *m = open_vmm(20000);
	aeth_vm *vm = NULL;
	aeth__vm_record *rec;
	char *log;
	pid_t pid;

	(void)state;
	if (real_fc)
		skip(); /* a real guest answers Ctrl-Alt-Del by itself */
	for (int ignore = 0; ignore < 2; ignore++) {
		if (ignore)
			setenv("AETH_FC_STANDIN_IGNORE_CAD", "1", 1);
		assert_int_equal(aeth_vm_create(&vm, m, NULL), 0);
		if (aeth_vm_start(vm) != 0)
			fail_msg("aeth_vm_start: %s", aeth_error_last());
		rec = (aeth__vm_record *)aeth__vm_record_of(vm);
		pid = rec->pid;
		if (!ignore) {
			assert_int_equal(be->powerdown(rec, aeth__now_ms() + 5000), 0);
			assert_false(be->alive(rec));
		} else {
			assert_int_equal(be->powerdown(rec, aeth__now_ms() + 500), AETH_ETIMEOUT);
			assert_true(be->alive(rec));
			be->kill(rec);
			assert_false(be->alive(rec));
		}
		assert_false(aeth__vm_pid_alive(pid, rec->id, 0));
		assert_int_equal(aeth_vm_delete(vm), 0);
		aeth_vm_free(vm);
		vm = NULL;
	}
	unsetenv("AETH_FC_STANDIN_IGNORE_CAD");
	log = fc_slurp(calls_log);
	assert_non_null(strstr(log, "{\"action_type\": \"SendCtrlAltDel\"}, \"status\": 204"));
	free(log);
	aeth_vmm_free(m);
}

/* A failed start: error text, and nothing left running or on disk. */
static void expect_start_failure(aeth_vmm *m, int want_rc, const char *const *needles)
{
	aeth_vm *vm = NULL;
	const aeth__vm_record *rec;
	char *msg, *dir;
	int rc;

	assert_int_equal(aeth_vm_create(&vm, m, NULL), 0);
	rc = aeth_vm_start(vm);
	msg = strdup(aeth_error_last());
	print_message("expected failure: %s\n", msg);
	assert_int_equal(rc, want_rc);
	for (; *needles; needles++)
		if (!strstr(msg, *needles))
			fail_msg("error lacks \"%s\": %s", *needles, msg);
	rec = aeth__vm_record_of(vm);
	assert_int_equal(rec->pid, 0);
	assert_true(rec->api_sock == NULL || access(rec->api_sock, F_OK) != 0);
	assert_true(rec->agent_sock == NULL || access(rec->agent_sock, F_OK) != 0);
	dir = strdup(aeth_vm_state_dir(vm));
	assert_int_equal(aeth_vm_delete(vm), 0);
	assert_no_leftovers(dir, 0, NULL);
	free(dir);
	free(msg);
	aeth_vm_free(vm);
}

static void test_fault_message_surfaces(void **state)
{
	aeth_vmm_options o = AETH_VMM_OPTIONS_INIT;
	aeth_vmm *m = NULL;
	/* A directory passes access(R_OK) but Firecracker cannot load it. */
	const char *const needles[] = {"PUT /boot-source: 400: The kernel file cannot be opened",
				       NULL};

	(void)state;
	if (real_fc)
		skip();
	o.backend = "firecracker";
	o.state_dir = state_dir;
	o.firecracker_binary = binary;
	o.kernel_path = files_dir;
	o.initrd_path = initrd;
	o.boot_timeout_ms = 10000;
	assert_int_equal(aeth_vmm_open(&m, &o), 0);
	expect_start_failure(m, AETH_EINVALID, needles);
	aeth_vmm_free(m);
}

/* A Firecracker without /serial (400): the VM starts anyway, its console
 * left in firecracker.log. */
static void test_serial_refused(void **state)
{
	aeth_vmm *m;
	aeth_vm *vm = NULL;
	int rc;

	(void)state;
	if (real_fc)
		skip();
	setenv("AETH_FC_STANDIN_FAULT", "/serial", 1);
	m = open_vmm(20000);
	assert_int_equal(aeth_vm_create(&vm, m, NULL), 0);
	rc = aeth_vm_start(vm);
	unsetenv("AETH_FC_STANDIN_FAULT");
	if (rc != 0)
		fail_msg("aeth_vm_start: %s", aeth_error_last());
	assert_int_equal(aeth_vm_status(vm), AETH_VM_RUNNING);
	assert_non_null(strstr(aeth_vm_serial_log(vm), "firecracker.log"));
	assert_int_equal(aeth_vm_delete(vm), 0);
	aeth_vm_free(vm);
	aeth_vmm_free(m);
}

static void test_api_socket_never_appears(void **state)
{
	aeth_vmm *m;
	const char *const needles[] = {"did not create its API socket", "api.sock", binary, NULL};
	int64_t t0 = aeth__now_ms();

	(void)state;
	if (real_fc)
		skip();
	setenv("AETH_FC_STANDIN_NO_SOCKET", "1", 1);
	m = open_vmm(1500);
	expect_start_failure(m, AETH_ETIMEOUT, needles);
	assert_true(aeth__now_ms() - t0 < 8000);
	aeth_vmm_free(m);
}

static void test_handshake_timeout(void **state)
{
	aeth_vmm *m;
	const char *const needles[] = {"did not accept on vsock port 1024", "vsock.sock", NULL};

	(void)state;
	if (real_fc)
		skip();
	setenv("AETH_FC_STANDIN_NEVER_LISTEN", "1", 1);
	/* Enough for a slow stand-in start (python) on a busy machine. */
	m = open_vmm(4000);
	expect_start_failure(m, AETH_ETIMEOUT, needles);
	aeth_vmm_free(m);
}

static void test_binary_missing(void **state)
{
	aeth_vmm_options o = AETH_VMM_OPTIONS_INIT;
	aeth_vmm *m = NULL;
	const char *const needles[] = {"/nonexistent/firecracker", NULL};
	aeth_vm *vm = NULL;

	(void)state;
	o.backend = "firecracker";
	o.state_dir = state_dir;
	o.firecracker_binary = "/nonexistent/firecracker";
	o.kernel_path = kernel;
	o.initrd_path = initrd;
	o.boot_timeout_ms = 3000;
	assert_int_equal(aeth_vmm_open(&m, &o), 0);
	assert_int_equal(aeth_vm_create(&vm, m, NULL), 0);
	assert_true(aeth_vm_start(vm) < 0);
	if (!strstr(aeth_error_last(), needles[0]))
		fail_msg("error lacks the binary: %s", aeth_error_last());
	assert_int_equal(aeth_vm_delete(vm), 0);
	aeth_vm_free(vm);
	aeth_vmm_free(m);
}

/* ---- Firecracker's jailer (the stand-in jailer with the stand-in) ---- */

/* Uid: and Gid: lines of /proc/PID/status: all four ids are `id`. */
static void assert_ids(pid_t pid, unsigned int id)
{
	char path[64], *st, want[128];

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	st = fc_slurp(path);
	snprintf(want, sizeof(want), "\nUid:\t%u\t%u\t%u\t%u\n", id, id, id, id);
	if (!strstr(st, want))
		fail_msg("pid %d does not run as uid %u:\n%s", (int)pid, id, st);
	snprintf(want, sizeof(want), "\nGid:\t%u\t%u\t%u\t%u\n", id, id, id, id);
	assert_non_null(strstr(st, want));
	free(st);
}

static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* Every API call named files by their path in the jail, none on the host. */
static void assert_api_paths_in_jail(const char *log)
{
	const char *want[] = {
		"\"kernel_image_path\": \"/vmlinux\"", "\"initrd_path\": \"/initrd\"",
		"\"path_on_host\": \"/rootfs.img\"", "\"uds_path\": \"/vsock.sock\"",
		"\"serial_out_path\": \"/serial.log\"",
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!strstr(log, want[i]))
			fail_msg("no %s in the calls:\n%s", want[i], log);
	for (const char *line = log; *line;) {
		size_t n = strcspn(line, "\n");

		if (!strncmp(line, "{\"method\"", 9)) {
			char *l = strndup(line, n);

			/* no host path (the jail base, the test's files) */
			if (strstr(l, jail_base) || strstr(l, files_dir) ||
			    strstr(l, state_dir))
				fail_msg("a host path went to the API: %s", l);
			assert_null(strstr(l, "\"status\": 400"));
			free(l);
		}
		line += n + (line[n] == '\n');
	}
}

/*
 * The jailer's cgroup flags for this host's cgroup version, and the VMM
 * in the cgroup they made: guest 256 + 256 MiB, 1.5 cores, 256 pids.
 * dir gets that cgroup's memory directory ("" without cgroups).
 */
static void assert_jail_cgroup(pid_t pid, const char *id, const char *log,
			       char *dir, size_t n)
{
	static const char *const v1[] = {
		"\"--cgroup-version\", \"1\"", "\"--cgroup\", \"memory.limit_in_bytes=536870912\"",
		"\"--cgroup\", \"cpu.cfs_quota_us=150000\"", "\"--cgroup\", \"pids.max=256\"",
		"\"--parent-cgroup\", \"aetherium-fctest\"", NULL};
	static const char *const v2[] = {
		"\"--cgroup-version\", \"2\"", "\"--cgroup\", \"memory.max=536870912\"",
		"\"--cgroup\", \"cpu.max=150000 100000\"", "\"--cgroup\", \"pids.max=256\"",
		"\"--parent-cgroup\", \"aetherium-fctest\"", NULL};
	aeth__cgroup_host h;
	char path[800], want[128], *text;

	dir[0] = '\0';
	if (aeth__cgroup_probe(&h) != 0) {
		assert_null(strstr(log, "\"--cgroup\""));
		return;
	}
	for (const char *const *w = h.version == 1 ? v1 : v2; *w; w++)
		if (!strstr(log, *w))
			fail_msg("the jailer did not get %s:\n%s", *w, log);
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	text = fc_slurp(path);
	snprintf(want, sizeof(want), "%s:/aetherium-fctest/%s\n",
		 h.version == 1 ? ":memory" : "0:", id);
	if (!strstr(text, want))
		fail_msg("not in its cgroup (%s):\n%s", want, text);
	free(text);
	snprintf(dir, n, "%s/aetherium-fctest/%s", h.memory, id);
	snprintf(path, sizeof(path), "%s/%s", dir,
		 h.version == 1 ? "memory.limit_in_bytes" : "memory.max");
	text = fc_slurp(path);
	assert_string_equal(text, "536870912\n");
	free(text);
}

static void test_jailer(void **state)
{
	char jailer[512], rootfs[160], path[600], want[256], jail_dir[300];
	char root[320], uid_res[160], cg_dir[700], *log;
	aeth_vm_options vo = AETH_VM_OPTIONS_INIT;
	aeth_exec_options eo = AETH_EXEC_OPTIONS_INIT;
	const char *argv[] = {"echo", "hello from the jail", NULL};
	aeth_exec_result *res = NULL;
	aeth_vmm *m, *m2;
	aeth_vm *vm = NULL, *again = NULL;
	const aeth__vm_record *rec;
	struct stat st;
	unsigned int uid;
	char id[37];
	pid_t pid;

	(void)state;
	if (real_fc || geteuid() != 0)
		skip(); /* the stand-ins' jail; the jailer needs root */
	snprintf(jailer, sizeof(jailer), "%s/tests/firecracker/standin/jailer",
		 getenv("AETH_SOURCE_ROOT"));
	/* the kernel is readable by all: hard-linked; the initrd is not:
	 * copied for the VM's uid */
	assert_int_equal(chmod(kernel, 0644), 0);
	assert_int_equal(chmod(initrd, 0600), 0);
	make_sparse_rootfs(rootfs, sizeof(rootfs), 16L << 20);
	vo.rootfs_path = rootfs;

	m = open_vmm_jailed(20000, jailer);
	assert_int_equal(aeth_vmm_jailed(NULL, m), 1);
	assert_int_equal(aeth_vm_create(&vm, m, &vo), 0);
	if (aeth_vm_start(vm) != 0)
		fail_msg("aeth_vm_start under the jailer: %s", aeth_error_last());
	rec = aeth__vm_record_of(vm);
	strcpy(id, rec->id);
	pid = rec->pid;
	uid = rec->jail_uid;
	snprintf(jail_dir, sizeof(jail_dir), "%s/fc_standin.py/%s", jail_base, id);
	snprintf(root, sizeof(root), "%s/root", jail_dir);
	print_message("jailed VM %s: pid %d, uid %u, chroot %s\n", id, (int)pid, uid,
		      root);

	/* Firecracker (the stand-in) as the VM's uid, chrooted, its id on
	 * its command line, its sockets and console in the jail. */
	assert_true(uid >= 1900000000u);
	assert_ids(pid, uid);
	assert_true(aeth__vm_pid_alive(pid, id, 0));
	snprintf(path, sizeof(path), "/proc/%d/root", (int)pid);
	assert_true(same_file(path, root));
	snprintf(path, sizeof(path), "%s/api.sock", root);
	assert_string_equal(aeth_vm_api_socket(vm), path);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_uid, uid);
	assert_ptr_equal(strstr(aeth_vm_serial_log(vm), root), aeth_vm_serial_log(vm));
	/* the kernel hard-linked, the initrd and the disk its own copies */
	snprintf(path, sizeof(path), "%s/vmlinux", root);
	assert_true(same_file(path, kernel));
	snprintf(path, sizeof(path), "%s/initrd", root);
	assert_false(same_file(path, initrd));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, uid);
	snprintf(path, sizeof(path), "%s/rootfs.img", root);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, uid);
	assert_int_equal(st.st_mode & 07777, 0600);
	/* the uid is reserved like the QEMU jail's */
	snprintf(uid_res, sizeof(uid_res), "%s/uids/%u", state_dir, uid);
	assert_int_equal(access(uid_res, F_OK), 0);
	eo.argv = argv;
	if (aeth_vm_exec(&res, vm, &eo) != 0)
		fail_msg("aeth_vm_exec: %s", aeth_error_last());
	assert_string_equal(res->stdout_data, "hello from the jail\n");
	aeth_exec_result_free(res);
	res = NULL;

	log = fc_slurp(calls_log);
	/* the jailer's command line */
	snprintf(want, sizeof(want), "{\"jailer\": [\"--id\", \"%s\", \"--exec-file\", ", id);
	assert_non_null(strstr(log, want));
	snprintf(want, sizeof(want), "\"--uid\", \"%u\", \"--gid\", \"%u\", "
		 "\"--chroot-base-dir\", \"%s\", \"--new-pid-ns\"", uid, uid, jail_base);
	assert_non_null(strstr(log, want));
	assert_jail_cgroup(pid, id, log, cg_dir, sizeof(cg_dir));
	assert_non_null(strstr(log, "\"--\", \"--api-sock\", \"/api.sock\"]"));
	assert_api_paths_in_jail(log);
	free(log);

	/* a new manager finds it by its record and talks to it again */
	aeth_vm_free(vm);
	m2 = open_vmm_jailed(20000, jailer);
	again = reattach_echo(m2, id, "again");

	/* delete: no process, no jail, no cgroup, no uid reservation */
	assert_int_equal(aeth_vm_delete(again), 0);
	assert_false(aeth__vm_pid_alive(pid, id, 0));
	assert_int_equal(access(jail_dir, F_OK), -1);
	assert_int_equal(access(uid_res, F_OK), -1);
	assert_true(!cg_dir[0] || access(cg_dir, F_OK) == -1);
	assert_int_equal(access(kernel, R_OK), 0); /* the image stays */
	aeth_vm_free(again);

	/* tap networking is refused up front under the jailer */
	{
		aeth_vm_options to = AETH_VM_OPTIONS_INIT;

		to.net = AETH_NET_TAP;
		to.tap_name = "aethtap0";
		assert_int_equal(aeth_vm_create(&vm, m2, &to), 0);
		assert_int_equal(aeth_vm_start(vm), AETH_EINVALID);
		assert_non_null(strstr(aeth_error_last(), "tap networking under "
					   "Firecracker's jailer is not supported yet"));
		assert_int_equal(aeth_vm_delete(vm), 0);
		aeth_vm_free(vm);
	}
	aeth_vmm_free(m2);
	aeth_vmm_free(m);
	chmod(initrd, 0644);
}

/* The stand-in jailer refuses what Firecracker's jailer refuses, with
 * its words (so that the backend cannot pass it a command line the real
 * one would not take). */
static void test_jailer_standin_strict(void **state)
{
	static const struct {
		const char *args, *want;
	} cases[] = {
		{"--id vm1 --exec-file %s --gid 5 --chroot-base-dir %s",
		 "Failed to parse arguments: Argument 'uid' required, but not found."},
		{"--id vm_1 --exec-file %s --uid 5 --gid 5 --chroot-base-dir %s",
		 "Invalid instance ID: Invalid char (_) at position 2"},
		{"--id vm1 --exec-file %s --uid 5 --gid 5 --chroot-base-dir %s --bogus",
		 "Found argument 'bogus' which wasn't expected"},
		{"--id vm1 --exec-file %s --uid 5 --uid 6 --gid 5 --chroot-base-dir %s",
		 "The argument 'uid' was provided more than once."},
		{"--id vm1 --exec-file %s --uid x --gid 5 --chroot-base-dir %s",
		 "Invalid uid: x"},
		{"--id vm1 --exec-file %s --uid 5 --gid 5 --chroot-base-dir %s "
		 "--cgroup memory.max", "Invalid format for cgroups: memory.max"},
		{"--id vm1 --exec-file %s --uid 5 --gid 5 --chroot-base-dir %s "
		 "--cgroup ../x.max=1", "Cgroup invalid file: ../x.max=1"},
		{"--id vm1 --exec-file %s --uid 5 --gid 5 --chroot-base-dir %s "
		 "--parent-cgroup /abs", "Parent cgroup path is invalid"},
		{"--id vm1 --exec-file %s/nonexistent --uid 5 --gid 5 --chroot-base-dir %s",
		 "Failed to canonicalize path"},
	};
	char cmd[2048], fmt[1024], out[1024];
	int before = count_entries(jail_base);

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		FILE *p;
		size_t n;

		snprintf(fmt, sizeof(fmt), "%s/tests/firecracker/standin/jailer %s 2>&1",
			 getenv("AETH_SOURCE_ROOT"), cases[i].args);
		snprintf(cmd, sizeof(cmd), fmt, binary, jail_base);
		p = popen(cmd, "r");
		assert_non_null(p);
		n = fread(out, 1, sizeof(out) - 1, p);
		out[n] = '\0';
		assert_int_equal(pclose(p), 1 << 8); /* exit status 1 */
		if (!strstr(out, cases[i].want))
			fail_msg("%s\n=> %s\nwanted: %s", cmd, out, cases[i].want);
	}
	assert_int_equal(count_entries(jail_base), before); /* nothing made */
}

/* A jailer that is not there: aeth_vmm_open says which key to fix. */
/*
 * Snapshots through Firecracker's API: the first start of a shape boots a
 * template, pauses it and PUTs /snapshot/create; each VM then comes from
 * PUT /snapshot/load on a fresh Firecracker (memory mapped from the
 * snapshot's file, its own vsock socket, resumed), every call checked
 * against the published spec by the stand-in.
 */
static void test_snapshot(void **state)
{
	aeth_vmm_options o = AETH_VMM_OPTIONS_INIT;
	aeth_vmm *m = NULL;
	aeth_vm *vm[2] = {NULL, NULL};
	char want[700], snaps[160];

	(void)state;
	o.backend = "firecracker";
	o.state_dir = state_dir;
	o.firecracker_binary = binary;
	o.kernel_path = kernel;
	o.initrd_path = initrd;
	o.boot_timeout_ms = 20000;
	o.snapshots = AETH_SNAPSHOTS_AUTO;
	if (aeth_vmm_open(&m, &o) != 0)
		fail_msg("aeth_vmm_open: %s", aeth_error_last());
	for (int i = 0; i < 2; i++) {
		aeth_exec_options eo = AETH_EXEC_OPTIONS_INIT;
		const char *argv[] = {"echo", "restored", NULL};
		aeth_exec_result *res = NULL;

		assert_int_equal(aeth_vm_create(&vm[i], m, NULL), 0);
		if (aeth_vm_start(vm[i]) != 0)
			fail_msg("start %d: %s", i, aeth_error_last());
		assert_int_equal(aeth_vm_origin(vm[i]), AETH_ORIGIN_SNAPSHOT);
		eo.argv = argv;
		assert_int_equal(aeth_vm_exec(&res, vm[i], &eo), 0);
		assert_string_equal(res->stdout_data, "restored\n");
		aeth_exec_result_free(res);
	}
	assert_string_equal(aeth__vm_record_of(vm[0])->snapshot,
			    aeth__vm_record_of(vm[1])->snapshot);
	snprintf(snaps, sizeof(snaps), "%s/snapshots/%s", state_dir,
		 aeth__vm_record_of(vm[0])->snapshot);
	for (int i = 0; i < 3; i++) {
		struct stat st;
		const char *f[] = {"meta.json", "state", "ram"};

		snprintf(want, sizeof(want), "%s/%s", snaps, f[i]);
		assert_int_equal(stat(want, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
	}
	if (!real_fc) {
		char *log = fc_slurp(calls_log);

		assert_null(strstr(log, "\"status\": 400"));
		assert_non_null(strstr(log, "\"method\": \"PATCH\", \"path\": \"/vm\", "
				       "\"body\": {\"state\": \"Paused\"}, \"status\": 204"));
		snprintf(want, sizeof(want), "\"path\": \"/snapshot/create\", \"body\": "
			 "{\"snapshot_type\": \"Full\", \"snapshot_path\": \"%s/", state_dir);
		assert_non_null(strstr(log, want));
		for (int i = 0; i < 2; i++) {
			snprintf(want, sizeof(want), "\"path\": \"/snapshot/load\", \"body\": "
				 "{\"snapshot_path\": \"%s/state\", \"resume_vm\": true, "
				 "\"mem_backend\": {\"backend_type\": \"File\", "
				 "\"backend_path\": \"%s/ram\"}, \"vsock_override\": "
				 "{\"uds_path\": \"%s\"}}, \"status\": 204", snaps, snaps,
				 aeth_vm_agent_socket(vm[i]));
			if (!strstr(log, want))
				fail_msg("no %s in\n%s", want, log);
		}
		free(log);
	}
	for (int i = 0; i < 2; i++) {
		assert_int_equal(aeth_vm_delete(vm[i]), 0);
		aeth_vm_free(vm[i]);
	}
	aeth_vmm_free(m);
}

static void test_jailer_missing(void **state)
{
	aeth_vmm_options o = AETH_VMM_OPTIONS_INIT;
	aeth_vmm *m = NULL;

	(void)state;
	if (geteuid() != 0)
		skip();
	o.backend = "firecracker";
	o.state_dir = state_dir;
	o.firecracker_binary = binary;
	o.firecracker_jailer = "/nonexistent/jailer";
	o.firecracker_chroot_base = jail_base;
	assert_int_equal(aeth_vmm_open(&m, &o), AETH_EINVALID);
	assert_null(m);
	print_message("expected failure: %s\n", aeth_error_last());
	assert_non_null(strstr(aeth_error_last(), "vmm.firecracker_jailer"));
	assert_non_null(strstr(aeth_error_last(), "/nonexistent/jailer"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_lifecycle, setup),
		cmocka_unit_test_setup(test_reattach, setup),
		cmocka_unit_test_setup(test_powerdown_fallback, setup),
		cmocka_unit_test_setup(test_rootfs_copy_per_vm, setup),
		cmocka_unit_test_setup(test_fault_message_surfaces, setup),
		cmocka_unit_test_setup(test_serial_refused, setup),
		cmocka_unit_test_setup(test_api_socket_never_appears, setup),
		cmocka_unit_test_setup(test_handshake_timeout, setup),
		cmocka_unit_test_setup(test_binary_missing, setup),
		cmocka_unit_test_setup(test_jailer, setup),
		cmocka_unit_test_setup(test_jailer_missing, setup),
		cmocka_unit_test_setup(test_snapshot, setup),
		cmocka_unit_test_setup(test_jailer_standin_strict, setup),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
