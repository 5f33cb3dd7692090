#include "view.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "confine.h"
#include "util.h"

#define CG_ROOT "/sys/fs/cgroup"

/* ---- the cgroup file systems to show (pure) ---- */

static bool word_in(const char *list, const char *word) {
        size_t n = strlen(word);
        for (const char *p = list; p;) {
                size_t len = strcspn(p, ",");
                if (len == n && strncmp(p, word, n) == 0)
                        return true;
                p = p[len] ? p + len + 1 : NULL;
        }
        return false;
}

/* v1 super options without rw/ro and release_agent (a mount from a cgroup
 * namespace may not set one). */
static char *v1_options(const char *super) {
        _cleanup_free_ char *copy = strdup(super);
        char *out = calloc(1, strlen(super) + 1), *save = NULL;

        if (!copy || !out) {
                free(out);
                return NULL;
        }
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (!strcmp(t, "rw") || !strcmp(t, "ro") || !strncmp(t, "release_agent=", 14))
                        continue;
                if (*out)
                        strcat(out, ",");
                strcat(out, t);
        }
        return out;
}

static bool v1_wanted(const char *super, const char *const *v1_ctls) {
        for (const char *const *c = v1_ctls; c && *c; c++)
                if (word_in(super, *c))
                        return true;
        return false;
}

void view_cgroup_free(struct view_cgroup *v, unsigned n) {
        for (unsigned i = 0; i < n; i++) {
                free(v[i].where);
                free(v[i].fstype);
                free(v[i].options);
        }
        free(v);
}

int view_cgroup_plan(const char *mountinfo, const char *const *v1_ctls,
                     struct view_cgroup **ret, unsigned *ret_n, bool *ret_tmpfs) {
        struct view_cgroup *v = NULL;
        unsigned n = 0;
        bool tmpfs = false;

        for (const char *line = mountinfo; line && *line;) {
                size_t len = strcspn(line, "\n");
                _cleanup_free_ char *l = strndup(line, len);
                char *f[6] = { 0 }, *save = NULL, *sep, *fstype, *super;
                int nf = 0;

                line += len + (line[len] == '\n');
                if (!l || !(sep = strstr(l, " - ")))
                        continue;
                *sep = 0;
                fstype = strtok_r(sep + 3, " ", &save);
                strtok_r(NULL, " ", &save);             /* source */
                super = strtok_r(NULL, " ", &save);
                save = NULL;
                for (char *t = strtok_r(l, " ", &save); t && nf < 6; t = strtok_r(NULL, " ", &save))
                        f[nf++] = t;
                if (nf < 5 || !fstype || !super)
                        continue;
                if (strcmp(f[4], CG_ROOT) == 0 && strcmp(fstype, "tmpfs") == 0) {
                        tmpfs = true;
                        continue;
                }
                if (strcmp(f[4], CG_ROOT) != 0 && strncmp(f[4], CG_ROOT "/", strlen(CG_ROOT) + 1))
                        continue;
                if (strcmp(fstype, "cgroup2") != 0 &&
                    (strcmp(fstype, "cgroup") != 0 || !v1_wanted(super, v1_ctls)))
                        continue;
                struct view_cgroup *nv = realloc(v, (n + 1) * sizeof(*v));
                if (!nv) {
                        view_cgroup_free(v, n);
                        return -ENOMEM;
                }
                v = nv;
                v[n] = (struct view_cgroup){ strdup(f[4]), strdup(fstype),
                                             strcmp(fstype, "cgroup") == 0 ? v1_options(super) : NULL };
                if (!v[n].where || !v[n].fstype || (!strcmp(fstype, "cgroup") && !v[n].options)) {
                        view_cgroup_free(v, n + 1);
                        return -ENOMEM;
                }
                n++;
        }
        *ret = v;
        *ret_n = n;
        *ret_tmpfs = tmpfs;
        return 0;
}

