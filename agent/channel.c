/*
 * agent/channel.c - finding and opening the one byte stream to the host:
 * a vsock listener, the virtio-serial port named "agent", or (for local
 * tests) a Unix socket listener.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "agent.h"

#define VPORT_NAME "agent"
#define DEFAULT_VSOCK_PORT 1024
#define FIND_PORT_MS 10000

/* Make `a` listen on a new socket bound to `sa`; `what` names it in logs. */
static int listen_on(struct agent *a, int family, const struct sockaddr *sa,
		     socklen_t len, const char *what)
{
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, sa, len) < 0 || listen(fd, 4) < 0) {
		agent_log("listening on %s: %s", what, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	a->kind = CHAN_LISTEN;
	a->listen_fd = fd;
	return 0;
}

int agent_listen_unix(struct agent *a, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	if (strlen(path) >= sizeof(sa.sun_path)) {
		agent_log("socket path too long: %s", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	unlink(path);
	return listen_on(a, AF_UNIX, (struct sockaddr *)&sa, sizeof(sa), path);
}

static int listen_vsock(struct agent *a, unsigned int port)
{
	struct sockaddr_vm sa = {.svm_family = AF_VSOCK,
				 .svm_cid = VMADDR_CID_ANY,
				 .svm_port = port};
	char what[32];

	snprintf(what, sizeof(what), "vsock port %u", port);
	return listen_on(a, AF_VSOCK, (struct sockaddr *)&sa, sizeof(sa), what);
}

/* /sys/class/virtio-ports/vportNpM/name == "agent" -> /dev/vportNpM */
static int find_vport(char *dev, size_t cap)
{
	DIR *d = opendir("/sys/class/virtio-ports");
	struct dirent *de;
	int found = -1;

	if (!d)
		return -1;
	while (found < 0 && (de = readdir(d))) {
		char path[512], name[64] = "";
		FILE *fp;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name",
			 de->d_name);
		fp = fopen(path, "re");
		if (!fp)
			continue;
		if (fgets(name, sizeof(name), fp))
			name[strcspn(name, "\n")] = 0;
		fclose(fp);
		if (strcmp(name, VPORT_NAME) == 0) {
			snprintf(dev, cap, "/dev/%s", de->d_name);
			found = 0;
		}
	}
	closedir(d);
	return found;
}

static int open_vport(struct agent *a, int wait_ms)
{
	int64_t end = agent_now_ms() + wait_ms;
	char dev[300];
	int fd;

	/* The port appears once virtio_console probed it: wait a little. */
	while (find_vport(dev, sizeof(dev)) < 0) {
		if (agent_now_ms() >= end)
			return -1;
		usleep(20 * 1000);
	}
	while ((fd = open(dev, O_RDWR | O_NONBLOCK | O_CLOEXEC)) < 0) {
		if (agent_now_ms() >= end) {
			agent_log("opening %s: %s", dev, strerror(errno));
			return -1;
		}
		usleep(20 * 1000); /* devtmpfs node may lag the sysfs entry */
	}
	a->kind = CHAN_VPORT;
	a->listen_fd = fd; /* the port; in_fd/out_fd set while connected */
	return 0;
}

int agent_channel_open(struct agent *a, const char *cmdline)
{
	char *chan = agent_cmdline_get(cmdline, "aeth.channel");
	char *port_s = agent_cmdline_get(cmdline, "aeth.port");
	unsigned int port = port_s ? (unsigned int)strtoul(port_s, NULL, 10)
				   : DEFAULT_VSOCK_PORT;
	int rc;

	if (chan && strcmp(chan, "vsock") == 0)
		rc = listen_vsock(a, port);
	else if (chan && strcmp(chan, "virtio-serial") == 0)
		rc = open_vport(a, FIND_PORT_MS);
	else /* not said: a named port is the more specific sign */
		rc = open_vport(a, 1000) == 0 ? 0 : listen_vsock(a, port);
	if (rc < 0)
		agent_log("no channel to the host (aeth.channel=%s)",
			  chan ? chan : "unset");
	free(chan);
	free(port_s);
	return rc;
}
