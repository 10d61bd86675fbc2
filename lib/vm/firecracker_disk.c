/*
 * lib/vm/firecracker_disk.c - reflink or sparse copy of a disk image.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "vm/firecracker_disk.h"

/* Copy [off, off+len) from in to out at the same offset. */
static int copy_range(int in, int out, off_t off, off_t len)
{
	char buf[65536];

	while (len > 0) {
		off64_t ioff = off, ooff = off;
		ssize_t n = copy_file_range(in, &ioff, out, &ooff, (size_t)len, 0);

		if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP ||
			      errno == EINVAL)) {
			/* Old kernel or odd file system: plain read/write. */
			n = pread(in, buf, len < (off_t)sizeof(buf) ? (size_t)len : sizeof(buf),
				  off);
			if (n > 0 && pwrite(out, buf, (size_t)n, off) != n)
				return -1;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = EIO; /* the source shrank under us */
			return -1;
		}
		off += n;
		len -= n;
	}
	return 0;
}

/* Copy the data extents of in to out; holes stay holes. */
static int sparse_copy(int in, int out, off_t size)
{
	off_t data = 0, hole;

	while (data < size) {
		data = lseek(in, data, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break; /* only a hole is left */
		if (data < 0 && errno == EINVAL)
			return copy_range(in, out, 0, size); /* no SEEK_DATA here */
		if (data < 0)
			return -1;
		hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			return -1;
		if (copy_range(in, out, data, hole - data) != 0)
			return -1;
		data = hole;
	}
	return ftruncate(out, size);
}

int aeth__fc_disk_clone_fd(int in, const char *src, const char *dst,
			   bool *reflinked_out)
{
	struct stat st;
	int out, ret = 0;
	bool reflinked = false;

	if (fstat(in, &st) != 0 || !S_ISREG(st.st_mode))
		return aeth__error_set(AETH_EINVALID, "%s is not a regular file", src);
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out < 0)
		return aeth__error_errno(errno == EEXIST ? AETH_EEXISTS : AETH_EIO,
					 "cannot create the VM's copy %s", dst);
	if (ioctl(out, FICLONE, in) == 0)
		reflinked = true;
	else if (sparse_copy(in, out, st.st_size) != 0)
		ret = aeth__error_errno(AETH_EIO, "copying %s to %s", src, dst);
	if (close(out) != 0 && ret == 0)
		ret = aeth__error_errno(AETH_EIO, "writing the VM's copy %s", dst);
	if (ret != 0)
		unlink(dst);
	else if (reflinked_out)
		*reflinked_out = reflinked;
	return ret;
}

int aeth__fc_disk_clone(const char *src, const char *dst, bool *reflinked_out)
{
	int in = open(src, O_RDONLY | O_CLOEXEC), ret;

	if (in < 0)
		return aeth__error_errno(errno == ENOENT ? AETH_ENOTFOUND : AETH_EIO,
					 "cannot open root disk image %s", src);
	ret = aeth__fc_disk_clone_fd(in, src, dst, reflinked_out);
	close(in);
	return ret;
}
