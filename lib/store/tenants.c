/*
 * lib/store/tenants.c - tenants, their API keys and their limits
 * (migration 0007; docs/gateway.md). The gateway hashes a key and asks
 * here who it belongs to; the key itself never reaches the database.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "store/sql.h"
#include "store/store_internal.h"

bool aeth__tenant_name_valid(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (n < 1 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

		if (!alnum && (i == 0 || !strchr("_.-", c)))
			return false;
	}
	return true;
}

#define KEY_COLS "id, tenant_id, prefix, coalesce(name, ''), operator, " \
	AETH__MS("created_at") ", " AETH__MS("revoked_at")

static void key_from_row(const PGresult *r, int row, aeth__apikey *k)
{
	memset(k, 0, sizeof(*k));
	aeth__row_id(r, row, 0, k->id);
	snprintf(k->tenant, sizeof(k->tenant), "%s", PQgetvalue(r, row, 1));
	snprintf(k->prefix, sizeof(k->prefix), "%s", PQgetvalue(r, row, 2));
	snprintf(k->name, sizeof(k->name), "%s", PQgetvalue(r, row, 3));
	k->operator_ = PQgetvalue(r, row, 4)[0] == 't';
	k->created_at_ms = aeth__row_i64(r, row, 5);
	k->revoked_at_ms = aeth__row_i64(r, row, 6);
}

int aeth__store_key_insert(aeth_store *s, aeth__apikey *key,
			   const char *sha256_hex)
{
	const char *tp[] = {key->tenant};
	PGresult *r;
	int rc;

	if (!aeth__tenant_name_valid(key->tenant))
		return aeth__error_set(AETH_EINVALID, "tenant \"%s\" is not a valid "
				       "name: 1 to 64 of a-z 0-9 _ . - starting with "
				       "a letter or digit", key->tenant);
	if ((rc = aeth__store_check_text("key name", key->name, 255, false)))
		return rc;
	if ((rc = aeth__store_exec(s, "creating a tenant",
				   "INSERT INTO tenants (id) VALUES ($1) "
				   "ON CONFLICT (id) DO NOTHING", 1, tp, NULL)))
		return rc;
	aeth__uuid_new(key->id);
	const char *p[] = {key->id, key->tenant, sha256_hex, key->prefix,
			   key->name[0] ? key->name : NULL,
			   key->operator_ ? "true" : "false"};
	rc = aeth__store_exec(s, "recording an API key",
		"INSERT INTO api_keys (id, tenant_id, key_sha256, prefix, name, "
		"operator, created_at) VALUES ($1, $2, $3, $4, $5, $6::boolean, "
		AETH__NOW ") RETURNING " AETH__MS("created_at"), 6, p, &r);
	if (rc != 0)
		return rc;
	key->created_at_ms = aeth__row_i64(r, 0, 0);
	PQclear(r);
	return 0;
}

int aeth__store_key_find(aeth_store *s, const char *sha256_hex,
			 aeth__apikey *out)
{
	const char *p[] = {sha256_hex};
	PGresult *r;
	int rc = aeth__store_exec(s, "looking an API key up",
		"SELECT " KEY_COLS " FROM api_keys WHERE key_sha256 = $1 "
		"AND revoked_at IS NULL", 1, p, &r);

	if (rc != 0)
		return rc;
	if (PQntuples(r) == 1)
		key_from_row(r, 0, out);
	else
		rc = aeth__error_set(AETH_ENOTFOUND, "no such API key (or it was "
				     "revoked)");
	PQclear(r);
	return rc;
}

int aeth__store_key_revoke(aeth_store *s, const char *id_or_prefix,
			   aeth__apikey *out)
{
	const char *p[] = {id_or_prefix};
	PGresult *r;
	int rc, n;

	if (!id_or_prefix || strlen(id_or_prefix) < 4 ||
	    strlen(id_or_prefix) > 36)
		return aeth__error_set(AETH_EINVALID, "give the key's id or its "
				       "prefix as `keys list` shows it");
	/* one statement: revokes only when exactly one key matches */
	rc = aeth__store_exec(s, "revoking an API key",
		"WITH m AS (SELECT id FROM api_keys WHERE id::text = $1 "
		"OR prefix = $1), u AS (UPDATE api_keys SET revoked_at = "
		"coalesce(revoked_at, " AETH__NOW ") WHERE id IN (SELECT id FROM m) "
		"AND (SELECT count(*) FROM m) = 1 RETURNING " KEY_COLS ") "
		"SELECT (SELECT count(*) FROM m), u.* FROM u RIGHT JOIN "
		"(SELECT 1) one ON true", 1, p, &r);
	if (rc != 0)
		return rc;
	n = atoi(PQgetvalue(r, 0, 0));
	if (n == 0)
		rc = aeth__error_set(AETH_ENOTFOUND, "no API key with id or prefix "
				     "\"%s\" (aeth-gateway keys list)", id_or_prefix);
	else if (n > 1)
		rc = aeth__error_set(AETH_EINVALID, "%d keys have the prefix \"%s\": "
				     "give the key's id", n, id_or_prefix);
	else if (out) {
		/* the columns after the count */
		aeth__apikey *k = out;

		memset(k, 0, sizeof(*k));
		aeth__row_id(r, 0, 1, k->id);
		snprintf(k->tenant, sizeof(k->tenant), "%s", PQgetvalue(r, 0, 2));
		snprintf(k->prefix, sizeof(k->prefix), "%s", PQgetvalue(r, 0, 3));
		snprintf(k->name, sizeof(k->name), "%s", PQgetvalue(r, 0, 4));
		k->operator_ = PQgetvalue(r, 0, 5)[0] == 't';
		k->created_at_ms = aeth__row_i64(r, 0, 6);
		k->revoked_at_ms = aeth__row_i64(r, 0, 7);
	}
	PQclear(r);
	return rc;
}

