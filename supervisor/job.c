#include "job.h"

#include <netinet/in.h>
#include <stdarg.h>
#include <string.h>

#include "conntrack.h"
#include "fwd.h"
#include "log.h"
#include "ports.h"
#include "probe.h"

enum job_step {
        STEP_QUEUED,
        STEP_WAIT_READY,                /* new: its probe runs */
        STEP_RECHECK,                   /* switch, rollback: the probe again */
        STEP_COMMIT,                    /* a rule transaction is in flight */
        STEP_RESTORE,                   /* the target died mid-switch: rules back */
};

struct job {
        struct service *s;
        struct job *next;
        enum job_type type;
        enum job_step step;
        char *dir;
        bool no_switch, force, now;
        uint64_t timeout_usec;
        unsigned n;                     /* the generation it is about */
        unsigned restart_of;
        bool was_draining;              /* switch: the target drained before */
        struct probe *probe;
        char *error;                    /* kept for the end of a restore */
        job_done_t done;
        void *userdata;
        sd_event_source *wake;
};

static const char *const type_names[_JOB_TYPE_MAX] = {
        "new", "switch", "rollback", "retire", "repair",
};

const char *job_type_to_string(enum job_type t) {
        return (unsigned)t < _JOB_TYPE_MAX ? type_names[t] : "?";
}

unsigned job_target(const struct job *j) { return j->n; }

void job_detach(struct job *j) {
        j->done = NULL;
        j->userdata = NULL;
}

static void job_free(struct job *j) {
        free(j->error);
        probe_free(j->probe);
        sd_event_source_disable_unref(j->wake);
        free(j->dir);
        free(j);
}

static void schedule(struct job *j);

static void finish(struct job *j, int r, const char *error, unsigned replaced) {
        struct service *s = j->s;
        struct job_result res = { .r = r, .error = error, .n = j->n, .replaced = replaced };

        if (s->jobs == j)
                s->jobs = j->next;
        if (r < 0)
                log_error("%s: %s: %s", s->name, job_type_to_string(j->type), error);
        if (j->done)
                j->done(j->userdata, &res);
        job_free(j);
        if (s->jobs)
                schedule(s->jobs);
}

/* An error is said whole, however long (iptables-restore's may be). */
static char *msgf(const char *fmt, ...) _printf_(1, 2);
static char *msgf(const char *fmt, ...) {
        va_list ap;
        char *m;

        va_start(ap, fmt);
        if (vasprintf(&m, fmt, ap) < 0)
                m = NULL;
        va_end(ap);
        return m;
}

static void fail_with_note(struct job *j, int r, const char *what) {
        _cleanup_free_ char *msg = NULL;
        char note[128];

        service_serving_note(j->s, note, sizeof(note));
        msg = msgf("%s; %s", what, note);
        finish(j, r, msg ? msg : what, 0);
}

static void on_committed(void *userdata, int r, const char *error);

static int commit(struct job *j, enum rules_op op, struct generation *g) {
        struct service *s = j->s;
        struct rules_target t = g ? gen_rules_target(g)
                                  : (struct rules_target){ .service = s->name,
                                                           .ports = s->rule_ports,
                                                           .n_ports = s->n_rule_ports };
        struct rules_target old = { .service = s->name, .ports = s->rule_ports,
                                    .n_ports = s->n_rule_ports };
        _cleanup_free_ char *text = NULL;
        char what[96];
        size_t len;
        FILE *f = open_memstream(&text, &len);
        int r;

        if (!f)
                return err_set(errno, "open_memstream");
        r = rules_render(f, op, &t, op == RULES_SWITCH ? &old : NULL);
        fclose(f);
        if (r < 0)
                return err_setx(-r, "rules for %s: %s", s->name, strerror(-r));
        snprintf(what, sizeof(what), "%s %s%s%.0u",
                 op == RULES_ADD ? "add" : op == RULES_SWITCH ? "switch" : "remove", s->name,
                 g ? " to generation " : "", g ? g->n : 0);
        if ((r = fwd_submit(s->d->fwd, what, text, on_committed, j)) < 0)
                return r;
        return 0;
}

static void begin_switch(struct job *j, struct generation *g) {
        struct service *s = j->s;
        int r;

        j->was_draining = g->state == GEN_DRAINING;
        if ((r = gen_fire(g, EV_SWITCH)) < 0) {
                fail_with_note(j, r, err_msg());
                return;
        }
        j->step = STEP_COMMIT;
        r = commit(j, s->has_rules ? RULES_SWITCH : RULES_ADD, g);
        if (r < 0) {
                _cleanup_free_ char *msg = msgf("switch to generation %u failed: %s", g->n,
                                                err_msg());
                gen_fire(g, EV_SWITCH_FAILED);
                if (j->was_draining)
                        gen_fire(g, EV_RETIRE);
                fail_with_note(j, r, msg ? msg : err_msg());
        }
}

