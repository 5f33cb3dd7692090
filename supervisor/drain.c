/* Draining a generation to task quiescence (DESIGN.md, "Quiescence,
 * precisely"; the decision itself is quiet.c's; the freeze, kill and
 * removal after it, teardown.c). Each thing the drain waits for is
 * followed by the kernel's own events where it has them:
 *
 * Processes: a pidfd for each (procwatch.c) says when one exits, and
 * cgroup.events when the cgroup empties; the count is read again then.
 * A fork has no event outside the initial network namespace's proc
 * connector, so while a settle window is open (everything else quiet)
 * the count is also read every [drain] poll-interval, and always at its
 * end. Where pidfds cannot be had, it is read every poll-interval
 * throughout, and the log says so once.
 *
 * Connections: one conntrack dump when the drain begins takes the live
 * entries with the generation's mark; from then on conntrack events
 * (update and destroy, subscribed from gend's start, filtered by mark in
 * the kernel) keep that set true: a close is seen when it happens, with
 * no dump. An event that cannot be placed (a TCP entry unknown to the set
 * and without its state) or lost events (the socket overflowed) cost a
 * dump, at most every 250 ms; while connections remain, one every 10 s
 * finds what has no events (entries made before gend listened). Without
 * events, connections are counted by dumps with backoff (250 ms to 2 s)
 * once the processes are quiet, and the log says so once.
 *
 * The idle probe, when the policy has one, runs every idle-interval, and
 * at once when the process count or the connections change.
 *
 * Nothing else wakes gend while a generation drains: behind a held
 * connection, with no idle probe, it sleeps until an event. */
#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>

#include "../sandbox/cgroup.h"
#include "conntrack.h"
#include "gend.h"
#include "idle.h"
#include "log.h"
#include "procwatch.h"
#include "quiet.h"

#define CT_RECHECK_MIN_USEC (250 * USEC_PER_MSEC)
#define CT_SAFETY_USEC (10 * USEC_PER_SEC)       /* with events: a lost one is found */
#define CT_RECHECK_MAX_USEC (2 * USEC_PER_SEC)

static int count_conns(struct generation *g) {
        if (!g->has_block || !g->svc->d->ct) {
                g->conns = 0;
                return 0;
        }
        return ct_count_live(g->svc->d->ct, g->mark, g->svc->d->marks.mask, &g->conns);
}

/* The generation's processes: its cgroup's subtree, but for the idle
 * probe's own cgroup below it (the probe is not what the drain waits for). */
static int count_procs(struct generation *g, unsigned *ret) {
        if (g->procwatch)
                return procwatch_scan(g->procwatch, ret);
        return cg_count_procs(g->cgroup, IDLE_CGROUP, ret);
}

static void look_procs(struct generation *g, uint64_t now, bool exact);

/* A draining generation's counts are the drain's, kept by its events. */
static bool followed(const struct generation *g) {
        return g->state == GEN_DRAINING && g->drain_timer;
}

/* Its connections are known without a dump: a drain's set, kept by events. */
static bool conns_known(const struct generation *g) {
        return followed(g) && g->conns_followed;
}

int gen_count(struct generation *g) {
        int r;

        if (followed(g)) {
                look_procs(g, now_usec(CLOCK_MONOTONIC), true);
                return conns_known(g) ? 0 : count_conns(g);
        }
        r = count_procs(g, &g->procs);
        return r < 0 ? r : count_conns(g);
}

static bool countable(const struct generation *g) {
        return gen_state_is_live(g->state) && g->state != GEN_FROZEN &&
               g->state != GEN_FAILING && g->cgroup;
}

int gend_count_all(struct gend *d, struct service *only) {
        unsigned n = d->n_blocks;
        _cleanup_free_ unsigned *conns = NULL;
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        bool any = false;
        int r = 0;

        for (struct service *s = d->services; s; s = s->next)
                for (struct generation *g = s->gens; g; g = g->next)
                        any |= (!only || s == only) && countable(g) && g->has_block &&
                               !conns_known(g);
        if (any && d->ct) {
                if (!(conns = calloc(n, sizeof(unsigned))))
                        return err_set(ENOMEM, "counting");
                r = ct_count_live_by_block(d->ct, &d->marks, conns, n);
        }
        for (struct service *s = d->services; s; s = s->next)
                for (struct generation *g = s->gens; g; g = g->next) {
                        if ((only && s != only) || !countable(g))
                                continue;
                        if (followed(g))
                                look_procs(g, now, true);
                        else if (count_procs(g, &g->procs) < 0)
                                r = r < 0 ? r : -EIO;
                        if (conns && r >= 0 && g->has_block && !conns_known(g))
                                g->conns = conns[g->block];
                }
        return r;
}

