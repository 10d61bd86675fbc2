/*
 * lib/vm/snapshot.c - snapshots of a shape: made once from a template
 * VM, kept on disk, loaded once per manager, restored from (snapshot.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "internal.h"
#include "agent/agent_client.h"
#include "vm/snapshot.h"
#include "vm/handles.h"

/* Bumped when what a snapshot holds or how it is read changes. */
/* 2: a jailed template (hence its restores) has the balloon device */
#define SNAPSHOT_FORMAT 2
#define META_MAX_BYTES (64 * 1024)
/* After a snapshot could not be made or used: cold boots for this long
 * before trying again (a broken image must not cost a template boot on
 * every start). */
#define RETRY_AFTER_MS 60000
#define PAGE 4096u
#define CHUNK (1u << 20)

typedef struct aeth__snap {
	struct aeth__snap *next;
	char key[17];
	char *shape;          /* the shape without file identities */
	char *dir;            /* <snapshot_dir>/<key> */
	int ram_fd;           /* sealed memfd of "ram"; -1: none */
	bool ready;           /* usable */
	bool busy;            /* a thread makes or loads it */
	int64_t retry_at;     /* after a failure, aeth__now_ms() */
} aeth__snap;

/* ---- what a snapshot is of ---- */

static int add_file(aeth__buf *b, const char *what, const char *path)
{
	struct stat st;

	if (!path)
		return aeth__buf_printf(b, "%s=-\n", what);
	if (stat(path, &st) != 0)
		return aeth__error_errno(AETH_ENOTFOUND, "%s %s", what, path);
	return aeth__buf_printf(b, "%s=%s dev=%llu ino=%llu size=%lld "
				"mtime=%lld.%09ld ctime=%lld.%09ld\n", what, path,
				(unsigned long long)st.st_dev,
				(unsigned long long)st.st_ino,
				(long long)st.st_size, (long long)st.st_mtim.tv_sec,
				st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec,
				st.st_ctim.tv_nsec);
}

/* The shape (what restored VMs must have in common) and the inputs (the
 * shape plus the identity of every file the guest's memory came from). */
static int describe(const aeth_vm *vm, char **shape, char **inputs)
{
	const aeth__vm_record *r = &vm->rec;
	aeth__buf b = AETH__BUF_INIT;
	char *vmm = aeth__find_program(r->vmm_binary ? r->vmm_binary :
				       "qemu-system-x86_64");
	int rc;

	*shape = *inputs = NULL;
	rc = aeth__buf_printf(&b, "format=%d\nbackend=%s\naccel=%s\nvcpus=%u\n"
			      "memory_mb=%u\nnet=%s\nkernel=%s\ninitrd=%s\n",
			      SNAPSHOT_FORMAT, r->backend,
			      aeth_accel_name(r->accel), r->vcpus, r->memory_mb,
			      r->net == AETH_NET_USER ? "user" : "none",
			      r->kernel_path, r->initrd_path ? r->initrd_path : "-");
	if (rc == 0 && !(*shape = aeth__strdup(b.data)))
		rc = AETH_ENOMEM;
	if (rc == 0)
		rc = aeth__buf_printf(&b, "cmdline=%s\njail=%s\n", r->cmdline,
				      r->jail && r->jail->on ? "on" : "off");
	if (rc == 0)
		rc = add_file(&b, "vmm_binary", vmm);
	if (rc == 0)
		rc = add_file(&b, "kernel_file", r->kernel_path);
	if (rc == 0)
		rc = add_file(&b, "initrd_file", r->initrd_path);
	free(vmm);
	if (rc == 0 && !(*inputs = aeth__buf_detach(&b, NULL)))
		rc = AETH_ENOMEM;
	aeth__buf_free(&b);
	if (rc) {
		free(*shape);
		*shape = NULL;
	}
	return rc;
}

/* FNV-1a, 64 bits, as 16 hex digits: a directory name, not a proof (the
 * inputs themselves are compared on load). */
static void key_of(const char *inputs, char key[17])
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (const unsigned char *p = (const unsigned char *)inputs; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ull;
	}
	snprintf(key, 17, "%016llx", (unsigned long long)h);
}

/* Is `memory_mb` more than the host's physical memory? */
static bool more_than_host(unsigned int memory_mb)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);

	return pages > 0 && size > 0 &&
	       (uint64_t)memory_mb * 1024 * 1024 > (uint64_t)pages * (uint64_t)size;
}

