/*
 * lib/proto/proto.c - frame codec shared by the library and aeth-agent.
 * Everything read from the wire is bounds-checked here, so the callers
 * can trust a decoded frame's lengths and strings.
 */
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

void aeth__proto_header_encode(uint8_t out[AETH__PROTO_HEADER_LEN],
			       uint8_t type, uint32_t id, uint32_t len)
{
	out[0] = 'A';
	out[1] = 'E';
	out[2] = AETH__PROTO_FRAME_VERSION;
	out[3] = type;
	put_be32(out + 4, id);
	put_be32(out + 8, len);
}

int aeth__proto_header_decode(aeth__proto_header *h,
			      const uint8_t in[AETH__PROTO_HEADER_LEN])
{
	if (in[0] != 'A' || in[1] != 'E')
		return AETH_EPROTO;
	/* The frame layout itself is version 1; features are negotiated by
	 * hello, so any other value here means a different format. */
	if (in[2] != AETH__PROTO_FRAME_VERSION)
		return AETH_EPROTO;
	if (in[3] == 0)
		return AETH_EPROTO;
	h->version = in[2];
	h->type = in[3];
	h->id = get_be32(in + 4);
	h->len = get_be32(in + 8);
	if (h->len > AETH__PROTO_MAX_PAYLOAD)
		return AETH_ETOOBIG;
	return 0;
}

const char *aeth__proto_type_name(unsigned int type)
{
	static const struct {
		unsigned int type;
		const char *name;
	} names[] = {
		{AETH__MSG_HELLO, "hello"}, {AETH__MSG_HELLO_OK, "hello-ok"},
		{AETH__MSG_PING, "ping"}, {AETH__MSG_PONG, "pong"},
		{AETH__MSG_ERROR, "error"}, {AETH__MSG_OK, "ok"},
		{AETH__MSG_SHUTDOWN, "shutdown"}, {AETH__MSG_SETUP, "setup"},
		{AETH__MSG_EXEC, "exec"},
		{AETH__MSG_STARTED, "started"}, {AETH__MSG_STDIN, "stdin"},
		{AETH__MSG_STDIN_CLOSE, "stdin-close"},
		{AETH__MSG_OUTPUT, "output"}, {AETH__MSG_EXIT, "exit"},
		{AETH__MSG_SIGNAL, "signal"}, {AETH__MSG_WINDOW, "window"},
		{AETH__MSG_STDIN_ACK, "stdin-ack"},
		{AETH__MSG_PUT_OPEN, "put-open"}, {AETH__MSG_PUT_DATA, "put-data"},
		{AETH__MSG_PUT_CLOSE, "put-close"}, {AETH__MSG_GET, "get"},
		{AETH__MSG_GET_DATA, "get-data"}, {AETH__MSG_STAT, "stat"},
		{AETH__MSG_LIST, "list"}, {AETH__MSG_MKDIR, "mkdir"},
		{AETH__MSG_REMOVE, "remove"},
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].type == type)
			return names[i].name;
	return "unknown";
}

/* ---- building ---- */

static void msg_put(aeth__proto_msg *m, const void *p, size_t n)
{
	if (m->error)
		return;
	if (m->len + n > AETH__PROTO_HEADER_LEN + AETH__PROTO_MAX_PAYLOAD) {
		m->error = AETH_ETOOBIG;
		return;
	}
	if (m->len + n > m->cap) {
		size_t cap = m->cap ? m->cap : 256;
		uint8_t *d;

		while (cap < m->len + n)
			cap *= 2;
		d = realloc(m->data, cap);
		if (!d) {
			m->error = AETH_ENOMEM;
			return;
		}
		m->data = d;
		m->cap = cap;
	}
	if (n)
		memcpy(m->data + m->len, p, n);
	m->len += n;
}

void aeth__proto_msg_begin(aeth__proto_msg *m, uint8_t type, uint32_t id)
{
	uint8_t h[AETH__PROTO_HEADER_LEN];

	m->len = 0;
	m->error = 0;
	aeth__proto_header_encode(h, type, id, 0);
	msg_put(m, h, sizeof(h));
}

static void field_head(aeth__proto_msg *m, uint8_t tag, size_t n)
{
	uint8_t h[5];

	if (n > AETH__PROTO_MAX_PAYLOAD) {
		m->error = AETH_ETOOBIG;
		return;
	}
	h[0] = tag;
	put_be32(h + 1, (uint32_t)n);
	msg_put(m, h, sizeof(h));
}