/* Connections */

static void conns_set(struct generation *g, unsigned n, uint64_t now) {
        if (n != g->conns)
                g->conns_moved = true;
        g->conns = n;
        if (n)
                g->conns_since = 0;
        else if (!g->conns_since)
                g->conns_since = now;
}

static struct generation *draining_with(struct gend *d, uint32_t mark) {
        for (struct service *s = d->services; s; s = s->next)
                for (struct generation *g = s->gens; g; g = g->next)
                        if (followed(g) && g->has_block && (mark & d->marks.mask) == g->mark)
                                return g;
        return NULL;
}

/* A conntrack event: keeps the draining generation's set of live
 * connections true. */
static void on_ct_event(const struct ct_event *ev, void *userdata) {
        struct gend *d = userdata;
        struct generation *g;
        int r = 0;

        if (!(ev->mark & d->marks.mask) || !(g = draining_with(d, ev->mark)))
                return;                 /* not a draining generation's (the filter drops most) */
        if (!g->conns_followed)
                g->conns_dirty = true;  /* its dump is due and will see it */
        else if (ev->gone || (ev->state_known && !ev->live))
                r = ct_ids_del(&g->conn_ids, ev->id);
        else if (ev->state_known)
                r = ct_ids_add(&g->conn_ids, ev->id);
        else if (!ct_ids_has(&g->conn_ids, ev->id))
                g->conns_dirty = true;  /* TCP, unknown, state not said: count */
        if (r < 0) {
                log_warn("%s: generation %u: %s; counting its connections again",
                         g->svc->name, g->n, err_msg());
                g->conns_dirty = true;
        }
        if (g->conns_followed)
                conns_set(g, g->conn_ids.n, now_usec(CLOCK_MONOTONIC));
        drain_poke(g);
}

void drain_events_close(struct gend *d) {
        d->ct_events_io = sd_event_source_disable_unref(d->ct_events_io);
        ct_events_close(d->ct_events);
        d->ct_events = NULL;
}

static void all_dirty(struct gend *d) {
        for (struct service *s = d->services; s; s = s->next)
                for (struct generation *g = s->gens; g; g = g->next)
                        if (followed(g)) {
                                g->conns_dirty = true;
                                drain_poke(g);
                        }
}

/* why may be err_msg(): it is kept before anything can set another. */
static void events_failed(struct gend *d, const char *why) {
        char kept[512];

        snprintf(kept, sizeof(kept), "%s", why);
        why = kept;
        drain_events_close(d);
        d->ct_events_failed = true;
        for (struct service *s = d->services; s; s = s->next)
                for (struct generation *g = s->gens; g; g = g->next)
                        if (g->conns_followed) {
                                g->conns_followed = false;
                                ct_ids_clear(&g->conn_ids);
                        }
        all_dirty(d);
        log_warn("%s: draining generations' connections are counted by polling instead "
                 "(every 250 ms to 2 s)", why);
}

static int on_ct_events(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct gend *d = userdata;
        int r = ct_events_read(d->ct_events);
        (void)s, (void)fd, (void)revents;

        if (r == -ENOBUFS)
                all_dirty(d);           /* events were lost: count again */
        else if (r < 0)
                events_failed(d, err_msg());
        return 0;
}

/* Events are made and read for the draining generations alone (none at
 * rest): under a load of new connections, the active generation's would
 * cost the kernel a message and gend a wakeup for each of their state
 * changes (five or six a connection). Called when the set changes, before
 * a new drain's first dump. */