int aeth__store_key_list(aeth_store *s, aeth__apikey **out, size_t *n)
{
	PGresult *r;
	int rc = aeth__store_exec(s, "listing API keys",
		"SELECT " KEY_COLS " FROM api_keys ORDER BY created_at DESC, id "
		"LIMIT 10000", 0, NULL, &r);

	*out = NULL;
	*n = 0;
	if (rc != 0)
		return rc;
	if (!(*out = calloc((size_t)PQntuples(r) + 1, sizeof(**out)))) {
		PQclear(r);
		return aeth__error_oom();
	}
	for (int i = 0; i < PQntuples(r); i++)
		key_from_row(r, i, &(*out)[i]);
	*n = (size_t)PQntuples(r);
	PQclear(r);
	return 0;
}

static int int_or_unset(const PGresult *r, int col)
{
	return aeth__row_null(r, 0, col) ? -1 : aeth__row_int(r, 0, col);
}

int aeth__store_tenant_limits(aeth_store *s, const char *tenant,
			      aeth__tenant_limits *out)
{
	const char *p[] = {tenant};
	PGresult *r;
	int rc = aeth__store_exec(s, "reading a tenant's limits",
		"SELECT max_vms, max_vcpus, max_memory_mb, max_rps FROM tenants "
		"WHERE id = $1", 1, p, &r);

	if (rc != 0)
		return rc;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return aeth__error_set(AETH_ENOTFOUND, "tenant %s not found", tenant);
	}
	out->max_vms = int_or_unset(r, 0);
	out->max_vcpus = int_or_unset(r, 1);
	out->max_memory_mb = int_or_unset(r, 2);
	out->max_rps = int_or_unset(r, 3);
	PQclear(r);
	return 0;
}

static const char *limit_text(char buf[16], int v)
{
	if (v < 0)
		return NULL;
	snprintf(buf, 16, "%d", v);
	return buf;
}

int aeth__store_tenant_set_limits(aeth_store *s, const char *tenant,
				  const aeth__tenant_limits *l)
{
	char a[16], b[16], c[16], d[16];
	const char *p[] = {tenant, limit_text(a, l->max_vms),
			   limit_text(b, l->max_vcpus),
			   limit_text(c, l->max_memory_mb),
			   limit_text(d, l->max_rps)};

	if (!aeth__tenant_name_valid(tenant))
		return aeth__error_set(AETH_EINVALID, "tenant \"%s\" is not a valid "
				       "name", tenant ? tenant : "");
	return aeth__store_exec(s, "setting a tenant's limits",
		"INSERT INTO tenants (id, max_vms, max_vcpus, max_memory_mb, "
		"max_rps) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE "
		"SET max_vms = $2, max_vcpus = $3, max_memory_mb = $4, "
		"max_rps = $5", 5, p, NULL);
}