/* Why this VM's shape can have no snapshot, or NULL. */
static const char *ineligible(const aeth_vm *vm)
{
	const aeth_vmm *m = vm->vmm;

	if (m->snapshots == AETH_SNAPSHOTS_OFF)
		return "snapshots are off";
	if (!vm->backend->snapshot_save || !vm->backend->restore)
		return "this backend has no snapshots";
	if (vm->rec.rootfs_path)
		return "it has a root disk (what the template wrote to it would "
		       "not be in the snapshot)";
	if (vm->rec.net == AETH_NET_TAP)
		return "it has a tap device (one VM per tap)";
	if (m->jail.fc_jailer)
		return "Firecracker's jailer is in use (snapshots are not "
		       "supported under it yet)";
	if (more_than_host(vm->rec.memory_mb))
		return "its memory is more than this host has (a template of "
		       "it would boot into a sparse memfd and hang, not fail; "
		       "the cold boot fails at once in the VMM's words)";
	return NULL;
}

/* ---- files ---- */

static bool page_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)(const void *)p;

	for (size_t i = 0; i < PAGE / sizeof(*w); i++)
		if (w[i])
			return false;
	return true;
}

int aeth__snapshot_write_ram(int memfd, uint64_t bytes, const char *path)
{
	uint8_t *buf = malloc(CHUNK);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		      0600);
	int rc = 0;

	if (!buf || fd < 0) {
		rc = buf ? aeth__error_errno(AETH_EIO, "cannot create %s", path)
			 : aeth__error_oom();
		goto out;
	}
	if (ftruncate(fd, (off_t)bytes) != 0) {
		rc = aeth__error_errno(AETH_EIO, "cannot size %s", path);
		goto out;
	}
	for (uint64_t off = 0; off < bytes && rc == 0;) {
		off_t data = lseek(memfd, (off_t)off, SEEK_DATA);
		uint64_t n;
		ssize_t got;

		if (data < 0)
			break; /* nothing but holes from here */
		off = (uint64_t)data & ~(uint64_t)(PAGE - 1);
		n = bytes - off < CHUNK ? bytes - off : CHUNK;
		got = pread(memfd, buf, n, (off_t)off);
		if (got <= 0) {
			rc = aeth__error_errno(AETH_EIO, "reading the template's memory");
			break;
		}
		for (size_t p = 0; p < (size_t)got && rc == 0;) {
			size_t run = 0;

			while (p < (size_t)got && page_zero(buf + p))
				p += PAGE;
			while (p + run < (size_t)got && !page_zero(buf + p + run))
				run += PAGE;
			if (run && pwrite(fd, buf + p, run, (off_t)(off + p)) !=
				   (ssize_t)run)
				rc = aeth__error_errno(AETH_EIO, "writing %s", path);
			p += run;
		}
		off += (uint64_t)got;
	}
	if (rc == 0 && fsync(fd) != 0)
		rc = aeth__error_errno(AETH_EIO, "fsync %s", path);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

/* "ram" into a new memfd, sealed: what every restored VM maps privately. */
static int load_ram(const char *path, uint64_t bytes, int *out)
{
	uint8_t *buf = malloc(CHUNK);
	int src = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int mfd = memfd_create("aeth-snapshot", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	struct stat st;
	int rc = 0;

	*out = -1;
	if (!buf || src < 0 || mfd < 0 || fstat(src, &st) != 0) {
		rc = !buf ? aeth__error_oom() :
			aeth__error_errno(AETH_EIO, "cannot load snapshot memory %s",
					  path);
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != bytes) {
		rc = aeth__error_set(AETH_EINVALID, "snapshot memory %s is not a "
				     "file of %llu bytes", path,
				     (unsigned long long)bytes);
		goto out;
	}
	if (ftruncate(mfd, (off_t)bytes) != 0) {
		rc = aeth__error_errno(AETH_EIO, "sizing a memfd for %s", path);
		goto out;
	}
	for (off_t off = 0; (uint64_t)off < bytes && rc == 0;) {
		off_t data = lseek(src, off, SEEK_DATA), hole;

		if (data < 0)
			break;
		hole = lseek(src, data, SEEK_HOLE);
		if (hole < 0)
			hole = (off_t)bytes;
		for (off = data; off < hole && rc == 0;) {
			size_t n = (size_t)(hole - off) < CHUNK ? (size_t)(hole - off)
								  : CHUNK;
			ssize_t got = pread(src, buf, n, off);

			if (got <= 0 || pwrite(mfd, buf, (size_t)got, off) != got)
				rc = aeth__error_errno(AETH_EIO, "loading %s", path);
			off += got > 0 ? got : 0;
		}
	}
	if (rc == 0 && fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK |
			     F_SEAL_GROW | F_SEAL_SEAL) != 0)
		rc = aeth__error_errno(AETH_EIO, "sealing the memory of %s", path);
	if (rc == 0) {
		*out = mfd;
		mfd = -1;
	}
out:
	if (src >= 0)
		close(src);
	if (mfd >= 0)
		close(mfd);
	free(buf);
	return rc;
}

