/*
 * lib/store/select.c - the get and list queries of every table, built
 * from the table's description: one row by id, or the rows a filter
 * selects ("WHERE column = $n ..." for each filter field that is set).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "store/sql.h"

/* "SELECT <every column> FROM <table>" into sql. */
static int select_from(aeth__buf *sql, const aeth__table *t)
{
	int rc = aeth__buf_printf(sql, "SELECT ");

	for (size_t i = 0; i < t->ncols && rc == 0; i++)
		rc = aeth__buf_printf(sql, "%s%s", i ? ", " : "", t->cols[i].sql);
	return rc ? rc : aeth__buf_printf(sql, " FROM %s", t->name);
}

int aeth__store_get(aeth_store *s, const aeth__table *t, const char *id,
		    void **out)
{
	aeth__buf sql = AETH__BUF_INIT;
	const char *p[] = {id};
	char what[96];
	PGresult *r;
	int rc;

	if (!out)
		return aeth__error_set(AETH_EINVALID,
				       "aeth_store_%s_get: out is NULL", t->kind);
	*out = NULL;
	if ((rc = aeth__store_check_id(t->kind, id)) != 0)
		return rc;
	snprintf(what, sizeof(what), "reading %s %s", t->kind, id);
	if ((rc = select_from(&sql, t)) == 0 &&
	    (rc = aeth__buf_printf(&sql, " WHERE id = $1")) == 0)
		rc = aeth__store_exec(s, what, sql.data, 1, p, &r);
	aeth__buf_free(&sql);
	if (rc != 0)
		return rc;
	rc = PQntuples(r) == 1
		? aeth__record_from_row(t, r, 0, out)
		: aeth__error_set(AETH_ENOTFOUND, "%s %s not found", t->kind, id);
	PQclear(r);
	return rc;
}

/* The value of a filter field: NULL when the field does not filter. */
static const char *filter_value(const aeth_store_filter *f,
				const aeth__filter_col *fc)
{
	const char *v = f ? *(const char *const *)((const char *)f + fc->field)
			  : NULL;

	return fc->ref ? aeth__store_nz(v) : v;
}

/* " WHERE a = $1 AND b = $2" for the fields of `f` that are set, their
 * values into params[*n...]; a value that cannot match sets the message. */
static int where(aeth__buf *sql, const aeth__table *t,
		 const aeth_store_filter *f, const char **params, int *n)
{
	const char *v;
	int rc;

	for (size_t i = 0; i < t->nfilters; i++) {
		const aeth__filter_col *fc = &t->filters[i];

		if (!(v = filter_value(f, fc)))
			continue;
		if ((fc->allowed &&
		     (rc = aeth__store_check_status(t->kind, v, fc->allowed))) ||
		    (fc->ref && (rc = aeth__store_check_ref(fc->ref, v))))
			return rc;
		params[(*n)++] = v;
		if ((rc = aeth__buf_printf(sql, " %s %s = $%d", *n == 1 ? "WHERE" : "AND",
					   fc->column, *n)))
			return rc;
	}
	return 0;
}

/* The rows of `r` as a NULL-terminated array of records. */
static int records(const aeth__table *t, const PGresult *r, void ***out,
		   size_t *count)
{
	int n = PQntuples(r), rc;
	void **list = calloc((size_t)n + 1, sizeof(*list));

	if (!list)
		return aeth__error_oom();
	for (int i = 0; i < n; i++)
		if ((rc = aeth__record_from_row(t, r, i, &list[i])) != 0) {
			aeth__record_list_free(t, list);
			return rc;
		}
	*out = list;
	if (count)
		*count = (size_t)n;
	return 0;
}

static const aeth_store_filter filter_defaults = AETH_STORE_FILTER_INIT;
static const size_t filter_sizes[] = {sizeof(aeth_store_filter)};
static const aeth__versioned filter_v = {
	"aeth_store_filter", "AETH_STORE_FILTER_INIT", AETH_STORE_FILTER_VERSION,
	filter_sizes, &filter_defaults,
};

int aeth_store_filter_init(aeth_store_filter *filter, unsigned int version)
{
	return aeth__versioned_init(&filter_v, filter, version);
}

int aeth__store_list(aeth_store *s, const aeth__table *t,
		     const aeth_store_filter *filter, void ***out, size_t *count)
{
	aeth__buf sql = AETH__BUF_INIT;
	const char *params[AETH__FILTER_MAX + 1];
	char limit[16], what[64];
	aeth_store_filter fc;
	const aeth_store_filter *f = filter ? &fc : NULL;
	PGresult *r;
	int rc, n = 0;

	if (!out)
		return aeth__error_set(AETH_EINVALID,
				       "aeth_store_%s_list: out is NULL", t->kind);
	*out = NULL;
	if (count)
		*count = 0;
	if (filter && (rc = aeth__versioned_copy(&filter_v, &fc, filter)) != 0)
		return rc;
	if (t->nfilters > AETH__FILTER_MAX)
		return aeth__error_set(AETH_ERROR, "store: %s has more than %d "
				       "filter fields", t->name, AETH__FILTER_MAX);
	snprintf(limit, sizeof(limit), "%u", aeth__store_limit(f));
	snprintf(what, sizeof(what), "listing %s", t->name);
	if ((rc = select_from(&sql, t)) == 0 &&
	    (rc = where(&sql, t, f, params, &n)) == 0) {
		params[n++] = limit;
		rc = aeth__buf_printf(&sql, " ORDER BY %s LIMIT $%d::int", t->order, n);
	}
	if (rc == 0)
		rc = aeth__store_exec(s, what, sql.data, n, params, &r);
	aeth__buf_free(&sql);
	if (rc != 0)
		return rc;
	rc = records(t, r, out, count);
	PQclear(r);
	return rc;
}
