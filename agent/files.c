/*
 * agent/files.c - file put (written to a temporary name, renamed when
 * complete) and get (sent in chunks while the output queue has room).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"

static int find_file(struct agent *a, uint32_t id)
{
	for (int i = 0; i < AGENT_MAX_FILES; i++)
		if (a->files[i] && a->files[i]->id == id)
			return i;
	return -1;
}

static void file_drop(struct agent *a, int slot)
{
	struct agent_file *f = a->files[slot];

	if (f->fd >= 0)
		close(f->fd);
	if (f->tmp)
		unlink(f->tmp);
	free(f->path);
	free(f->tmp);
	free(f);
	a->files[slot] = NULL;
}

void agent_files_reset(struct agent *a)
{
	for (int i = 0; i < AGENT_MAX_FILES; i++)
		if (a->files[i])
			file_drop(a, i);
}

static int new_slot(struct agent *a, uint32_t id)
{
	if (id == 0 || find_file(a, id) >= 0) {
		agent_send_error(a, id, AETH_EPROTO,
				 "file request id %u is 0 or already in use",
				 id);
		return -1;
	}
	for (int i = 0; i < AGENT_MAX_FILES; i++)
		if (!a->files[i]) {
			a->files[i] = calloc(1, sizeof(struct agent_file));
			if (!a->files[i])
				break;
			a->files[i]->id = id;
			a->files[i]->fd = -1;
			return i;
		}
	agent_send_error(a, id, AETH_EBUSY,
			 "too many file transfers at once (max %d)",
			 AGENT_MAX_FILES);
	return -1;
}

static void send_ok(struct agent *a, uint32_t id, uint64_t size)
{
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;

	aeth__proto_msg_begin(&m, AETH__MSG_OK, id);
	aeth__proto_add_u64(&m, AETH__F_SIZE, size);
	agent_send(a, &m);
	aeth__proto_msg_free(&m);
}

static void put_open(struct agent *a, uint32_t id,
		     const aeth__proto_fields *p)
{
	struct agent_file *f;
	int slot;

	if (!p->path || !p->path[0] || p->size > AETH__PROTO_FILE_MAX) {
		agent_send_error(a, id, p->path ? AETH_ETOOBIG : AETH_EINVALID,
				 p->path ? "file of %llu bytes is over the "
					   "limit of %llu bytes"
					 : "put without a path (%llu/%llu)",
				 (unsigned long long)p->size,
				 (unsigned long long)AETH__PROTO_FILE_MAX);
		return;
	}
	slot = new_slot(a, id);
	if (slot < 0)
		return;
	f = a->files[slot];
	f->put = true;
	f->size = p->size;
	f->path = strdup(p->path);
	if (asprintf(&f->tmp, "%s.aeth-put-%u", p->path, id) < 0)
		f->tmp = NULL;
	if (!f->path || !f->tmp) {
		agent_send_error(a, id, AETH_ENOMEM, "agent out of memory");
		file_drop(a, slot);
		return;
	}
	f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		     AETH__PROTO_HAS(p, AETH__F_MODE) ? (mode_t)(p->mode & 07777)
						      : 0644);
	if (f->fd < 0) {
		agent_send_error(a, id, errno == ENOENT ? AETH_ENOTFOUND : AETH_EIO,
				 "cannot create '%s': %s", p->path,
				 strerror(errno));
		free(f->tmp);
		f->tmp = NULL; /* nothing to unlink */
		file_drop(a, slot);
	}
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void put_data(struct agent *a, int slot, const aeth__proto_fields *p)
{
	struct agent_file *f = a->files[slot];

	if (f->done + p->data_len > f->size) {
		agent_send_error(a, f->id, AETH_ETOOBIG,
				 "more data than the %llu bytes announced for "
				 "'%s'", (unsigned long long)f->size, f->path);
		file_drop(a, slot);
		return;
	}
	if (write_all(f->fd, p->data, p->data_len) < 0) {
		agent_send_error(a, f->id, AETH_EIO, "writing '%s': %s",
				 f->path, strerror(errno));
		file_drop(a, slot);
		return;
	}
	f->done += p->data_len;
}

