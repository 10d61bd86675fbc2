/*
 * lib/task/base64.c - base64 (RFC 4648, padded) both ways: raw bytes in
 * JSON payloads and results (vm:file_put's data, vm:file_get's, output
 * that is not UTF-8). The decoder takes hostile text: every length is
 * checked before it is used.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "task/task.h"

static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			  "0123456789+/";

char *aeth__base64(const void *data, size_t len)
{
	const unsigned char *u = data;
	char *b, *p;

	if (len > (SIZE_MAX - 1) / 4 * 3 - 3 ||
	    !(b = malloc((len + 2) / 3 * 4 + 1)))
		return NULL;
	p = b;
	for (size_t i = 0; i < len; i += 3) {
		unsigned int x = (unsigned int)u[i] << 16 |
			(i + 1 < len ? (unsigned int)u[i + 1] << 8 : 0) |
			(i + 2 < len ? u[i + 2] : 0);

		*p++ = abc[x >> 18 & 63];
		*p++ = abc[x >> 12 & 63];
		*p++ = i + 1 < len ? abc[x >> 6 & 63] : '=';
		*p++ = i + 2 < len ? abc[x & 63] : '=';
	}
	*p = '\0';
	return b;
}

/* The value of a base64 character, -1 for any other. */
static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int aeth__base64_decode(unsigned char **out, size_t *out_len, const char *what,
			const char *s, size_t len, size_t max)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t pad = 0, n;
	unsigned char *b;

	*out = NULL;
	*out_len = 0;
	if (len % 4 != 0)
		return aeth__error_set(AETH_EINVALID, "%s is not base64: its length "
				       "%zu is not a multiple of 4 (padded base64, "
				       "RFC 4648)", what, len);
	if (len >= 1 && s[len - 1] == '=')
		pad = len >= 2 && s[len - 2] == '=' ? 2 : 1;
	n = len / 4 * 3 - pad;
	if (n > max)
		return aeth__error_set(AETH_ETOOBIG, "%s holds %zu bytes, more than "
				       "the limit of %zu", what, n, max);
	if (!(b = malloc(n + 1)))
		return aeth__error_oom();
	for (size_t i = 0, o = 0; i < len; i += 4) {
		int v[4];
		unsigned int x;

		for (int k = 0; k < 4; k++) {
			v[k] = b64_value(u[i + k]);
			/* '=' only as the last one or two characters */
			if (v[k] < 0 && !(u[i + k] == '=' && i + 4 == len &&
					  (size_t)k >= 4 - pad)) {
				free(b);
				return aeth__error_set(AETH_EINVALID, "%s is not base64: "
						       "byte %zu (0x%02x) is not of its "
						       "alphabet (A-Z a-z 0-9 + / and "
						       "'=' padding at the end)", what,
						       i + (size_t)k, u[i + k]);
			}
			if (v[k] < 0)
				v[k] = 0;
		}
		x = (unsigned int)v[0] << 18 | (unsigned int)v[1] << 12 |
		    (unsigned int)v[2] << 6 | (unsigned int)v[3];
		b[o++] = (unsigned char)(x >> 16);
		if (o < n)
			b[o++] = (unsigned char)(x >> 8);
		if (o < n)
			b[o++] = (unsigned char)x;
	}
	b[n] = '\0';
	*out = b;
	*out_len = n;
	return 0;
}
