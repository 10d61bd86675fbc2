/*
 * lib/store/store.c - the connection and the query helpers that turn
 * PostgreSQL's errors into AETH_E* codes and messages that say what to do.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "store/sql.h"
#include "metrics/metrics.h"

#define DEFAULT_URL "postgresql://aetherium@127.0.0.1:5432/aetherium"
#define START_HINT                                                          \
	"is the server running? For the private development server run "     \
	"scripts/services.sh start and eval \"$(scripts/services.sh env)\", " \
	"or set database.url in the configuration (AETH_DATABASE_URL)"
#define TLS_HINT                                                            \
	"check sslrootcert in database.url (the CA certificate that signed "  \
	"the server's) and that the host in it is a name or address the "      \
	"server's certificate lists (subjectAltName); with hostaddr=, host= "  \
	"is the name checked; see docs/deploy-credentials.md"
#define AUTH_HINT                                                           \
	"check the user and password in database.url or AETH_DATABASE_URL "   \
	"(or the passfile, ~/.pgpass); the password is not shown"
#define HBA_HINT                                                            \
	"the server's pg_hba.conf has no line for this host, user, database "  \
	"and TLS mode (hostssl lines admit only TLS sessions: use "           \
	"sslmode=verify-full)"

/* What to do about a failed connection, from libpq's words for it. */
static const char *hint_for(const char *why)
{
	static const char *const tls[] = {
		"certificate", "SSL", "ssl", "does not match host name",
	};

	if (strstr(why, "password") || strstr(why, "authentication failed"))
		return AUTH_HINT;
	if (strstr(why, "pg_hba.conf"))
		return HBA_HINT;
	for (size_t i = 0; i < AETH__ARRAY_LEN(tls); i++)
		if (strstr(why, tls[i]))
			return TLS_HINT;
	return START_HINT;
}

/* Where a connection string points, without its password. */
static char *describe(const char *url)
{
	PQconninfoOption *opts = PQconninfoParse(url, NULL);
	const char *host = NULL, *port = NULL, *db = NULL, *user = NULL;
	char *where;

	if (!opts)
		return aeth__strdup("an invalid connection string");
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || !*o->val)
			continue;
		if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0 && !host)
			host = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
		else if (strcmp(o->keyword, "dbname") == 0)
			db = o->val;
		else if (strcmp(o->keyword, "user") == 0)
			user = o->val;
	}
	if (!host)
		host = "/var/run/postgresql"; /* libpq's compiled-in default */
	if (!port)
		port = "5432";
	if (strchr(host, ',') || strchr(port, ','))
		where = aeth__sprintf("the first primary of hosts %s, ports %s (database "
				      "%s, user %s)", host, port, db ? db : "(default)",
				      user ? user : "(default)");
	else if (host[0] == '/')
		where = aeth__sprintf("unix socket %s/.s.PGSQL.%s (database %s, user %s)",
				      host, port, db ? db : "(default)",
				      user ? user : "(default)");
	else
		where = aeth__sprintf("%s:%s (database %s, user %s)", host, port,
				      db ? db : "(default)",
				      user ? user : "(default)");
	PQconninfoFree(opts);
	return where;
}

/* First line of libpq's message, without "connection to server ... failed:". */
static void first_line(const char *msg, char *out, size_t size)
{
	const char *p = strstr(msg, "failed: ");
	size_t n;

	if (p)
		msg = p + 8;
	n = strcspn(msg, "\n");
	if (n >= size)
		n = size - 1;
	memcpy(out, msg, n);
	out[n] = '\0';
}

/*
 * libpq's parse errors quote the token they choke on ("invalid
 * percent-encoded token: \"...\""), which may be the password: cut out
 * of msg every password the connection string holds, as written (in the
 * URI's user info, a password= query parameter, or a password=
 * keyword).
 */
