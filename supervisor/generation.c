/* A generation's life on the supervisor side: create its kernel objects
 * and process, probe it, point the rules at it, hand it to the drain. */
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "../sandbox/cgroup.h"
#include "../sandbox/confine.h"
#include "../sandbox/netns.h"
#include "../sandbox/spawn.h"
#include "../sandbox/veth.h"
#include "conntrack.h"
#include "fwd.h"
#include "gend.h"
#include "log.h"
#include "probe.h"

struct service *service_find(struct gend *d, const char *name) {
        for (struct service *s = d->services; s; s = s->next)
                if (strcmp(s->policy->name, name) == 0)
                        return s;
        return NULL;
}

struct generation *gen_find(struct service *s, unsigned n) {
        for (struct generation *g = s->gens; g; g = g->next)
                if (g->n == n)
                        return g;
        return NULL;
}

uint64_t gen_age_usec(const struct generation *g) {
        return now_usec(CLOCK_MONOTONIC) - g->created_usec;
}

void gen_log_path(struct gend *d, const char *svc, unsigned n, char **ret) {
        if (asprintf(ret, "%s/%s/%u.log", d->log_dir, svc, n) < 0)
                *ret = NULL;
}

void gen_transition(struct generation *g, enum gen_event e) {
        int next = fsm_next(g->state, e);

        if (next < 0) {
                /* A bug: say so loudly, keep the state. */
                log_error("%s: generation %u: event %s is not allowed in state %s",
                          g->svc->policy->name, g->n, gen_event_to_string(e),
                          gen_state_to_string(g->state));
                return;
        }
        g->state = next;
}

/* "generation 3 is still serving" / "no generation of web is serving". */
static void serving_note(struct service *s, char *buf, size_t n) {
        if (s->active && s->active->state == GEN_ACTIVE)
                snprintf(buf, n, "generation %u is still serving", s->active->n);
        else
                snprintf(buf, n, "no generation of %s is serving", s->policy->name);
}

static int counter_path(struct service *s, char **ret) {
        return asprintf(ret, "%s/%s.next", s->d->state_dir, s->policy->name) < 0 ? -ENOMEM : 0;
}

/* Numbers are never reused: the next one is on disk before it is used. */
static int take_number(struct service *s, unsigned *ret) {
        _cleanup_free_ char *path = NULL;
        char buf[32];
        int r;

        if (s->next_gen == 0) {
                _cleanup_free_ char *txt = NULL;
                if (counter_path(s, &path) < 0)
                        return err_set(ENOMEM, "counter");
                s->next_gen = read_file(path, &txt, NULL) >= 0 ? (unsigned)atoi(txt) : 1;
                if (s->next_gen == 0)
                        s->next_gen = 1;
                free(TAKE_PTR(path));
        }
        if (counter_path(s, &path) < 0)
                return err_set(ENOMEM, "counter");
        snprintf(buf, sizeof(buf), "%u\n", s->next_gen + 1);
        if ((r = write_file_atomic(path, buf, 0644)) < 0)
                return r;
        *ret = s->next_gen++;
        return 0;
}

static void gen_unlink(struct generation *g) {
        struct generation **p = &g->svc->gens;
        while (*p && *p != g)
                p = &(*p)->next;
        if (*p)
                *p = g->next;
}

static void gen_free(struct generation *g) {
        probe_free(g->probe);
        drain_stop(g);
        sd_event_source_disable_unref(g->cg_watch);
        sd_event_source_disable_unref(g->teardown_timer);
        if (g->pidfd >= 0)
                close(g->pidfd);
        free(g->failure);
        free(g->netns);
        free(g->cgroup);
        free(g->log_path);
        free(g->directory);
        strv_free(g->env);
        limits_release(&g->limits);
        free(g);
}

