#include "procwatch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../sandbox/cgroup.h"
#include "../sandbox/util.h"

struct watched {
        pid_t pid;
        int fd;
        sd_event_source *src;
};

struct procwatch {
        sd_event *event;
        char *cgroup, *skip;
        procwatch_fn fn;
        void *userdata;
        struct watched *v;              /* sorted by pid */
        unsigned n;
        unsigned live;                  /* of v, those whose exit has not come */
};

static void forget(struct watched *w) {
        w->src = sd_event_source_disable_unref(w->src);
        if (w->fd >= 0)
                close(w->fd);
        w->fd = -1;
}

void procwatch_free(struct procwatch *w) {
        if (!w)
                return;
        for (unsigned i = 0; i < w->n; i++)
                forget(&w->v[i]);
        free(w->v);
        free(w->cgroup);
        free(w->skip);
        free(w);
}

int procwatch_new(sd_event *e, const char *cgroup, const char *skip, procwatch_fn fn,
                  void *userdata, struct procwatch **ret) {
        struct procwatch *w = calloc(1, sizeof(*w));

        if (!w || !(w->cgroup = strdup(cgroup)) || (skip && !(w->skip = strdup(skip)))) {
                procwatch_free(w);
                return err_set(ENOMEM, "process watch");
        }
        w->event = e;
        w->fn = fn;
        w->userdata = userdata;
        *ret = w;
        return 0;
}

/* A pidfd reads as ready once its process exited: once is enough. */
static int on_exit_ready(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct procwatch *w = userdata;
        (void)fd, (void)revents;

        sd_event_source_set_enabled(s, SD_EVENT_OFF);
        if (w->live)
                w->live--;
        w->fn(w->userdata);
        return 0;
}

struct pids {
        pid_t *v;
        unsigned n, cap;
};

static int add_pid(pid_t pid, void *userdata) {
        struct pids *p = userdata;

        if (GROW(p->v, p->n, p->cap, 64) < 0)
                return err_set(ENOMEM, "process watch");
        p->v[p->n++] = pid;
        return 0;
}

static int by_pid(const void *a, const void *b) {
        pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
        return (x > y) - (x < y);
}

/* A process new to the watch; *ret->fd < 0: it is gone already. */
static int watch(struct procwatch *w, pid_t pid, struct watched *ret) {
        int fd = (int)syscall(SYS_pidfd_open, pid, 0), r;

        *ret = (struct watched){ .pid = pid, .fd = fd };
        if (fd < 0)
                return errno == ESRCH ? 0 : err_set(errno, "pidfd_open(%d)", (int)pid);
        r = sd_event_add_io(w->event, &ret->src, fd, EPOLLIN, on_exit_ready, w);
        if (r < 0) {
                close(fd);
                ret->fd = -1;
                return err_setx(-r, "sd_event_add_io(pidfd of %d): %s", (int)pid, strerror(-r));
        }
        return 0;
}

int procwatch_scan(struct procwatch *w, unsigned *ret_count) {
        _cleanup_free_ pid_t *keep = NULL;
        struct pids now = {};
        struct watched *v;
        unsigned i = 0, j = 0, n = 0;
        int r = cg_walk_pids(w->cgroup, w->skip, add_pid, &now);

        if (r < 0 || !(v = calloc(now.n ? now.n : 1, sizeof(*v)))) {
                free(now.v);
                return r < 0 ? r : err_set(ENOMEM, "process watch");
        }
        keep = now.v;
        if (now.n > 1)
                qsort(now.v, now.n, sizeof(*now.v), by_pid);
        /* Both sorted: the gone are forgotten, the new watched. */
        while (i < w->n || j < now.n) {
                if (j == now.n || (i < w->n && w->v[i].pid < now.v[j])) {
                        forget(&w->v[i++]);
                        continue;
                }
                if (j > 0 && now.v[j] == now.v[j - 1]) {
                        j++;            /* moved between cgroups while read */
                        continue;
                }
                if (i < w->n && w->v[i].pid == now.v[j] &&
                    sd_event_source_get_enabled(w->v[i].src, NULL) > 0)
                        v[n] = w->v[i++];
                else {
                        /* New, or its pid came back for another process. */
                        if (i < w->n && w->v[i].pid == now.v[j])
                                forget(&w->v[i++]);
                        if ((r = watch(w, now.v[j], &v[n])) < 0)
                                break;
                }
                j++;
                if (v[n].fd >= 0)
                        n++;            /* else gone already: not counted */
        }
        for (; i < w->n; i++)
                forget(&w->v[i]);
        free(w->v);
        w->v = v;
        w->n = n;
        w->live = n;
        if (r < 0)
                return r;
        *ret_count = n;
        return 0;
}

unsigned procwatch_live(const struct procwatch *w) {
        return w->live;
}