static void put_close(struct agent *a, int slot)
{
	struct agent_file *f = a->files[slot];

	if (f->done != f->size) {
		agent_send_error(a, f->id, AETH_EPROTO,
				 "'%s': %llu bytes announced, %llu received",
				 f->path, (unsigned long long)f->size,
				 (unsigned long long)f->done);
	} else if (close(f->fd) < 0 || (f->fd = -1, 0) ||
		   rename(f->tmp, f->path) < 0) {
		f->fd = -1;
		agent_send_error(a, f->id, AETH_EIO, "saving '%s': %s",
				 f->path, strerror(errno));
	} else {
		free(f->tmp);
		f->tmp = NULL;
		send_ok(a, f->id, f->size);
	}
	file_drop(a, slot);
}

static void get_open(struct agent *a, uint32_t id,
		     const aeth__proto_fields *p)
{
	uint64_t max = p->max_len && p->max_len < AETH__PROTO_FILE_MAX
			       ? p->max_len : AETH__PROTO_FILE_MAX;
	struct stat st;
	int slot, fd;

	if (!p->path) {
		agent_send_error(a, id, AETH_EINVALID, "get without a path");
		return;
	}
	fd = open(p->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		int e = fd < 0 ? errno : EISDIR;

		agent_send_error(a, id, e == ENOENT ? AETH_ENOTFOUND : AETH_EIO,
				 "cannot read '%s': %s", p->path,
				 fd < 0 || e != EISDIR ? strerror(e)
						       : "not a regular file");
		if (fd >= 0)
			close(fd);
		return;
	}
	if ((uint64_t)st.st_size > max) {
		agent_send_error(a, id, AETH_ETOOBIG,
				 "'%s' has %lld bytes, over the limit of %llu",
				 p->path, (long long)st.st_size,
				 (unsigned long long)max);
		close(fd);
		return;
	}
	slot = new_slot(a, id);
	if (slot < 0) {
		close(fd);
		return;
	}
	a->files[slot]->fd = fd;
	a->files[slot]->size = max; /* the file may grow while read */
}

void agent_file_frame(struct agent *a, const aeth__proto_header *h,
		      const aeth__proto_fields *p)
{
	int slot;

	if (h->type == AETH__MSG_PUT_OPEN) {
		put_open(a, h->id, p);
		return;
	}
	if (h->type == AETH__MSG_GET) {
		get_open(a, h->id, p);
		return;
	}
	slot = find_file(a, h->id);
	if (slot < 0 || !a->files[slot]->put) {
		/* After a failed put the host may still send its data. */
		if (h->type == AETH__MSG_PUT_CLOSE && slot < 0)
			agent_send_error(a, h->id, AETH_ENOTFOUND,
					 "no upload with id %u", h->id);
		return;
	}
	if (h->type == AETH__MSG_PUT_DATA)
		put_data(a, slot, p);
	else
		put_close(a, slot);
}

/* Send file chunks while the output queue has room. */
void agent_files_pump(struct agent *a)
{
	static uint8_t buf[AETH__PROTO_CHUNK];

	for (int i = 0; i < AGENT_MAX_FILES; i++) {
		struct agent_file *f = a->files[i];

		while (f && !f->put && !agent_out_full(a)) {
			aeth__proto_msg m = AETH__PROTO_MSG_INIT;
			ssize_t n = read(f->fd, buf, sizeof(buf));

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 || f->done + (uint64_t)n > f->size) {
				agent_send_error(a, f->id, n < 0 ? AETH_EIO
								 : AETH_ETOOBIG,
						 "reading the file: %s",
						 n < 0 ? strerror(errno)
						       : "it grew past the limit");
				file_drop(a, i);
				break;
			}
			if (n == 0) {
				send_ok(a, f->id, f->done);
				file_drop(a, i);
				break;
			}
			aeth__proto_msg_begin(&m, AETH__MSG_GET_DATA, f->id);
			aeth__proto_add_bytes(&m, AETH__F_DATA, buf, (size_t)n);
			agent_send(a, &m);
			aeth__proto_msg_free(&m);
			f->done += (uint64_t)n;
		}
	}
}