static void events_follow(struct gend *d) {
        uint32_t marks[256];
        unsigned n = 0;

        if (!d->ct_events)
                return;
        for (struct service *s = d->services; s; s = s->next)
                for (struct generation *g = s->gens; g; g = g->next)
                        if (followed(g) && g->has_block) {
                                if (n < ELEMENTSOF(marks))
                                        marks[n] = g->mark;
                                n++;    /* past the filter's reach: any mark */
                        }
        if (ct_events_follow(d->ct_events, marks, n) < 0)
                events_failed(d, err_msg());
}

/* From gend's start on (an entry made while nobody listened has no
 * events), for good; tried once. */
void drain_events_open(struct gend *d) {
        char why[512];
        int r;

        if (d->ct_events || d->ct_events_failed || !d->ct)
                return;
        if ((r = ct_events_open(d->marks.mask, on_ct_event, d, &d->ct_events)) < 0) {
                events_failed(d, err_msg());
                return;
        }
        r = sd_event_add_io(d->event, &d->ct_events_io, ct_events_fd(d->ct_events), EPOLLIN,
                            on_ct_events, d);
        if (r < 0) {
                snprintf(why, sizeof(why), "sd_event_add_io(conntrack events): %s", strerror(-r));
                events_failed(d, why);
        }
}

/* Counts the connections when due: with events, to (re)build the set
 * (the drain's start, an event it could not place, lost events, and
 * every 10 s while some remain); without, by dumps with backoff once the
 * processes are quiet. */
static bool conns_due(const struct generation *g, uint64_t now) {
        if (now < g->ct_next)
                return false;
        if (g->svc->d->ct_events)
                return g->conns_dirty || !g->conns_followed ||
                       (g->conns && now - g->ct_counted >= CT_SAFETY_USEC);
        return g->procs_since && !g->conns_since;
}

/* When conns_due is next true of itself (0: only on an event). */
static uint64_t conns_next(const struct generation *g) {
        if (g->svc->d->ct_events) {
                if (g->conns_dirty || !g->conns_followed)
                        return g->ct_next;
                return g->conns ? g->ct_counted + CT_SAFETY_USEC : 0;
        }
        return g->procs_since && !g->conns_since ? g->ct_next : 0;
}

static void recount_conns(struct generation *g, uint64_t now) {
        struct gend *d = g->svc->d;
        unsigned n;
        int r;

        g->ct_counted = now;
        if (!g->has_block || !d->ct) {
                g->conns_dirty = false;
                conns_set(g, 0, now);
                return;
        }
        if (d->ct_events) {
                /* What is queued predates the dump: read first, so the
                 * events that follow it are all newer than what it saw
                 * (lost ones are what the dump is for). */
                g->conns_followed = false;
                r = ct_events_read(d->ct_events);
                if (r < 0 && r != -ENOBUFS)
                        events_failed(d, err_msg());
        }
        g->conns_dirty = false;
        if (d->ct_events) {
                r = ct_live_ids(d->ct, g->mark, d->marks.mask, &g->conn_ids);
                g->conns_followed = r >= 0;
                n = g->conn_ids.n;
                g->ct_next = now + CT_RECHECK_MIN_USEC;
        } else {
                r = ct_count_live(d->ct, g->mark, d->marks.mask, &n);
                g->ct_next = now + g->ct_backoff;
                g->ct_backoff = g->ct_backoff * 2 > CT_RECHECK_MAX_USEC ? CT_RECHECK_MAX_USEC
                                                                       : g->ct_backoff * 2;
        }
        if (r < 0) {
                log_warn("%s: generation %u: counting for the drain: %s", g->svc->name, g->n,
                         err_msg());
                g->conns_dirty = true;
                g->conns_since = 0;
                return;
        }
        conns_set(g, n, now);
}

void drain_stop(struct generation *g) {
        g->drain_timer = sd_event_source_disable_unref(g->drain_timer);
        g->deadline_timer = sd_event_source_disable_unref(g->deadline_timer);
        procwatch_free(g->procwatch);
        g->procwatch = NULL;
        ct_ids_clear(&g->conn_ids);
        g->conns_followed = false;
        idle_free(g->idle);
        g->idle = NULL;
        g->procs_since = 0;
        events_follow(g->svc->d);
}