static void replace_all(char *msg, size_t size, const char *tok, size_t n)
{
	static const char mask[] = "(password)";
	const size_t m = sizeof(mask) - 1;
	char *at = msg, *p;

	while (n > 0 && (p = memmem(at, strlen(at), tok, n)) != NULL) {
		size_t tail = strlen(p + n);

		if ((size_t)(p - msg) + m + tail < size) {
			memmove(p + m, p + n, tail + 1);
			memcpy(p, mask, m);
			at = p + m;
		} else {
			memset(p, '*', n); /* no room for the mask: hide in place */
			at = p + n;
		}
	}
}

static void redact(char *msg, size_t size, const char *url)
{
	const char *p, *end;

	if (!strncmp(url, "postgresql://", 13) || !strncmp(url, "postgres://", 11)) {
		p = strstr(url, "://") + 3;
		end = p + strcspn(p, "@/");
		if (*end == '@') {
			const char *colon = memchr(p, ':', (size_t)(end - p));

			if (colon)
				replace_all(msg, size, colon + 1, (size_t)(end - colon - 1));
		}
	}
	for (p = url; (p = strstr(p, "password")) != NULL; p = end) {
		p += 8;
		p += strspn(p, " \t");
		end = p;
		if (*p != '=')
			continue;
		p++;
		p += strspn(p, " \t");
		if (*p == '\'') {
			end = ++p;
			while (*end && *end != '\'')
				end += end[0] == '\\' && end[1] ? 2 : 1;
		} else {
			end = p + strcspn(p, " \t&");
		}
		replace_all(msg, size, p, (size_t)(end - p));
	}
}

/* libpq prints server notices to stderr by default; a library must not. */
static void on_notice(void *arg, const char *message)
{
	(void)arg;
	aeth__debug("store: postgres: %.*s", (int)strcspn(message, "\n"), message);
}

static int run_plain(aeth_store *s, const char *what, const char *sql);

const char *aeth__store_url_resolve(const char *url)
{
	if (!url)
		url = getenv("AETH_DATABASE_URL");
	return url && *url ? url : DEFAULT_URL;
}

int aeth_store_open(aeth_store **out, const char *url)
{
	/* Defaults the URL may override (they come before dbname): a
	 * multi-host URL (host1:port1,host2:port2) takes the server that
	 * accepts writes, the primary, also after a standby was promoted. */
	const char *keys[] = {"application_name", "connect_timeout",
			      "target_session_attrs", "dbname", NULL};
	const char *vals[] = {"aetherium", "10", "read-write", NULL, NULL};
	aeth_store *s;
	char why[512];
	char *err = NULL;
	PQconninfoOption *check;

	if (!out)
		return aeth__error_set(AETH_EINVALID, "aeth_store_open: out is NULL");
	*out = NULL;
	url = aeth__store_url_resolve(url);
	check = PQconninfoParse(url, &err);
	if (!check) {
		first_line(err ? err : "cannot parse", why, sizeof(why));
		PQfreemem(err);
		redact(why, sizeof(why), url);
		return aeth__error_set(AETH_EINVALID,
				       "invalid database URL: %s (expected "
				       "postgresql://user@host:port/db or "
				       "\"host=... dbname=...\")", why);
	}
	PQconninfoFree(check);
	if (!(s = calloc(1, sizeof(*s))))
		return aeth__error_oom();
	if (!(s->where = describe(url))) {
		free(s);
		return AETH_ENOMEM;
	}
	vals[3] = url;
	s->conn = PQconnectdbParams(keys, vals, 1);
	if (!s->conn || PQstatus(s->conn) != CONNECTION_OK) {
		first_line(s->conn ? PQerrorMessage(s->conn) : "out of memory",
			   why, sizeof(why));
		redact(why, sizeof(why), url);
		aeth__error_set(AETH_EUNAVAILABLE,
				"cannot connect to PostgreSQL at %s: %s; %s",
				s->where, why, hint_for(why));
		aeth_store_free(s);
		return AETH_EUNAVAILABLE;
	}
	PQsetNoticeProcessor(s->conn, on_notice, NULL);
	/* Timestamps are stored as UTC wall time in TIMESTAMP columns. */
	if (run_plain(s, "setting the time zone", "SET TIME ZONE 'UTC'") != 0) {
		aeth_store_free(s);
		return aeth_error_last_code();
	}
	aeth__debug("store: connected to %s", s->where);
	*out = s;
	return 0;
}

