/*
 * lib/vm/files.c - the files a VMM is given, opened by the library so
 * that a VMM never opens a host path itself (docs/security.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "vm/vm_internal.h"

int aeth__vm_open_image(const char *vm_id, const char *what, const char *path)
{
	struct open_how how;
	struct stat st;
	char pre[48] = "";
	int fd;

	if (vm_id)
		snprintf(pre, sizeof(pre), "VM %s: ", vm_id);
	memset(&how, 0, sizeof(how));
	how.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY;
	how.resolve = RESOLVE_NO_SYMLINKS;
	fd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
	if (fd < 0 && errno == ENOSYS) /* kernel < 5.6: the last part only */
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0 && errno == ENOENT)
		return aeth__error_set(AETH_ENOTFOUND, "%sguest %s not found at "
				       "%s: build the image with "
				       "scripts/build-image.sh (or set "
				       "AETH_IMAGE_DIR)", pre, what, path);
	if (fd < 0 && errno == ELOOP)
		return aeth__error_set(AETH_EINVALID, "%sguest %s %s: the path "
				       "has a symbolic link, which is not followed; "
				       "give the real path", pre, what, path);
	if (fd < 0)
		return aeth__error_errno(AETH_EIO, "%scannot open guest %s %s",
					 pre, what, path);
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return aeth__error_set(AETH_EINVALID, "%sguest %s %s is not a "
				       "regular file (devices, FIFOs and directories "
				       "are refused)", pre, what, path);
	}
	return fd;
}

