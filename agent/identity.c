/*
 * agent/identity.c - the host's setup request: what makes this VM itself
 * rather than one more copy of the guest it was restored from (a
 * snapshot holds one guest's memory; every VM made from it must still
 * read different random bytes, know the time and have its own name).
 *
 * Order: the entropy first, so that nothing after it (nor any command)
 * runs on the snapshot's RNG state; then the clock, the host name and
 * the VM id (/run/aetherium/vm-id).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

#define VM_ID_DIR "/run/aetherium"
#define VM_ID_FILE VM_ID_DIR "/vm-id"

static int refuse(char *why, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int refuse(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return AETH_EINVALID;
}

/* 1..max of letters, digits and '-' (a host name label: not at either
 * end either). */
static bool word_ok(const char *s, size_t max, bool label)
{
	size_t n = strlen(s);

	if (n == 0 || n > max || (label && (s[0] == '-' || s[n - 1] == '-')))
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-'))
			return false;
	return true;
}

/* Credit the bytes to the input pool and reseed the CRNG from it now
 * (not at its next scheduled reseed): from here on /dev/urandom and
 * getrandom() differ from every other copy of the snapshot. */
static int reseed(const uint8_t *data, size_t len, char *why, size_t n)
{
	_Alignas(struct rand_pool_info) uint8_t raw[sizeof(struct rand_pool_info) +
						    AETH__PROTO_ENTROPY_MAX];
	struct rand_pool_info *info = (struct rand_pool_info *)(void *)raw;
	int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0) {
		snprintf(why, n, "open /dev/urandom: %s", strerror(errno));
		return AETH_EIO;
	}
	memset(raw, 0, sizeof(raw));
	info->entropy_count = (int)(len * 8);
	info->buf_size = (int)len;
	memcpy(info->buf, data, len);
	if (ioctl(fd, RNDADDENTROPY, info) != 0 ||
	    ioctl(fd, RNDRESEEDCRNG) != 0) {
		snprintf(why, n, "reseeding the RNG: %s", strerror(errno));
		rc = AETH_EIO;
	}
	explicit_bzero(raw, sizeof(raw));
	close(fd);
	return rc;
}

static int set_clock(int64_t ms, char *why, size_t n)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

	if (clock_settime(CLOCK_REALTIME, &ts) != 0) {
		snprintf(why, n, "setting the clock: %s", strerror(errno));
		return AETH_EIO;
	}
	return 0;
}

static void write_id(const char *id)
{
	int fd;

	mkdir(VM_ID_DIR, 0755);
	fd = open(VM_ID_FILE ".tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
		  O_NOFOLLOW, 0644);
	if (fd < 0 || dprintf(fd, "%s\n", id) < 0 ||
	    rename(VM_ID_FILE ".tmp", VM_ID_FILE) != 0)
		agent_log("writing %s: %s", VM_ID_FILE, strerror(errno));
	if (fd >= 0)
		close(fd);
}

int agent_setup(struct agent *a, const aeth__proto_fields *f, char *why,
		size_t why_len)
{
	int rc;

	if (!f->hostname || !word_ok(f->hostname, 63, true))
		return refuse(why, why_len, "hostname missing or not a host name "
			      "(letters, digits, '-'; at most 63)");
	if (!f->vm_id || !word_ok(f->vm_id, sizeof(a->vm_id) - 1, false))
		return refuse(why, why_len, "vm_id missing or not an id");
	if (!AETH__PROTO_HAS(f, AETH__F_TIME_MS) || f->time_ms <= 0)
		return refuse(why, why_len, "time_ms missing");
	if (f->data_len < AETH__PROTO_ENTROPY_MIN ||
	    f->data_len > AETH__PROTO_ENTROPY_MAX)
		return refuse(why, why_len, "%zu bytes of entropy: %d to %d",
			      f->data_len, AETH__PROTO_ENTROPY_MIN,
			      AETH__PROTO_ENTROPY_MAX);
	if (a->pid1 || a->serve) {
		if ((rc = reseed(f->data, f->data_len, why, why_len)) != 0 ||
		    (rc = set_clock(f->time_ms, why, why_len)) != 0)
			return rc;
		if (sethostname(f->hostname, strlen(f->hostname)) != 0) {
			snprintf(why, why_len, "sethostname: %s", strerror(errno));
			return AETH_EIO;
		}
		write_id(f->vm_id);
	}
	snprintf(a->vm_id, sizeof(a->vm_id), "%s", f->vm_id);
	return 0;
}
