/*
 * lib/store/store_internal.h - what the store's files share: the handle,
 * query helpers that map PostgreSQL errors to AETH_E* codes, field checks
 * and row readers.
 */
#ifndef AETH_STORE_INTERNAL_H
#define AETH_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>

#include "aetherium/store.h"

typedef struct {
	int version;
	const char *name;
	const char *sql;
} aeth__migration;

/* migrations_sql.c, generated from migrations/ at build time. */
extern const aeth__migration aeth__migrations[];
extern const size_t aeth__migrations_count;

struct aeth_store {
	PGconn *conn;
	char *where; /* "unix socket /x/.s.PGSQL.5432 (database d, user u)" */
};

/* Largest JSON or TEXT value we write (the worker truncates output). */
#define AETH__STORE_MAX_TEXT (16u * 1024 * 1024)
#define AETH__STORE_LIST_DEFAULT 1000u
#define AETH__STORE_LIST_MAX 10000u

/*
 * Run a parameterised statement (text parameters, NULL = SQL NULL).
 * Returns 0 and *res (caller PQclear()s it; may pass res NULL to drop it)
 * or a negative code with the message set: unique violation AETH_EEXISTS,
 * foreign key AETH_ENOTFOUND, check/format AETH_EINVALID, lost connection
 * AETH_EUNAVAILABLE, others AETH_ERROR. `what` names the operation.
 */
int aeth__store_exec(aeth_store *s, const char *what, const char *sql,
		     int nparams, const char *const *params, PGresult **res);

/* Statements without parameters (migrations, locks). */
int aeth__store_exec_plain(aeth_store *s, const char *what, const char *sql);

/* UPDATE ... that must touch one row: 0 rows -> "<kind> <id> not found". */
int aeth__store_update_one(aeth_store *s, const char *kind, const char *id,
			   const char *sql, int nparams,
			   const char *const *params);

/* Checks; each sets an AETH_EINVALID message naming `field`. */
int aeth__store_check_text(const char *field, const char *v, size_t max,
			   bool required);
int aeth__store_check_json(const char *field, const char *v, bool required);
int aeth__store_check_uuid(const char *field, const char *v);
/* An id to look up: NULL AETH_EINVALID, not a UUID AETH_ENOTFOUND. */
int aeth__store_check_id(const char *kind, const char *id);
int aeth__store_check_status(const char *kind, const char *status,
			     const char *const *allowed);

extern const char *const aeth__vm_statuses[];
extern const char *const aeth__task_statuses[];

/* "" -> NULL, so empty id arrays become SQL NULL. */
const char *aeth__store_nz(const char *s);

/* Row readers: NULL column -> NULL / 0. Strings are malloc'd copies. */
int aeth__row_str(const PGresult *r, int row, int col, char **out);
void aeth__row_id(const PGresult *r, int row, int col, char out[37]);
int aeth__row_int(const PGresult *r, int row, int col);
int64_t aeth__row_i64(const PGresult *r, int row, int col);
bool aeth__row_null(const PGresult *r, int row, int col);

/* SQL expression reading a TIMESTAMP column as ms since the epoch. */
#define AETH__MS(col) "(extract(epoch from " col ") * 1000)::bigint"
/* SQL expression of the current time as a UTC TIMESTAMP. */
#define AETH__NOW "(now() AT TIME ZONE 'UTC')"

/* The effective list limit and the text of it for a parameter. */
unsigned int aeth__store_limit(const aeth_store_filter *f);

#endif