static void switched(struct job *j, struct generation *g) {
        struct service *s = j->s;
        struct generation *old = s->active;
        unsigned replaced = 0, deleted;
        bool udp = false;

        gen_fire(g, EV_SWITCHED);
        if (old && old != g && old->state == GEN_ACTIVE) {
                replaced = old->n;
                for (unsigned i = 0; i < old->policy->n_ports; i++)
                        udp |= old->policy->ports[i].proto == IPPROTO_UDP;
                /* A UDP flow never ends by itself: it would stick to the old
                 * generation (kube-proxy's lesson). TCP entries are the drain. */
                if (udp && s->d->ct &&
                    ct_delete(s->d->ct, old->mark, s->d->marks.mask, IPPROTO_UDP, &deleted) >= 0 &&
                    deleted)
                        log_info("%s: deleted %u UDP conntrack entr%s of generation %u", s->name,
                                 deleted, deleted == 1 ? "y" : "ies", old->n);
                gen_fire(old, EV_DEACTIVATE);
        }
        finish(j, 0, NULL, replaced);
}

static void on_committed(void *userdata, int r, const char *error) {
        struct job *j = userdata;
        struct service *s = j->s;
        struct generation *g = gen_find(s, j->n);
        _cleanup_free_ char *msg = NULL;

        if (r >= 0) {
                bool removing = j->type == JOB_REPAIR || (j->type == JOB_RETIRE && j->step == STEP_COMMIT) ||
                                (j->step == STEP_RESTORE && !s->active);
                s->has_rules = !removing;
                if (removing)
                        s->n_rule_ports = 0;
                else {
                        struct generation *to = j->step == STEP_RESTORE ? s->active : g;
                        if (to) {
                                memcpy(s->rule_ports, to->policy->ports, sizeof(s->rule_ports));
                                s->n_rule_ports = to->policy->n_ports;
                        }
                }
        }
        if (j->step == STEP_RESTORE) {
                if (r < 0)
                        msg = msgf("%s; putting the rules back failed too: %s", j->error, error);
                fail_with_note(j, -EIO, msg ? msg : j->error);
                return;
        }
        switch (j->type) {
        case JOB_NEW:
        case JOB_SWITCH:
        case JOB_ROLLBACK:
                if (r < 0) {
                        msg = msgf("switch to generation %u failed: %s", j->n, error);
                        if (g && g->state == GEN_SWITCHING) {
                                gen_fire(g, EV_SWITCH_FAILED);
                                if (j->was_draining)
                                        gen_fire(g, EV_RETIRE);
                        }
                        fail_with_note(j, r, msg ? msg : error);
                } else if (g && g->state == GEN_SWITCHING)
                        switched(j, g);
                else {
                        /* It died while the rules moved: point them back. */
                        free(j->error);
                        j->error = msgf("generation %u went away during the switch (%s)", j->n,
                                        g && g->failure ? g->failure : "gone");
                        j->step = STEP_RESTORE;
                        r = s->active ? commit(j, RULES_SWITCH, s->active)
                                      : commit(j, RULES_REMOVE, NULL);
                        if (r < 0)
                                fail_with_note(j, r, j->error ? j->error : err_msg());
                }
                return;
        case JOB_RETIRE:
                if (r < 0) {
                        msg = msgf("taking %s out of service failed: %s", s->name, error);
                        fail_with_note(j, r, msg ? msg : error);
                        return;
                }
                if (g && g->state == GEN_ACTIVE) {
                        g->forced = j->now;
                        g->drain_timeout_usec = j->timeout_usec;
                        gen_fire(g, EV_DEACTIVATE);
                }
                log_info("%s: rules removed: no generation of %s is serving", s->name, s->name);
                finish(j, 0, NULL, 0);
                return;
        case JOB_REPAIR:
                if (r < 0)
                        finish(j, r, error, 0);
                else {
                        log_info("%s: rules removed: no generation of %s is serving", s->name,
                                 s->name);
                        finish(j, 0, NULL, 0);
                }
                return;
        default:
                return;
        }
}