void drain_poke(struct generation *g) {
        if (g->drain_timer) {
                sd_event_source_set_time(g->drain_timer, now_usec(CLOCK_MONOTONIC));
                sd_event_source_set_enabled(g->drain_timer, SD_EVENT_ONESHOT);
        }
}

static void poke(void *userdata) {
        drain_poke(userdata);
}

/* Its processes' exits by pidfds; where they cannot be had, polling,
 * said once. */
static void watch_procs(struct generation *g) {
        struct gend *d = g->svc->d;
        char every[32];
        unsigned n;

        if (g->procwatch || !g->cgroup)
                return;
        if (procwatch_new(d->event, g->cgroup, IDLE_CGROUP, poke, g, &g->procwatch) < 0 ||
            procwatch_scan(g->procwatch, &n) < 0) {
                procwatch_free(g->procwatch);
                g->procwatch = NULL;
                if (!d->said_polling) {
                        d->said_polling = true;
                        log_warn("drain: %s; draining generations' processes are counted every "
                                 "[drain] poll-interval instead (%s for %s)", err_msg(),
                                 format_duration(every, sizeof(every),
                                                 g->policy->poll_interval_usec), g->svc->name);
                }
        }
}

/* Once per gend: what has no event source, and so is polled. */
static void say_forks(struct generation *g) {
        if (g->svc->d->said_forks)
                return;
        g->svc->d->said_forks = true;
        log_info("drain: a fork has no event here (the proc connector serves the initial "
                 "network namespace only), so while a draining generation's settle window is "
                 "open its processes are also counted every [drain] poll-interval; exits come "
                 "by pidfd, connections by conntrack events");
}

bool drain_child_exited(struct generation *g, pid_t pid, int status) {
        return g->idle && idle_child_exited(g->idle, pid, status);
}

/* A run of the idle probe now, or right after the one under way. */
static void idle_ask(struct generation *g) {
        if (!g->idle)
                return;
        if (idle_running(g->idle)) {
                g->idle_again = true;
                return;
        }
        g->idle_again = false;
        g->idle_next = now_usec(CLOCK_MONOTONIC) + g->policy->idle_interval_usec;
        if (idle_run(g->idle) < 0)
                log_warn("%s: generation %u: idle probe: %s", g->svc->name, g->n, err_msg());
}

/* Reads the process count, and keeps since when it is at its quiet level. */
static void look_procs(struct generation *g, uint64_t now, bool exact) {
        unsigned procs;
        int r;

        /* Above the quiet level by the exits alone: a fork since the last
         * scan would only add to it, so the cgroup is not read again until
         * the exits bring the count down to the level (a generation whose
         * workers fork per request exits hundreds of times a second). What
         * gen list shows is counted exactly. */
        if (!exact && g->procwatch && procwatch_live(g->procwatch) > g->quiet_level) {
                procs = procwatch_live(g->procwatch);
                if (procs != g->procs)
                        g->procs_moved = true;
                g->procs = procs;
                g->procs_since = 0;
                return;
        }
        r = count_procs(g, &procs);

        if (r < 0 && g->procwatch) {
                /* Out of pidfds (or file descriptors): polled from now on. */
                log_warn("%s: generation %u: %s; its processes are counted every "
                         "[drain] poll-interval instead", g->svc->name, g->n, err_msg());
                procwatch_free(g->procwatch);
                g->procwatch = NULL;
                r = count_procs(g, &procs);
        }
        if (r < 0) {
                log_warn("%s: generation %u: counting for the drain: %s", g->svc->name,
                         g->n, err_msg());
                g->procs_since = 0;
                return;
        }
        if (procs != g->procs)
                g->procs_moved = true;
        g->procs = procs;
        if (procs > g->quiet_level)
                g->procs_since = 0;
        else if (!g->procs_since) {
                g->procs_since = now;
                g->ct_next = 0;
                g->ct_backoff = CT_RECHECK_MIN_USEC;
        }
}

static void say_idle(struct generation *g, const struct idle_result *r) {
        char what[256], took[32];

        if (g->idle_said == (r->passed ? 1 : -1))
                return;
        g->idle_said = r->passed ? 1 : -1;
        idle_describe(g->policy, what, sizeof(what));
        format_duration(took, sizeof(took), r->end_usec - g->drain_usec);
        log_info("%s: generation %u: idle probe %s: %s (%s) after %s of drain", g->svc->name,
                 g->n, what, r->passed ? "idle" : "busy", r->why, took);
}

