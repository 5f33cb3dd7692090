#include "cut.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <time.h>

#include "../sandbox/cgroup.h"
#include "../sandbox/naming.h"
#include "conntrack.h"
#include "gend.h"
#include "idle.h"
#include "log.h"

static const char *const by_names[_FORCED_MAX] = { "not", "timeout", "now" };

const char *forced_by_to_string(enum forced_by b) {
        return (unsigned)b < _FORCED_MAX ? by_names[b] : "?";
}

int forced_by_from_string(const char *s) {
        for (int i = 0; s && i < _FORCED_MAX; i++)
                if (strcmp(s, by_names[i]) == 0)
                        return i;
        return -EINVAL;
}

void cut_free(struct drain_cut *c) {
        if (!c)
                return;
        for (unsigned i = 0; i < c->n_proc; i++)
                free(c->proc[i].cmdline);
        free(c->idle_probe);
        free(c->idle_why);
        free(c->idle_output);
        free(c);
}

struct pid_start {
        int pid;
        uint64_t start;
};

struct pid_list {
        struct pid_start *v;
        unsigned n, cap;
};

static int add_pid(pid_t pid, void *userdata) {
        struct pid_list *l = userdata;

        if (GROW(l->v, l->n, l->cap, 64) < 0)
                return err_set(ENOMEM, "listing processes");
        l->v[l->n] = (struct pid_start){ .pid = (int)pid };
        if (proc_start_time(pid, &l->v[l->n].start) < 0)
                l->v[l->n].start = UINT64_MAX;  /* gone meanwhile: newest */
        l->n++;
        return 0;
}

static int newest_first(const void *a, const void *b) {
        const struct pid_start *x = a, *y = b;
        return x->start < y->start ? 1 : x->start > y->start ? -1 : 0;
}

/* "/usr/bin/php easyswoole task", or "[comm]" when it has no arguments. */
static char *cmdline_of(int pid) {
        char path[64], buf[512];
        _cleanup_free_ char *txt = NULL;
        size_t len = 0;

        snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
        if (read_file(path, &txt, &len) >= 0 && len > 0) {
                if (len > sizeof(buf) - 1)
                        len = sizeof(buf) - 1;
                memcpy(buf, txt, len);
                while (len && buf[len - 1] == 0)
                        len--;
                for (size_t i = 0; i < len; i++)
                        if (buf[i] == 0)
                                buf[i] = ' ';
                        else if ((unsigned char)buf[i] < 0x20)
                                buf[i] = '?';
                buf[len] = 0;
                return strdup(buf);
        }
        free(TAKE_PTR(txt));
        snprintf(path, sizeof(path), "/proc/%d/comm", pid);
        if (read_file(path, &txt, NULL) >= 0) {
                txt[strcspn(txt, "\n")] = 0;
                snprintf(buf, sizeof(buf), "[%s]", txt);
                return strdup(buf);
        }
        return strdup("(exited)");
}

/* The processes above the quiet level (the newest), but for the idle
 * probe's. */
static void collect_procs(struct generation *g, struct drain_cut *c) {
        struct pid_list l = {};
        _cleanup_free_ struct pid_start *v = NULL;
        unsigned n;
        int r;

        if (!g->cgroup)
                return;
        r = cg_walk_pids(g->cgroup, IDLE_CGROUP, add_pid, &l);
        v = l.v;
        n = l.n;
        if (r < 0) {
                log_warn("%s: generation %u: listing what the drain cuts: %s", g->svc->name,
                         g->n, err_msg());
                return;
        }
        c->procs = n;
        if (n > 1)
                qsort(v, n, sizeof(*v), newest_first);
        for (unsigned i = 0; n > c->quiet_level && i < n - c->quiet_level && i < CUT_LIST_MAX; i++) {
                c->proc[c->n_proc].pid = v[i].pid;
                c->proc[c->n_proc].cmdline = cmdline_of(v[i].pid);
                c->n_proc++;
        }
}

