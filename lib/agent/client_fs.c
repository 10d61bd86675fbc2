/*
 * lib/agent/client_fs.c - stat, list, mkdir, remove in the guest
 * (protocol level 2): one request, one `ok` or `error`. A list reply is
 * records the guest wrote, so each is checked before it is believed.
 */
#include <stdlib.h>
#include <string.h>

#include "agent/client_priv.h"
#include "internal.h"

/* The reply of a level-2 request, kept in *out (the caller frees it). */
static int fs_request(struct aeth__req **out, aeth__agent *a, uint8_t type,
		      const char *path, int64_t mode, uint64_t flags)
{
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;
	const char *what = aeth__proto_type_name(type);
	struct aeth__req *r;
	int rc;

	*out = NULL;
	if (!path || !path[0])
		return aeth__error_set(AETH_EINVALID, "file %s needs a path", what);
	if ((rc = aeth__agent_need_level(a, 2, what)) != 0)
		return rc;
	if (!(r = aeth__req_new(a)))
		return aeth__error_oom();
	aeth__proto_msg_begin(&m, type, r->id);
	aeth__proto_add_str(&m, AETH__F_PATH, path);
	if (mode >= 0)
		aeth__proto_add_u64(&m, AETH__F_MODE, (uint64_t)mode);
	if (flags)
		aeth__proto_add_u64(&m, AETH__F_FLAGS, flags);
	rc = aeth__agent_roundtrip(a, r, &m, what);
	aeth__proto_msg_free(&m);
	if (rc) {
		aeth__req_free(a, r);
		return rc;
	}
	*out = r;
	return 0;
}

int aeth__agent_file_stat(unsigned int *mode, uint64_t *size, aeth__agent *a,
			  const char *path)
{
	struct aeth__req *r;
	int rc = fs_request(&r, a, AETH__MSG_STAT, path, -1, 0);

	if (rc)
		return rc;
	*mode = (unsigned int)r->mode;
	*size = r->size;
	aeth__req_free(a, r);
	return 0;
}

static uint64_t get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* One record at p (left bytes remain): its length, or 0 if malformed. */
static size_t record(const uint8_t *p, size_t left, char **name,
		     unsigned int *mode, uint64_t *size)
{
	size_t n;

	if (left < 14)
		return 0;
	n = (size_t)get_be(p + 12, 2);
	if (n == 0 || n > left - 14 || memchr(p + 14, '/', n) ||
	    memchr(p + 14, '\0', n) || (n == 1 && p[14] == '.') ||
	    (n == 2 && p[14] == '.' && p[15] == '.'))
		return 0;
	if (!(*name = malloc(n + 1)))
		return 0;
	memcpy(*name, p + 14, n);
	(*name)[n] = '\0';
	*mode = (unsigned int)get_be(p, 4);
	*size = get_be(p + 4, 8);
	return 14 + n;
}

int aeth__agent_file_list(char ***names, unsigned int **modes, uint64_t **sizes,
			  size_t *count, aeth__agent *a, const char *path)
{
	struct aeth__req *r;
	size_t max, n = 0, off = 0;
	int rc;

	*names = NULL;
	*modes = NULL;
	*sizes = NULL;
	*count = 0;
	if ((rc = fs_request(&r, a, AETH__MSG_LIST, path, -1, 0)) != 0)
		return rc;
	max = r->data_len / 14; /* no more records than fit */
	if (r->size > max) {
		rc = aeth__error_set(AETH_EPROTO, "the agent of %s listed %llu "
				     "entries of '%s' in %zu bytes", a->peer,
				     (unsigned long long)r->size, path, r->data_len);
		goto out;
	}
	*names = calloc((size_t)r->size + 1, sizeof(char *));
	*modes = calloc((size_t)r->size + 1, sizeof(unsigned int));
	*sizes = calloc((size_t)r->size + 1, sizeof(uint64_t));
	if (!*names || !*modes || !*sizes) {
		rc = aeth__error_oom();
		goto out;
	}
	for (; n < r->size; n++) {
		size_t used = record(r->data + off, r->data_len - off, &(*names)[n],
				     &(*modes)[n], &(*sizes)[n]);

		if (!used) {
			rc = aeth__error_set(AETH_EPROTO, "the agent of %s sent a "
					     "malformed entry %zu listing '%s'",
					     a->peer, n, path);
			goto out;
		}
		off += used;
	}
	if (off != r->data_len)
		rc = aeth__error_set(AETH_EPROTO, "the agent of %s sent %zu "
				     "bytes past the %zu entries of '%s'",
				     a->peer, r->data_len - off, n, path);
out:
	if (rc) {
		if (*names)
			aeth_strarray_free(*names);
		free(*modes);
		free(*sizes);
		*names = NULL;
		*modes = NULL;
		*sizes = NULL;
		n = 0;
	}
	*count = n;
	aeth__req_free(a, r);
	return rc;
}

int aeth__agent_file_mkdir(aeth__agent *a, const char *path, unsigned int mode,
			   int parents)
{
	struct aeth__req *r;
	int rc = fs_request(&r, a, AETH__MSG_MKDIR, path, (int64_t)(mode & 07777),
			    parents ? AETH__PROTO_FS_DEEP : 0);

	aeth__req_free(a, r);
	return rc;
}

int aeth__agent_file_remove(aeth__agent *a, const char *path, int recursive)
{
	struct aeth__req *r;
	int rc = fs_request(&r, a, AETH__MSG_REMOVE, path, -1,
			    recursive ? AETH__PROTO_FS_DEEP : 0);

	aeth__req_free(a, r);
	return rc;
}