static char *read_small(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	char *buf = NULL;
	struct stat st;

	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_size < META_MAX_BYTES && (buf = malloc((size_t)st.st_size + 1))) {
		ssize_t n = read(fd, buf, (size_t)st.st_size);

		if (n != st.st_size) {
			free(buf);
			buf = NULL;
		} else {
			buf[n] = '\0';
		}
	}
	if (fd >= 0)
		close(fd);
	return buf;
}

/* The snapshot in `dir`, if it is one of exactly `inputs`: its memory
 * loaded (memfd backends). AETH_ENOTFOUND when absent or of other inputs. */
static int load(const aeth_vm *vm, aeth__snap *e, const char *inputs)
{
	char *meta_path = aeth__sprintf("%s/meta.json", e->dir);
	char *state = aeth__sprintf("%s/state", e->dir);
	char *ram = aeth__sprintf("%s/ram", e->dir);
	char *text = meta_path ? read_small(meta_path) : NULL;
	cJSON *meta = text ? cJSON_Parse(text) : NULL;
	const cJSON *in = cJSON_GetObjectItemCaseSensitive(meta, "inputs");
	struct stat st;
	int rc = 0;

	if (!meta_path || !state || !ram) {
		rc = AETH_ENOMEM;
		goto out;
	}
	if (!cJSON_IsString(in) || strcmp(in->valuestring, inputs) != 0 ||
	    lstat(state, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = AETH_ENOTFOUND;
		goto out;
	}
	if (vm->backend->snapshot_memfd)
		rc = load_ram(ram, (uint64_t)vm->rec.memory_mb << 20, &e->ram_fd);
out:
	cJSON_Delete(meta);
	free(text);
	free(meta_path);
	free(state);
	free(ram);
	return rc;
}

static int write_meta(const char *dir, const char *inputs, const char *shape,
		      const char *key)
{
	cJSON *o = cJSON_CreateObject();
	char *text = NULL, *path = aeth__sprintf("%s/meta.json", dir);
	int fd = -1, rc = AETH_ENOMEM;

	if (!o || !path || !cJSON_AddNumberToObject(o, "format", SNAPSHOT_FORMAT) ||
	    !cJSON_AddStringToObject(o, "key", key) ||
	    !cJSON_AddStringToObject(o, "shape", shape) ||
	    !cJSON_AddStringToObject(o, "inputs", inputs) ||
	    !cJSON_AddNumberToObject(o, "created_ms", (double)aeth__wall_ms()) ||
	    !(text = cJSON_Print(o)))
		goto out;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) ||
	    fsync(fd) != 0)
		rc = aeth__error_errno(AETH_EIO, "cannot write %s", path);
	else
		rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc == AETH_ENOMEM)
		aeth__error_oom();
	cJSON_free(text);
	cJSON_Delete(o);
	free(path);
	return rc;
}

/* Snapshots of `shape` other than `key` are stale (their image or VMM
 * changed): remove them. */
static void remove_stale(const char *snapdir, const char *shape, const char *key)
{
	DIR *d = opendir(snapdir);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char *dir, *meta_path, *text;
		cJSON *meta;
		const cJSON *sh;

		if (strlen(de->d_name) != 16 || !strcmp(de->d_name, key) ||
		    strspn(de->d_name, "0123456789abcdef") != 16)
			continue;
		dir = aeth__sprintf("%s/%s", snapdir, de->d_name);
		meta_path = dir ? aeth__sprintf("%s/meta.json", dir) : NULL;
		text = meta_path ? read_small(meta_path) : NULL;
		meta = text ? cJSON_Parse(text) : NULL;
		sh = cJSON_GetObjectItemCaseSensitive(meta, "shape");
		if (cJSON_IsString(sh) && !strcmp(sh->valuestring, shape)) {
			aeth__info("removing snapshot %s: its image or VMM changed",
				   dir);
			aeth__rm_rf(dir);
		}
		cJSON_Delete(meta);
		free(text);
		free(meta_path);
		free(dir);
	}
	if (d)
		closedir(d);
}

