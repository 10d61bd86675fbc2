/*
 * lib/store/sql.h - what the store's files share, private to lib/store:
 * the handle, query helpers that map PostgreSQL errors to AETH_E* codes,
 * field checks and row readers. Other modules use store_internal.h.
 */
#ifndef AETH_STORE_SQL_H
#define AETH_STORE_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>

#include "aetherium/store.h"
/* the writers: the library's own, exported as unstable API */
#ifndef AETH_UNSTABLE
#define AETH_UNSTABLE
#endif
#include "aetherium/unstable/store.h"
#include "store/store_internal.h"

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
	bool ended;  /* the server ended the session (FATAL): reset before use */
	bool pinned; /* session state matters (a lock held): never reconnect */
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
/* A reference to a `kind` row: NULL or "" is fine (none), anything else
 * must be a UUID, else AETH_ENOTFOUND ("vm x not found (not a UUID)"). */
int aeth__store_check_ref(const char *kind, const char *id);
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

/*
 * Tables read into records (rows.c, select.c). Each table lists its
 * columns once: the SELECT expression, how the value is read and which
 * field of the record it fills, so that the SELECT list and the reader
 * cannot drift apart. Every char * field of a record is a STR column, so
 * freeing a record frees exactly those.
 */
typedef enum {
	AETH__COL_STR,  /* char *: malloc'd copy, NULL for SQL NULL */
	AETH__COL_ID,   /* char[37]: "" for NULL */
	AETH__COL_INT,  /* int: 0 for NULL */
	AETH__COL_I64,  /* int64_t: 0 for NULL */
	AETH__COL_BOOL, /* int: 1 for true, 0 for false or NULL */
} aeth__col_kind;

typedef struct {
	const char *sql;     /* the SELECT expression */
	aeth__col_kind kind;
	size_t offset;       /* offsetof(record type, field) */
} aeth__col;

/*
 * A filter field that, when set, becomes "column = $n" in a list query.
 * `allowed`: the value must be one of these (status words). `ref`: the
 * value is the UUID of a `ref` row ("vm"), "" means no filter, a value
 * that is not a UUID gives AETH_ENOTFOUND.
 */
typedef struct {
	size_t field;        /* offsetof(aeth_store_filter, x), a const char * */
	const char *column;
	const char *const *allowed;
	const char *ref;
} aeth__filter_col;

#define AETH__FILTER(field, column, allowed, ref) \
	{offsetof(aeth_store_filter, field), column, allowed, ref}

typedef struct {
	const char *name;    /* SQL table name, plural: "tasks" */
	const char *kind;    /* one row in messages: "task" */
	size_t size;         /* sizeof the record */
	unsigned int version; /* the record's version, set in what is read */
	const aeth__col *cols;
	size_t ncols;
	const aeth__filter_col *filters;
	size_t nfilters;
	const char *order;   /* ORDER BY of lists: "created_at DESC, id" */
} aeth__table;

#define AETH__FILTER_MAX 8

/* Row `row` of `r` (selected with t->cols, in order) into a new record. */
int aeth__record_from_row(const aeth__table *t, const PGresult *r, int row,
			  void **out);
/* Free a record's STR fields and the record (NULL accepted). */
void aeth__record_free(const aeth__table *t, void *rec);
/* Free a NULL-terminated list of records and the list (NULL accepted). */
void aeth__record_list_free(const aeth__table *t, void **list);

/* The row with `id` into *out: AETH_ENOTFOUND naming the kind if none.
 * With `tenant` (not NULL) only a row of that tenant: a row of another is
 * "not found" in the same words, as if it did not exist. */
int aeth__store_get(aeth_store *s, const aeth__table *t, const char *id,
		    const char *tenant, void **out);
/*
 * Rows matching `f` (t->filters, f->limit; NULL: all) in t->order into
 * *out, a NULL-terminated array the caller frees with
 * aeth__record_list_free(), and their number into *count (may be NULL).
 * The typed wrappers hand the array out as `record **`.
 */
int aeth__store_list(aeth_store *s, const aeth__table *t,
		     const aeth_store_filter *f, void ***out, size_t *count);

/* SQL expression reading a TIMESTAMP column as ms since the epoch. */
#define AETH__MS(col) "(extract(epoch from " col ") * 1000)::bigint"
/* SQL expression of the current time as a UTC TIMESTAMP. */
#define AETH__NOW "(now() AT TIME ZONE 'UTC')"

/* The effective list limit and the text of it for a parameter. */
unsigned int aeth__store_limit(const aeth_store_filter *f);

/* aeth_store_task_insert(); with payload_checked, the payload is known to
 * be JSON (the submitter parsed it) and only its size is checked here:
 * PostgreSQL's jsonb cast still refuses anything else. */
int aeth__store_task_insert(aeth_store *s, aeth_store_task *t,
			    bool payload_checked);

/* One column of a task: its status ("running" sets started_at, final
 * ones completed_at) or its queue (a forwarded task). Only the worker's
 * record functions (record.c) write these: a single column changed from
 * outside would break the worker's task states. */
int aeth__store_task_set_status(aeth_store *s, const char *id,
				const char *status);
int aeth__store_task_set_queue(aeth_store *s, const char *id, const char *queue);
int aeth__store_task_set_vm(aeth_store *s, const char *id, const char *vm_id);

/* An execution with the columns of migration 0008 (record.c's row). */
int aeth__store_execution_insert_detail(aeth_store *s, aeth_store_execution *e,
					const aeth__exec_row *d);
int aeth__store_execution_by_key(aeth_store *s, const char *vm_id,
				 const char *key, char **result_out);

/* Give VM `id` to worker `to` if `from` still owns it (one statement, so
 * two adopters cannot both take it): 0, or AETH_EBUSY when it moved. */
int aeth__store_vm_take(aeth_store *s, const char *id, const char *from,
			const char *to);
/* Mark VM `id` failed with `error` if `owner` still owns it and it is
 * creating or running: 0, or AETH_EBUSY (a host declared dead whose
 * worker came back first, lib/worker/adopt.c). */
int aeth__store_vm_fail_owned(aeth_store *s, const char *id, const char *owner,
			      const char *error);

#endif