static void on_idle_done(void *userdata) {
        struct generation *g = userdata;
        const struct idle_result *r = idle_last(g->idle);

        say_idle(g, r);
        if (r->passed) {
                if (!g->idle_since)
                        g->idle_since = r->start_usec;
                g->idle_last = r->start_usec;
        } else
                g->idle_since = g->idle_last = 0;
        if (g->idle_again && g->procs)
                idle_ask(g);
        drain_poke(g);          /* the tick decides, and knows when to look next */
}

static uint64_t sooner(uint64_t next, uint64_t t, uint64_t now) {
        return t > now && (!next || t < next) ? t : next;
}

/* Every look at a draining generation: counts what changed, decides, and
 * sets when to look next (0: on an event only). */
static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        struct generation *g = userdata;
        const struct policy *p = g->policy;
        uint64_t now = now_usec(CLOCK_MONOTONIC), since = 0, next = 0;
        struct quiet_view v;
        (void)usec;

        look_procs(g, now, false);
        if (conns_due(g, now))
                recount_conns(g, now);
        /* No process left: no task can run, nobody to ask. */
        if (g->procs && (g->procs_moved || g->conns_moved || now >= g->idle_next))
                idle_ask(g);
        g->procs_moved = g->conns_moved = false;

        v = (struct quiet_view){
                .now = now, .settle = p->settle_usec, .procs_since = g->procs_since,
                .conns_since = g->conns_since, .idle = g->idle != NULL,
                .no_procs = g->procs_since && g->procs == 0,
                .idle_since = g->idle_since, .idle_last = g->idle_last,
        };
        switch (quiet_decide(&v, &since)) {
        case QUIET_DONE:
                g->drain_done(g, EV_QUIESCENT);  /* g may be gone */
                return 0;
        case QUIET_CONFIRM:
                if (!idle_running(g->idle))
                        idle_ask(g);
                break;
        case QUIET_WAIT:
                break;
        }
        /* The next look: the end of the settle window (and, while it is
         * open, a look for forks every poll-interval), the idle probe's
         * next run, the next count of connections; without pidfds, the
         * poll. */
        if (since) {
                next = sooner(next, since + p->settle_usec, now);
                next = sooner(next, now + p->poll_interval_usec, now);
                say_forks(g);
        }
        if (!g->procwatch)
                next = sooner(next, now + p->poll_interval_usec, now);
        if (g->idle && g->procs)
                next = sooner(next, g->idle_next, now);
        next = sooner(next, conns_next(g), now);
        if (next) {
                sd_event_source_set_time(s, next);
                sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        }
        return 0;
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        struct generation *g = userdata;
        enum forced_by by = g->forced ? FORCED_NOW : FORCED_TIMEOUT;
        (void)s, (void)usec;

        /* The processes counted now; the connections by the cut's own
         * list (one dump, not two). */
        if (followed(g))
                look_procs(g, now_usec(CLOCK_MONOTONIC), true);
        else if (count_procs(g, &g->procs) < 0)
                log_warn("%s: generation %u: counting what the deadline cuts: %s", g->svc->name,
                         g->n, err_msg());
        g->forced = true;
        g->forced_by = by;
        cut_free(g->cut);
        g->cut = NULL;
        if (cut_collect(g, by, &g->cut) < 0)
                log_warn("%s: generation %u: %s", g->svc->name, g->n, err_msg());
        else
                g->conns = g->cut->conns;
        g->drain_done(g, EV_DEADLINE);
        return 0;
}

int drain_rearm(struct generation *g) {
        uint64_t timeout = g->drain_timeout_usec ? g->drain_timeout_usec
                                                 : g->policy->drain_timeout_usec;
        sd_event *e = g->svc->d->event;
        int r;

        if (g->forced)
                timeout = 0;
        g->deadline_timer = sd_event_source_disable_unref(g->deadline_timer);
        r = sd_event_add_time(e, &g->deadline_timer, CLOCK_MONOTONIC, g->drain_usec + timeout,
                              1, on_deadline, g);
        if (r < 0)
                return err_setx(-r, "sd_event_add_time: %s", strerror(-r));
        return 0;
}