/* ---- making the view (in the child) ---- */

struct grant {
        const char *path;
        int fd;                         /* a detached copy, from open_tree() */
};

static int grant_clone(const char *path, bool writable, int userns_fd, struct grant *ret) {
        struct mount_attr attr = { .attr_set = writable ? 0 : MOUNT_ATTR_RDONLY };
        int fd = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);

        if (fd < 0)
                return err_set(errno, "open_tree(%s)", path);
        if (userns_fd >= 0) {
                attr.attr_set |= MOUNT_ATTR_IDMAP;
                attr.userns_fd = userns_fd;
        }
        if (attr.attr_set &&
            mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0) {
                int e = errno;
                close(fd);
                if (userns_fd >= 0 && e == EINVAL)
                        return err_setx(e, "mount_setattr(%s, MOUNT_ATTR_IDMAP): %s: its file "
                                        "system cannot be id-mapped on this kernel (set "
                                        "[sandbox] private-users = no)", path, strerror(e));
                return err_set(e, "mount_setattr(%s)", path);
        }
        *ret = (struct grant){ path, fd };
        return 0;
}

static int cmp_grant(const void *a, const void *b) {
        size_t la = strlen(((const struct grant *)a)->path), lb = strlen(((const struct grant *)b)->path);
        return la < lb ? -1 : la > lb;
}