void aeth_store_free(aeth_store *s)
{
	if (!s)
		return;
	if (s->conn)
		PQfinish(s->conn);
	free(s->where);
	free(s);
}

static bool session_ended(const PGresult *r)
{
	const char *sev = r ? PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED) : NULL;

	return sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0);
}

static int map_error(aeth_store *s, const char *what, PGresult *r)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(s->conn);
	char line[512];
	int code = AETH_ERROR;

	aeth__metric_inc(AETH__M_PG_ERRORS, NULL, NULL);
	first_line(msg && *msg ? msg : "no answer", line, sizeof(line));
	/* A FATAL error ends the session: the server closes the connection
	 * right after sending it, but libpq may not have read the EOF yet
	 * (its status still says OK). Same case as a connection seen broken. */
	if (session_ended(r))
		s->ended = true;
	if (PQstatus(s->conn) == CONNECTION_BAD || s->ended)
		return aeth__error_set(AETH_EUNAVAILABLE,
				       "%s: lost the connection to PostgreSQL at "
				       "%s while the statement ran: %s (the server "
				       "stopped or restarted; whether a write took "
				       "effect is unknown; the next call reconnects); "
				       START_HINT, what, s->where, line);
	if (state && strcmp(state, "25006") == 0) {
		/* a read-only transaction: the server we hold was made a
		 * standby (or the URL let libpq pick one); the next call
		 * reconnects, to the primary of a multi-host URL */
		s->ended = true;
		return aeth__error_set(AETH_EUNAVAILABLE,
				       "%s: PostgreSQL at %s is read-only now (a "
				       "standby): %s (the next call reconnects; give "
				       "every server in database.url, "
				       "postgresql://h1:p1,h2:p2/db, so that libpq "
				       "finds the primary: target_session_attrs="
				       "read-write is the default)", what, s->where, line);
	}
	if (state) {
		if (strcmp(state, "23505") == 0)
			code = AETH_EEXISTS;
		else if (strcmp(state, "23503") == 0)
			code = AETH_ENOTFOUND;
		else if (strncmp(state, "22", 2) == 0 || strcmp(state, "23514") == 0 ||
			 strcmp(state, "23502") == 0)
			code = AETH_EINVALID;
		else if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)
			code = AETH_EUNAVAILABLE;
		else if (strcmp(state, "42P01") == 0)
			return aeth__error_set(AETH_ESTATE,
					       "%s: %s: the database at %s has no "
					       "schema yet; run aeth_store_migrate() "
					       "(aeth-worker does on start)",
					       what, line, s->where);
		else if (strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0)
			code = AETH_ETIMEOUT;
	}
	return aeth__error_set(code, "%s: %s", what, line);
}

/*
 * Is the connection gone although we sent nothing since the last answer?
 * A server restart (or pg_terminate_backend, an idle timeout) closes idle
 * sessions: libpq only notices when it next reads, so read now (without
 * blocking: libpq's socket is non-blocking). Only outside a transaction: a
 * transaction cut short must fail, never continue on a new session.
 */
static bool broken_while_idle(aeth_store *s)
{
	if (PQstatus(s->conn) != CONNECTION_OK || s->ended)
		return true;
	if (PQtransactionStatus(s->conn) != PQTRANS_IDLE)
		return false;
	/* A closing server sends FATAL then EOF: libpq reads the message in
	 * one call and sees the EOF in the next, so read while readable. */
	for (int i = 0; i < 4; i++) {
		struct pollfd p = {PQsocket(s->conn), POLLIN, 0};

		if (p.fd < 0 || poll(&p, 1, 0) <= 0)
			break;
		if (!PQconsumeInput(s->conn))
			break;
	}
	return PQstatus(s->conn) != CONNECTION_OK;
}