static void on_recheck(void *userdata, int r, const char *why) {
        struct job *j = userdata;
        struct generation *g = gen_find(j->s, j->n);
        char msg[1024];

        probe_free(j->probe);
        j->probe = NULL;
        if (!g || (g->state != GEN_READY && g->state != GEN_DRAINING) || !g->pid) {
                snprintf(msg, sizeof(msg), "generation %u cannot become active: it is %s",
                         j->n, g ? (g->pid ? gen_state_to_string(g->state) : "no longer running")
                                 : "gone");
                fail_with_note(j, -ESRCH, msg);
        } else if (r < 0) {
                snprintf(msg, sizeof(msg), "generation %u does not pass its readiness probe: %s",
                         j->n, why);
                fail_with_note(j, r, msg);
        } else
                begin_switch(j, g);
}

/* switch and rollback make active only a generation whose main process
 * lives and which passes its readiness probe again. */
static void start_switch(struct job *j, struct generation *g) {
        char msg[512];
        int r;

        if (g->state == GEN_ACTIVE) {
                snprintf(msg, sizeof(msg), "generation %u of %s is active already", g->n,
                         j->s->name);
                finish(j, -EALREADY, msg, 0);
                return;
        }
        if (g->state != GEN_READY && g->state != GEN_DRAINING) {
                snprintf(msg, sizeof(msg), "generation %u of %s is %s: only a ready (or still "
                         "draining) generation can become active", g->n, j->s->name,
                         gen_state_to_string(g->state));
                fail_with_note(j, -EINVAL, msg);
                return;
        }
        if (!g->pid) {
                snprintf(msg, sizeof(msg), "generation %u cannot become active: its main process "
                         "has exited", g->n);
                fail_with_note(j, -ESRCH, msg);
                return;
        }
        j->step = STEP_RECHECK;
        r = probe_start(j->s->d->event, g->policy, &g->probe_target, on_recheck, j, &j->probe);
        if (r < 0)
                fail_with_note(j, r, err_msg());
}

/* A service's first rules would silently take its public ports from
 * whoever holds them: a host socket, or another service of this gend. */
static int ports_free(struct service *s, char *msg, size_t n) {
        const struct policy *p = s->policy;
        char who[256];

        if (s->has_rules || !p)
                return 0;
        for (unsigned i = 0; i < p->n_ports; i++) {
                const struct port_map *pm = &p->ports[i];
                for (struct service *o = s->d->services; o; o = o->next)
                        for (unsigned k = 0; o != s && o->has_rules && k < o->n_rule_ports; k++)
                                if (o->rule_ports[k].public_port == pm->public_port &&
                                    o->rule_ports[k].proto == pm->proto) {
                                        snprintf(msg, n, "public port %u/%s is %s's: gen new "
                                                 "changed nothing", pm->public_port,
                                                 proto_to_string(pm->proto), o->name);
                                        return -EADDRINUSE;
                                }
                if (p->takeover)
                        continue;
                int r = port_holder(pm->proto, pm->public_port, who, sizeof(who));
                if (r > 0) {
                        snprintf(msg, n, "public port %u/%s is taken: %s; gen new changed nothing "
                                 "(%s: [listen] takeover = yes forwards it anyway)",
                                 pm->public_port, proto_to_string(pm->proto), who, p->path);
                        return -EADDRINUSE;
                }
                if (r < 0)
                        log_warn("%s: cannot tell who holds port %u: %s", s->name,
                                 pm->public_port, strerror(-r));
        }
        return 0;
}

static void start_new(struct job *j) {
        struct generation *g;
        char msg[512];
        int r;

        if ((r = ports_free(j->s, msg, sizeof(msg))) < 0) {
                finish(j, r, msg, 0);
                return;
        }
        if ((r = gen_alloc(j->s, &g)) < 0) {
                finish(j, r, err_msg(), 0);
                return;
        }
        j->n = g->n;
        g->restart_of = j->restart_of;
        j->step = STEP_WAIT_READY;
        /* A failure leaves it failing: the answer comes once it is removed. */
        gen_start(g, j->dir);
}

static void start_rollback(struct job *j) {
        struct service *s = j->s;
        struct generation *best = NULL;
        char msg[256];

        for (struct generation *g = s->gens; g; g = g->next)
                if (g->state == GEN_DRAINING && g->pid && (!s->active || g->n < s->active->n))
                        best = g;
        if (!best) {
                snprintf(msg, sizeof(msg), "%s has no earlier generation that is still draining "
                         "with its main process alive to roll back to", s->name);
                fail_with_note(j, -ENOENT, msg);
                return;
        }
        j->n = best->n;
        start_switch(j, best);
}

