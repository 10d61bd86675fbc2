/*
 * lib/queue/cluster.c - the slot map of a Redis Cluster: which node
 * serves each of the 16384 hash slots. Read from any node that answers
 * (CLUSTER SLOTS) when the handle connects, when a connection to a node
 * broke or the cluster said CLUSTERDOWN (a failover moves slots to a
 * replica), and when a command's slot has no node yet; corrected one slot
 * at a time by MOVED (a resharding moves slots one by one). The replies
 * are parsed in cluster_reply.c. Every key of one queue has the queue's
 * hash tag, so a queue lives in one slot (docs/queue.md).
 */
#include <stdlib.h>
#include <string.h>

#include "cluster_reply.h"
#include "queue_internal.h"

/* Nodes to ask, in order: those serving slots, then the others (seeds,
 * nodes met in redirections). */
static size_t ask_order(const aeth_queue *q, size_t *order)
{
	size_t n = 0;
	bool *serves = calloc(q->nnodes, sizeof(*serves));

	if (serves)
		for (unsigned int s = 0; s < AETH__Q_NSLOTS; s++)
			if (q->slot_node[s] && q->slot_node[s] <= q->nnodes)
				serves[q->slot_node[s] - 1] = true;
	for (size_t i = 0; i < q->nnodes; i++)
		if (serves && serves[i])
			order[n++] = i;
	for (size_t i = 0; i < q->nnodes; i++)
		if (!serves || !serves[i])
			order[n++] = i;
	free(serves);
	return n;
}

/* The map from node i's CLUSTER SLOTS reply. */
static int load_map(aeth_queue *q, size_t i, const redisReply *r)
{
	aeth__q_slot_range *rs;
	size_t n = 0;
	char *asked = q->nodes[i]->host ? strdup(q->nodes[i]->host) : NULL;
	int rc = 0;

	if (!asked || !(rs = calloc(AETH__Q_NSLOTS, sizeof(*rs)))) {
		free(asked);
		return aeth__error_oom();
	}
	if (aeth__q_slots_parse(r, rs, AETH__Q_NSLOTS, &n) != 0 || n == 0) {
		rc = aeth__error_set(AETH_EPROTO, "redis at %s: node %s: %s", q->url.display,
				     q->nodes[i]->name, n == 0 && r->type == REDIS_REPLY_ARRAY ?
				     "the cluster has no slots assigned yet (redis-cli "
				     "--cluster create)" : "unreadable CLUSTER SLOTS reply");
		goto out;
	}
	memset(q->slot_node, 0, AETH__Q_NSLOTS * sizeof(*q->slot_node));
	for (size_t k = 0; k < n && rc == 0; k++) {
		/* "" : the node we asked (it does not know its own address) */
		int node = aeth__q_node_find(q, rs[k].at.host[0] ? rs[k].at.host : asked,
					     rs[k].at.port);

		if (node < 0)
			rc = aeth_error_last_code();
		for (unsigned int s = rs[k].first; rc == 0 && s <= rs[k].last; s++)
			q->slot_node[s] = (uint16_t)(node + 1);
	}
out:
	free(asked);
	free(rs);
	return rc;
}

int aeth__q_cluster_refresh(aeth_queue *q)
{
	static const char *argv[2] = {"CLUSTER", "SLOTS"};
	size_t *order = calloc(q->nnodes ? q->nnodes : 1, sizeof(*order));
	size_t n;
	int rc = AETH_EUNAVAILABLE;

	if (!order)
		return aeth__error_oom();
	q->map_stale = false;
	n = ask_order(q, order);
	aeth__error_set(AETH_EUNAVAILABLE, "redis at %s: no node known", q->url.display);
	for (size_t k = 0; k < n; k++) {
		redisReply *r;

		if ((rc = aeth__q_node_command(q, order[k], 2, argv, &r)))
			continue; /* that node is down: ask another */
		if (r->type == REDIS_REPLY_ERROR) {
			rc = strstr(r->str, "cluster support disabled") ?
				aeth__error_set(AETH_EINVALID, "redis at %s: node %s is not "
						"in cluster mode: use redis://host:port for a "
						"single server", q->url.display,
						q->nodes[order[k]]->name) :
				aeth__q_bad_reply(q, "CLUSTER SLOTS", r);
			freeReplyObject(r);
			if (rc == AETH_EINVALID)
				break;
			continue;
		}
		rc = load_map(q, order[k], r);
		freeReplyObject(r);
		if (rc == 0)
			break;
	}
	if (rc)
		q->map_stale = true;
	free(order);
	return rc;
}

int aeth__q_cluster_route(aeth_queue *q, unsigned int slot, size_t *node)
{
	int rc;

	if (slot >= AETH__Q_NSLOTS)
		return aeth__error_set(AETH_EINVALID, "hash slot %u out of range", slot);
	if (!q->slot_node[slot] && (rc = aeth__q_cluster_refresh(q)))
		return rc;
	if (!q->slot_node[slot])
		return aeth__error_set(AETH_EUNAVAILABLE, "redis at %s: no node serves "
				       "hash slot %u (redis-cli --cluster check, then "
				       "--cluster fix)", q->url.display, slot);
	*node = q->slot_node[slot] - 1u;
	return 0;
}

int aeth__q_cluster_moved(aeth_queue *q, unsigned int slot, const char *host,
			  int port, size_t from)
{
	const char *h = host && *host ? host : q->nodes[from]->host;
	int node;

	if (slot >= AETH__Q_NSLOTS || !h || (node = aeth__q_node_find(q, h, port)) < 0)
		return -1;
	q->slot_node[slot] = (uint16_t)(node + 1);
	return 0;
}

int aeth__q_cluster_primaries(aeth_queue *q, size_t *out, size_t max, size_t *n)
{
	bool *seen;

	*n = 0;
	if (q->url.kind != AETH__REDIS_CLUSTER) {
		out[(*n)++] = 0;
		return 0;
	}
	if (!(seen = calloc(q->nnodes, sizeof(*seen))))
		return aeth__error_oom();
	for (unsigned int s = 0; s < AETH__Q_NSLOTS && *n < max; s++) {
		unsigned int v = q->slot_node[s];

		if (v && v <= q->nnodes && !seen[v - 1]) {
			seen[v - 1] = true;
			out[(*n)++] = v - 1;
		}
	}
	free(seen);
	return 0;
}
