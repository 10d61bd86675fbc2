/*
 * aetherium/version.h - the library's version.
 */
#ifndef AETHERIUM_VERSION_H
#define AETHERIUM_VERSION_H

#include "common.h"

#define AETH_VERSION_MAJOR 0
#define AETH_VERSION_MINOR 1
#define AETH_VERSION_PATCH 0
#define AETH_VERSION_STRING "0.1.0"

AETH_BEGIN_DECLS

/** The version of the library loaded at run time, e.g. "0.1.0". Static. */
AETH_API const char *aeth_version(void);

/** The same as three numbers; any pointer may be NULL. */
AETH_API void aeth_version_numbers(int *major, int *minor, int *patch);

AETH_END_DECLS

#endif
