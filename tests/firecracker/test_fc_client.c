/*
 * Tests of the Firecracker API client, the hybrid vsock handshake and the
 * per-VM disk copy, against the strict stand-in
 * (tests/firecracker/standin/), with `cat` as the "guest" (an echo).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aetherium/aetherium.h"
#include "internal.h"
#include "vm/backend.h"
#include "vm/firecracker_api.h"
#include "vm/firecracker_disk.h"
#include "vm/firecracker_vsock.h"
#include "fc_files.h"

typedef struct {
	char dir[64];
	char api[128], vsock[128], log[128], kernel[128];
	pid_t pid;
	aeth__fc_api *client;
} fixture;

/* Start the stand-in with the given extra environment ("K=V" or NULL). */
static void start_standin(fixture *fx, const char *env1)
{
	const char *root = getenv("AETH_SOURCE_ROOT");
	char wrapper[512];
	int64_t until;

	assert_non_null(root);
	snprintf(wrapper, sizeof(wrapper), "%s/tests/firecracker/standin/firecracker", root);
	fx->pid = fork();
	assert_true(fx->pid >= 0);
	if (fx->pid == 0) {
		setenv("AETH_FC_STANDIN_LOG", fx->log, 1);
		setenv("AETH_FC_STANDIN_GUEST", "cat", 1);
		if (env1)
			putenv((char *)env1);
		execl(wrapper, wrapper, "--api-sock", fx->api, "--id", "test-vm", (char *)NULL);
		_exit(127);
	}
	/* The socket file exists from bind(), before listen(): wait until it
	 * accepts, as the backend does. */
	until = aeth__now_ms() + 10000;
	for (;;) {
		int fd = aeth__vm_unix_connect(fx->api);

		if (fd >= 0) {
			close(fd);
			break;
		}
		assert_true(aeth__now_ms() < until);
		usleep(10000);
	}
	assert_int_equal(aeth__fc_api_open(&fx->client, fx->api, 3000), 0);
}

