/*
 * tests/vm/vmtest.h - shared set-up for the vm tests: a private state dir
 * per test program, and cleanup of every VM in it at exit, on failure and
 * on SIGTERM/SIGINT (meson's timeout), so no QEMU is ever leaked.
 */
#ifndef AETH_TESTS_VMTEST_H
#define AETH_TESTS_VMTEST_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aetherium/aetherium.h"
#include "internal.h"
#include "vm/backend.h"

static char vmtest_state_dir[64];

/* Kill every VMM recorded under the state dir, then remove it. */
static inline void vmtest_cleanup(void)
{
	static aeth_vmm_options o = AETH_VMM_OPTIONS_INIT;
	static aeth_vmm *m;

	if (!vmtest_state_dir[0])
		return;
	o.state_dir = vmtest_state_dir;
	o.accel = AETH_ACCEL_TCG;
	if (aeth_vmm_open(&m, &o) == 0) {
		aeth_vmm_reap(NULL, m, 1);
		aeth_vmm_free(m);
		m = NULL;
	}
	aeth__rm_rf(vmtest_state_dir);
	vmtest_state_dir[0] = '\0';
}

static inline void vmtest_on_signal(int sig)
{
	vmtest_cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Make the state dir (short path: Unix sockets live in it). */
static inline const char *vmtest_setup(void)
{
	snprintf(vmtest_state_dir, sizeof(vmtest_state_dir), "/tmp/aeth-vmt-XXXXXX");
	if (!mkdtemp(vmtest_state_dir)) {
		perror("mkdtemp");
		exit(1);
	}
	atexit(vmtest_cleanup);
	signal(SIGTERM, vmtest_on_signal);
	signal(SIGINT, vmtest_on_signal);
	return vmtest_state_dir;
}

/* The image dir as the library resolves it, or NULL if the image is
 * missing (the message says how to build it). */
static inline const char *vmtest_image_dir(void)
{
	static char dir[1024];
	const char *e = getenv("AETH_IMAGE_DIR");
	char k[1100], i[1100];

	if (e && *e)
		snprintf(dir, sizeof(dir), "%s", e);
	else
		snprintf(dir, sizeof(dir), "%s/.cache/aetherium/image",
			 getenv("HOME") ? getenv("HOME") : "/root");
	snprintf(k, sizeof(k), "%s/vmlinux", dir);
	snprintf(i, sizeof(i), "%s/initrd.cpio", dir);
	if (access(k, R_OK) != 0 || access(i, R_OK) != 0) {
		fprintf(stderr,
			"FAIL: guest image missing in %s (vmlinux, initrd.cpio): "
			"build it with scripts/build-image.sh (or set "
			"AETH_IMAGE_DIR); scripts/test.sh does this\n", dir);
		return NULL;
	}
	return dir;
}

/* A manager on the test's state dir and `image_dir`, TCG, a 90 s boot
 * deadline, `snapshots`, `tcg_tb_mb` (0: the default). 0, or -1 saying
 * why on stderr. */
static inline int vmtest_vmm_open(aeth_vmm **out, const char *image_dir,
				  aeth_snapshot_mode snapshots,
				  unsigned int tcg_tb_mb)
{
	aeth_vmm_options o = AETH_VMM_OPTIONS_INIT;

	o.state_dir = vmtest_state_dir;
	o.image_dir = image_dir;
	o.accel = AETH_ACCEL_TCG;
	o.boot_timeout_ms = 90000;
	o.snapshots = snapshots;
	o.tcg_tb_mb = tcg_tb_mb;
	if (aeth_vmm_open(out, &o) != 0) {
		fprintf(stderr, "aeth_vmm_open: %s\n", aeth_error_last());
		return -1;
	}
	return 0;
}

/* True when /proc/PID still exists (any state but gone). */
static inline int vmtest_pid_exists(int pid)
{
	char p[64];
	struct stat st;

	snprintf(p, sizeof(p), "/proc/%d", pid);
	return pid > 0 && stat(p, &st) == 0;
}

#endif
