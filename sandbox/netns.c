#include "netns.h"

#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "util.h"

#define NETNS_RUN_DIR "/run/netns"

/* Bind mounts made below /run/netns must be visible in every mount
 * namespace, so the directory is a shared mount point, as iproute2 does. */
static int netns_prepare_dir(void) {
        int r = mkdir_p(NETNS_RUN_DIR, 0755);
        if (r < 0)
                return r;
        if (mount("", NETNS_RUN_DIR, "none", MS_SHARED | MS_REC, NULL) == 0)
                return 0;
        if (errno != EINVAL)
                return err_set(errno, "mount(%s, MS_SHARED)", NETNS_RUN_DIR);
        if (mount(NETNS_RUN_DIR, NETNS_RUN_DIR, "none", MS_BIND | MS_REC, NULL) < 0)
                return err_set(errno, "mount(%s, MS_BIND)", NETNS_RUN_DIR);
        if (mount("", NETNS_RUN_DIR, "none", MS_SHARED | MS_REC, NULL) < 0)
                return err_set(errno, "mount(%s, MS_SHARED)", NETNS_RUN_DIR);
        return 0;
}

int netns_create(const char *name, int *ret_fd) {
        char path[PATH_MAX];
        _cleanup_close_ int orig = -1, fd = -1;
        int r;

        snprintf(path, sizeof(path), NETNS_RUN_DIR "/%s", name);
        if ((r = netns_prepare_dir()) < 0)
                return r;
        fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
        if (fd < 0)
                return err_set(errno, "create(%s)", path);
        closep(&fd);
        orig = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        if (orig < 0) {
                r = err_set(errno, "open(/proc/self/ns/net)");
                goto undo;
        }
        if (unshare(CLONE_NEWNET) < 0) {
                r = err_set(errno, "unshare(CLONE_NEWNET) for %s", name);
                goto undo;
        }
        if (mount("/proc/self/ns/net", path, "none", MS_BIND, NULL) < 0)
                r = err_set(errno, "mount(/proc/self/ns/net, %s, MS_BIND)", path);
        if (setns(orig, CLONE_NEWNET) < 0)
                abort();        /* gend would live in the wrong namespace: no way on */
        if (r < 0)
                goto undo;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                r = err_set(errno, "open(%s)", path);
                goto undo;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
undo:
        umount2(path, MNT_DETACH);
        unlink(path);
        return r;
}

int netns_destroy(const char *name) {
        char path[PATH_MAX];

        snprintf(path, sizeof(path), NETNS_RUN_DIR "/%s", name);
        if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
                return err_set(errno, "umount(%s)", path);
        if (unlink(path) < 0 && errno != ENOENT)
                return err_set(errno, "unlink(%s)", path);
        return 0;
}

int netns_run_in(int netns_fd, int (*fn)(void *arg), void *arg) {
        _cleanup_close_ int orig = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        int r;

        if (orig < 0)
                return err_set(errno, "open(/proc/self/ns/net)");
        if (setns(netns_fd, CLONE_NEWNET) < 0)
                return err_set(errno, "setns(CLONE_NEWNET)");
        r = fn(arg);
        if (setns(orig, CLONE_NEWNET) < 0)
                abort();
        return r;
}
