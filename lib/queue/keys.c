/*
 * lib/queue/keys.c - key names and name checks. Every key of a queue
 * starts with the hash tag "{<ns>:<queue>}" so that one queue lives in
 * one Redis Cluster slot and its Lua scripts touch a single slot.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_internal.h"

int aeth_queue_name_valid(const char *name)
{
	size_t n;

	if (!name)
		return 0;
	n = strlen(name);
	if (n == 0 || n > AETH__Q_NAME_MAX)
		return 0;
	return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			    "0123456789_:.-") == n;
}

int aeth__q_check_name(const char *queue)
{
	if (aeth_queue_name_valid(queue))
		return 0;
	return aeth__error_set(AETH_EINVALID,
		"bad queue name '%.140s': use 1..%d characters of [A-Za-z0-9_:.-]",
		queue ? queue : "(null)", AETH__Q_NAME_MAX);
}

/* memcpy, not snprintf: several keys are built for every call. */
int aeth__q_key(const aeth_queue *q, char *buf, size_t n, const char *queue,
		const char *suffix)
{
	size_t ln = strlen(q->ns), lq = strlen(queue), ls = strlen(suffix);
	size_t len = 1 + ln + 1 + lq + 2 + ls;

	if (len >= n)
		return aeth__error_set(AETH_EINVALID, "queue key too long");
	buf[0] = '{';
	memcpy(buf + 1, q->ns, ln);
	buf[1 + ln] = ':';
	memcpy(buf + 2 + ln, queue, lq);
	memcpy(buf + 2 + ln + lq, "}:", 2);
	memcpy(buf + 4 + ln + lq, suffix, ls + 1);
	return 0;
}

int aeth__q_lookup_queue(aeth_queue *q, const char *id, char **queue)
{
	char key[AETH__Q_KEY_MAX];
	const char *argv[2] = {"GET", key};
	redisReply *r;
	int rc;

	if (!aeth__uuid_valid(id))
		return aeth__error_set(AETH_EINVALID, "bad task id '%.40s': not a UUID",
				       id ? id : "(null)");
	snprintf(key, sizeof(key), "%s:id:%s", q->ns, id);
	rc = aeth__q_command(q, 2, argv, NULL, 0, &r);
	if (rc)
		return rc;
	if (r->type == REDIS_REPLY_NIL) {
		rc = aeth__error_set(AETH_ENOTFOUND, "task %s not found in redis at %s",
				     id, q->url.display);
	} else if (r->type != REDIS_REPLY_STRING || aeth__q_check_name(r->str)) {
		rc = aeth__q_bad_reply(q, "task index", r);
	} else {
		*queue = aeth__strdup(r->str);
		rc = *queue ? 0 : AETH_ENOMEM;
	}
	freeReplyObject(r);
	return rc;
}

size_t aeth__q_u64(char *buf, uint64_t v)
{
	char t[24];
	size_t n = 0, k = 0;

	do
		t[n++] = (char)('0' + v % 10);
	while ((v /= 10) > 0);
	while (n > 0)
		buf[k++] = t[--n];
	buf[k] = '\0';
	return k;
}