/* Called by the teardown when the generation's kernel objects are gone. */
void gen_torn_down(struct generation *g) {
        struct service *s = g->svc;

        if (g->has_block)
                s->d->blocks_used[g->block] = 0;
        g->has_block = false;
        g->torn_down = true;
        if (g->state == GEN_FAILED) {
                /* Said once its objects are gone: a failed gen new leaves nothing. */
                control_report(g, REPORT_FAILED, g->failure);
                return;                 /* the record stays for gen list */
        }
        if (g->state != GEN_FROZEN)
                return;
        gen_transition(g, EV_KILLED);
        char msg[256], took[32];
        format_duration(took, sizeof(took), now_usec(CLOCK_MONOTONIC) - g->drain_usec);
        if (g->forced)
                snprintf(msg, sizeof(msg), "generation %u retired: forced after %s: %u "
                         "process%s, %u connection%s left", g->n, took, g->procs,
                         g->procs == 1 ? "" : "es", g->conns, g->conns == 1 ? "" : "s");
        else
                snprintf(msg, sizeof(msg), "generation %u retired: clean after %s", g->n, took);
        control_report(g, REPORT_RETIRED, msg);
        gen_unlink(g);
        gen_free(g);
}

static void gen_fail(struct generation *g, const char *why) {
        free(g->failure);
        g->failure = strdup(why);
        probe_free(g->probe);
        g->probe = NULL;
        gen_transition(g, g->state == GEN_STARTING && !g->exited ? EV_PROBE_FAIL : EV_EXIT);
        if (teardown_start(g) < 0)
                log_error("%s: generation %u: cleanup: %s", g->svc->policy->name, g->n, err_msg());
}

