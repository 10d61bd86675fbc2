/*
 * lib/vm/firecracker_disk.h - a per-VM writable copy of the root disk, so
 * that VMs never share a writable image.
 */
#ifndef AETH_VM_FIRECRACKER_DISK_H
#define AETH_VM_FIRECRACKER_DISK_H

#include <stdbool.h>

/*
 * Copy `src` to the new file `dst` (which must not exist; mode 0600):
 * a reflink (ioctl FICLONE: instant, copy-on-write) where the file system
 * can (btrfs, xfs, bcachefs), else a sparse copy that copies only the data
 * extents (SEEK_DATA/SEEK_HOLE + copy_file_range) and leaves the holes.
 * *reflinked_out (may be NULL) says which one happened. A partial dst is
 * removed on failure.
 */
int aeth__fc_disk_clone(const char *src, const char *dst, bool *reflinked_out);

/* The same from an open descriptor of a regular file (`src` names it in
 * messages); dst is created O_NOFOLLOW. */
int aeth__fc_disk_clone_fd(int in, const char *src, const char *dst,
			   bool *reflinked_out);

#endif
