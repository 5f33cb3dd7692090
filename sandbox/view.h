/* A generation's view of the file system, made in its own mount namespace
 * by its first process while that is still root on the host (spawn.c):
 *
 *   /                  read-only, every mount below it too (protect-system)
 *   release directory, [sandbox] writable
 *                      writable; readable: read-only. With private-users,
 *                      id-mapped into its user namespace, so owners show
 *                      and are written as on the host
 *   /tmp               an empty tmpfs of its own (private-tmp)
 *   /dev               a tmpfs with null, zero, full, random, urandom, tty,
 *                      its own pts, shm and mqueue (private-devices)
 *   /proc              for its PID namespace; /proc/sys and the kernel's
 *                      other knobs read-only (protect-kernel)
 *   /sys               for its network namespace, read-only (protect-kernel)
 *   /sys/fs/cgroup     its own cgroups only, read-only (protect-cgroups)
 *   /etc/resolv.conf, /etc/hosts
 *                      its own, read-only (dns.c)
 */
#pragma once

#include <stdbool.h>

struct confine;

/* One cgroup file system the view shows below /sys/fs/cgroup. */
struct view_cgroup {
        char *where;                    /* mount point */
        char *fstype;                   /* "cgroup2" or "cgroup" */
        char *options;                  /* v1: controllers / name=, else NULL */
};

/* Pure: from the host's /proc/self/mountinfo, the cgroup file systems to
 * mount below /sys/fs/cgroup: the v2 one, and the v1 hierarchies of the
 * controllers in v1_ctls (those the generation has limit cgroups in).
 * ret_tmpfs: /sys/fs/cgroup itself is a tmpfs holding them (hybrid). */
int view_cgroup_plan(const char *mountinfo, const char *const *v1_ctls,
                     struct view_cgroup **ret, unsigned *ret_n, bool *ret_tmpfs);
void view_cgroup_free(struct view_cgroup *v, unsigned n);

/* In the child, in a new mount namespace, as root on the host; userns_fd
 * >= 0 maps the granted paths into that user namespace. */
int view_setup(const struct confine *c, int userns_fd, const char *const *v1_ctls);