/* Shorter paths first, so a grant inside another one lands on top of it. */
static int grants_attach(struct grant *g, unsigned n) {
        int r;

        qsort(g, n, sizeof(*g), cmp_grant);
        for (unsigned i = 0; i < n; i++) {
                if (access(g[i].path, F_OK) < 0 && (r = mkdir_p(g[i].path, 0755)) < 0)
                        return err_prefix(-r, "mount point for %s", g[i].path);
                if (move_mount(g[i].fd, "", AT_FDCWD, g[i].path, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                        return err_set(errno, "move_mount(%s)", g[i].path);
        }
        return 0;
}

static int mount_fs(const char *fstype, const char *where, unsigned long flags, const char *data) {
        if (mount(fstype, where, fstype, flags, data) < 0)
                return err_set(errno, "mount(%s, %s%s%s)", fstype, where, data ? ", " : "",
                               data ? data : "");
        return 0;
}

static int remount_ro(const char *where, unsigned long extra) {
        if (mount(NULL, where, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | extra, NULL) < 0)
                return err_set(errno, "mount(%s, MS_REMOUNT|MS_RDONLY)", where);
        return 0;
}

/* Its own resolv.conf and hosts: written on a scratch tmpfs at /tmp (the
 * view's /tmp is made later), bound over the host's files (through a
 * symbolic link, as mount(2) follows it), read-only. A host without the
 * file keeps it so: the generation resolves as the host does. */
static int names_setup(const struct confine *c) {
        static const char *const target[] = { "/etc/resolv.conf", "/etc/hosts" };
        const char *text[] = { c->resolv_conf, c->hosts };
        int r = 0;

        if (!text[0] && !text[1])
                return 0;
        if ((r = mount_fs("tmpfs", "/tmp", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755")) < 0)
                return r;
        for (int i = 0; i < 2 && r >= 0; i++) {
                char src[32];
                _cleanup_close_ int fd = -1;

                if (!text[i] || access(target[i], F_OK) < 0)
                        continue;
                snprintf(src, sizeof(src), "/tmp/%d", i);
                fd = open(src, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                if (fd < 0 || write(fd, text[i], strlen(text[i])) != (ssize_t)strlen(text[i]))
                        r = err_set(errno, "write(%s)", target[i]);
                else if (mount(src, target[i], NULL, MS_BIND, NULL) < 0)
                        r = err_set(errno, "mount(--bind, %s)", target[i]);
                else
                        r = remount_ro(target[i], MS_NOSUID | MS_NODEV | MS_NOEXEC);
        }
        if (umount2("/tmp", MNT_DETACH) < 0 && r >= 0)
                r = err_set(errno, "umount(/tmp)");
        return r;
}

static const char *const proc_knobs[] = {
        "/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs",
        "/proc/acpi", "/proc/latency_stats", "/proc/timer_list", "/proc/scsi",
};

static int proc_setup(const struct confine *c) {
        int r;

        if ((r = mount_fs("proc", "/proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)) < 0)
                return r;
        if (!c->protect_kernel)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(proc_knobs); i++) {
                if (mount(proc_knobs[i], proc_knobs[i], NULL, MS_BIND | MS_REC, NULL) < 0) {
                        if (errno == ENOENT)
                                continue;
                        return err_set(errno, "mount(--bind, %s)", proc_knobs[i]);
                }
                if ((r = remount_ro(proc_knobs[i], MS_NOSUID | MS_NODEV | MS_NOEXEC)) < 0)
                        return r;
        }
        return 0;
}

/* Its own cgroups: in a cgroup namespace a new mount's root is the
 * namespace's, that is the generation's own cgroup. */
static int cgroup_setup(const struct confine *c, const char *mountinfo,
                        const char *const *v1_ctls) {
        struct view_cgroup *v = NULL;
        unsigned n = 0;
        bool tmpfs;
        unsigned long ro = c->protect_cgroups ? MS_RDONLY : 0;
        int r;

        if (view_cgroup_plan(mountinfo, v1_ctls, &v, &n, &tmpfs) < 0)
                return err_set(ENOMEM, "cgroup plan");
        if (tmpfs)
                r = mount_fs("tmpfs", CG_ROOT, MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755");
        else
                r = 0;
        for (unsigned i = 0; i < n && r >= 0; i++) {
                if (tmpfs && mkdir(v[i].where, 0755) < 0 && errno != EEXIST)
                        r = err_set(errno, "mkdir(%s)", v[i].where);
                else
                        r = mount_fs(v[i].fstype, v[i].where, MS_NOSUID | MS_NODEV | MS_NOEXEC | ro,
                                     v[i].options);
        }
        if (r >= 0 && tmpfs)
                r = remount_ro(CG_ROOT, MS_NOSUID | MS_NODEV | MS_NOEXEC);
        view_cgroup_free(v, n);
        return r;
}

static const char *const devices[] = { "null", "zero", "full", "random", "urandom", "tty" };

static int dev_setup(const int *dev_fds) {
        static const char *const links[][2] = {
                { "/proc/self/fd", "/dev/fd" }, { "/proc/self/fd/0", "/dev/stdin" },
                { "/proc/self/fd/1", "/dev/stdout" }, { "/proc/self/fd/2", "/dev/stderr" },
                { "pts/ptmx", "/dev/ptmx" },
        };
        char logdst[256];
        ssize_t loglen = readlink("/dev/log", logdst, sizeof(logdst) - 1);
        int r;

        if ((r = mount_fs("tmpfs", "/dev", MS_NOSUID | MS_NOEXEC, "mode=0755")) < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(devices); i++) {
                char path[32];
                int fd;

                if (dev_fds[i] < 0)
                        continue;
                snprintf(path, sizeof(path), "/dev/%s", devices[i]);
                fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
                if (fd < 0)
                        return err_set(errno, "open(%s)", path);
                close(fd);
                if (move_mount(dev_fds[i], "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                        return err_set(errno, "move_mount(%s)", path);
        }
        for (size_t i = 0; i < ELEMENTSOF(links); i++)
                if (symlink(links[i][0], links[i][1]) < 0)
                        return err_set(errno, "symlink(%s)", links[i][1]);
        if (loglen > 0) {
                logdst[loglen] = 0;
                if (symlink(logdst, "/dev/log") < 0)
                        return err_set(errno, "symlink(/dev/log)");
        }
        if (mkdir("/dev/pts", 0755) < 0 || mkdir("/dev/shm", 01777) < 0 ||
            mkdir("/dev/mqueue", 0755) < 0)
                return err_set(errno, "mkdir(/dev/...)");
        if ((r = mount_fs("devpts", "/dev/pts", MS_NOSUID | MS_NOEXEC,
                          "newinstance,ptmxmode=0666,mode=0620")) < 0 ||
            (r = mount_fs("tmpfs", "/dev/shm", MS_NOSUID | MS_NODEV, "mode=1777")) < 0 ||
            (r = mount_fs("mqueue", "/dev/mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)) < 0)
                return r;
        return remount_ro("/dev", MS_NOSUID | MS_NOEXEC);
}

int view_setup(const struct confine *c, int userns_fd, const char *const *v1_ctls) {
        struct grant g[64];
        int dev_fds[ELEMENTSOF(devices)], r = 0;
        unsigned n = 0;
        _cleanup_free_ char *mountinfo = NULL;

        for (size_t i = 0; i < ELEMENTSOF(devices); i++)
                dev_fds[i] = -1;
        if ((r = read_file("/proc/self/mountinfo", &mountinfo, NULL)) < 0)
                return r;
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return err_set(errno, "mount(/, MS_PRIVATE)");

        /* Copies of what it is granted, before anything is read-only. */
        if (c->directory)
                r = grant_clone(c->directory, true, userns_fd, &g[n++]);
        for (char **p = c->writable; r >= 0 && p && *p && n < ELEMENTSOF(g); p++)
                r = grant_clone(*p, true, userns_fd, &g[n++]);
        for (char **p = c->readable; r >= 0 && p && *p && n < ELEMENTSOF(g); p++)
                r = grant_clone(*p, false, userns_fd, &g[n++]);
        if (r < 0)
                n--;
        for (size_t i = 0; r >= 0 && c->private_devices && i < ELEMENTSOF(devices); i++) {
                char path[32];
                snprintf(path, sizeof(path), "/dev/%s", devices[i]);
                dev_fds[i] = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
                if (dev_fds[i] < 0 && errno != ENOENT && errno != ENXIO)
                        r = err_set(errno, "open_tree(%s)", path);
        }
        if (r >= 0)
                r = names_setup(c);

        if (r >= 0 && c->protect_system) {
                struct mount_attr ro = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID };
                if (mount_setattr(AT_FDCWD, "/", AT_RECURSIVE, &ro, sizeof(ro)) < 0)
                        r = err_set(errno, "mount_setattr(/, MOUNT_ATTR_RDONLY, recursive)");
        }
        if (r >= 0)
                r = proc_setup(c);
        if (r >= 0)
                r = mount_fs("sysfs", "/sys", MS_NOSUID | MS_NODEV | MS_NOEXEC |
                             (c->protect_kernel ? MS_RDONLY : 0), NULL);
        if (r >= 0)
                r = cgroup_setup(c, mountinfo, v1_ctls);
        if (r >= 0 && c->private_devices)
                r = dev_setup(dev_fds);
        else if (r >= 0 && c->protect_system) {
                struct mount_attr rw = { .attr_clr = MOUNT_ATTR_RDONLY };
                if (mount_setattr(AT_FDCWD, "/dev", AT_RECURSIVE, &rw, sizeof(rw)) < 0)
                        r = err_set(errno, "mount_setattr(/dev, read-write)");
        }
        if (r >= 0 && c->private_tmp)
                r = mount_fs("tmpfs", "/tmp", MS_NOSUID | MS_NODEV, "mode=1777");
        if (r >= 0)
                r = grants_attach(g, n);

        for (unsigned i = 0; i < n; i++)
                close(g[i].fd);
        for (size_t i = 0; i < ELEMENTSOF(devices); i++)
                if (dev_fds[i] >= 0)
                        close(dev_fds[i]);
        return r;
}