/* ---- making one ---- */

/* What a crash while making a snapshot of `key` may have left: its
 * temporary directories (we hold the key's lock: nobody else writes
 * them) and template VMs whose VMM is gone or whose lifetime ended. */
static void remove_leftovers(aeth_vmm *m, const char *key)
{
	char prefix[32], name[64], **ids = NULL;
	DIR *d = opendir(m->snapshot_dir);
	struct dirent *de;

	snprintf(prefix, sizeof(prefix), ".new-%s-", key);
	while (d && (de = readdir(d))) {
		char *dir;

		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
			continue;
		if ((dir = aeth__sprintf("%s/%s", m->snapshot_dir, de->d_name)))
			aeth__rm_rf(dir);
		free(dir);
	}
	if (d)
		closedir(d);
	snprintf(name, sizeof(name), "snapshot-template-%s", key);
	if (aeth_vm_list(&ids, m) != 0)
		return;
	for (char **id = ids; *id; id++) {
		aeth_vm *t = NULL;

		if (aeth_vm_get(&t, m, *id) == 0 && !strcmp(t->rec.name, name) &&
		    (!t->backend->alive(&t->rec) ||
		     (t->rec.expires_ms && aeth__wall_ms() >= t->rec.expires_ms))) {
			aeth__info("removing template VM %s left by an earlier try",
				   *id);
			aeth__vm_discard(t);
		}
		aeth_vm_free(t);
	}
	aeth_error_clear();
	aeth_strarray_free(ids);
}

/*
 * Boot a template VM of vm's shape, save it into a new directory and
 * rename that to e->dir. The template is a VM like any other (its own
 * state dir, jail, uid and cgroup; a lifetime so that a crash leaves
 * nothing for long), never given to anyone, and gone afterwards.
 */
static int make(aeth_vm *vm, aeth__snap *e, const char *inputs)
{
	aeth_vmm *m = vm->vmm;
	aeth_vm_options o = AETH_VM_OPTIONS_INIT;
	aeth_vm *t = NULL;
	uint64_t bytes = (uint64_t)vm->rec.memory_mb << 20;
	char name[64], *tmp = NULL;
	int memfd = -1, rc;

	snprintf(name, sizeof(name), "snapshot-template-%s", e->key);
	o.name = name;
	o.vcpus = vm->rec.vcpus;
	o.memory_mb = vm->rec.memory_mb;
	o.net = vm->rec.net;
	o.kernel_path = vm->rec.kernel_path;
	o.initrd_path = vm->rec.initrd_path;
	o.boot_timeout_ms = vm->rec.boot_timeout_ms;
	o.ttl_s = vm->rec.boot_timeout_ms / 1000 + 300;
	remove_leftovers(m, e->key);
	if (vm->backend->snapshot_memfd) {
		memfd = memfd_create("aeth-template", MFD_CLOEXEC);
		if (memfd < 0 || ftruncate(memfd, (off_t)bytes) != 0) {
			rc = aeth__error_errno(AETH_EIO, "a memfd for the template's "
					       "memory");
			goto out;
		}
	}
	if ((rc = aeth_vm_create(&t, m, &o)) != 0)
		goto out;
	/* a template has no root disk, whatever the manager's default */
	free(t->rec.rootfs_path);
	t->rec.rootfs_path = NULL;
	t->rec.boot_mode = AETH__BOOT_TEMPLATE;
	t->rec.ram_fd = memfd;
	aeth__debug("making snapshot %s (%u vCPU, %u MiB, network %s): booting "
		   "a template VM %s", e->key, vm->rec.vcpus, vm->rec.memory_mb,
		   vm->rec.net == AETH_NET_USER ? "user" : "none", t->rec.id);
	if ((rc = aeth_vm_start(t)) != 0)
		goto out;
	if (aeth__agent_version(t->agent) < 2) {
		rc = aeth__error_set(AETH_EPROTO, "its agent speaks protocol %u, "
				     "which cannot give a restored VM its own "
				     "identity (2 can): rebuild the image with "
				     "scripts/build-image.sh",
				     aeth__agent_version(t->agent));
		goto out;
	}
	if (!(tmp = aeth__sprintf("%s/.new-%s-XXXXXX", m->snapshot_dir, e->key)) ||
	    !mkdtemp(tmp)) {
		rc = tmp ? aeth__error_errno(AETH_EIO, "cannot make a directory in "
					     "%s", m->snapshot_dir) : AETH_ENOMEM;
		goto out;
	}
	rc = t->backend->snapshot_save(&t->rec, tmp,
				       aeth__now_ms() + t->rec.boot_timeout_ms);
	if (rc == 0 && vm->backend->snapshot_memfd) {
		char *ram = aeth__sprintf("%s/ram", tmp);

		rc = ram ? aeth__snapshot_write_ram(memfd, bytes, ram) : AETH_ENOMEM;
		free(ram);
	}
	if (rc == 0)
		rc = write_meta(tmp, inputs, e->shape, e->key);
	if (rc == 0) {
		aeth__rm_rf(e->dir);
		if (rename(tmp, e->dir) != 0)
			rc = aeth__error_errno(AETH_EIO, "cannot rename %s to %s",
					       tmp, e->dir);
	}
	if (rc == 0)
		remove_stale(m->snapshot_dir, e->shape, e->key);
out:
	if (t) {
		aeth__vm_discard(t);
		aeth_vm_free(t);
	}
	if (tmp && rc)
		aeth__rm_rf(tmp);
	free(tmp);
	if (memfd >= 0)
		close(memfd);
	return rc;
}

