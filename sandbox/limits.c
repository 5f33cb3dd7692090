#include "limits.h"

#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "../policy/policy.h"
#include "util.h"

static const char *const names[_LIM_MAX] = { "memory", "pids", "cpu" };

const char *lim_ctl_to_string(enum lim_ctl c) { return (unsigned)c < _LIM_MAX ? names[c] : "?"; }

static bool word_in(const char *list, const char *word, char sep) {
        size_t n = strlen(word);
        for (const char *p = list; p && *p;) {
                const char *e = strchr(p, sep);
                size_t len = e ? (size_t)(e - p) : strcspn(p, " \n");
                if (len == n && strncmp(p, word, n) == 0)
                        return true;
                p = e ? e + 1 : NULL;
        }
        return false;
}

/* The v1 mount of a controller: fs type "cgroup", super options name it. */
static char *v1_mount(const char *mi, const char *ctl) {
        for (const char *line = mi; line && *line;) {
                const char *nl = strchr(line, '\n');
                _cleanup_free_ char *l = strndup(line, nl ? (size_t)(nl - line) : strlen(line));
                char *sep, *f[8] = { 0 }, *save = NULL, *opts;
                int n = 0;

                line = nl ? nl + 1 : NULL;
                if (!l || !(sep = strstr(l, " - cgroup ")))
                        continue;
                opts = strrchr(sep, ' ') + 1;
                *sep = 0;
                if (!word_in(opts, ctl, ','))
                        continue;
                for (char *t = strtok_r(l, " ", &save); t && n < 8; t = strtok_r(NULL, " ", &save))
                        f[n++] = t;
                return n >= 5 ? strdup(f[4]) : NULL;
        }
        return NULL;
}

/* gend's own cgroup in a v1 hierarchy: "N:ctl[,ctl]:/path". */
static char *v1_self(const char *self, const char *ctl) {
        for (const char *line = self; line && *line;) {
                const char *nl = strchr(line, '\n');
                _cleanup_free_ char *l = strndup(line, nl ? (size_t)(nl - line) : strlen(line));
                char *a, *b;

                line = nl ? nl + 1 : NULL;
                if (!l || !(a = strchr(l, ':')) || !(b = strchr(a + 1, ':')))
                        continue;
                *b = 0;
                if (word_in(a + 1, ctl, ','))
                        return strdup(b + 1);
        }
        return NULL;
}

int limits_plan(const char *mi, const char *self, const char *v2_controllers,
                struct limits_host *ret) {
        struct limits_host h = { 0 };

        for (int c = 0; c < _LIM_MAX; c++) {
                _cleanup_free_ char *mnt = NULL, *rel = NULL;
                if (v2_controllers && word_in(v2_controllers, names[c], ' ')) {
                        h.where[c] = LIM_V2;
                        continue;
                }
                mnt = v1_mount(mi, names[c]);
                rel = mnt ? v1_self(self, names[c]) : NULL;
                if (!mnt || !rel)
                        continue;
                if (asprintf(&h.v1_base[c], "%s%s/gen", mnt, strcmp(rel, "/") ? rel : "") < 0) {
                        limits_host_done(&h);
                        return -ENOMEM;
                }
                h.where[c] = LIM_V1;
        }
        *ret = h;
        return 0;
}

void limits_host_done(struct limits_host *h) {
        for (int c = 0; c < _LIM_MAX; c++) {
                free(h->v1_base[c]);
                free(h->why[c]);
                h->v1_base[c] = NULL;
                h->why[c] = NULL;
        }
}

int limits_check(const struct limits_host *h, const struct policy *p) {
        const bool asked[_LIM_MAX] = { p->memory_max, p->pids_max, p->cpu_milli };
        for (int c = 0; c < _LIM_MAX; c++)
                if (asked[c] && h->where[c] == LIM_NONE)
                        return err_setx(EOPNOTSUPP, "%s: [limits] %s cannot be enforced on this "
                                        "host: neither cgroup v2 nor a writable cgroup v1 "
                                        "hierarchy has the %s controller (see gend's log at "
                                        "start)", p->path, names[c], names[c]);
        return 0;
}

/* "+ctl" in dir's subtree_control, unless there already. The root cgroup
 * (it alone has no cgroup.type) is the host's: never written. */
static bool delegate_one(const char *dir, const char *ctl) {
        char path[PATH_MAX], type[PATH_MAX], word[32];
        _cleanup_free_ char *cur = NULL;

        snprintf(path, sizeof(path), "%s/cgroup.subtree_control", dir);
        if (read_file(path, &cur, NULL) >= 0 && word_in(cur, ctl, ' '))
                return true;
        snprintf(type, sizeof(type), "%s/cgroup.type", dir);
        if (access(type, F_OK) < 0)
                return false;
        snprintf(word, sizeof(word), "+%s", ctl);
        return write_file(path, word) >= 0;
}

