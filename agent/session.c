/*
 * agent/session.c - the protocol as seen by the agent: the output queue,
 * and dispatch of each decoded frame to its handler.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

bool agent_out_full(const struct agent *a)
{
	return a->out_len >= AGENT_OUT_HIGH;
}

void agent_send(struct agent *a, aeth__proto_msg *m)
{
	if (aeth__proto_msg_finish(m) != 0) {
		agent_log("dropping a frame that cannot be built");
		return;
	}
	if (a->out_fd < 0)
		return; /* nobody listening: replies of a lost session */
	if (a->out_len + m->len > a->out_cap) {
		size_t cap = a->out_cap ? a->out_cap : 65536;
		uint8_t *p;

		while (cap < a->out_len + m->len)
			cap *= 2;
		p = realloc(a->out, cap);
		if (!p) {
			agent_log("out of memory queueing a frame");
			return;
		}
		a->out = p;
		a->out_cap = cap;
	}
	memcpy(a->out + a->out_len, m->data, m->len);
	a->out_len += m->len;
}

void agent_send_error(struct agent *a, uint32_t id, int code,
		      const char *fmt, ...)
{
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	aeth__proto_msg_begin(&m, AETH__MSG_ERROR, id);
	aeth__proto_add_i64(&m, AETH__F_CODE, code);
	aeth__proto_add_str(&m, AETH__F_MESSAGE, msg);
	agent_send(a, &m);
	aeth__proto_msg_free(&m);
}

/*
 * A new host session: the previous host is gone (library restart or
 * reattach) and can never collect what its commands produce, so they
 * are killed and half-done transfers dropped. See docs/protocol.md.
 */
void agent_session_reset(struct agent *a)
{
	agent_exec_kill_all(a, true);
	agent_files_reset(a);
}

static void handle_hello(struct agent *a, uint32_t id,
			 const aeth__proto_fields *f)
{
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;
	char *info;

	if (!AETH__PROTO_HAS(f, AETH__F_VERSION) || f->version < 1) {
		agent_send_error(a, id, AETH_EPROTO,
				 "hello without a protocol version >= 1");
		return;
	}
	agent_session_reset(a);
	info = agent_info_json(a);
	aeth__proto_msg_begin(&m, AETH__MSG_HELLO_OK, id);
	aeth__proto_add_u64(&m, AETH__F_VERSION, AETH__PROTO_LEVEL);
	aeth__proto_add_str(&m, AETH__F_INFO, info ? info : "{}");
	agent_send(a, &m);
	aeth__proto_msg_free(&m);
	free(info);
}

static void handle_setup(struct agent *a, uint32_t id,
			 const aeth__proto_fields *f)
{
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;
	char why[256];
	int rc = agent_setup(a, f, why, sizeof(why));

	if (rc) {
		agent_send_error(a, id, rc, "setup: %s", why);
		return;
	}
	aeth__proto_msg_begin(&m, AETH__MSG_OK, id);
	agent_send(a, &m);
	aeth__proto_msg_free(&m);
}

static void handle_simple(struct agent *a, const aeth__proto_header *h,
			  const aeth__proto_fields *f)
{
	aeth__proto_msg m = AETH__PROTO_MSG_INIT;

	if (h->type == AETH__MSG_PING) {
		aeth__proto_msg_begin(&m, AETH__MSG_PONG, h->id);
		if (f->data_len)
			aeth__proto_add_bytes(&m, AETH__F_DATA, f->data,
					      f->data_len);
	} else { /* shutdown */
		aeth__proto_msg_begin(&m, AETH__MSG_OK, h->id);
		a->shutdown = true;
	}
	agent_send(a, &m);
	aeth__proto_msg_free(&m);
}

void agent_handle_frame(struct agent *a, const aeth__proto_header *h,
			const uint8_t *payload)
{
	aeth__proto_fields f;
	const char *why = "malformed payload";
	int rc = aeth__proto_parse(&f, payload, h->len, &why);

	if (rc) {
		agent_send_error(a, h->id, rc, "bad %s frame: %s",
				 aeth__proto_type_name(h->type), why);
		aeth__proto_fields_free(&f);
		return;
	}
	switch (h->type) {
	case AETH__MSG_HELLO:
		handle_hello(a, h->id, &f);
		break;
	case AETH__MSG_PING:
	case AETH__MSG_SHUTDOWN:
		handle_simple(a, h, &f);
		break;
	case AETH__MSG_SETUP:
		handle_setup(a, h->id, &f);
		break;
	case AETH__MSG_EXEC:
		agent_exec_start(a, h->id, &f);
		break;
	case AETH__MSG_STDIN:
	case AETH__MSG_STDIN_CLOSE:
	case AETH__MSG_SIGNAL:
	case AETH__MSG_WINDOW:
		agent_exec_frame(a, h, &f);
		break;
	case AETH__MSG_PUT_OPEN:
	case AETH__MSG_PUT_DATA:
	case AETH__MSG_PUT_CLOSE:
	case AETH__MSG_GET:
		agent_file_frame(a, h, &f);
		break;
	case AETH__MSG_STAT:
	case AETH__MSG_LIST:
	case AETH__MSG_MKDIR:
	case AETH__MSG_REMOVE:
		agent_fs_frame(a, h, &f);
		break;
	case AETH__MSG_ERROR:
		agent_log("host reported an error on request %u: %s", h->id,
			  f.message ? f.message : "?");
		break;
	default:
		agent_send_error(a, h->id, AETH_EPROTO,
				 "unknown frame type %u (agent %s speaks "
				 "protocol %d)", h->type, AGENT_VERSION,
				 AETH__PROTO_LEVEL);
		break;
	}
	aeth__proto_fields_free(&f);
}
