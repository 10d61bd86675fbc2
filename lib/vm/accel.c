/*
 * lib/vm/accel.c - which accelerator really runs guests here.
 *
 * /dev/kvm existing is not enough: on PVM hosts (kvm_pvm, a software nested
 * hypervisor) KVM_CREATE_VM succeeds but stock guest kernels die early, so
 * AUTO never picks KVM under kvm_pvm. Elsewhere KVM must also run a tiny
 * real-mode program (out + hlt) to count as usable; that probe runs in a
 * child process with a deadline so a broken KVM cannot hang the caller.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "vm/accel.h"

/* In the child: 0 when the guest wrote 0x42 to port 0x10 and halted. */
static int kvm_run_probe(void)
{
	static const unsigned char code[] = {0xb0, 0x42, 0xe6, 0x10, 0xf4};
	struct kvm_userspace_memory_region region;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_run *run;
	int kvm, vm, vcpu, size;
	unsigned char *mem;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0 || ioctl(kvm, KVM_GET_API_VERSION, 0) != 12)
		return 1;
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		return 2;
	mem = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return 3;
	memcpy(mem, code, sizeof(code));
	memset(&region, 0, sizeof(region));
	region.guest_phys_addr = 0x1000;
	region.memory_size = 0x1000;
	region.userspace_addr = (unsigned long)mem;
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return 4;
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vcpu < 0 || size <= 0)
		return 5;
	run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED,
		   vcpu, 0);
	if (run == MAP_FAILED || ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
		return 6;
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
		return 7;
	memset(&regs, 0, sizeof(regs));
	regs.rip = 0x1000;
	regs.rflags = 0x2;
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
		return 8;
	if (ioctl(vcpu, KVM_RUN, 0) < 0 || run->exit_reason != KVM_EXIT_IO ||
	    run->io.port != 0x10 ||
	    *((unsigned char *)run + run->io.data_offset) != 0x42)
		return 9;
	if (ioctl(vcpu, KVM_RUN, 0) < 0 || run->exit_reason != KVM_EXIT_HLT)
		return 10;
	return 0;
}

/* Run the probe in a child with a 3 s deadline; true if it passed. */
static bool kvm_probe_child(void)
{
	pid_t pid = fork();
	int status;
	int64_t deadline;

	if (pid < 0)
		return false;
	if (pid == 0)
		_exit(kvm_run_probe());
	deadline = aeth__now_ms() + 3000;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return WIFEXITED(status) && WEXITSTATUS(status) == 0;
		if (r < 0 && errno != EINTR)
			return false;
		if (aeth__now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return false;
		}
		aeth__sleep_ms(5);
	}
}

static bool kvm_device_works(void)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm;

	if (kvm < 0)
		return false;
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm >= 0)
		close(vm);
	close(kvm);
	return vm >= 0;
}

/* Find `name` on PATH (or as a path); true if executable. */
static bool binary_found(const char *name)
{
	const char *path = getenv("PATH");
	char buf[4096];

	if (strchr(name, '/'))
		return access(name, X_OK) == 0;
	if (!path)
		path = "/usr/bin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");

		if (n > 0 && snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path,
				      name) < (int)sizeof(buf) &&
		    access(buf, X_OK) == 0)
			return true;
		path += n;
		if (*path == ':')
			path++;
	}
	return false;
}

static void note(aeth_accel_info *info, const char *line)
{
	size_t len = strlen(info->detail);

	snprintf(info->detail + len, sizeof(info->detail) - len, "%s%s",
		 len ? "\n" : "", line);
}

static const aeth_accel_info info_defaults = {AETH_ACCEL_INFO_VERSION, 0, 0, 0,
	0, AETH_ACCEL_TCG, ""};
static const size_t info_sizes[] = {sizeof(aeth_accel_info)};
static const aeth__versioned info_v = {
	"aeth_accel_info", "info.version = AETH_ACCEL_INFO_VERSION",
	AETH_ACCEL_INFO_VERSION, info_sizes, &info_defaults,
};

static void probe(aeth_accel_info *info, const char *qemu_binary);

int aeth_accel_probe(aeth_accel_info *info, const char *qemu_binary)
{
	aeth_accel_info full;
	int rc;

	if (!info)
		return aeth__error_set(AETH_EINVALID, "aeth_accel_probe: info is NULL");
	if ((rc = aeth__versioned_check(&info_v, info->version)) != 0)
		return rc;
	probe(&full, qemu_binary);
	/* only the fields the caller's version has */
	full.version = info->version;
	memcpy(info, &full, info_sizes[info->version - 1]);
	return 0;
}

static void probe(aeth_accel_info *info, const char *qemu_binary)
{
	struct stat st;

	memset(info, 0, sizeof(*info));
	info->version = AETH_ACCEL_INFO_VERSION;
	if (!qemu_binary)
		qemu_binary = "qemu-system-x86_64";
	info->tcg_available = binary_found(qemu_binary);
	note(info, info->tcg_available ? "tcg: QEMU found" :
	     "tcg: QEMU not found (apt-get install qemu-system-x86)");
	info->kvm_device = kvm_device_works();
	info->kvm_pvm = stat("/sys/module/kvm_pvm", &st) == 0;
	if (!info->kvm_device)
		note(info, "kvm: /dev/kvm missing or KVM_CREATE_VM fails");
	else if (info->kvm_pvm)
		note(info, "kvm: /dev/kvm is PVM (kvm_pvm module): runs only "
		     "PVM-built guest kernels, not used");
	else if (!(info->kvm_usable = kvm_probe_child()))
		note(info, "kvm: /dev/kvm present but a test guest did not run");
	else
		note(info, "kvm: hardware KVM works");
	info->recommended = info->kvm_usable ? AETH_ACCEL_KVM : AETH_ACCEL_TCG;
}

aeth_accel aeth__accel_resolve(aeth_accel wanted, const char *qemu_binary)
{
	aeth_accel_info info;

	if (wanted != AETH_ACCEL_AUTO)
		return wanted;
	probe(&info, qemu_binary);
	return info.recommended;
}
