/*
 * lib/vm/qmp.c - QMP: newline-delimited JSON over the VMM's control socket.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "internal.h"
#include "vm/backend.h"
#include "vm/qmp.h"

/* A QMP reply we accept; query replies are small. */
#define QMP_LINE_MAX (256 * 1024)

/* Read one JSON message (one line) into a cJSON object. */
static int read_msg(int fd, int64_t deadline_ms, cJSON **out)
{
	aeth__buf b = AETH__BUF_INIT;
	char c;
	int rc;

	*out = NULL;
	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		int64_t left = deadline_ms - aeth__now_ms();
		ssize_t n;

		if (left <= 0) {
			rc = aeth__error_set(AETH_ETIMEOUT,
					     "QMP: no reply from QEMU in time");
			goto out;
		}
		rc = poll(&p, 1, (int)left);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc == 0)
			continue;
		/* Byte by byte keeps it simple; replies are tiny and rare. */
		n = read(fd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = aeth__error_set(AETH_EUNAVAILABLE,
					     "QMP: QEMU closed the control socket");
			goto out;
		}
		if (c == '\n')
			break;
		if (b.len >= QMP_LINE_MAX) {
			rc = aeth__error_set(AETH_EPROTO, "QMP: message too long");
			goto out;
		}
		if ((rc = aeth__buf_append(&b, &c, 1)) != 0)
			goto out;
	}
	*out = cJSON_Parse(b.data ? b.data : "");
	rc = cJSON_IsObject(*out) ? 0 :
		aeth__error_set(AETH_EPROTO, "QMP: QEMU sent something that is "
				"not a JSON object");
	if (rc) {
		cJSON_Delete(*out);
		*out = NULL;
	}
out:
	aeth__buf_free(&b);
	return rc;
}

/* Write `s`; with passfd >= 0 that descriptor rides on the first bytes
 * (SCM_RIGHTS), as QMP's getfd expects. */
static int write_all(int fd, const char *s, int passfd)
{
	size_t len = strlen(s), off = 0;

	while (off < len) {
		ssize_t n;

		if (passfd >= 0) {
			char cbuf[CMSG_SPACE(sizeof(int))];
			struct iovec iov = {(void *)(s + off), len - off};
			struct msghdr mh;
			struct cmsghdr *c;

			memset(&mh, 0, sizeof(mh));
			memset(cbuf, 0, sizeof(cbuf));
			mh.msg_iov = &iov;
			mh.msg_iovlen = 1;
			mh.msg_control = cbuf;
			mh.msg_controllen = sizeof(cbuf);
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &passfd, sizeof(int));
			n = sendmsg(fd, &mh, MSG_NOSIGNAL);
			if (n > 0)
				passfd = -1;
		} else {
			n = send(fd, s + off, len - off, MSG_NOSIGNAL);
		}

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return aeth__error_errno(AETH_EUNAVAILABLE,
						 "QMP: cannot write to QEMU");
		off += (size_t)n;
	}
	return 0;
}

int aeth__qmp_execute(int fd, const char *execute, int64_t deadline_ms,
		      char **reply_out)
{
	return aeth__qmp_execute_args(fd, execute, NULL, deadline_ms, reply_out);
}

int aeth__qmp_execute_args(int fd, const char *execute, const char *args_json,
			   int64_t deadline_ms, char **reply_out)
{
	return aeth__qmp_execute_fd(fd, execute, args_json, -1, deadline_ms,
				    reply_out);
}

int aeth__qmp_execute_fd(int fd, const char *execute, const char *args_json,
			 int passfd, int64_t deadline_ms, char **reply_out)
{
	char *cmd;
	int rc;

	if (reply_out)
		*reply_out = NULL;
	cmd = args_json ?
		aeth__sprintf("{\"execute\":\"%s\",\"arguments\":%s}\n",
			      execute, args_json) :
		aeth__sprintf("{\"execute\":\"%s\"}\n", execute);
	if (!cmd)
		return aeth__error_oom();
	rc = write_all(fd, cmd, passfd);
	free(cmd);
	if (rc != 0)
		return rc;
	for (;;) {
		cJSON *m, *v;

		if ((rc = read_msg(fd, deadline_ms, &m)) != 0)
			return aeth__error_wrap(rc, "QMP %s", execute);
		if ((v = cJSON_GetObjectItemCaseSensitive(m, "return")) != NULL) {
			if (reply_out && !(*reply_out = cJSON_PrintUnformatted(v)))
				rc = aeth__error_oom();
			cJSON_Delete(m);
			return rc;
		}
		if ((v = cJSON_GetObjectItemCaseSensitive(m, "error")) != NULL) {
			const cJSON *d = cJSON_GetObjectItemCaseSensitive(v, "desc");

			rc = aeth__error_set(AETH_ERROR, "QMP %s failed: %s", execute,
					     cJSON_IsString(d) ? d->valuestring :
					     "(no description)");
			cJSON_Delete(m);
			return rc;
		}
		cJSON_Delete(m); /* an event: skip */
	}
}

int aeth__qmp_open(const char *path, int64_t deadline_ms)
{
	int fd, rc;
	cJSON *greeting;

	for (;;) {
		fd = aeth__vm_unix_connect(path);
		if (fd >= 0)
			break;
		if (aeth__now_ms() >= deadline_ms)
			return aeth__error_set(AETH_EUNAVAILABLE,
					       "QMP socket %s: cannot connect: %s",
					       path, strerror(-fd));
		aeth__sleep_ms(5);
	}
	if ((rc = read_msg(fd, deadline_ms, &greeting)) != 0)
		goto fail;
	if (!cJSON_GetObjectItemCaseSensitive(greeting, "QMP")) {
		cJSON_Delete(greeting);
		rc = aeth__error_set(AETH_EPROTO, "QMP socket %s: no greeting",
				     path);
		goto fail;
	}
	cJSON_Delete(greeting);
	if ((rc = aeth__qmp_execute(fd, "qmp_capabilities", deadline_ms,
				    NULL)) != 0)
		goto fail;
	return fd;
fail:
	close(fd);
	return rc;
}