void aeth__proto_add_u64(aeth__proto_msg *m, uint8_t tag, uint64_t v)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (56 - 8 * i));
	field_head(m, tag, 8);
	msg_put(m, b, 8);
}

void aeth__proto_add_i64(aeth__proto_msg *m, uint8_t tag, int64_t v)
{
	aeth__proto_add_u64(m, tag, (uint64_t)v);
}

void aeth__proto_add_str(aeth__proto_msg *m, uint8_t tag, const char *s)
{
	size_t n;

	if (!s)
		return;
	n = strlen(s) + 1;
	field_head(m, tag, n);
	msg_put(m, s, n);
}

void aeth__proto_add_bytes(aeth__proto_msg *m, uint8_t tag, const void *p,
			   size_t n)
{
	field_head(m, tag, n);
	msg_put(m, p, n);
}

int aeth__proto_msg_finish(aeth__proto_msg *m)
{
	if (m->error)
		return m->error;
	put_be32(m->data + 8, (uint32_t)(m->len - AETH__PROTO_HEADER_LEN));
	return 0;
}

void aeth__proto_msg_free(aeth__proto_msg *m)
{
	free(m->data);
	m->data = NULL;
	m->len = m->cap = 0;
	m->error = 0;
}

/* ---- parsing ---- */

static int bad(const char **err, const char *why)
{
	if (err)
		*err = why;
	return AETH_EPROTO;
}

static bool is_str_tag(uint8_t tag)
{
	return tag == AETH__F_INFO || tag == AETH__F_ARG ||
	       tag == AETH__F_ENV || tag == AETH__F_CWD ||
	       tag == AETH__F_PATH || tag == AETH__F_MESSAGE ||
	       tag == AETH__F_HOSTNAME || tag == AETH__F_VM_ID;
}

static uint64_t *u64_slot(aeth__proto_fields *f, uint8_t tag)
{
	switch (tag) {
	case AETH__F_VERSION: return &f->version;
	case AETH__F_TIMEOUT_MS: return &f->timeout_ms;
	case AETH__F_OUTPUT_LIMIT: return &f->output_limit;
	case AETH__F_SHELL: return &f->shell;
	case AETH__F_WINDOW: return &f->window;
	case AETH__F_STREAM: return &f->stream;
	case AETH__F_EXIT_CODE: return (uint64_t *)(void *)&f->exit_code;
	case AETH__F_SIGNAL: return &f->signal;
	case AETH__F_TIMED_OUT: return &f->timed_out;
	case AETH__F_STDOUT_TRUNC: return &f->stdout_trunc;
	case AETH__F_STDERR_TRUNC: return &f->stderr_trunc;
	case AETH__F_DURATION_MS: return &f->duration_ms;
	case AETH__F_PID: return &f->pid;
	case AETH__F_MODE: return &f->mode;
	case AETH__F_SIZE: return &f->size;
	case AETH__F_MAX_LEN: return &f->max_len;
	case AETH__F_CODE: return (uint64_t *)(void *)&f->code;
	case AETH__F_STDIN_OPEN: return &f->stdin_open;
	case AETH__F_EXEC_ERRNO: return &f->exec_errno;
	case AETH__F_TIME_MS: return (uint64_t *)(void *)&f->time_ms;
	case AETH__F_UID: return &f->uid;
	case AETH__F_GID: return &f->gid;
	case AETH__F_FLAGS: return &f->flags;
	default: return NULL;
	}
}

static int list_add(const char ***list, size_t *n, const char *s,
		    const char **err)
{
	const char **l;

	if (*n >= AETH__PROTO_MAX_LIST)
		return bad(err, "too many argv or env entries");
	l = realloc(*list, (*n + 2) * sizeof(*l));
	if (!l)
		return AETH_ENOMEM;
	l[(*n)++] = s;
	l[*n] = NULL;
	*list = l;
	return 0;
}

static int take_str(aeth__proto_fields *f, uint8_t tag, const char *s,
		    const char **err)
{
	switch (tag) {
	case AETH__F_ARG: return list_add(&f->args, &f->nargs, s, err);
	case AETH__F_ENV: return list_add(&f->envs, &f->nenvs, s, err);
	case AETH__F_INFO: f->info = s; break;
	case AETH__F_CWD: f->cwd = s; break;
	case AETH__F_PATH: f->path = s; break;
	case AETH__F_HOSTNAME: f->hostname = s; break;
	case AETH__F_VM_ID: f->vm_id = s; break;
	default: f->message = s; break;
	}
	return 0;
}