static int setup(void **state)
{
	fixture *fx = calloc(1, sizeof(*fx));

	strcpy(fx->dir, "/tmp/aeth-fct-XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	snprintf(fx->api, sizeof(fx->api), "%s/api.sock", fx->dir);
	snprintf(fx->vsock, sizeof(fx->vsock), "%s/v.sock", fx->dir);
	snprintf(fx->log, sizeof(fx->log), "%s/calls.jsonl", fx->dir);
	snprintf(fx->kernel, sizeof(fx->kernel), "%s/vmlinux", fx->dir);
	fc_write_file(fx->kernel, "not really a kernel\n");
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	fixture *fx = *state;

	aeth__fc_api_free(fx->client);
	if (fx->pid > 0) {
		kill(fx->pid, SIGTERM);
		waitpid(fx->pid, NULL, 0);
	}
	aeth__rm_rf(fx->dir);
	free(fx);
	return 0;
}

static void configure_and_start(fixture *fx)
{
	assert_int_equal(aeth__fc_put_machine_config(fx->client, 2, 256), 0);
	assert_int_equal(aeth__fc_put_boot_source(fx->client, fx->kernel, NULL,
						  "console=ttyS0 aeth.channel=vsock aeth.port=1024"),
			 0);
	assert_int_equal(aeth__fc_put_drive(fx->client, "rootfs", fx->kernel, true, true), 0);
	assert_int_equal(aeth__fc_put_vsock(fx->client, 3, fx->vsock), 0);
	assert_int_equal(aeth__fc_put_action(fx->client, "InstanceStart"), 0);
}

static void test_config_sequence_and_vsock_echo(void **state)
{
	fixture *fx = *state;
	char *id = NULL, *vmstate = NULL, *log, buf[16] = "";
	const char *p;
	int fd = -1;

	start_standin(fx, NULL);
	assert_int_equal(aeth__fc_get_instance(fx->client, &id, &vmstate), 0);
	assert_string_equal(id, "test-vm");
	assert_string_equal(vmstate, "Not started");
	free(vmstate);
	configure_and_start(fx);
	assert_int_equal(aeth__fc_get_instance(fx->client, NULL, &vmstate), 0);
	assert_string_equal(vmstate, "Running");

	assert_int_equal(aeth__fc_vsock_connect(fx->vsock, 1024, aeth__now_ms() + 5000,
						NULL, NULL, &fd), 0);
	assert_int_equal(write(fd, "ping\n", 5), 5);
	assert_int_equal(read(fd, buf, 5), 5);
	assert_memory_equal(buf, "ping\n", 5);
	close(fd);

	/* The stand-in logs every call: order, bodies and answers. */
	log = fc_slurp(fx->log);
	p = strstr(log, "\"path\": \"/machine-config\", \"body\": {\"vcpu_count\": 2, \"mem_size_mib\": 256}, \"status\": 204");
	assert_non_null(p);
	p = strstr(p, "\"path\": \"/boot-source\"");
	assert_non_null(p);
	p = strstr(p, "\"path\": \"/drives/rootfs\", \"body\": {\"drive_id\": \"rootfs\"");
	assert_non_null(p);
	p = strstr(p, "\"path\": \"/vsock\", \"body\": {\"guest_cid\": 3, \"uds_path\"");
	assert_non_null(p);
	p = strstr(p, "{\"action_type\": \"InstanceStart\"}, \"status\": 204");
	assert_non_null(p);
	/* The guest was not listening at first: silent closes, then OK. */
	p = strstr(p, "\"result\": \"closed\"");
	assert_non_null(p);
	assert_non_null(strstr(p, "\"result\": \"OK\""));
	assert_null(strstr(log, "\"status\": 400"));
	free(log);
	free(id);
	free(vmstate);
}

static void test_fault_message_in_error(void **state)
{
	fixture *fx = *state;

	start_standin(fx, NULL);
	aeth_error_clear();
	assert_int_equal(aeth__fc_put_boot_source(fx->client, "/nonexistent/vmlinux", NULL, NULL),
			 AETH_EINVALID);
	assert_int_equal(aeth__fc_api_last_status(fx->client), 400);
	assert_non_null(strstr(aeth_error_last(), "PUT /boot-source: 400: The kernel file cannot be opened"));
	assert_non_null(strstr(aeth_error_last(), fx->api));
	/* InstanceStart before a boot source: Firecracker's rule. */
	assert_int_equal(aeth__fc_put_action(fx->client, "InstanceStart"), AETH_EINVALID);
	assert_non_null(strstr(aeth_error_last(), "without kernel configuration"));
}

/* Jailed (as jailer_standin.py execs it), the stand-in opens only what a
 * chrooted Firecracker could: never its own plumbing in the jail, never a
 * relative path. */
static void test_jailed_standin_refuses_plumbing(void **state)
{
	fixture *fx = *state;

	start_standin(fx, "AETH_FC_STANDIN_JAILED=1");
	assert_int_equal(aeth__fc_put_boot_source(fx->client, "/usr/bin/python3", NULL,
						  NULL), AETH_EINVALID);
	assert_non_null(strstr(aeth_error_last(), "is not a path inside the jail"));
	assert_int_equal(aeth__fc_put_boot_source(fx->client, "vmlinux", NULL, NULL),
			 AETH_EINVALID);
	assert_int_equal(aeth__fc_put_vsock(fx->client, 3, "/.standin/v.sock"),
			 AETH_EINVALID);
	/* a path that is in the "jail" (here: absolute) is fine */
	assert_int_equal(aeth__fc_put_boot_source(fx->client, fx->kernel, NULL, NULL), 0);
}

static void test_spec_validation(void **state)
{
	fixture *fx = *state;

	start_standin(fx, NULL);
	assert_int_equal(aeth__fc_api_call(fx->client, "PUT", "/machine-config",
					   "{\"vcpu_count\":1,\"mem_size_mib\":128,\"bogus\":1}", NULL),
			 AETH_EINVALID);
	assert_non_null(strstr(aeth_error_last(), "unknown field `bogus`"));
	assert_int_equal(aeth__fc_api_call(fx->client, "PUT", "/machine-config",
					   "{\"vcpu_count\":\"1\",\"mem_size_mib\":128}", NULL),
			 AETH_EINVALID);
	assert_non_null(strstr(aeth_error_last(), "expected an integer"));
	assert_int_equal(aeth__fc_api_call(fx->client, "PUT", "/vsock",
					   "{\"uds_path\":\"/tmp/x\"}", NULL),
			 AETH_EINVALID);
	assert_non_null(strstr(aeth_error_last(), "missing field `guest_cid`"));
	assert_int_equal(aeth__fc_api_call(fx->client, "PUT", "/actions",
					   "{\"action_type\":\"Reboot\"}", NULL),
			 AETH_EINVALID);
	assert_non_null(strstr(aeth_error_last(), "unknown variant `Reboot`"));
	assert_int_equal(aeth__fc_api_call(fx->client, "PUT", "/no-such-thing", "{}", NULL),
			 AETH_EINVALID);
}

static void test_config_after_start_rejected(void **state)
{
	fixture *fx = *state;

	start_standin(fx, NULL);
	configure_and_start(fx);
	assert_int_equal(aeth__fc_put_machine_config(fx->client, 1, 128), AETH_EINVALID);
	assert_non_null(strstr(aeth_error_last(), "not supported after starting"));
	assert_int_equal(aeth__fc_put_action(fx->client, "InstanceStart"), AETH_EINVALID);
}

static void test_vsock_guest_never_listens(void **state)
{
	fixture *fx = *state;
	int64_t t0;
	int fd = -1;

	start_standin(fx, "AETH_FC_STANDIN_NEVER_LISTEN=1");
	configure_and_start(fx);
	t0 = aeth__now_ms();
	assert_int_equal(aeth__fc_vsock_connect(fx->vsock, 1024, t0 + 700, NULL, NULL, &fd),
			 AETH_ETIMEOUT);
	assert_true(aeth__now_ms() - t0 < 2500);
	assert_int_equal(fd, -1);
	print_message("error: %s\n", aeth_error_last());
	assert_non_null(strstr(aeth_error_last(), "closed without a reply"));
	assert_non_null(strstr(aeth_error_last(), fx->vsock));
}

static bool never_alive(void *userdata)
{
	(*(int *)userdata)++;
	return false;
}

static void test_vsock_stops_when_vmm_dead(void **state)
{
	fixture *fx = *state;
	int calls = 0, fd = -1;

	assert_int_equal(aeth__fc_vsock_connect(fx->vsock, 1024, aeth__now_ms() + 5000,
						never_alive, &calls, &fd),
			 AETH_EUNAVAILABLE);
	assert_int_equal(calls, 1);
	assert_non_null(strstr(aeth_error_last(), "exited"));
}

static void test_api_socket_missing(void **state)
{
	fixture *fx = *state;

	assert_int_equal(aeth__fc_api_open(&fx->client, fx->api, 1000), 0);
	assert_int_equal(aeth__fc_put_action(fx->client, "InstanceStart"), AETH_EUNAVAILABLE);
	assert_non_null(strstr(aeth_error_last(), "is the firecracker process running?"));
}

/* A socket replaced by a symbolic link (a jailed Firecracker owns the
 * directory of its sockets) is never followed, by connects or by the API
 * client: the host side would otherwise talk, as root, to whatever host
 * socket the link names. */
static void test_socket_link_not_followed(void **state)
{
	fixture *fx = *state;
	char real[96], link[96];
	int srv, fd;

	snprintf(real, sizeof(real), "%s/real.sock", fx->dir);
	snprintf(link, sizeof(link), "%s/link.sock", fx->dir);
	srv = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	{
		struct sockaddr_un sa = {.sun_family = AF_UNIX};

		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", real);
		assert_int_equal(bind(srv, (struct sockaddr *)&sa, sizeof(sa)), 0);
		assert_int_equal(listen(srv, 4), 0);
	}
	assert_int_equal(symlink(real, link), 0);
	fd = aeth__fc_unix_connect(real);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(aeth__fc_unix_connect(link), -ENOTSOCK);
	assert_int_equal(aeth__fc_api_open(&fx->client, link, 1000), 0);
	assert_int_equal(aeth__fc_put_action(fx->client, "InstanceStart"), AETH_EUNAVAILABLE);
	assert_non_null(strstr(aeth_error_last(), "Socket operation on non-socket"));
	assert_int_equal(aeth__fc_vsock_connect(link, 1024, aeth__now_ms() + 200, NULL,
						NULL, &fd), AETH_ETIMEOUT);
	close(srv);
}

static void test_disk_clone_sparse(void **state)
{
	fixture *fx = *state;
	char src[160], dst[160];
	struct stat st;
	bool reflinked = true;
	int fd;

	snprintf(src, sizeof(src), "%s/src.img", fx->dir);
	snprintf(dst, sizeof(dst), "%s/dst.img", fx->dir);
	fd = open(src, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "head", 4, 0), 4);
	assert_int_equal(pwrite(fd, "tail", 4, 64L << 20), 4);
	close(fd);
	assert_int_equal(aeth__fc_disk_clone(src, dst, &reflinked), 0);
	assert_int_equal(stat(dst, &st), 0);
	assert_int_equal(st.st_size, (64L << 20) + 4);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* Sparse (or shared): far fewer blocks than 64 MiB. */
	assert_true(reflinked || st.st_blocks * 512 < (8L << 20));
	fd = open(dst, O_RDONLY);
	{
		char h[4], t[4], z[4];

		assert_int_equal(pread(fd, h, 4, 0), 4);
		assert_memory_equal(h, "head", 4);
		assert_int_equal(pread(fd, z, 4, 32L << 20), 4);
		assert_memory_equal(z, "\0\0\0\0", 4);
		assert_int_equal(pread(fd, t, 4, 64L << 20), 4);
		assert_memory_equal(t, "tail", 4);
	}
	close(fd);
	/* Never over an existing file (another VM's disk). */
	assert_int_equal(aeth__fc_disk_clone(src, dst, NULL), AETH_EEXISTS);
	assert_int_equal(aeth__fc_disk_clone("/nonexistent.img", "/tmp/x", NULL), AETH_ENOTFOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config_sequence_and_vsock_echo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_message_in_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spec_validation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_after_start_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vsock_guest_never_listens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vsock_stops_when_vmm_dead, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_socket_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_clone_sparse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_link_not_followed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_jailed_standin_refuses_plumbing, setup,
						teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
