/*
 * agent/agent.h - aeth-agent, the in-guest side of docs/protocol.md.
 *
 * One thread, one poll() loop: the channel to the host, the pipes of the
 * running commands, a signalfd for SIGCHLD. Memory stays bounded: the
 * output queue to the host has a high-water mark above which nothing new
 * is read (children then block on their pipes), each command has an
 * output window granted by the host and an output cap, and stdin is
 * bounded by the window the agent grants.
 */
#ifndef AETH_AGENT_H
#define AETH_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <poll.h>
#include <sys/types.h>

#include "proto/proto.h"

#define AGENT_VERSION "0.1.0"
#define AGENT_MAX_EXECS 64
#define AGENT_MAX_FILES 16
/* Above this many queued output bytes the agent stops reading. */
#define AGENT_OUT_HIGH (1u << 20)
/* SIGTERM first on timeout; SIGKILL the group this long after. */
#define AGENT_KILL_GRACE_MS 2000
/* After a command exits, wait this long for its pipes to reach EOF
 * (a background child may hold them open). */
#define AGENT_LINGER_MS 500
/* Disconnected virtio-serial port: look again this often. */
#define AGENT_BACKOFF_MS 200

enum agent_channel_kind {
	CHAN_FD,     /* --stdio / --fd: EOF ends the agent */
	CHAN_LISTEN, /* Unix or vsock listener: one host connection at a time */
	CHAN_VPORT,  /* virtio-serial port: host may go and come back */
};

struct agent_exec {
	uint32_t id;
	bool silent;        /* from an old session: reap, send nothing */
	pid_t pid;
	int in_fd, out_fd[2]; /* -1 when closed; out_fd[0] stdout, [1] stderr */
	uint8_t *in_buf;    /* stdin not yet written to the child */
	size_t in_len;
	bool in_close;      /* close stdin once in_buf is written */
	uint64_t credit;    /* output bytes the host still accepts */
	uint64_t limit;     /* per stream */
	uint64_t sent[2];
	bool trunc[2];
	int64_t start_ms, deadline_ms, kill_at_ms, linger_ms;
	bool timed_out, exited;
	int status, exec_errno;
};

struct agent_file {
	uint32_t id;
	bool put;           /* else get */
	int fd;
	char *path, *tmp;   /* put: final path and the temp file written */
	uint64_t size, done;
};

struct agent {
	bool pid1, serve;
	enum agent_channel_kind kind;
	int listen_fd;      /* CHAN_LISTEN */
	int in_fd, out_fd;  /* connection; -1 when none */
	bool broken;        /* vport: bad frame seen; ignore until reconnect */
	int64_t backoff_until;
	aeth__proto_rx rx;
	uint8_t *out;       /* queued frames */
	size_t out_len, out_cap;
	int sig_fd;
	bool shutdown;      /* power off once the reply is flushed */
	struct agent_exec *execs[AGENT_MAX_EXECS];
	struct agent_file *files[AGENT_MAX_FILES];
	int64_t boot_ms;
	char vm_id[64];     /* from the host's setup; "" before */
};

/* util */
int64_t agent_now_ms(void);
void agent_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int agent_set_nonblock(int fd);

/* session.c: the protocol */
void agent_send(struct agent *a, aeth__proto_msg *m);
void agent_send_error(struct agent *a, uint32_t id, int code,
		      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void agent_handle_frame(struct agent *a, const aeth__proto_header *h,
			const uint8_t *payload);
void agent_session_reset(struct agent *a);
bool agent_out_full(const struct agent *a);

/* proc.c: running commands */
void agent_exec_start(struct agent *a, uint32_t id,
		      const aeth__proto_fields *f);
void agent_exec_frame(struct agent *a, const aeth__proto_header *h,
		      const aeth__proto_fields *f);
void agent_exec_kill_all(struct agent *a, bool silent);
void agent_reap(struct agent *a);
/* poll() plumbing for the commands' pipes and timers */
size_t agent_exec_pollfds(struct agent *a, struct pollfd *p, size_t max);
void agent_exec_events(struct agent *a, const struct pollfd *p, size_t n);
int agent_exec_timers(struct agent *a, int64_t now);

/* fsops.c: stat, list, mkdir, remove (answered at once) */
void agent_fs_frame(struct agent *a, const aeth__proto_header *h,
		    const aeth__proto_fields *p);

/* files.c: put/get */
void agent_file_frame(struct agent *a, const aeth__proto_header *h,
		      const aeth__proto_fields *f);
void agent_files_pump(struct agent *a);
void agent_files_reset(struct agent *a);

/* system.c: PID 1 duties and guest facts */
void agent_pid1_setup(void);
void agent_pid1_env(void);
void agent_load_modules(const char *list_path, const char *cmdline);
void agent_network_setup(const char *cmdline);
void agent_write_resolv(const char *cmdline);
void agent_switch_root(const char *cmdline, char **argv);
char *agent_cmdline_get(const char *cmdline, const char *key);
char *agent_read_cmdline(void);
char *agent_info_json(const struct agent *a);
void agent_poweroff(struct agent *a);
/* The host's setup request (the VM's identity): checks it, then as PID 1
 * (or --serve) applies it to the guest; in the other modes (tests on the
 * host) only records the VM id. 0, or an AETH_E* code with `why`. */
int agent_setup(struct agent *a, const aeth__proto_fields *f, char *why,
		size_t why_len);

/* channel.c */
int agent_channel_open(struct agent *a, const char *cmdline);
int agent_listen_unix(struct agent *a, const char *path);

#endif