/* Delegates what it can to gen's directory, from the cgroup gend started
 * in; what cannot be delegated is left to v1, or refused. */
static void delegate_v2(const char *v2_base, char *controllers) {
        char parent[PATH_MAX];

        snprintf(parent, sizeof(parent), "%s", v2_base);
        *strrchr(parent, '/') = 0;
        for (int c = 0; c < _LIM_MAX; c++) {
                bool ok = word_in(controllers, names[c], ' ') && delegate_one(parent, names[c]) &&
                          delegate_one(v2_base, names[c]);
                if (!ok) {      /* drop it from the list: v1, or nothing */
                        char *w = strstr(controllers, names[c]);
                        if (w)
                                memset(w, ' ', strlen(names[c]));
                }
        }
}

int limits_setup(const char *v2_base, struct limits_host *ret) {
        _cleanup_free_ char *mi = NULL, *self = NULL, *ctls = NULL, *path = NULL;
        int r;

        if ((r = read_file("/proc/self/mountinfo", &mi, NULL)) < 0 ||
            (r = read_file("/proc/self/cgroup", &self, NULL)) < 0)
                return r;
        /* What the cgroup gend started in (gen/'s parent) was given: gen/
         * itself has none of it before delegate_v2 enables it there. */
        const char *slash = strrchr(v2_base, '/');
        if (!slash || asprintf(&path, "%.*s/cgroup.controllers", (int)(slash - v2_base),
                               v2_base) < 0)
                return -ENOMEM;
        if (read_file(path, &ctls, NULL) < 0)
                ctls = strdup("");
        if (!ctls)
                return -ENOMEM;
        delegate_v2(v2_base, ctls);
        if ((r = limits_plan(mi, self, ctls, ret)) < 0)
                return err_set(-r, "limits");
        for (int c = 0; c < _LIM_MAX; c++)
                if (ret->where[c] == LIM_V1 &&
                    (mkdir_p(ret->v1_base[c], 0755) < 0 ||
                     (access(ret->v1_base[c], W_OK) < 0 &&
                      err_set(errno, "access(%s, W_OK)", ret->v1_base[c]) < 0))) {
                        /* Not ours to use (read-only, as in many containers). */
                        free(ret->v1_base[c]);
                        ret->v1_base[c] = NULL;
                        ret->where[c] = LIM_NONE;
                        if (!ret->why[c])
                                ret->why[c] = strdup(err_msg());
                }
        return 0;
}

static int set_value(const char *dir, const char *file, const char *value) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, file);
        return write_file(path, value);
}

static int apply(enum lim_ctl c, enum lim_where w, const char *dir, const struct policy *p) {
        char v[64];
        int r;

        switch (c) {
        case LIM_MEMORY:
                snprintf(v, sizeof(v), "%llu", (unsigned long long)p->memory_max);
                if (w == LIM_V2)
                        return set_value(dir, "memory.max", v);
                if ((r = set_value(dir, "memory.limit_in_bytes", v)) < 0)
                        return r;
                char sw[PATH_MAX];
                snprintf(sw, sizeof(sw), "%s/memory.memsw.limit_in_bytes", dir);
                return access(sw, F_OK) == 0 ? write_file(sw, v) : 0;   /* no swap past it */
        case LIM_PIDS:
                snprintf(v, sizeof(v), "%llu", (unsigned long long)p->pids_max);
                return set_value(dir, "pids.max", v);
        case LIM_CPU:
                if (w == LIM_V2) {
                        snprintf(v, sizeof(v), "%llu 100000", (unsigned long long)p->cpu_milli * 100);
                        return set_value(dir, "cpu.max", v);
                }
                snprintf(v, sizeof(v), "%llu", (unsigned long long)p->cpu_milli * 100);
                if ((r = set_value(dir, "cpu.cfs_period_us", "100000")) < 0)
                        return r;
                return set_value(dir, "cpu.cfs_quota_us", v);
        default:
                return -EINVAL;
        }
}

static char *v1_dir_name(const struct limits_host *h, enum lim_ctl c, const char *svc,
                         unsigned gen) {
        char *dir;
        return asprintf(&dir, "%s/%s/%u", h->v1_base[c], svc, gen) < 0 ? NULL : dir;
}