static void collect_conns(struct generation *g, struct drain_cut *c) {
        struct gend *d = g->svc->d;
        struct ct_conn v[CUT_LIST_MAX];
        unsigned n, total;
        char a[16];

        if (!g->has_block || !d->ct)
                return;
        if (ct_list_live(d->ct, g->mark, d->marks.mask, v, CUT_LIST_MAX, &n, &total) < 0) {
                log_warn("%s: generation %u: listing the connections the drain cuts: %s",
                         g->svc->name, g->n, err_msg());
                return;
        }
        c->conns = total;
        for (unsigned i = 0; i < n; i++) {
                struct cut_conn *o = &c->conn[c->n_conn++];
                snprintf(o->proto, sizeof(o->proto), "%s",
                         v[i].proto == IPPROTO_TCP ? "tcp" : v[i].proto == IPPROTO_UDP ? "udp"
                                                                                         : "ip");
                snprintf(o->peer, sizeof(o->peer), "%s:%u", ip4_to_string(v[i].src, a, sizeof(a)),
                         v[i].sport);
                snprintf(o->to, sizeof(o->to), "%s:%u", ip4_to_string(v[i].dst, a, sizeof(a)),
                         v[i].dport);
                snprintf(o->state, sizeof(o->state), "%s", v[i].state);
        }
}

static void collect_idle(struct generation *g, struct drain_cut *c) {
        char what[512];
        const struct idle_result *r;

        if (g->policy->idle == IDLE_NONE)
                return;
        idle_describe(g->policy, what, sizeof(what));
        c->idle_probe = strdup(what);
        r = g->idle ? idle_last(g->idle) : NULL;
        if (!r || !r->valid)
                return;
        c->idle_valid = true;
        c->idle_passed = r->passed;
        c->idle_truncated = r->truncated;
        c->idle_age_usec = now_usec(CLOCK_MONOTONIC) - r->end_usec;
        c->idle_why = strdup(r->why);
        c->idle_output = strndup(r->output, r->len);
}

int cut_collect(struct generation *g, enum forced_by by, struct drain_cut **ret) {
        struct drain_cut *c = calloc(1, sizeof(*c));

        if (!c)
                return err_set(ENOMEM, "what the drain cuts");
        c->by = by;
        c->after_usec = g->drain_usec ? now_usec(CLOCK_MONOTONIC) - g->drain_usec : 0;
        c->procs = g->procs;
        c->conns = g->conns;
        c->quiet_level = g->quiet_level;
        collect_procs(g, c);
        collect_conns(g, c);
        collect_idle(g, c);
        *ret = c;
        return 0;
}

json_t *cut_to_json(const struct drain_cut *c) {
        json_t *procs = json_array(), *conns = json_array(), *j;

        for (unsigned i = 0; i < c->n_proc; i++)
                json_array_append_new(procs, json_pack("{s:i,s:s}", "pid", c->proc[i].pid,
                                                       "cmdline", c->proc[i].cmdline ?: ""));
        for (unsigned i = 0; i < c->n_conn; i++)
                json_array_append_new(conns, json_pack("{s:s,s:s,s:s,s:s}", "proto",
                                                       c->conn[i].proto, "peer", c->conn[i].peer,
                                                       "to", c->conn[i].to, "state",
                                                       c->conn[i].state));
        j = json_pack("{s:s,s:I,s:i,s:i,s:i,s:o,s:o}", "by", forced_by_to_string(c->by),
                      "after_ms", (json_int_t)(c->after_usec / USEC_PER_MSEC), "procs",
                      (int)c->procs, "quiet_procs", (int)c->quiet_level, "conns", (int)c->conns,
                      "processes", procs, "connections", conns);
        if (j && c->idle_probe) {
                json_t *idle = json_pack("{s:s,s:b}", "probe", c->idle_probe, "valid",
                                         c->idle_valid);
                if (idle && c->idle_valid) {
                        json_object_set_new(idle, "passed", json_boolean(c->idle_passed));
                        json_object_set_new(idle, "why", json_string(c->idle_why ?: ""));
                        json_object_set_new(idle, "output", json_string(c->idle_output ?: ""));
                        json_object_set_new(idle, "truncated", json_boolean(c->idle_truncated));
                        json_object_set_new(idle, "age_ms", json_integer(
                                (json_int_t)(c->idle_age_usec / USEC_PER_MSEC)));
                }
                json_object_set_new(j, "idle", idle);
        }
        return j;
}

static char *str_or_null(json_t *j, const char *key) {
        const char *s = json_string_value(json_object_get(j, key));
        return s ? strdup(s) : NULL;
}

