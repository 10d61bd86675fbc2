/*
 * aetherium/error.h - return codes and the last error's message.
 *
 * Fallible functions return 0 on success or one of the negative codes
 * below. The words that go with the most recent failure on the calling
 * thread are in aeth_error_last(). Codes are never renumbered; new ones
 * are appended.
 */
#ifndef AETHERIUM_ERROR_H
#define AETHERIUM_ERROR_H

#include "common.h"

AETH_BEGIN_DECLS

typedef enum {
	AETH_OK = 0,
	AETH_ERROR = -1,        /**< generic failure; see the message */
	AETH_ENOTFOUND = -2,    /**< the named object does not exist */
	AETH_ETIMEOUT = -3,     /**< a deadline passed */
	AETH_EBUSY = -4,        /**< in use or locked; try again later */
	AETH_EINVALID = -5,     /**< bad argument, payload or file */
	AETH_EUNAVAILABLE = -6, /**< a server or device could not be reached */
	AETH_ENOMEM = -7,       /**< out of memory */
	AETH_EPROTO = -8,       /**< the peer broke the wire protocol */
	AETH_EEXISTS = -9,      /**< the object already exists */
	AETH_ECANCELLED = -10,  /**< stopped by the caller or a shutdown */
	AETH_ETOOBIG = -11,     /**< a size limit was exceeded */
	AETH_EIO = -12,         /**< an operating-system call failed */
	AETH_ESTATE = -13       /**< not allowed in the object's current state */
} aeth_error_code;

/**
 * The message of the last failure on this thread, naming the thing that
 * failed and what to do. Never NULL: "no error" when there was none.
 * Borrowed: valid until the next library call on this thread.
 */
AETH_API const char *aeth_error_last(void);

/** The code of the last failure on this thread (AETH_OK if none). */
AETH_API int aeth_error_last_code(void);

/** Forget the last failure on this thread. */
AETH_API void aeth_error_clear(void);

/**
 * Static text for a code ("not found", "timed out", ...). Unknown codes
 * give "unknown error". Never NULL; never to be freed.
 */
AETH_API const char *aeth_strerror(int code);

AETH_END_DECLS

#endif
