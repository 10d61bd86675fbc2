/*
 * aetherium/common.h - export macro and library-wide setup.
 *
 * Every public declaration is marked AETH_API; everything else in
 * libaetherium.so is hidden. lib/aetherium.sym lists the exported symbols
 * with the release that added each, and tests/common/check_symbols.py
 * checks that the exports, the headers, that list and the last release's
 * ABI (abidiff) agree (docs/api.md, "Symbols").
 *
 * Conventions of every public header (docs/api.md):
 * - Functions return 0 or a negative AETH_E* code (error.h), the words in
 *   aeth_error_last().
 * - Output parameters come first, before the object the call works on
 *   and its inputs: aeth_queue_get(&task, q, queue, id). What comes back
 *   through an output pointer is the caller's; a pointer returned directly
 *   is borrowed from its parent. Destructors accept NULL.
 * - Structs that cross the API start with `unsigned int version`; those a
 *   program fills have an AETH_X_INIT macro and an aeth_x_init() function,
 *   and versions 1..current are accepted.
 * - Callbacks take `void *userdata` last.
 */
#ifndef AETHERIUM_COMMON_H
#define AETHERIUM_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define AETH_BEGIN_DECLS extern "C" {
#define AETH_END_DECLS }
#else
#define AETH_BEGIN_DECLS
#define AETH_END_DECLS
#endif

#if defined(__GNUC__) && defined(AETH_BUILDING_LIBRARY)
#define AETH_API __attribute__((visibility("default")))
#else
#define AETH_API
#endif

AETH_BEGIN_DECLS

/**
 * Initialise process-wide state (libcurl's global init). Call once before
 * any other function, from one thread; calls nest (each needs a matching
 * aeth_shutdown()). Returns 0 or a negative AETH_E* code.
 */
AETH_API int aeth_init(void);

/** Undo one aeth_init(). The last call releases process-wide state. */
AETH_API void aeth_shutdown(void);

/**
 * Free a NULL-terminated array of strings returned by the library (for
 * example by aeth_vm_list()). NULL is accepted.
 */
AETH_API void aeth_strarray_free(char **array);

/** Free a buffer the library returned and documented as the caller's. */
AETH_API void aeth_free(void *ptr);

AETH_END_DECLS

#endif
