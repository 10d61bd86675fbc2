/*
 * lib/vm/record.c - the per-VM record: <state_dir>/vm.json, written
 * atomically, so that a restarted process finds every resource of a VM.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "internal.h"
#include "vm/backend.h"

#define RECORD_MAX_BYTES (64 * 1024)

static const char *const state_names[] = {
	"creating", "running", "stopped", "failed", "deleted",
};

const char *aeth_vm_state_name(aeth_vm_state state)
{
	if ((unsigned int)state < AETH__ARRAY_LEN(state_names))
		return state_names[state];
	return "unknown";
}

const char *aeth_accel_name(aeth_accel accel)
{
	switch (accel) {
	case AETH_ACCEL_KVM:
		return "kvm";
	case AETH_ACCEL_TCG:
		return "tcg";
	default:
		return "auto";
	}
}

static const char *const net_names[] = {"none", "user", "tap"};
static const char *const origin_names[] = {"cold", "snapshot", "pool"};

const char *aeth_origin_name(aeth_origin origin)
{
	if ((unsigned int)origin < AETH__ARRAY_LEN(origin_names))
		return origin_names[origin];
	return "unknown";
}

static int add_str(cJSON *o, const char *k, const char *v)
{
	if (!v)
		return cJSON_AddNullToObject(o, k) ? 0 : -1;
	return cJSON_AddStringToObject(o, k, v) ? 0 : -1;
}

static int add_num(cJSON *o, const char *k, double v)
{
	return cJSON_AddNumberToObject(o, k, v) ? 0 : -1;
}

/* An array of n strings (n = SIZE_MAX: up to a NULL). */
static int add_strs(cJSON *o, const char *k, char *const *v, size_t n)
{
	cJSON *a = cJSON_AddArrayToObject(o, k);

	for (size_t i = 0; a && v && i < n && v[i]; i++)
		if (!cJSON_AddItemToArray(a, cJSON_CreateString(v[i])))
			return -1;
	return a ? 0 : -1;
}

int aeth__vm_record_save(const aeth__vm_record *r)
{
	cJSON *o = cJSON_CreateObject();
	char *text = NULL, *tmp = NULL, *dst = NULL;
	int rc = AETH_ENOMEM, fd = -1;
	int bad = 0;

	if (!o)
		return aeth__error_oom();
	bad |= add_str(o, "id", r->id);
	bad |= add_str(o, "name", r->name);
	bad |= add_str(o, "backend", r->backend);
	bad |= add_str(o, "accel", aeth_accel_name(r->accel));
	bad |= add_num(o, "vcpus", r->vcpus);
	bad |= add_num(o, "memory_mb", r->memory_mb);
	bad |= add_str(o, "vmm_binary", r->vmm_binary);
	bad |= add_str(o, "kernel", r->kernel_path);
	bad |= add_str(o, "initrd", r->initrd_path);
	bad |= add_str(o, "rootfs", r->rootfs_path);
	bad |= add_str(o, "net", net_names[r->net <= AETH_NET_TAP ? r->net : 0]);
	bad |= add_str(o, "tap", r->tap_name);
	bad |= add_strs(o, "net_allow", r->net_allow, SIZE_MAX);
	bad |= add_str(o, "cmdline", r->cmdline);
	bad |= add_num(o, "boot_timeout_ms", r->boot_timeout_ms);
	bad |= add_str(o, "state_dir", r->state_dir);
	bad |= add_num(o, "created_ms", (double)r->created_ms);
	bad |= add_num(o, "expires_ms", (double)r->expires_ms);
	bad |= add_num(o, "tcg_tb_mb", r->tcg_tb_mb);
	bad |= add_str(o, "origin", aeth_origin_name(r->origin));
	bad |= add_num(o, "start_ms", (double)r->start_ms);
	bad |= add_str(o, "snapshot", r->snapshot);
	bad |= add_str(o, "pool", r->pool);
	bad |= add_str(o, "state", aeth_vm_state_name(r->state));
	bad |= add_num(o, "pid", r->pid);
	bad |= add_num(o, "pid_starttime", (double)r->pid_starttime);
	bad |= add_str(o, "api_sock", r->api_sock);
	bad |= add_str(o, "agent_sock", r->agent_sock);
	bad |= add_str(o, "serial_log", r->serial_log);
	bad |= add_str(o, "vmm_log", r->vmm_log);
	bad |= add_str(o, "overlay", r->overlay_path);
	bad |= add_str(o, "error", r->error);
	bad |= add_num(o, "jail_uid", r->jail_uid);
	bad |= add_num(o, "helper_pid", r->helper_pid);
	bad |= add_num(o, "helper_starttime", (double)r->helper_starttime);
	bad |= add_strs(o, "cgroups", r->cgroups, r->ncgroups);
	if (bad || !(text = cJSON_Print(o)))
		goto out;
	tmp = aeth__sprintf("%s/vm.json.tmp", r->state_dir);
	dst = aeth__sprintf("%s/vm.json", r->state_dir);
	if (!tmp || !dst)
		goto out;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = aeth__error_errno(AETH_EIO, "cannot write VM record %s", tmp);
		goto out;
	}
	{
		size_t len = strlen(text), off = 0;

		while (off < len) {
			ssize_t n = write(fd, text + off, len - off);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				rc = aeth__error_errno(AETH_EIO,
						       "cannot write VM record %s",
						       tmp);
				goto out;
			}
			off += (size_t)n;
		}
	}
	close(fd);
	fd = -1;
	if (rename(tmp, dst) != 0) {
		rc = aeth__error_errno(AETH_EIO, "cannot rename %s to %s", tmp, dst);
		goto out;
	}
	rc = 0;