/* A connection that broke since the last call gets one reset before use:
 * nothing was sent yet, so the statement runs at most once. Not while the
 * session is pinned (aeth_store_migrate or the ledger reconciler holds
 * its advisory lock: a new session would go on without it). */
static int ensure_connected(aeth_store *s, const char *what)
{
	char why[512];

	if (!broken_while_idle(s))
		return 0;
	if (s->pinned)
		return aeth__error_set(AETH_EUNAVAILABLE,
				       "%s: lost the session to PostgreSQL at %s "
				       "while it held an advisory lock (migrations "
				       "or the ledger reconciler); try again",
				       what, s->where);
	PQreset(s->conn);
	s->ended = false;
	if (PQstatus(s->conn) == CONNECTION_OK) {
		int rc = run_plain(s, "setting the time zone after reconnecting",
				   "SET TIME ZONE 'UTC'");

		if (rc == 0)
			aeth__info("store: reconnected to PostgreSQL at %s", s->where);
		return rc;
	}
	first_line(PQerrorMessage(s->conn), why, sizeof(why));
	return aeth__error_set(AETH_EUNAVAILABLE,
			       "%s: lost the connection to PostgreSQL at %s and "
			       "cannot reconnect: %s; %s", what, s->where, why,
			       hint_for(why));
}

int aeth__store_exec(aeth_store *s, const char *what, const char *sql,
		     int nparams, const char *const *params, PGresult **res)
{
	PGresult *r;
	ExecStatusType st;
	int rc;

	if (res)
		*res = NULL;
	if (!s)
		return aeth__error_set(AETH_EINVALID, "%s: store is NULL", what);
	if ((rc = ensure_connected(s, what)) != 0)
		return rc;
	r = PQexecParams(s->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		rc = map_error(s, what, r);
		PQclear(r);
		return rc;
	}
	if (res)
		*res = r;
	else
		PQclear(r);
	return 0;
}

int aeth__store_exec_plain(aeth_store *s, const char *what, const char *sql)
{
	int rc;

	if (!s)
		return aeth__error_set(AETH_EINVALID, "%s: store is NULL", what);
	if ((rc = ensure_connected(s, what)) != 0)
		return rc;
	return run_plain(s, what, sql);
}

/* aeth__store_exec_plain() without the reconnect (used by it). */
static int run_plain(aeth_store *s, const char *what, const char *sql)
{
	PGresult *r;
	ExecStatusType st;
	int rc;

	/* PQexec, not PQexecParams: migrations hold several statements. */
	r = PQexec(s->conn, sql);
	st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		rc = map_error(s, what, r);
		PQclear(r);
		return rc;
	}
	PQclear(r);
	return 0;
}

int aeth__store_update_one(aeth_store *s, const char *kind, const char *id,
			   const char *sql, int nparams,
			   const char *const *params)
{
	PGresult *r;
	char what[96];
	int rc;

	if ((rc = aeth__store_check_id(kind, id)) != 0)
		return rc;
	snprintf(what, sizeof(what), "updating %s %s", kind, id);
	if ((rc = aeth__store_exec(s, what, sql, nparams, params, &r)) != 0)
		return rc;
	rc = strcmp(PQcmdTuples(r), "0") == 0
		? aeth__error_set(AETH_ENOTFOUND, "%s %s not found", kind, id)
		: 0;
	PQclear(r);
	return rc;
}

unsigned int aeth__store_limit(const aeth_store_filter *f)
{
	if (!f || f->limit == 0)
		return AETH__STORE_LIST_DEFAULT;
	return f->limit > AETH__STORE_LIST_MAX ? AETH__STORE_LIST_MAX : f->limit;
}
