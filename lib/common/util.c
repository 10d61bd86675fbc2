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

void aeth__timespec_in(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
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

int aeth__private_dir(const char *path, const char *what)
{
	struct stat st;
	char *parent = aeth__strdup(path), *slash;
	int rc = 0;

	if (!parent)
		return AETH_ENOMEM;
	slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = '\0';
		rc = aeth__mkdir_p(parent, 0755);
	}
	free(parent);
	if (rc)
		return rc;
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return aeth__error_errno(AETH_EIO, "cannot create the %s %s", what,
					 path);
	if (lstat(path, &st) != 0)
		return aeth__error_errno(AETH_EIO, "cannot inspect the %s %s", what,
					 path);
	if (S_ISLNK(st.st_mode))
		return aeth__error_set(AETH_EINVALID, "the %s %s is a symbolic link: "
				       "refusing to follow it (remove it, or set the "
				       "%s to a real directory)", what, path, what);
	if (!S_ISDIR(st.st_mode))
		return aeth__error_set(AETH_EINVALID, "the %s %s is not a directory",
				       what, path);
	if (st.st_uid != geteuid())
		return aeth__error_set(AETH_EINVALID, "the %s %s belongs to uid %u, "
				       "not to this process (uid %u): another user "
				       "could read or replace what is in it; remove it "
				       "or choose another %s", what, path,
				       (unsigned int)st.st_uid,
				       (unsigned int)geteuid(), what);
	if (st.st_mode & 077)
		return aeth__error_set(AETH_EINVALID, "the %s %s has mode %04o: other "
				       "users may use it; chmod 700 it (or remove it "
				       "and let it be created)", what, path,
				       (unsigned int)(st.st_mode & 07777));
	return 0;
}

/* Bytes of a character to escape at `p` (0: none), and its code point. */
static size_t escapable(const unsigned char *p, unsigned int *cp)
{
	if (*p < 0x20 || *p == 0x7f) {
		*cp = *p;
		return 1;
	}
	if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
		*cp = p[1];
		return 2;
	}
	if (p[0] == 0xe2 && ((p[1] == 0x80 && p[2] >= 0xaa && p[2] <= 0xae) ||
			     (p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9))) {
		*cp = 0x2000u + ((p[1] & 0x3fu) << 6) + (p[2] & 0x3fu);
		return 3;
	}
	return 0;
}

void aeth__escape_text(char *out, size_t size, const char *in,
		       bool newline_indent)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t n = 0;

	if (size == 0)
		return;
	while (*p) {
		char esc[12];
		unsigned int cp = 0;
		size_t k = escapable(p, &cp), len;

		if (k == 0) {
			if (n + 1 >= size)
				break;
			out[n++] = (char)*p++;
			continue;
		}
		if (cp == '\n' && newline_indent)
			snprintf(esc, sizeof(esc), "\n  | ");
		else if (cp == '\n' || cp == '\r' || cp == '\t')
			snprintf(esc, sizeof(esc), "\\%c",
				 cp == '\n' ? 'n' : cp == '\r' ? 'r' : 't');
		else if (k == 1)
			snprintf(esc, sizeof(esc), "\\x%02x", cp);
		else
			snprintf(esc, sizeof(esc), "\\u%04x", cp);
		len = strlen(esc);
		if (n + len >= size)
			break;
		memcpy(out + n, esc, len);
		n += len;
		p += k;
	}
	out[n] = '\0';
}

char *aeth__find_program(const char *prog)
{
	const char *path = getenv("PATH");
	char *copy, *save = NULL, *found = NULL;

	if (!prog || !*prog)
		return NULL;
	if (strchr(prog, '/')) {
		char *abs = realpath(prog, NULL);

		if (abs && access(abs, X_OK) != 0) {
			free(abs);
			abs = NULL;
		}
		return abs;
	}
	copy = aeth__strdup(path && *path ? path : "/usr/bin:/bin");
	for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d && !found;
	     d = strtok_r(NULL, ":", &save)) {
		char *cand = aeth__sprintf("%s/%s", d, prog);
		struct stat st;

		if (cand && stat(cand, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(cand, X_OK) == 0)
			found = realpath(cand, NULL);
		free(cand);
	}
	free(copy);
	return found;
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

/* Defaults of lib/vm shown by lib/config too (internal.h). */
char *aeth__vmm_default_state_dir(void)
{
	const char *e = getenv("AETH_STATE_DIR");
	const char *run = getenv("XDG_RUNTIME_DIR");

	if (e && *e)
		return aeth__strdup(e);
	if (geteuid() == 0)
		return aeth__strdup("/run/aetherium");
	if (run && *run)
		return aeth__sprintf("%s/aetherium", run);
	/* predictable, so aeth__private_dir() refuses one made by others */
	return aeth__sprintf("/tmp/aetherium-%u", (unsigned int)geteuid());
}

char *aeth__vmm_default_overlay_dir(void)
{
	if (geteuid() == 0)
		return aeth__strdup("/var/tmp/aetherium");
	return aeth__sprintf("/var/tmp/aetherium-%u", (unsigned int)geteuid());
}
