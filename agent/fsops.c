/*
 * agent/fsops.c - file-system requests that need no transfer: stat, list
 * a directory, mkdir, remove (protocol level 2, docs/protocol.md
 * "Directories"). Each is answered at once with `ok` or `error`; symlinks
 * are never followed (lstat, nftw FTW_PHYS), so a path inside the guest
 * cannot redirect a recursive remove elsewhere.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"

/* An errno as the library's code: what a caller acts on. */
static int fs_code(int e)
{
	switch (e) {
	case ENOENT:
		return AETH_ENOTFOUND;
	case EEXIST:
		return AETH_EEXISTS;
	case ENOTDIR:
	case EISDIR:
	case ENOTEMPTY:
	case EINVAL:
	case ENAMETOOLONG:
		return AETH_EINVALID;
	default:
		return AETH_EIO;
	}
}

static void fs_fail(struct agent *a, uint32_t id, const char *what,
		    const char *path, int e)
{
	agent_send_error(a, id, fs_code(e), "%s '%s': %s", what, path,
			 strerror(e));
}

static void fs_ok(struct agent *a, uint32_t id, const struct stat *st,
		  const uint8_t *data, size_t len, uint64_t count)
{
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;

	aeth__proto_msg_begin(&m, AETH__MSG_OK, id);
	if (st) {
		aeth__proto_add_u64(&m, AETH__F_MODE, (uint64_t)st->st_mode);
		aeth__proto_add_u64(&m, AETH__F_SIZE, (uint64_t)st->st_size);
	} else {
		aeth__proto_add_u64(&m, AETH__F_SIZE, count);
	}
	if (data)
		aeth__proto_add_bytes(&m, AETH__F_DATA, data, len);
	agent_send(a, &m);
	aeth__proto_msg_free(&m);
}

static void put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* Entries as records (mode u32, size u64, name length u16, name), all in
 * one `ok`: a directory whose records pass AETH__PROTO_LIST_MAX is
 * refused rather than sent in pieces. */
static void fs_list(struct agent *a, uint32_t id, const char *path)
{
	DIR *d = opendir(path);
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	uint64_t count = 0;
	struct dirent *de;
	int e = 0;

	if (!d) {
		fs_fail(a, id, "cannot list", path, errno);
		return;
	}
	while ((errno = 0, de = readdir(d))) {
		size_t n = strlen(de->d_name);
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* gone meanwhile */
		if (len + 14 + n > AETH__PROTO_LIST_MAX) {
			e = E2BIG;
			break;
		}
		if (len + 14 + n > cap) {
			size_t ncap = cap ? cap * 2 : 4096;
			uint8_t *nb;

			while (ncap < len + 14 + n)
				ncap *= 2;
			nb = realloc(buf, ncap);
			if (!nb) {
				e = ENOMEM;
				break;
			}
			buf = nb;
			cap = ncap;
		}
		put_be(buf + len, (uint64_t)st.st_mode, 4);
		put_be(buf + len + 4, (uint64_t)st.st_size, 8);
		put_be(buf + len + 12, n, 2);
		memcpy(buf + len + 14, de->d_name, n);
		len += 14 + n;
		count++;
	}
	if (!de && errno && !e)
		e = errno;
	closedir(d);
	if (e == E2BIG)
		agent_send_error(a, id, AETH_ETOOBIG, "cannot list '%s': its "
				 "entries pass the %u-byte limit of one reply",
				 path, (unsigned int)AETH__PROTO_LIST_MAX);
	else if (e)
		fs_fail(a, id, "cannot list", path, e);
	else
		fs_ok(a, id, NULL, buf ? buf : (const uint8_t *)"", len, count);
	free(buf);
}

/* mkdir -p: each missing component, an existing directory is fine. */
static int mkdir_parents(char *path, mode_t mode)
{
	struct stat st;

	for (char *p = path + 1;; p++) {
		char c = *p;

		if (c != '/' && c != '\0')
			continue;
		*p = '\0';
		if (mkdir(path, mode) < 0 &&
		    (errno != EEXIST || stat(path, &st) < 0 || !S_ISDIR(st.st_mode))) {
			if (errno == EEXIST)
				errno = ENOTDIR;
			*p = c;
			return -1;
		}
		*p = c;
		if (c == '\0')
			return 0;
	}
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (flag == FTW_DP ? rmdir(p) : unlink(p)) < 0 ? -1 : 0;
}

static void fs_mkdir(struct agent *a, uint32_t id, const aeth__proto_fields *p)
{
	mode_t mode = AETH__PROTO_HAS(p, AETH__F_MODE) ? (mode_t)(p->mode & 07777)
						       : 0755;
	char *copy;
	int rc;

	if (!(p->flags & AETH__PROTO_FS_DEEP)) {
		rc = mkdir(p->path, mode);
	} else {
		if (!(copy = strdup(p->path))) {
			agent_send_error(a, id, AETH_ENOMEM, "agent out of memory");
			return;
		}
		rc = mkdir_parents(copy, mode);
		free(copy);
	}
	/* mkdir() applies the umask: the bits asked for, as put does */
	if (rc == 0 && chmod(p->path, mode) < 0)
		rc = -1;
	if (rc < 0)
		fs_fail(a, id, "cannot make directory", p->path, errno);
	else
		fs_ok(a, id, NULL, NULL, 0, 0);
}

static void fs_remove(struct agent *a, uint32_t id, const aeth__proto_fields *p)
{
	struct stat st;
	int rc;

	if (lstat(p->path, &st) < 0) {
		fs_fail(a, id, "cannot remove", p->path, errno);
		return;
	}
	if (!S_ISDIR(st.st_mode))
		rc = unlink(p->path);
	else if (p->flags & AETH__PROTO_FS_DEEP)
		rc = nftw(p->path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	else
		rc = rmdir(p->path);
	if (rc < 0)
		fs_fail(a, id, "cannot remove", p->path, errno);
	else
		fs_ok(a, id, NULL, NULL, 0, 0);
}

void agent_fs_frame(struct agent *a, const aeth__proto_header *h,
		    const aeth__proto_fields *p)
{
	struct stat st;

	if (!p->path || !p->path[0]) {
		agent_send_error(a, h->id, AETH_EINVALID, "%s without a path",
				 aeth__proto_type_name(h->type));
		return;
	}
	switch (h->type) {
	case AETH__MSG_STAT:
		if (lstat(p->path, &st) < 0)
			fs_fail(a, h->id, "cannot stat", p->path, errno);
		else
			fs_ok(a, h->id, &st, NULL, 0, 0);
		break;
	case AETH__MSG_LIST:
		fs_list(a, h->id, p->path);
		break;
	case AETH__MSG_MKDIR:
		fs_mkdir(a, h->id, p);
		break;
	default: /* AETH__MSG_REMOVE */
		fs_remove(a, h->id, p);
		break;
	}
}