static void start_retire(struct job *j, struct generation *g) {
        struct service *s = j->s;
        char msg[512];
        int r;

        switch (g->state) {
        case GEN_ACTIVE:
                if (!j->force) {
                        snprintf(msg, sizeof(msg), "generation %u is the active generation of %s: "
                                 "switch to another one first, or use --force to take %s out "
                                 "of service", g->n, s->name, s->name);
                        finish(j, -EPERM, msg, 0);
                        return;
                }
                j->step = STEP_COMMIT;
                if ((r = commit(j, RULES_REMOVE, NULL)) < 0)
                        finish(j, r, err_msg(), 0);
                return;
        case GEN_READY:
                g->forced = j->now;
                g->drain_timeout_usec = j->timeout_usec;
                gen_fire(g, EV_RETIRE);
                finish(j, 0, NULL, 0);
                return;
        case GEN_DRAINING:
                if (j->timeout_usec)
                        g->drain_timeout_usec = j->timeout_usec;
                if (j->now)
                        g->forced = true;
                gen_fire(g, EV_RETIRE);
                r = drain_rearm(g);
                finish(j, r, r < 0 ? err_msg() : NULL, 0);
                return;
        case GEN_FAILED:
                gen_fire(g, EV_RETIRE);         /* frees g */
                finish(j, 0, NULL, 0);
                return;
        case GEN_STARTING:
                snprintf(msg, sizeof(msg), "generation %u of %s is still starting; retire it "
                         "once it is ready or has failed", g->n, s->name);
                finish(j, -EBUSY, msg, 0);
                return;
        default:
                snprintf(msg, sizeof(msg), "generation %u of %s is %s already", g->n, s->name,
                         gen_state_to_string(g->state));
                finish(j, -EALREADY, msg, 0);
                return;
        }
}

static void start(struct job *j) {
        struct service *s = j->s;
        struct generation *g = NULL;
        char msg[256];
        int r;

        if (j->type == JOB_SWITCH || j->type == JOB_RETIRE) {
                g = gen_find(s, j->n);
                if (!g) {
                        snprintf(msg, sizeof(msg), "%s has no generation %u (see gen list %s)",
                                 s->name, j->n, s->name);
                        finish(j, -ENOENT, msg, 0);
                        return;
                }
        }
        switch (j->type) {
        case JOB_NEW:
                start_new(j);
                return;
        case JOB_SWITCH:
                start_switch(j, g);
                return;
        case JOB_ROLLBACK:
                start_rollback(j);
                return;
        case JOB_RETIRE:
                start_retire(j, g);
                return;
        case JOB_REPAIR:
                if (s->active || !s->has_rules) {
                        finish(j, 0, NULL, 0);
                        return;
                }
                j->step = STEP_COMMIT;
                if ((r = commit(j, RULES_REMOVE, NULL)) < 0)
                        finish(j, r, err_msg(), 0);
                return;
        default:
                finish(j, -EINVAL, "unknown job", 0);
        }
}

/* A job runs or goes on from the loop, never inside the lifecycle's
 * notice: a state change has finished having its consequences first. */
static int on_wake(sd_event_source *src, void *userdata) {
        struct job *j = userdata;
        struct generation *g;
        (void)src;

        j->wake = sd_event_source_disable_unref(j->wake);
        if (j->step == STEP_QUEUED) {
                start(j);
                return 0;
        }
        g = gen_find(j->s, j->n);
        if (j->step == STEP_RECHECK) {
                if (!g || (g->state != GEN_READY && g->state != GEN_DRAINING) || !g->pid)
                        on_recheck(j, -ESRCH, "");      /* says why */
                return 0;
        }
        if (j->step != STEP_WAIT_READY)
                return 0;
        /* A failed start is answered once its objects are gone: it leaves nothing. */
        if (!g || g->state == GEN_FAILED)
                finish(j, -EIO, g && g->failure ? g->failure : "the generation is gone", 0);
        else if (g->state == GEN_READY && j->no_switch)
                finish(j, 0, NULL, 0);
        else if (g->state == GEN_READY)
                begin_switch(j, g);
        return 0;
}

static void schedule(struct job *j) {
        if (!j->wake && sd_event_add_defer(j->s->d->event, &j->wake, on_wake, j) < 0)
                log_error("%s: %s job: cannot schedule it", j->s->name, job_type_to_string(j->type));
}

int job_submit(struct service *s, const struct job_request *req, job_done_t done,
               void *userdata, struct job **ret) {
        struct job *j = calloc(1, sizeof(*j)), **tail;

        if (!j || (req->dir && !(j->dir = strdup(req->dir)))) {
                free(j);
                return err_set(ENOMEM, "job");
        }
        j->s = s;
        j->type = req->type;
        j->no_switch = req->no_switch;
        j->n = req->n;
        j->force = req->force;
        j->now = req->now;
        j->timeout_usec = req->timeout_usec;
        j->restart_of = req->restart_of;
        j->done = done;
        j->userdata = userdata;
        for (tail = &s->jobs; *tail; tail = &(*tail)->next)
                ;
        *tail = j;
        if (s->jobs == j)
                schedule(j);
        if (ret)
                *ret = j;
        return 0;
}