int cut_from_json(json_t *j, struct drain_cut **ret) {
        struct drain_cut *c;
        json_t *v, *idle;
        size_t i;
        int by = forced_by_from_string(json_string_value(json_object_get(j, "by")));

        if (!json_is_object(j) || by < 0)
                return -EINVAL;
        if (!(c = calloc(1, sizeof(*c))))
                return -ENOMEM;
        c->by = by;
        c->after_usec = (uint64_t)json_integer_value(json_object_get(j, "after_ms")) * USEC_PER_MSEC;
        c->procs = (unsigned)json_integer_value(json_object_get(j, "procs"));
        c->quiet_level = (unsigned)json_integer_value(json_object_get(j, "quiet_procs"));
        c->conns = (unsigned)json_integer_value(json_object_get(j, "conns"));
        json_array_foreach(json_object_get(j, "processes"), i, v) {
                if (c->n_proc == CUT_LIST_MAX)
                        break;
                c->proc[c->n_proc].pid = (int)json_integer_value(json_object_get(v, "pid"));
                c->proc[c->n_proc++].cmdline = str_or_null(v, "cmdline");
        }
        json_array_foreach(json_object_get(j, "connections"), i, v) {
                struct cut_conn *o;
                if (c->n_conn == CUT_LIST_MAX)
                        break;
                o = &c->conn[c->n_conn++];
#define CP(f) snprintf(o->f, sizeof(o->f), "%s", json_string_value(json_object_get(v, #f)) ?: "")
                CP(proto);
                CP(peer);
                CP(to);
                CP(state);
#undef CP
        }
        if ((idle = json_object_get(j, "idle"))) {
                c->idle_probe = str_or_null(idle, "probe");
                c->idle_valid = json_is_true(json_object_get(idle, "valid"));
                c->idle_passed = json_is_true(json_object_get(idle, "passed"));
                c->idle_truncated = json_is_true(json_object_get(idle, "truncated"));
                c->idle_age_usec = (uint64_t)json_integer_value(json_object_get(idle, "age_ms")) *
                                   USEC_PER_MSEC;
                c->idle_why = str_or_null(idle, "why");
                c->idle_output = str_or_null(idle, "output");
        }
        *ret = c;
        return 0;
}

void cut_log(const char *svc, unsigned n, const struct drain_cut *c) {
        char took[32], age[32];
        const char *out;

        format_duration(took, sizeof(took), c->after_usec);
        log_warn("%s: generation %u retired: forced after %s (%s), not clean: %u process%s, %u "
                 "connection%s left (quiet level %u)", svc, n, took,
                 c->by == FORCED_NOW ? "--now" : "drain timeout", c->procs,
                 c->procs == 1 ? "" : "es", c->conns, c->conns == 1 ? "" : "s", c->quiet_level);
        for (unsigned i = 0; i < c->n_proc; i++)
                log_warn("%s: generation %u:   cut process %d: %s", svc, n, c->proc[i].pid,
                         c->proc[i].cmdline ?: "?");
        if (c->procs > c->quiet_level && c->procs - c->quiet_level > c->n_proc)
                log_warn("%s: generation %u:   and %u more process%s", svc, n,
                         c->procs - c->quiet_level - c->n_proc,
                         c->procs - c->quiet_level - c->n_proc == 1 ? "" : "es");
        for (unsigned i = 0; i < c->n_conn; i++)
                log_warn("%s: generation %u:   cut connection %s %s -> %s%s%s", svc, n,
                         c->conn[i].proto, c->conn[i].peer, c->conn[i].to,
                         c->conn[i].state[0] ? " " : "", c->conn[i].state);
        if (c->conns > c->n_conn)
                log_warn("%s: generation %u:   and %u more connection%s", svc, n,
                         c->conns - c->n_conn, c->conns - c->n_conn == 1 ? "" : "s");
        if (!c->idle_probe)
                return;
        if (!c->idle_valid) {
                log_warn("%s: generation %u:   idle probe %s: no run had finished", svc, n,
                         c->idle_probe);
                return;
        }
        format_duration(age, sizeof(age), c->idle_age_usec);
        log_warn("%s: generation %u:   idle probe %s, %s before: %s (%s)%s", svc, n, c->idle_probe,
                 age, c->idle_passed ? "idle" : "busy", c->idle_why ?: "",
                 c->idle_output && *c->idle_output ? "; it said:" : "");
        out = c->idle_output ?: "";
        for (const char *l = out; *l;) {
                size_t len = strcspn(l, "\n");
                log_warn("%s: generation %u:   | %.*s", svc, n, (int)len, l);
                l += len + (l[len] == '\n');
        }
        if (c->idle_truncated)
                log_warn("%s: generation %u:   | ... (cut at %d bytes)", svc, n, IDLE_OUTPUT_MAX);
}