/* Hold <snapshot_dir>/<key>.lock (other processes making the same
 * snapshot), polling up to `deadline_ms`. The fd, or a negative code. */
static int lock_key(const aeth_vmm *m, const char *key, int64_t deadline_ms)
{
	char *path = aeth__sprintf("%s/%s.lock", m->snapshot_dir, key);
	int fd = path ? open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
			     0600) : -1;

	if (fd < 0) {
		int rc = path ? aeth__error_errno(AETH_EIO, "cannot open %s", path)
			      : AETH_ENOMEM;

		free(path);
		return rc;
	}
	free(path);
	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK || aeth__now_ms() >= deadline_ms) {
			close(fd);
			return aeth__error_set(AETH_ETIMEOUT, "another process is "
					       "still making snapshot %s", key);
		}
		aeth__sleep_ms(50);
	}
	return fd;
}

/* Load the snapshot of e, making it first if the disk has none. */
static int prepare(aeth_vm *vm, aeth__snap *e, const char *inputs)
{
	/* another process's template boot, plus its save */
	int64_t deadline = aeth__now_ms() + 2 * (int64_t)vm->rec.boot_timeout_ms +
			   30000;
	int lock = lock_key(vm->vmm, e->key, deadline), rc;

	if (lock < 0)
		return lock;
	rc = load(vm, e, inputs);
	if (rc == AETH_ENOTFOUND) {
		aeth_error_clear();
		rc = make(vm, e, inputs);
		if (rc == 0)
			rc = load(vm, e, inputs);
		if (rc == AETH_ENOTFOUND)
			rc = aeth__error_set(AETH_EIO, "snapshot %s vanished after it "
					     "was made", e->dir);
	}
	close(lock);
	return rc;
}

/* ---- the cache ---- */

static void snap_free(aeth__snap *e)
{
	if (e->ram_fd >= 0)
		close(e->ram_fd);
	free(e->shape);
	free(e->dir);
	free(e);
}

/* Entries of another key for the same shape (a rebuilt image): their
 * memory is of no use any more (running VMs keep their own mapping). */
static void evict_stale(aeth_vmm *m, const aeth__snap *keep)
{
	for (aeth__snap **p = &m->snaps; *p;) {
		aeth__snap *e = *p;

		if (e != keep && !e->busy && !strcmp(e->shape, keep->shape)) {
			*p = e->next;
			snap_free(e);
		} else {
			p = &e->next;
		}
	}
}

static aeth__snap *find_or_add(aeth_vmm *m, const char *key, const char *shape)
{
	aeth__snap *e;

	for (e = m->snaps; e; e = e->next)
		if (!strcmp(e->key, key))
			return e;
	if (!(e = calloc(1, sizeof(*e))))
		return NULL;
	memcpy(e->key, key, sizeof(e->key));
	e->ram_fd = -1;
	e->shape = aeth__strdup(shape);
	e->dir = aeth__sprintf("%s/%s", m->snapshot_dir, key);
	if (!e->shape || !e->dir) {
		snap_free(e);
		return NULL;
	}
	e->next = m->snaps;
	m->snaps = e;
	return e;
}