/* Entry of draining: from its first entry on, the deadline stays where it
 * was (a rollback that did not apply, or a restarted gend, resumes it). */
void drain_enter(struct generation *g, gen_report_fn done) {
        const struct policy *p = g->policy;
        int r;

        g->drain_done = done;
        if (!g->drain_usec)
                g->drain_usec = now_usec(CLOCK_MONOTONIC);
        g->procs_since = g->idle_since = g->idle_last = g->idle_next = g->ct_counted = 0;
        g->conns_since = g->ct_next = 0;
        g->idle_again = g->conns_followed = false;
        g->conns_dirty = g->procs_moved = g->conns_moved = true;
        g->idle_said = 0;
        g->ct_backoff = CT_RECHECK_MIN_USEC;
        g->quiet_level = p->quiet_procs == QUIET_BASELINE ? g->baseline : (unsigned)p->quiet_procs;
        if (p->stop_signal && !g->signalled && g->pidfd >= 0) {
                if (syscall(SYS_pidfd_send_signal, g->pidfd, p->stop_signal, NULL, 0) < 0)
                        log_warn("%s: generation %u: pidfd_send_signal(%s): %s", p->name, g->n,
                                 sigabbrev_np(p->stop_signal), strerror(errno));
                g->signalled = true;
        }
        if (g->forced) {
                /* --now: the deadline is now, and nothing is waited for,
                 * so nothing is watched or counted before it. */
                if (drain_rearm(g) < 0)
                        log_error("%s: generation %u: cannot force its drain: %s", p->name, g->n,
                                  err_msg());
                return;
        }
        drain_events_open(g->svc->d);   /* if gend's start did not */
        watch_procs(g);
        if (p->idle != IDLE_NONE && !g->idle &&
            idle_new(g->svc->d->event, p, &g->probe_target, on_idle_done, g, &g->idle) < 0)
                log_error("%s: generation %u: cannot run its idle probe, so it drains until its "
                          "timeout: %s", p->name, g->n, err_msg());
        /* Accuracy 1 us: sd-event's default (0) lets it slip by 250 ms. */
        r = sd_event_add_time_relative(g->svc->d->event, &g->drain_timer, CLOCK_MONOTONIC, 0, 1,
                                       on_tick, g);
        if (r < 0 || drain_rearm(g) < 0)
                log_error("%s: generation %u: cannot watch its drain: %s", p->name, g->n,
                          r < 0 ? strerror(-r) : err_msg());
        events_follow(g->svc->d);
}

/* A forced generation is gone: gen list shows it, as retired with what
 * was cut, for a while. */
void drain_note_retired(struct generation *g) {
        struct service *s = g->svc;
        struct retired_note *r;

        retired_prune(s, false);
        if (!g->forced || !(r = calloc(1, sizeof(*r))))
                return;
        r->n = g->n;
        r->addr = g->addr;
        r->created_usec = g->created_usec;
        r->retired_usec = now_usec(CLOCK_MONOTONIC);
        r->cut = TAKE_PTR(g->cut);
        if (!r->cut && (r->cut = calloc(1, sizeof(*r->cut)))) {
                r->cut->by = g->forced_by ? g->forced_by : FORCED_TIMEOUT;
                r->cut->procs = g->procs;
                r->cut->conns = g->conns;
                r->cut->quiet_level = g->quiet_level;
        }
        r->next = s->retired;
        s->retired = r;
        retired_prune(s, false);
}

void retired_prune(struct service *s, bool all) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        unsigned kept = 0;

        for (struct retired_note **p = &s->retired; *p;) {
                struct retired_note *r = *p;
                if (all || kept == RETIRED_KEEP_MAX || now - r->retired_usec > RETIRED_KEEP_USEC) {
                        *p = r->next;
                        cut_free(r->cut);
                        free(r);
                } else {
                        kept++;
                        p = &r->next;
                }
        }
}

struct retired_note *retired_find(struct service *s, unsigned n) {
        for (struct retired_note *r = s->retired; r; r = r->next)
                if (r->n == n)
                        return r;
        return NULL;
}