int aeth__store_tenant_usage(aeth_store *s, const char *tenant,
			     int default_vcpus, int default_memory_mb,
			     aeth__tenant_usage *out)
{
	char dv[16], dm[16];
	const char *p[] = {tenant, dv, dm};
	PGresult *r;
	int rc;

	snprintf(dv, sizeof(dv), "%d", default_vcpus);
	snprintf(dm, sizeof(dm), "%d", default_memory_mb);
	/* A running vm:create may have its VM row already (creating): it
	 * counts twice for a moment, on the safe side. A payload number that
	 * is not an integer counts as the default. */
	rc = aeth__store_exec(s, "counting a tenant's VMs",
		"SELECT count(*)::int, coalesce(sum(v), 0)::int, "
		"coalesce(sum(m), 0)::int FROM ("
		"SELECT coalesce(vcpu_count, $2::int) v, coalesce(memory_mb, "
		"$3::int) m FROM vms WHERE tenant_id = $1 AND status IN "
		"('creating', 'running') UNION ALL "
		"SELECT CASE WHEN payload->>'vcpus' ~ '^[0-9]{1,6}$' THEN "
		"(payload->>'vcpus')::int ELSE $2::int END, "
		"CASE WHEN payload->>'memory_mb' ~ '^[0-9]{1,9}$' THEN "
		"(payload->>'memory_mb')::int ELSE $3::int END FROM tasks "
		"WHERE tenant_id = $1 AND type = 'vm:create' AND status IN "
		"('pending', 'running', 'retrying')) held", 3, p, &r);
	if (rc != 0)
		return rc;
	out->vms = aeth__row_int(r, 0, 0);
	out->vcpus = aeth__row_int(r, 0, 1);
	out->memory_mb = aeth__row_int(r, 0, 2);
	PQclear(r);
	return 0;
}

/*
 * The quota locks are advisory locks of two int4 keys: this class (the
 * bytes "aetq"), and the tenant's name hashed (FNV-1a, 32 bits). The
 * other advisory locks of Aetherium (migrations, the ledger) use the
 * one-bigint form, a separate key space. Two tenants whose names hash
 * alike only wait for each other.
 */
#define QUOTA_LOCK_CLASS 0x61657471

static int32_t quota_key(const char *tenant)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)tenant; *p; p++)
		h = (h ^ *p) * 16777619u;
	return (int32_t)h;
}

int aeth__store_quota_lock(aeth_store *s, const char *tenant,
			   unsigned int wait_ms)
{
	char sql[128], what[128];
	int rc;

	if (!s || !tenant)
		return aeth__error_set(AETH_EINVALID, "aeth__store_quota_lock: NULL "
				       "argument");
	/* one round trip; SET LOCAL ends with the statements' implicit
	 * transaction, the session's lock stays (numbers only: no quoting) */
	snprintf(sql, sizeof(sql), "SET LOCAL lock_timeout = '%ums'; SELECT "
		 "pg_advisory_lock(%d, %d)", wait_ms ? wait_ms : 1,
		 QUOTA_LOCK_CLASS, (int)quota_key(tenant));
	snprintf(what, sizeof(what), "waiting for the quota lock of tenant "
		 "%.64s", tenant);
	if ((rc = aeth__store_exec_plain(s, what, sql)) == 0)
		s->pinned = true;
	return rc;
}

void aeth__store_quota_unlock(aeth_store *s, const char *tenant)
{
	char sql[96];

	if (!s || !s->pinned)
		return;
	s->pinned = false;
	/* a broken session took its lock with it */
	if (PQstatus(s->conn) != CONNECTION_OK)
		return;
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock(%d, %d)",
		 QUOTA_LOCK_CLASS, (int)quota_key(tenant));
	PQclear(PQexec(s->conn, sql));
}
