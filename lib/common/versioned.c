/*
 * lib/common/versioned.c - the one version rule of the public structs
 * that carry a version (internal.h, aeth__versioned; docs/api.md).
 */
#include <string.h>

#include "aetherium/version.h"
#include "internal.h"

int aeth__versioned_check(const aeth__versioned *d, unsigned int version)
{
	if (version >= 1 && version <= d->current)
		return 0;
	return aeth__error_set(AETH_EINVALID, "%s.version is %u; this library "
			       "(aetherium %s) knows versions 1..%u: initialise "
			       "the struct with %s or %s_init()", d->name, version,
			       AETH_VERSION_STRING, d->current, d->init, d->name);
}

int aeth__versioned_init(const aeth__versioned *d, void *obj,
			 unsigned int version)
{
	int rc;

	if (!obj)
		return aeth__error_set(AETH_EINVALID, "%s_init: the struct is NULL",
				       d->name);
	if ((rc = aeth__versioned_check(d, version)) != 0)
		return rc;
	memcpy(obj, d->defaults, d->sizes[version - 1]);
	*(unsigned int *)obj = version;
	return 0;
}

int aeth__versioned_copy(const aeth__versioned *d, void *dst, const void *src)
{
	unsigned int version = src ? *(const unsigned int *)src : d->current;
	int rc;

	if ((rc = aeth__versioned_check(d, version)) != 0)
		return rc;
	memcpy(dst, d->defaults, d->sizes[d->current - 1]);
	if (src)
		memcpy(dst, src, d->sizes[version - 1]);
	*(unsigned int *)dst = d->current;
	return 0;
}