#define RESTART_WINDOW_USEC (600 * USEC_PER_SEC)
#define RESTART_DELAY_MAX_USEC (60 * USEC_PER_SEC)

static void on_restarted(void *userdata, const struct job_result *res) {
        struct service *s = userdata;
        if (res->r >= 0)
                log_info("%s: generation %u replaced crashed generation %u", s->name, res->n,
                         s->crashed);
        /* a failure was said by the job itself */
}

static int on_restart_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        struct service *s = userdata;
        (void)usec;

        s->restart_timer = sd_event_source_disable_unref(s->restart_timer);
        (void)src;
        if (s->active || !s->policy) {
                log_info("%s: restart of crashed generation %u not needed: %s", s->name,
                         s->crashed, s->active ? "another generation is active" : "its policy is gone");
                return 0;
        }
        if (job_submit(s, &(struct job_request){ .type = JOB_NEW, .restart_of = s->crashed },
                       on_restarted, s, NULL) < 0)
                log_error("%s: cannot queue a restart: %s", s->name, err_msg());
        return 0;
}

/* [service] restart = on-failure: a new generation behind the same ports,
 * after a delay that doubles with each restart in the window, at most
 * restart-burst in 10 min (systemd's Restart= and StartLimitBurst=). */
static void plan_restart(struct service *s, struct generation *crashed) {
        uint64_t now = now_usec(CLOCK_MONOTONIC), delay;
        char d[32];

        if (!s->policy || !s->policy->restart || s->restart_timer)
                return;
        if (!s->window_start || now - s->window_start > RESTART_WINDOW_USEC) {
                s->window_start = now;
                s->restarts_in_window = 0;
        }
        if (s->restarts_in_window >= s->policy->restart_burst) {
                log_error("%s: generation %u crashed; not restarting: %u restart%s in 10 min "
                          "already (restart-burst); no generation of %s is serving", s->name,
                          crashed->n, s->restarts_in_window,
                          s->restarts_in_window == 1 ? "" : "s", s->name);
                return;
        }
        delay = s->policy->restart_delay_usec << (s->restarts_in_window < 6 ? s->restarts_in_window : 6);
        if (delay > RESTART_DELAY_MAX_USEC)
                delay = RESTART_DELAY_MAX_USEC;
        s->restarts_in_window++;
        s->restarts++;
        s->crashed = crashed->n;
        if (sd_event_add_time_relative(s->d->event, &s->restart_timer, CLOCK_MONOTONIC, delay, 1000,
                                       on_restart_timer, s) < 0) {
                log_error("%s: cannot arm the restart timer", s->name);
                return;
        }
        log_warn("%s: generation %u crashed; a new generation in %s (restart %u of at most %u "
                 "in 10 min)", s->name, crashed->n, format_duration(d, sizeof(d), delay),
                 s->restarts_in_window, s->policy->restart_burst);
}

void job_notice(struct gend *d, const struct notice *n) {
        struct generation *g = n->g;
        struct service *s = g->svc;
        enum gen_state from = n->from;
        struct job *j = s->jobs;

        (void)d;
        if (n->kind != NOTICE_STATE)
                return;

        /* The active generation died: its rules go (clients are refused at
         * once rather than left waiting on a dead address), unless a job in
         * flight points them elsewhere anyway; then, per policy, a new one. */
        if (from == GEN_ACTIVE && g->state == GEN_FAILING) {
                if (job_submit(s, &(struct job_request){ .type = JOB_REPAIR }, NULL, NULL, NULL) < 0)
                        log_error("%s: cannot queue the repair of its rules: %s", s->name,
                                  err_msg());
                plan_restart(s, g);
        }
        if (!j || j->n != g->n)
                return;
        if (j->step == STEP_WAIT_READY || j->step == STEP_RECHECK)
                schedule(j);
}

bool jobs_child_exited(struct gend *d, pid_t pid, int status) {
        for (struct service *s = d->services; s; s = s->next) {
                struct job *j = s->jobs;
                if (j && j->probe && probe_child_exited(j->probe, pid, status))
                        return true;
        }
        return false;
}

void jobs_free(struct service *s) {
        s->restart_timer = sd_event_source_disable_unref(s->restart_timer);
        while (s->jobs) {
                struct job *j = s->jobs;
                s->jobs = j->next;
                job_free(j);
        }
}
