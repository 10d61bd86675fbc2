/*
 * lib/queue/sentinel.c - find the primary of a Sentinel-managed Redis:
 * ask each sentinel of the URL in turn (SENTINEL get-master-addr-by-name),
 * connect to the address it names, and keep it only when it says ROLE
 * master (right after a failover a sentinel may still name the old
 * primary, now a replica). Asked on connect, when the connection breaks,
 * and when the server answers READONLY or UNBLOCKED (it was demoted
 * while we used it). The sentinel that answered is asked first next
 * time. What a failover can cost is in docs/queue.md ("Sentinel").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "cluster_reply.h"
#include "queue_internal.h"

/* Ask sentinel s for the primary's address: 1 (named), 0 (not known),
 * or an AETH_E* code; *why says what went wrong. */
static int ask(aeth_queue *q, const aeth__redis_addr *s, aeth__q_hostport *at,
	       char *why, size_t whylen)
{
	const aeth__redis_url *u = &q->url;
	unsigned int ms = q->o.connect_timeout_ms;
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	redisContext *c = redisConnectWithTimeout(s->host, s->port, tv);
	redisReply *r = NULL;
	int rc = 0;

	if (!c)
		return aeth__error_oom();
	if (c->err) {
		snprintf(why, whylen, "sentinel %s:%d: %s", s->host, s->port, c->errstr);
		redisFree(c);
		return AETH_EUNAVAILABLE;
	}
	ms = q->o.command_timeout_ms;
	tv = (struct timeval){(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
	redisSetTimeout(c, tv);
	if (u->sentinel_password) {
		const char *av[3] = {"AUTH", u->sentinel_user ? u->sentinel_user :
				     u->sentinel_password, u->sentinel_password};

		r = redisCommandArgv(c, u->sentinel_user ? 3 : 2, av, NULL);
		if (!r || r->type == REDIS_REPLY_ERROR) {
			snprintf(why, whylen, "sentinel %s:%d refused the sentinel_%s: %s",
				 s->host, s->port, u->sentinel_user ? "user and password" :
				 "password", r ? r->str : c->errstr);
			rc = r ? AETH_EINVALID : AETH_EUNAVAILABLE;
		}
		if (r)
			freeReplyObject(r);
		r = NULL;
	}
	if (rc == 0) {
		const char *av[3] = {"SENTINEL", "get-master-addr-by-name", u->master};

		if (!(r = redisCommandArgv(c, 3, av, NULL))) {
			snprintf(why, whylen, "sentinel %s:%d: %s", s->host, s->port, c->errstr);
			rc = AETH_EUNAVAILABLE;
		} else if ((rc = aeth__q_sentinel_addr_parse(r, at)) < 0) {
			snprintf(why, whylen, "sentinel %s:%d: %s", s->host, s->port,
				 r->type == REDIS_REPLY_ERROR ? r->str :
				 "unreadable reply to SENTINEL get-master-addr-by-name");
			rc = r->type == REDIS_REPLY_ERROR && strstr(r->str, "NOAUTH") ?
				AETH_EINVALID : AETH_EPROTO;
		} else if (rc == 0) {
			snprintf(why, whylen, "sentinel %s:%d does not monitor a primary "
				 "named '%s' (sentinel monitor NAME ... in its config)",
				 s->host, s->port, u->master);
		}
	}
	if (r)
		freeReplyObject(r);
	redisFree(c);
	return rc;
}

/* Point nodes[0] at host:port (its connection closed when it moves). */
static int point_at(aeth_queue *q, const aeth__q_hostport *at)
{
	aeth__q_node *n = q->nodes[0];
	char *host, *name;

	if (n->host && n->port == at->port && !strcmp(n->host, at->host))
		return 0;
	host = strdup(at->host);
	name = aeth__sprintf(strchr(at->host, ':') ? "[%s]:%d" : "%s:%d", at->host,
			     at->port);
	if (!host || !name) {
		free(host);
		free(name);
		return aeth__error_oom();
	}
	if (n->ctx)
		redisFree(n->ctx);
	n->ctx = NULL;
	n->cur_timeout_ms = 0;
	free(n->host);
	free(n->name);
	n->host = host;
	n->name = name;
	n->port = at->port;
	aeth__info("redis at %s: primary '%s' is %s", q->url.display, q->url.master,
		   name);
	return 0;
}

/* Connected to nodes[0], is it the primary? 0 yes; else *why. */
static int is_primary(aeth_queue *q, char *why, size_t whylen)
{
	static const char *argv[1] = {"ROLE"};
	redisReply *r;
	int rc, role;

	if ((rc = aeth__q_node_command(q, 0, 1, argv, &r))) {
		snprintf(why, whylen, "primary %s: %s", q->nodes[0]->name, aeth_error_last());
		return rc;
	}
	role = aeth__q_role_parse(r);
	if (role != 1) {
		snprintf(why, whylen, "%s is not a primary (ROLE: %s): a failover "
			 "is under way", q->nodes[0]->name, r->type == REDIS_REPLY_ERROR ?
			 r->str : role == 0 && r->element[0]->str ? r->element[0]->str :
			 "unreadable");
		rc = r->type == REDIS_REPLY_ERROR ? aeth__q_bad_reply(q, "ROLE", r) :
			AETH_EUNAVAILABLE;
		if (rc == AETH_EINVALID) /* an ACL that forbids ROLE */
			snprintf(why, whylen, "%s", aeth_error_last());
	}
	freeReplyObject(r);
	if (rc)
		aeth__q_disconnect(q);
	return rc;
}

int aeth__q_sentinel_discover(aeth_queue *q)
{
	size_t n = q->url.nseeds, start = q->sentinel_first % n;
	char why[512] = "no sentinel answered";
	int rc = AETH_EUNAVAILABLE;

	aeth__q_disconnect(q);
	for (size_t k = 0; k < n; k++) {
		size_t i = (start + k) % n;
		aeth__q_hostport at;

		rc = ask(q, &q->url.seeds[i], &at, why, sizeof(why));
		if (rc == AETH_ENOMEM)
			return aeth__error_oom();
		if (rc != 1)
			continue;
		if ((rc = point_at(q, &at)) == AETH_ENOMEM)
			return rc;
		if ((rc = is_primary(q, why, sizeof(why))) == 0) {
			q->sentinel_first = i;
			return 0;
		}
		if (rc == AETH_EINVALID) /* a password or an ACL: no use asking on */
			break;
	}
	if (rc == AETH_EINVALID)
		return aeth__error_set(AETH_EINVALID, "redis at %s: %s", q->url.display, why);
	return aeth__error_set(AETH_EUNAVAILABLE,
		"redis at %s: no sentinel named a reachable primary '%s': %s (during "
		"a failover this lasts down-after-milliseconds plus the election; "
		"the next call asks again)", q->url.display, q->url.master, why);
}