static int build_env(struct generation *g, char ***ret) {
        const struct policy *p = g->svc->policy;
        _cleanup_strv_free_ char **env = NULL;
        char addr[16];
        char *s;

        ip4_to_string(g->addr, addr, sizeof(addr));
        if (strv_push(&env, strdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")) < 0 ||
            asprintf(&s, "GEN_SERVICE=%s", p->name) < 0 || strv_push(&env, s) < 0 ||
            asprintf(&s, "GEN_GENERATION=%u", g->n) < 0 || strv_push(&env, s) < 0 ||
            asprintf(&s, "GEN_ADDRESS=%s", addr) < 0 || strv_push(&env, s) < 0)
                return err_set(ENOMEM, "environment");
        for (char **e = p->env; e && *e; e++)
                if (strv_push(&env, strdup(*e)) < 0)
                        return err_set(ENOMEM, "environment");
        *ret = TAKE_PTR(env);
        return 0;
}

static int open_log(struct generation *g, int *ret_fd) {
        _cleanup_free_ char *dir = NULL;
        int r, fd;

        if (asprintf(&dir, "%s/%s", g->svc->d->log_dir, g->svc->policy->name) < 0)
                return err_set(ENOMEM, "log");
        if ((r = mkdir_p(dir, 0750)) < 0)
                return r;
        fd = open(g->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
        if (fd < 0)
                return err_set(errno, "open(%s)", g->log_path);
        *ret_fd = fd;
        return 0;
}

static bool under_tmp(const char *path) {
        return strcmp(path, "/tmp") == 0 || strncmp(path, "/tmp/", 5) == 0;
}

/* The kernel objects and the process; on failure what was made is undone
 * by the caller's teardown (everything here is idempotent to remove). */
static int gen_create(struct generation *g, const char *dir) {
        struct gend *d = g->svc->d;
        const struct policy *p = g->svc->policy;
        _cleanup_close_ int netns_fd = -1, cg_fd = -1, log_fd = -1;
        _cleanup_free_ char *svc_cg = NULL, *cg = NULL, *ns = NULL;
        struct confine conf = { 0 };
        int r, blk, join[_LIM_MAX] = { -1, -1, -1 };

        blk = pool_alloc(&d->pool, d->blocks_used, pool_blocks(&d->pool));
        if (blk < 0)
                return err_setx(ENOSPC, "the address pool is used up (%u generations live)",
                                pool_blocks(&d->pool));
        g->block = blk;
        g->has_block = true;
        d->blocks_used[blk] = 1;
        g->addr = pool_gen_addr(&d->pool, blk);
        g->host_addr = pool_host_addr(&d->pool, blk);
        /* g->cgroup, g->netns and g->has_veth are set once made, never
         * before: the teardown removes what this generation made, and not
         * an object of the same name it failed to make (EEXIST). */
        veth_host_name(p->name, g->n, g->veth);
        if (netns_name(p->name, g->n, &ns) < 0 ||
            asprintf(&svc_cg, "%s/%s", d->cgroup_base, p->name) < 0 ||
            asprintf(&cg, "%s/%u", svc_cg, g->n) < 0)
                return err_set(ENOMEM, "names");
        gen_log_path(d, p->name, g->n, &g->log_path);
        g->directory = strdup(dir ? dir : p->directory ? p->directory : "/");
        if (!g->log_path || !g->directory)
                return err_set(ENOMEM, "names");

        /* Everything a policy can get wrong is found before anything starts. */
        if (p->private_tmp && (under_tmp(p->argv[0]) || under_tmp(g->directory)))
                return err_setx(EINVAL, "%s: [sandbox] private-tmp = yes gives the generation an "
                                "empty /tmp of its own, which hides %s", p->path,
                                under_tmp(p->argv[0]) ? p->argv[0] : g->directory);
        if ((r = limits_check(&d->limits, p)) < 0 ||
            (r = confine_prepare(p, p->name, g->n, d->profile_dir, &conf)) < 0)
                return r;
        if (mkdir(svc_cg, 0755) < 0 && errno != EEXIST)
                r = err_set(errno, "mkdir(%s)", svc_cg);
        if (r >= 0 && (r = cg_create(cg)) >= 0) {
                g->cgroup = TAKE_PTR(cg);
                if ((r = cg_open(g->cgroup)) >= 0)
                        cg_fd = r;
        }
        if (r >= 0)
                r = limits_create(&d->limits, p, p->name, g->n, g->cgroup, &g->limits, join);
        if (r >= 0 && (r = netns_create(ns, &netns_fd)) >= 0) {
                g->netns = TAKE_PTR(ns);
                if ((r = veth_create(g->veth, netns_fd, g->host_addr, g->addr)) >= 0)
                        g->has_veth = true;
        }
        if (r >= 0 && (r = open_log(g, &log_fd)) >= 0)
                r = build_env(g, &g->env);
        if (r >= 0) {
                struct spawn_opts o = {
                        .argv = p->argv, .envp = g->env, .directory = g->directory,
                        .cgroup_fd = cg_fd, .netns_fd = netns_fd, .log_fd = log_fd,
                        .confine = &conf, .join_fds = join, .n_join = _LIM_MAX,
                };
                r = spawn_start(&o, &g->pid, &g->pidfd);
        }
        confine_done(&conf);
        for (int c = 0; c < _LIM_MAX; c++)
                if (join[c] >= 0)
                        close(join[c]);
        return r;
}

static void on_probe_done(void *userdata, int r, const char *why);

int gen_new(struct service *s, const char *dir, bool do_switch, struct generation **ret) {
        struct generation *g, **tail;
        char msg[512], addr[16], note[128];
        unsigned n = 0;
        int r;

        if ((r = take_number(s, &n)) < 0)
                return r;
        g = calloc(1, sizeof(*g));
        if (!g)
                return err_set(ENOMEM, "generation");
        g->svc = s;
        g->n = n;
        g->pidfd = -1;
        g->state = GEN_STARTING;
        g->created_usec = now_usec(CLOCK_MONOTONIC);
        g->created_realtime = now_usec(CLOCK_REALTIME);
        g->switch_when_ready = do_switch;
        for (tail = &s->gens; *tail; tail = &(*tail)->next)
                ;
        *tail = g;
        *ret = g;

        r = gen_create(g, dir);
        if (r < 0) {
                serving_note(s, note, sizeof(note));
                snprintf(msg, sizeof(msg), "generation %u could not start: %s; %s", n,
                         err_msg(), note);
                gen_fail(g, msg);
                return err_setx(-r, "%s", msg);
        }
        snprintf(msg, sizeof(msg), "generation %u created: pid %d, address %s, log %s", n,
                 (int)g->pid, ip4_to_string(g->addr, addr, sizeof(addr)), g->log_path);
        control_report(g, REPORT_PROGRESS, msg);

        g->probe_target = (struct probe_target){ .addr = g->addr, .netns = g->netns,
                                                 .directory = g->directory,
                                                 .log_path = g->log_path, .envp = g->env };
        for (unsigned i = 0; i < s->policy->n_ports && !g->probe_target.port; i++)
                if (s->policy->ports[i].proto == IPPROTO_TCP)
                        g->probe_target.port = s->policy->ports[i].inner_port;
        r = probe_start(s->d->event, s->policy, &g->probe_target, on_probe_done, g, &g->probe);
        if (r < 0) {
                snprintf(msg, sizeof(msg), "generation %u: cannot probe: %s", n, err_msg());
                gen_fail(g, msg);
                return err_setx(-r, "%s", msg);
        }
        return 0;
}

static void on_probe_done(void *userdata, int r, const char *why) {
        struct generation *g = userdata;
        struct service *s = g->svc;
        char msg[512], took[32], note[128];

        probe_free(g->probe);
        g->probe = NULL;
        if (r < 0) {
                serving_note(s, note, sizeof(note));
                snprintf(msg, sizeof(msg), "generation %u never became ready: %s after %s; %s",
                         g->n, why, format_duration(took, sizeof(took),
                                                    s->policy->ready_timeout_usec), note);
                gen_fail(g, msg);
                return;
        }
        g->ready_usec = now_usec(CLOCK_MONOTONIC);
        if (cg_count_procs(g->cgroup, &g->baseline) < 0) {
                log_warn("%s: generation %u: %s; baseline taken as 1", s->policy->name, g->n,
                         err_msg());
                g->baseline = 1;
        }
        g->procs = g->baseline;
        gen_transition(g, EV_PROBE_OK);
        snprintf(msg, sizeof(msg), "generation %u ready after %s (baseline %u process%s)", g->n,
                 format_duration(took, sizeof(took), g->ready_usec - g->created_usec),
                 g->baseline, g->baseline == 1 ? "" : "es");
        control_report(g, REPORT_READY, msg);
        if (g->switch_when_ready && gen_switch(g) < 0)
                control_report(g, REPORT_FAILED, err_msg());
}

static struct rules_target target_of(struct service *s, struct generation *g) {
        return (struct rules_target){
                .service = s->policy->name, .ports = s->policy->ports,
                .n_ports = s->policy->n_ports, .addr = g ? g->addr : 0,
                .mark = g ? gen_ct_mark(g->block) : 0,
        };
}

struct commit_ctx {
        struct service *s;
        unsigned n;                     /* the generation the commit is for, 0: none */
};

static void rules_repair(struct service *s);

static void on_switched(void *userdata, int r, const char *error) {
        struct commit_ctx *c = userdata;
        struct service *s = c->s;
        struct generation *g = gen_find(s, c->n), *old = s->active;
        char msg[512], addr[16], note[128];
        unsigned n = c->n;

        free(c);
        s->rules_busy = false;
        if (r < 0) {
                serving_note(s, note, sizeof(note));
                snprintf(msg, sizeof(msg), "switch to generation %u failed: %s; %s", n, error,
                         note);
                if (g) {
                        control_report(g, REPORT_FAILED, msg);
                        if (g->state == GEN_DRAINING)
                                drain_start(g);
                } else
                        log_error("%s: %s", s->policy->name, msg);
                return;
        }
        s->has_rules = true;
        if (!g || (g->state != GEN_READY && g->state != GEN_DRAINING)) {
                /* It died while the rules moved: point them back. */
                log_error("%s: generation %u went away during the switch; restoring the rules",
                          s->policy->name, n);
                rules_repair(s);
                return;
        }
        s->active = g;
        g->replaced = old && old != g && old->state == GEN_ACTIVE ? old->n : 0;
        gen_transition(g, EV_ACTIVATE);
        snprintf(msg, sizeof(msg), "switched: new connections to %s go to generation %u (%s)",
                 s->policy->name, n, ip4_to_string(g->addr, addr, sizeof(addr)));
        control_report(g, REPORT_SWITCHED, msg);
        if (old && old != g && old->state == GEN_ACTIVE) {
                unsigned deleted;
                gen_transition(old, EV_DEACTIVATE);
                /* A conntrack dump walks the whole table: only for UDP services. */
                if (s->has_udp && s->d->ct &&
                    ct_delete_udp(s->d->ct, gen_ct_mark(old->block), &deleted) >= 0 && deleted)
                        log_info("%s: deleted %u UDP conntrack entries of generation %u",
                                 s->policy->name, deleted, old->n);
                drain_start(old);
        }
}

static int submit(struct service *s, enum rules_op op, struct generation *g, fwd_done_t done) {
        struct commit_ctx *c = malloc(sizeof(*c));
        struct rules_target t = target_of(s, g);
        int r;

        if (!c)
                return err_set(ENOMEM, "commit");
        *c = (struct commit_ctx){ s, g ? g->n : 0 };
        r = fwd_submit(s->d->fwd, op, &t, done, c);
        if (r < 0) {
                free(c);
                return r;
        }
        s->rules_busy = true;
        return 0;
}

int gen_switch(struct generation *g) {
        struct service *s = g->svc;

        if (s->rules_busy)
                return err_setx(EBUSY, "a rule change for %s is under way; try again",
                                s->policy->name);
        if (g->state == GEN_ACTIVE)
                return err_setx(EALREADY, "generation %u of %s is active already", g->n,
                                s->policy->name);
        if (g->state != GEN_READY && g->state != GEN_DRAINING)
                return err_setx(EINVAL, "generation %u of %s is %s: only a ready (or still "
                                "draining) generation can become active", g->n,
                                s->policy->name, gen_state_to_string(g->state));
        if (g->state == GEN_DRAINING)
                drain_stop(g);
        return submit(s, s->has_rules ? RULES_SWITCH : RULES_ADD, g, on_switched);
}

int gen_rollback(struct service *s, struct generation **ret) {
        struct generation *best = NULL;

        for (struct generation *g = s->gens; g; g = g->next)
                if (g->state == GEN_DRAINING && (!s->active || g->n < s->active->n))
                        best = g;
        if (!best)
                return err_setx(ENOENT, "%s has no earlier generation that is still draining "
                                "to roll back to", s->policy->name);
        *ret = best;
        return gen_switch(best);
}

static void on_removed(void *userdata, int r, const char *error) {
        struct commit_ctx *c = userdata;
        struct service *s = c->s;
        struct generation *g = gen_find(s, c->n);

        free(c);
        s->rules_busy = false;
        if (r < 0) {
                log_error("%s: removing rules failed: %s", s->policy->name, error);
                if (g)
                        control_report(g, REPORT_FAILED, error);
                return;
        }
        s->has_rules = false;
        log_info("%s: rules removed: no generation of %s is serving", s->policy->name,
                 s->policy->name);
        if (s->active == g)
                s->active = NULL;
        if (g && g->state == GEN_ACTIVE) {
                gen_transition(g, EV_DEACTIVATE);
                drain_start(g);
        }
}

static void rules_repair(struct service *s) {
        struct generation *a = s->active;
        int r;

        if (a && a->state == GEN_ACTIVE)
                r = submit(s, RULES_SWITCH, a, on_switched);
        else {
                s->active = NULL;
                r = s->has_rules ? submit(s, RULES_REMOVE, NULL, on_removed) : 0;
        }
        if (r < 0)
                log_error("%s: cannot repair rules: %s", s->policy->name, err_msg());
}

int gen_retire(struct generation *g, bool force, bool now, uint64_t timeout_usec) {
        struct service *s = g->svc;

        switch (g->state) {
        case GEN_STARTING:
                return err_setx(EBUSY, "generation %u of %s is still starting; retire it once "
                                "it is ready or has failed", g->n, s->policy->name);
        case GEN_ACTIVE:
                if (!force)
                        return err_setx(EPERM, "generation %u is the active generation of %s: "
                                        "switch to another one first, or use --force to take "
                                        "%s out of service", g->n, s->policy->name,
                                        s->policy->name);
                if (s->rules_busy)
                        return err_setx(EBUSY, "a rule change for %s is under way; try again",
                                        s->policy->name);
                g->forced = now;
                g->drain_timeout_usec = timeout_usec;
                return submit(s, RULES_REMOVE, g, on_removed);
        case GEN_READY:
                gen_transition(g, EV_RETIRE);
                g->forced = now;
                g->drain_timeout_usec = timeout_usec;
                return drain_start(g);
        case GEN_DRAINING:
                gen_transition(g, EV_RETIRE);
                if (timeout_usec)
                        g->drain_timeout_usec = timeout_usec;
                if (now)
                        g->forced = true;
                return drain_rearm(g);
        case GEN_FAILED:
                if (!g->torn_down)
                        return err_setx(EBUSY, "generation %u of %s is still being cleaned up",
                                        g->n, s->policy->name);
                gen_transition(g, EV_RETIRE);
                control_report(g, REPORT_RETIRED, "failed generation removed from the list");
                gen_unlink(g);
                gen_free(g);
                return 0;
        default:
                return err_setx(EALREADY, "generation %u of %s is %s already", g->n,
                                s->policy->name, gen_state_to_string(g->state));
        }
}

void gen_child_exited(struct gend *d, pid_t pid, int status) {
        char msg[512], how[64];

        for (struct service *s = d->services; s; s = s->next)
                for (struct generation *g = s->gens; g; g = g->next) {
                        if (g->probe && probe_child_exited(g->probe, pid, status))
                                return;
                        if (g->pid != pid)
                                continue;
                        g->pid = 0;
                        g->exited = true;
                        g->exit_status = status;
                        if (g->pidfd >= 0)
                                close(g->pidfd);
                        g->pidfd = -1;
                        if (WIFEXITED(status))
                                snprintf(how, sizeof(how), "status %d", WEXITSTATUS(status));
                        else
                                snprintf(how, sizeof(how), "signal %s",
                                         sigabbrev_np(WTERMSIG(status)) ?: "?");
                        switch (g->state) {
                        case GEN_STARTING:
                        case GEN_READY:
                                snprintf(msg, sizeof(msg), "generation %u exited (%s) before it "
                                         "became active; see gen logs %s %u", g->n, how,
                                         s->policy->name, g->n);
                                gen_fail(g, msg);
                                break;
                        case GEN_ACTIVE:
                                snprintf(msg, sizeof(msg), "generation %u (active) exited (%s); "
                                         "no generation of %s is serving; see gen logs %s %u",
                                         g->n, how, s->policy->name, s->policy->name, g->n);
                                gen_fail(g, msg);
                                rules_repair(s);
                                break;
                        default:
                                log_info("%s: generation %u: main process exited (%s)",
                                         s->policy->name, g->n, how);
                        }
                        return;
                }
}

/* At exit: memory only; the generations and their objects stay. */
void services_free(struct gend *d) {
        while (d->services) {
                struct service *s = d->services;
                d->services = s->next;
                while (s->gens) {
                        struct generation *g = s->gens;
                        s->gens = g->next;
                        gen_free(g);
                }
                policy_free(s->policy);
                free(s);
        }
}

unsigned gend_live_count(struct gend *d, unsigned *ret_services) {
        unsigned n = 0, svcs = 0;
        for (struct service *s = d->services; s; s = s->next) {
                unsigned before = n;
                for (struct generation *g = s->gens; g; g = g->next)
                        n += gen_state_is_live(g->state);
                svcs += n > before;
        }
        if (ret_services)
                *ret_services = svcs;
        return n;
}
