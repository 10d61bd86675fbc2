/*
 * lib/store/rows.c - reading columns of a result row into C values, and
 * whole rows into records as a table's column list describes them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "store/sql.h"

bool aeth__row_null(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) != 0;
}

int aeth__row_str(const PGresult *r, int row, int col, char **out)
{
	*out = NULL;
	if (aeth__row_null(r, row, col))
		return 0;
	*out = aeth__strdup(PQgetvalue(r, row, col));
	return *out ? 0 : AETH_ENOMEM;
}

void aeth__row_id(const PGresult *r, int row, int col, char out[37])
{
	out[0] = '\0';
	if (!aeth__row_null(r, row, col))
		snprintf(out, 37, "%s", PQgetvalue(r, row, col));
}

int aeth__row_int(const PGresult *r, int row, int col)
{
	return aeth__row_null(r, row, col) ? 0 : atoi(PQgetvalue(r, row, col));
}

int64_t aeth__row_i64(const PGresult *r, int row, int col)
{
	return aeth__row_null(r, row, col)
		? 0 : (int64_t)strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* Column `col` into the field of `rec` that `c` names. */
static int read_col(const PGresult *r, int row, int col, const aeth__col *c,
		    char *rec)
{
	void *field = rec + c->offset;

	switch (c->kind) {
	case AETH__COL_STR:
		return aeth__row_str(r, row, col, field);
	case AETH__COL_ID:
		aeth__row_id(r, row, col, field);
		return 0;
	case AETH__COL_INT:
		*(int *)field = aeth__row_int(r, row, col);
		return 0;
	case AETH__COL_I64:
		*(int64_t *)field = aeth__row_i64(r, row, col);
		return 0;
	case AETH__COL_BOOL:
		*(int *)field = !aeth__row_null(r, row, col) &&
				strcmp(PQgetvalue(r, row, col), "t") == 0;
		return 0;
	}
	return aeth__error_set(AETH_ERROR, "store: unknown column kind %d",
			       (int)c->kind);
}

int aeth__record_from_row(const aeth__table *t, const PGresult *r, int row,
			  void **out)
{
	char *rec = calloc(1, t->size);
	int rc;

	*out = NULL;
	if (!rec)
		return aeth__error_oom();
	*(unsigned int *)rec = t->version; /* every record starts with it */
	for (size_t i = 0; i < t->ncols; i++)
		if ((rc = read_col(r, row, (int)i, &t->cols[i], rec)) != 0) {
			aeth__record_free(t, rec);
			return rc;
		}
	*out = rec;
	return 0;
}

void aeth__record_free(const aeth__table *t, void *rec)
{
	if (!rec)
		return;
	for (size_t i = 0; i < t->ncols; i++)
		if (t->cols[i].kind == AETH__COL_STR)
			free(*(char **)((char *)rec + t->cols[i].offset));
	free(rec);
}

void aeth__record_list_free(const aeth__table *t, void **list)
{
	if (!list)
		return;
	for (void **rec = list; *rec; rec++)
		aeth__record_free(t, *rec);
	free(list);
}