/*
 * The snapshot for key, ready: its directory in *dir (malloc'd) and its
 * memory in *ram_fd (a dup the caller closes; -1 for backends without).
 * 1 when there is none to use now (failed recently); else 0 or an error.
 */
static int get(aeth_vm *vm, const char *key, const char *shape,
	       const char *inputs, char **dir, int *ram_fd)
{
	aeth_vmm *m = vm->vmm;
	aeth__snap *e;
	int rc = 0;

	*dir = NULL;
	*ram_fd = -1;
	pthread_mutex_lock(&m->snap_mu);
	if (!(e = find_or_add(m, key, shape))) {
		pthread_mutex_unlock(&m->snap_mu);
		return aeth__error_oom();
	}
	while (e->busy)
		pthread_cond_wait(&m->snap_cond, &m->snap_mu);
	if (!e->ready && e->retry_at > aeth__now_ms()) {
		pthread_mutex_unlock(&m->snap_mu);
		return 1;
	}
	if (!e->ready) {
		e->busy = true;
		pthread_mutex_unlock(&m->snap_mu);
		rc = prepare(vm, e, inputs);
		pthread_mutex_lock(&m->snap_mu);
		e->busy = false;
		e->ready = rc == 0;
		e->retry_at = rc ? aeth__now_ms() + RETRY_AFTER_MS : 0;
		if (rc == 0)
			evict_stale(m, e);
		pthread_cond_broadcast(&m->snap_cond);
	}
	if (rc == 0 && e->ram_fd >= 0 &&
	    (*ram_fd = fcntl(e->ram_fd, F_DUPFD_CLOEXEC, 3)) < 0)
		rc = aeth__error_errno(AETH_EIO, "dup");
	if (rc == 0 && !(*dir = aeth__strdup(e->dir)))
		rc = AETH_ENOMEM;
	pthread_mutex_unlock(&m->snap_mu);
	if (rc && *ram_fd >= 0) {
		close(*ram_fd);
		*ram_fd = -1;
	}
	return rc;
}

/* A restore from the snapshot failed: use it no more for a while. */
static void mark_failed(aeth_vmm *m, const char *key)
{
	pthread_mutex_lock(&m->snap_mu);
	for (aeth__snap *e = m->snaps; e; e = e->next)
		if (!strcmp(e->key, key) && !e->busy) {
			e->ready = false;
			e->retry_at = aeth__now_ms() + RETRY_AFTER_MS;
			if (e->ram_fd >= 0)
				close(e->ram_fd);
			e->ram_fd = -1;
		}
	pthread_mutex_unlock(&m->snap_mu);
}

void aeth__snapshot_cache_free(aeth_vmm *m)
{
	while (m->snaps) {
		aeth__snap *e = m->snaps;

		m->snaps = e->next;
		snap_free(e);
	}
}

int aeth__snapshot_start(aeth_vm *vm)
{
	const char *why = ineligible(vm);
	char *shape = NULL, *inputs = NULL, *dir = NULL;
	char key[17];
	int ram_fd = -1, rc;

	if (why) {
		aeth__debug("VM %s boots cold: %s", vm->rec.id, why);
		return 1;
	}
	if ((rc = describe(vm, &shape, &inputs)) != 0)
		goto cold;
	key_of(inputs, key);
	rc = get(vm, key, shape, inputs, &dir, &ram_fd);
	if (rc == 1) {
		aeth__debug("VM %s boots cold: snapshot %s failed less than %d s "
			    "ago", vm->rec.id, key, RETRY_AFTER_MS / 1000);
		goto out;
	}
	if (rc)
		goto cold;
	free(vm->rec.snapshot);
	vm->rec.snapshot = aeth__strdup(key);
	vm->rec.boot_mode = AETH__BOOT_RESTORE;
	vm->rec.ram_fd = ram_fd;
	rc = aeth__vm_restore_once(vm, dir);
	vm->rec.ram_fd = -1;
	vm->rec.boot_mode = AETH__BOOT_COLD;
	if (rc == 0)
		goto out;
	mark_failed(vm->vmm, key);
cold:
	aeth__warn("VM %s: no snapshot restore (%s): booting it from its kernel",
		   vm->rec.id, aeth_error_last());
	free(vm->rec.snapshot);
	vm->rec.snapshot = NULL;
	rc = 1;
out:
	if (ram_fd >= 0)
		close(ram_fd);
	free(dir);
	free(shape);
	free(inputs);
	return rc;
}