out:
	if (rc == AETH_ENOMEM)
		aeth__error_oom();
	if (fd >= 0)
		close(fd);
	if (rc != 0 && tmp)
		unlink(tmp);
	cJSON_free(text);
	cJSON_Delete(o);
	free(tmp);
	free(dst);
	return rc;
}

static int get_str(const cJSON *o, const char *k, char **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	*out = NULL;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v))
		return -1;
	*out = strdup(v->valuestring);
	return *out ? 0 : -1;
}

/* Strings of an array into out[0..max-1] (malloc'd); the count, or -1 for
 * a wrong type. An absent key is an empty array. */
static int get_strs(const cJSON *o, const char *k, char **out, size_t max)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, k), *it;
	size_t n = 0;

	if (!a || cJSON_IsNull(a))
		return 0;
	if (!cJSON_IsArray(a) || (size_t)cJSON_GetArraySize(a) > max)
		return -1;
	cJSON_ArrayForEach(it, a) {
		if (!cJSON_IsString(it) || !(out[n] = strdup(it->valuestring))) {
			while (n > 0) {
				free(out[--n]);
				out[n] = NULL;
			}
			return -1;
		}
		n++;
	}
	return (int)n;
}

static double get_num(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static int name_index(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n; i++)
		if (strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

static char *slurp(const char *path, int *rc)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	char *buf;
	ssize_t n;

	if (fd < 0) {
		*rc = errno == ENOENT ? AETH_ENOTFOUND : AETH_EIO;
		aeth__error_errno(*rc, "cannot read VM record %s", path);
		return NULL;
	}
	if (fstat(fd, &st) != 0 || st.st_size > RECORD_MAX_BYTES) {
		close(fd);
		*rc = aeth__error_set(AETH_EINVALID,
				      "VM record %s is unreadable or too big", path);
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		*rc = aeth__error_oom();
		return NULL;
	}
	n = read(fd, buf, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size) {
		free(buf);
		*rc = aeth__error_set(AETH_EIO, "short read of VM record %s", path);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

int aeth__vm_record_load(aeth__vm_record *r, const char *state_dir)
{
	char *path = aeth__sprintf("%s/vm.json", state_dir);
	char *text, *s = NULL;
	cJSON *o;
	int rc = 0, bad = 0, i;

	memset(r, 0, sizeof(*r));
	if (!path)
		return AETH_ENOMEM;
	text = slurp(path, &rc);
	if (!text) {
		free(path);
		return rc;
	}
	o = cJSON_Parse(text);
	free(text);
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		rc = aeth__error_set(AETH_EINVALID, "VM record %s is not JSON", path);
		free(path);
		return rc;
	}
	bad |= get_str(o, "id", &s);
	if (!bad && s && strlen(s) < sizeof(r->id))
		memcpy(r->id, s, strlen(s) + 1);
	else
		bad = 1;
	free(s);
	s = NULL;
	bad |= get_str(o, "name", &r->name);
	bad |= get_str(o, "backend", &r->backend);
	bad |= get_str(o, "accel", &s);
	r->accel = s && strcmp(s, "kvm") == 0 ? AETH_ACCEL_KVM : AETH_ACCEL_TCG;
	free(s);
	s = NULL;
	r->vcpus = (unsigned int)get_num(o, "vcpus");
	r->memory_mb = (unsigned int)get_num(o, "memory_mb");
	bad |= get_str(o, "vmm_binary", &r->vmm_binary);
	bad |= get_str(o, "kernel", &r->kernel_path);
	bad |= get_str(o, "initrd", &r->initrd_path);
	bad |= get_str(o, "rootfs", &r->rootfs_path);
	bad |= get_str(o, "net", &s);
	i = name_index(net_names, AETH__ARRAY_LEN(net_names), s);
	r->net = i < 0 ? AETH_NET_NONE : (aeth_net_mode)i;
	free(s);
	s = NULL;
	bad |= get_str(o, "tap", &r->tap_name);
	{
		char *rules[AETH__NET_ALLOW_MAX] = {NULL};
		int n = get_strs(o, "net_allow", rules, AETH__NET_ALLOW_MAX);

		if (n > 0 && (r->net_allow = calloc((size_t)n + 1, sizeof(char *))))
			memcpy(r->net_allow, rules, (size_t)n * sizeof(char *));
		else
			for (int j = 0; j < n; j++)
				free(rules[j]);
		if (n < 0 || (n > 0 && !r->net_allow))
			bad = 1;
	}
	bad |= get_str(o, "cmdline", &r->cmdline);
	r->boot_timeout_ms = (unsigned int)get_num(o, "boot_timeout_ms");
	bad |= get_str(o, "state_dir", &r->state_dir);
	r->created_ms = (int64_t)get_num(o, "created_ms");
	r->expires_ms = (int64_t)get_num(o, "expires_ms");
	r->tcg_tb_mb = (unsigned int)get_num(o, "tcg_tb_mb");
	bad |= get_str(o, "origin", &s);
	i = name_index(origin_names, AETH__ARRAY_LEN(origin_names), s);
	r->origin = i < 0 ? AETH_ORIGIN_COLD : (aeth_origin)i;
	free(s);
	s = NULL;
	r->start_ms = (int64_t)get_num(o, "start_ms");
	bad |= get_str(o, "snapshot", &r->snapshot);
	bad |= get_str(o, "pool", &r->pool);
	bad |= get_str(o, "state", &s);
	i = name_index(state_names, AETH__ARRAY_LEN(state_names), s);
	r->state = i < 0 ? AETH_VM_FAILED : (aeth_vm_state)i;
	free(s);
	r->pid = (pid_t)get_num(o, "pid");
	r->pid_starttime = (uint64_t)get_num(o, "pid_starttime");
	bad |= get_str(o, "api_sock", &r->api_sock);
	bad |= get_str(o, "agent_sock", &r->agent_sock);
	bad |= get_str(o, "serial_log", &r->serial_log);
	bad |= get_str(o, "vmm_log", &r->vmm_log);
	bad |= get_str(o, "overlay", &r->overlay_path);
	bad |= get_str(o, "error", &r->error);
	r->jail_uid = (unsigned int)get_num(o, "jail_uid");
	r->helper_pid = (pid_t)get_num(o, "helper_pid");
	r->helper_starttime = (uint64_t)get_num(o, "helper_starttime");
	i = get_strs(o, "cgroups", r->cgroups, AETH__CGROUP_MAX_DIRS);
	if (i < 0)
		bad = 1;
	else
		r->ncgroups = (size_t)i;
	cJSON_Delete(o);
	if (!bad && !r->state_dir)
		bad = 1;
	if (bad) {
		aeth__vm_record_clear(r);
		rc = aeth__error_set(AETH_EINVALID,
				     "VM record %s is missing fields or has "
				     "wrong types", path);
	}
	free(path);
	return rc;
}

void aeth__vm_record_clear(aeth__vm_record *r)
{
	if (!r)
		return;
	free(r->name);
	free(r->backend);
	free(r->vmm_binary);
	free(r->kernel_path);
	free(r->initrd_path);
	free(r->rootfs_path);
	free(r->tap_name);
	aeth_strarray_free(r->net_allow);
	free(r->cmdline);
	free(r->state_dir);
	free(r->api_sock);
	free(r->agent_sock);
	free(r->serial_log);
	free(r->vmm_log);
	free(r->overlay_path);
	free(r->error);
	free(r->snapshot);
	free(r->pool);
	for (size_t i = 0; i < r->ncgroups && i < AETH__CGROUP_MAX_DIRS; i++)
		free(r->cgroups[i]);
	memset(r, 0, sizeof(*r));
}

char *aeth__vm_path(const aeth__vm_record *r, const char *name)
{
	struct sockaddr_un sa;
	char *p = aeth__sprintf("%s/%s", r->state_dir, name);

	if (p && strlen(p) >= sizeof(sa.sun_path)) {
		aeth__error_set(AETH_ETOOBIG,
				"path %s is too long for a Unix socket (%zu bytes, "
				"limit %zu): use a shorter state dir "
				"(AETH_STATE_DIR)", p, strlen(p),
				sizeof(sa.sun_path) - 1);
		free(p);
		return NULL;
	}
	return p;
}

int aeth__vm_path_set(aeth__vm_record *r, char **field, const char *name)
{
	char *p = aeth__vm_path(r, name);

	if (!p)
		return aeth_error_last_code() ? aeth_error_last_code() : AETH_ENOMEM;
	free(*field);
	*field = p;
	return 0;
}

char *aeth__vm_serial_tail(const aeth__vm_record *r, size_t max_bytes)
{
	return aeth__vm_file_tail(r->serial_log, max_bytes);
}

char *aeth__vm_file_tail(const char *path, size_t max_bytes)
{
	aeth__buf b = AETH__BUF_INIT;
	char buf[4096];
	int fd = path ? open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
	off_t size;
	ssize_t n;

	if (fd >= 0) {
		size = lseek(fd, 0, SEEK_END);
		if (size > (off_t)max_bytes)
			lseek(fd, size - (off_t)max_bytes, SEEK_SET);
		else
			lseek(fd, 0, SEEK_SET);
		while ((n = read(fd, buf, sizeof(buf))) > 0 && b.len < max_bytes)
			aeth__buf_append(&b, buf, (size_t)n);
		close(fd);
	}
	/* Drop carriage returns and other control bytes that mess up logs. */
	for (size_t i = 0; i < b.len; i++)
		if (((unsigned char)b.data[i] < 0x20 && b.data[i] != '\n') ||
		    b.data[i] == 0x7f)
			b.data[i] = ' ';
	return aeth__buf_detach(&b, NULL);
}