static int take_field(aeth__proto_fields *f, uint8_t tag, const uint8_t *v,
		      uint32_t n, const char **err)
{
	uint64_t *slot;

	if (tag <= AETH__F_MAX_TAG && tag != AETH__F_ARG &&
	    tag != AETH__F_ENV && AETH__PROTO_HAS(f, tag))
		return bad(err, "field repeated");
	if (is_str_tag(tag)) {
		if (n == 0 || v[n - 1] != 0 || memchr(v, 0, n - 1))
			return bad(err, "string field not NUL-terminated "
					"or with an embedded NUL");
		f->have |= 1ull << tag;
		return take_str(f, tag, (const char *)v, err);
	}
	if (tag == AETH__F_DATA) {
		f->data = v;
		f->data_len = n;
		f->have |= 1ull << tag;
		return 0;
	}
	slot = u64_slot(f, tag);
	if (!slot)
		return 0; /* unknown tag: skipped for forward compatibility */
	if (n != 8)
		return bad(err, "integer field not 8 bytes");
	*slot = 0;
	for (int i = 0; i < 8; i++)
		*slot = *slot << 8 | v[i];
	f->have |= 1ull << tag;
	return 0;
}

int aeth__proto_parse(aeth__proto_fields *f, const uint8_t *payload,
		      size_t len, const char **err)
{
	size_t off = 0;
	int rc;

	memset(f, 0, sizeof(*f));
	if (len > AETH__PROTO_MAX_PAYLOAD)
		return bad(err, "payload too long");
	while (off < len) {
		uint32_t n;
		uint8_t tag;

		if (len - off < 5)
			return bad(err, "truncated field header");
		tag = payload[off];
		n = get_be32(payload + off + 1);
		off += 5;
		if (n > len - off)
			return bad(err, "field longer than the payload");
		rc = take_field(f, tag, payload + off, n, err);
		if (rc)
			return rc;
		off += n;
	}
	return 0;
}

void aeth__proto_fields_free(aeth__proto_fields *f)
{
	free(f->args);
	free(f->envs);
	f->args = f->envs = NULL;
	f->nargs = f->nenvs = 0;
}

/* ---- stream reassembly ---- */

int aeth__proto_rx_space(aeth__proto_rx *rx, size_t want, uint8_t **p)
{
	if (rx->start > 0) {
		/* Drop frames already handed out. */
		memmove(rx->buf, rx->buf + rx->start, rx->len - rx->start);
		rx->len -= rx->start;
		rx->start = 0;
	}
	if (rx->cap - rx->len < want) {
		size_t cap = rx->cap ? rx->cap : 4096;
		uint8_t *b;

		while (cap - rx->len < want)
			cap *= 2;
		b = realloc(rx->buf, cap);
		if (!b)
			return AETH_ENOMEM;
		rx->buf = b;
		rx->cap = cap;
	}
	*p = rx->buf + rx->len;
	return 0;
}

void aeth__proto_rx_commit(aeth__proto_rx *rx, size_t n)
{
	rx->len += n;
}

int aeth__proto_rx_feed(aeth__proto_rx *rx, const void *data, size_t n)
{
	uint8_t *p;
	int rc = aeth__proto_rx_space(rx, n, &p);

	if (rc)
		return rc;
	if (n)
		memcpy(p, data, n);
	aeth__proto_rx_commit(rx, n);
	return 0;
}

int aeth__proto_rx_next(aeth__proto_rx *rx, aeth__proto_header *h,
			const uint8_t **payload)
{
	size_t avail = rx->len - rx->start;
	int rc;

	if (avail < AETH__PROTO_HEADER_LEN)
		return 0;
	rc = aeth__proto_header_decode(h, rx->buf + rx->start);
	if (rc)
		return rc;
	if (avail - AETH__PROTO_HEADER_LEN < h->len)
		return 0;
	*payload = rx->buf + rx->start + AETH__PROTO_HEADER_LEN;
	rx->start += AETH__PROTO_HEADER_LEN + h->len;
	return 1;
}

void aeth__proto_rx_reset(aeth__proto_rx *rx)
{
	rx->len = rx->start = 0;
}

void aeth__proto_rx_free(aeth__proto_rx *rx)
{
	free(rx->buf);
	rx->buf = NULL;
	rx->len = rx->start = rx->cap = 0;
}
