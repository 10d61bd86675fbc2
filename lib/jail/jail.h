/*
 * lib/jail/jail.h - the contract between the library (lib/vm/jail.c,
 * which prepares a VM's jail and starts aeth-jailer) and aeth-jailer (the
 * program in lib/jail/jailer.c that confines the VMM and runs its egress
 * relay). Both sides include this header; nothing here needs the library.
 *
 * File descriptors: the library starts aeth-jailer with
 *   fd 0       /dev/null
 *   fd 1, 2    the VMM's log (qemu.log)
 *   fd 3       the status pipe (write end), see below
 *   fd 4 ...   what the VMM is given (image files, listening sockets, tap):
 *              `--fds N` says how many; the VMM's command line names them
 *              by number (/proc/self/fd/4, fd=5, ...)
 * and no other descriptor.
 *
 * Status: aeth-jailer writes exactly one line on fd 3 and closes it:
 *   "ok VMM_PID RELAY_PID\n"   the VMM runs (its pid in the host's pid
 *                              namespace); RELAY_PID is 0 when no relay
 *                              process stays behind
 *   "error TEXT\n"             nothing runs; TEXT says what failed
 * A status pipe that closes without a line means the jailer died.
 *
 * Command line:
 *   aeth-jailer --id UUID --exec /abs/qemu [options] -- ARGV...
 *   --root DIR      an empty directory: the VMM's new root is a tmpfs
 *                   mounted there (in the VMM's own mount namespace); the
 *                   relay chroots into it (in the host's, where it stays
 *                   empty)
 *   --tmp DIR       mounted at /var/tmp for the VMM (its disk overlays;
 *                   TMPDIR=/var/tmp)
 *   --vm-dir DIR    the VM's state dir, as AETH_VM_DIR in the VMM's
 *                   environment (which VM a process is: nothing else)
 *   --uid N --gid N the VMM's (and relay's) credentials; only when the
 *                   jailer runs as root. Not root: a user namespace maps
 *                   the caller's own uid instead.
 *   --groups G,...  supplementary groups of the VMM (e.g. kvm)
 *   --dev PATH      a device node the VMM may open (repeatable)
 *   --cgroup DIR    join this cgroup directory before anything starts
 *                   (repeatable: one per cgroup v1 controller)
 *   --fds N         descriptors 4 .. 4+N-1 go to the VMM
 *   --allow RULE    an egress rule (lib/jail/jail_rules.h; repeatable); with
 *                   any rule the jailer stays as the VMM's relay
 *   --resolver IP   the resolver "dns" uses (default: the first IPv4
 *                   nameserver of /etc/resolv.conf)
 *   --ram-discard private
 *                   the VMM's guest memory is a private mapping of a
 *                   sealed memfd (a VM restored from a snapshot): under a
 *                   seccomp filter fallocate(PUNCH_HOLE|KEEP_SIZE) returns
 *                   0 without doing anything, so that QEMU 7.2 goes on to
 *                   drop the pages its guest reported free (jailer.h)
 */
#ifndef AETH_JAIL_JAIL_H
#define AETH_JAIL_JAIL_H

#define AETH__JAIL_STATUS_FD 3
#define AETH__JAIL_FIRST_FD 4
#define AETH__JAIL_MAX_FDS 16
#define AETH__JAIL_STATUS_MAX 1024

/* Supplementary groups and device nodes one VMM may be given. */
#define AETH__JAIL_MAX_GROUPS 8
#define AETH__JAIL_MAX_DEVS 8
#define AETH__JAIL_MAX_CGROUPS 8

#endif
