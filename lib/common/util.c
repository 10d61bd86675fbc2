/*
 * lib/common/util.c - small helpers: clocks, UUIDs, strings, directories.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "internal.h"

int64_t aeth__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void aeth__sleep_ms(int64_t ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int64_t aeth__wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void aeth__uuid_new(char out[37])
{
	uuid_t u;

	uuid_generate_random(u);
	uuid_unparse_lower(u, out);
}

bool aeth__uuid_valid(const char *s)
{
	uuid_t u;

	return s != NULL && strlen(s) == 36 && uuid_parse(s, u) == 0;
}

char *aeth__strdup(const char *s)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		aeth__error_oom();
	return d;
}

char *aeth__sprintf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		aeth__error_oom();
		return NULL;
	}
	return s;
}

int aeth__mkdir_p(const char *path, unsigned int mode)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return aeth__error_set(AETH_EINVALID,
				       "directory path '%s' is empty or too long",
				       path);
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) != 0 && errno != EEXIST)
			return aeth__error_errno(AETH_EIO,
						 "cannot create directory '%s'",
						 buf);
		*p = '/';
	}
	if (mkdir(buf, mode) != 0 && errno != EEXIST)
		return aeth__error_errno(AETH_EIO, "cannot create directory '%s'",
					 buf);
	return 0;
}

static int rm_rf_at(int parent, const char *name)
{
	struct stat st;
	int fd;
	DIR *d;
	struct dirent *e;
	int rc = 0;

	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(parent, name, 0) == 0 || errno == ENOENT ? 0 : -1;
	fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (rm_rf_at(dirfd(d), e->d_name) != 0)
			rc = -1;
	}
	closedir(d);
	if (unlinkat(parent, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
		rc = -1;
	return rc;
}

int aeth__rm_rf(const char *path)
{
	if (rm_rf_at(AT_FDCWD, path) != 0)
		return aeth__error_errno(AETH_EIO, "cannot remove '%s'", path);
	return 0;
}

static int buf_grow(aeth__buf *b, size_t need)
{
	size_t cap = b->cap ? b->cap : 256;
	char *p;

	if (b->data && b->cap >= need)
		return 0;
	while (cap < need) {
		if (cap > SIZE_MAX / 2)
			return aeth__error_oom();
		cap *= 2;
	}
	p = realloc(b->data, cap);
	if (!p)
		return aeth__error_oom();
	b->data = p;
	b->cap = cap;
	return 0;
}

int aeth__buf_append(aeth__buf *b, const void *data, size_t len)
{
	int rc;

	if (b->limit && b->len + len > b->limit) {
		len = b->limit > b->len ? b->limit - b->len : 0;
		b->truncated = true;
	}
	if ((rc = buf_grow(b, b->len + len + 1)) != 0)
		return rc;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int aeth__buf_printf(aeth__buf *b, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n, rc;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return aeth__error_oom();
	rc = aeth__buf_append(b, s, (size_t)n);
	free(s);
	return rc;
}

char *aeth__buf_detach(aeth__buf *b, size_t *len)
{
	char *d = b->data;

	if (!d && buf_grow(b, 1) == 0) {
		b->data[0] = '\0';
		d = b->data;
	}
	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	b->truncated = false;
	return d;
}

void aeth__buf_free(aeth__buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