int limits_create(const struct limits_host *h, const struct policy *p, const char *svc,
                  unsigned gen, const char *v2_dir, struct gen_limits *ret, int ret_join[_LIM_MAX]) {
        const bool asked[_LIM_MAX] = { p->memory_max, p->pids_max, p->cpu_milli };
        int r;

        for (int c = 0; c < _LIM_MAX; c++)
                ret_join[c] = -1;
        if ((r = limits_check(h, p)) < 0)
                return r;
        ret->v2_dir = strdup(v2_dir);
        if (!ret->v2_dir)
                return err_set(ENOMEM, "limits");
        for (int c = 0; c < _LIM_MAX; c++) {
                char *dir;
                if (!asked[c])
                        continue;
                if (h->where[c] == LIM_V2) {
                        char svc_dir[PATH_MAX];
                        snprintf(svc_dir, sizeof(svc_dir), "%s", v2_dir);
                        *strrchr(svc_dir, '/') = 0;
                        if (!delegate_one(svc_dir, names[c]))
                                return err_setx(EOPNOTSUPP, "[limits] %s: cannot enable the %s "
                                                "controller in %s", names[c], names[c], svc_dir);
                        if ((r = apply(c, LIM_V2, v2_dir, p)) < 0)
                                return r;
                        continue;
                }
                if (!(dir = v1_dir_name(h, c, svc, gen)))
                        return err_set(ENOMEM, "limits");
                ret->v1_dir[c] = dir;
                if ((r = mkdir_p(dir, 0755)) < 0 || (r = apply(c, LIM_V1, dir, p)) < 0)
                        return r;
                if ((ret_join[c] = limits_open_join(dir)) < 0)
                        return ret_join[c];
        }
        return 0;
}

/* "tasks", not "cgroup.procs": a process that moves itself whole
 * (cgroup.procs) takes the kernel's threadgroup lock for writing, which
 * waits for an RCU grace period (7 to 20 ms); a thread that moves itself
 * (tasks, "0") does not. Who writes is a child just cloned, with one
 * thread, so the whole process moves. */
int limits_open_join(const char *v1_dir) {
        char path[PATH_MAX];
        int fd;

        snprintf(path, sizeof(path), "%s/tasks", v1_dir);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        return fd < 0 ? err_set(errno, "open(%s)", path) : fd;
}

void limits_claim(const struct limits_host *h, const char *svc, unsigned gen,
                  struct gen_limits *l) {
        for (int c = 0; c < _LIM_MAX; c++) {
                char *dir;
                if (h->where[c] != LIM_V1 || l->v1_dir[c] || !(dir = v1_dir_name(h, c, svc, gen)))
                        continue;
                if (access(dir, F_OK) == 0)
                        l->v1_dir[c] = dir;
                else
                        free(dir);
        }
}

int limits_destroy(struct gen_limits *l) {
        int r = 0;
        for (int c = 0; c < _LIM_MAX; c++) {
                char *dir = l->v1_dir[c];
                if (!dir)
                        continue;
                if (rmdir(dir) < 0 && errno != ENOENT)
                        r = err_set(errno, "rmdir(%s)", dir);
                *strrchr(dir, '/') = 0;
                rmdir(dir);             /* the service's, when empty */
        }
        limits_release(l);
        return r;
}

void limits_release(struct gen_limits *l) {
        for (int c = 0; c < _LIM_MAX; c++) {
                free(l->v1_dir[c]);
                l->v1_dir[c] = NULL;
        }
        free(l->v2_dir);
        l->v2_dir = NULL;
}

static unsigned counter(const char *dir, const char *file, const char *key) {
        char path[PATH_MAX];
        _cleanup_free_ char *txt = NULL;
        size_t kl = strlen(key);

        snprintf(path, sizeof(path), "%s/%s", dir, file);
        if (read_file(path, &txt, NULL) < 0)
                return 0;
        for (char *p = txt; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
                if (strncmp(p, key, kl) == 0 && p[kl] == ' ')
                        return (unsigned)strtoul(p + kl + 1, NULL, 10);
        return 0;
}

int limits_events(const struct limits_host *h, const struct gen_limits *l, unsigned *ret_oom,
                  unsigned *ret_pids_max) {
        const char *mem = h->where[LIM_MEMORY] == LIM_V2 ? l->v2_dir : l->v1_dir[LIM_MEMORY];
        const char *pids = h->where[LIM_PIDS] == LIM_V2 ? l->v2_dir : l->v1_dir[LIM_PIDS];

        *ret_oom = !mem ? 0 : counter(mem, h->where[LIM_MEMORY] == LIM_V2 ? "memory.events"
                                                                        : "memory.oom_control",
                                      "oom_kill");
        *ret_pids_max = pids ? counter(pids, "pids.events", "max") : 0;
        return 0;
}
