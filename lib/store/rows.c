/* lib/store/rows.c - reading columns of a result row into C values. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "store/store_internal.h"

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
