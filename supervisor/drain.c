/* Draining a generation to task quiescence, then freezing, killing and
 * removing it (DESIGN.md, "Quiescence, precisely"; the decision itself is
 * quiet.c's).
 *
 * Processes: no kernel event says that a cgroup's process count changed
 * (the proc connector, which reports every fork and exit, lives in the
 * initial network namespace only), so the count is polled, a read of
 * cgroup.procs every [drain] poll-interval; cgroup.events (the cgroup
 * emptied, via inotify) and the main process's exit count at once.
 *
 * The idle probe, when the policy has one, runs every idle-interval, and
 * at once when the process count changes or a count of connections
 * differs.
 *
 * Connections cost a conntrack dump, which walks the whole conntrack hash
 * table (13 ms with 262144 buckets, see tests/bench): a draining
 * generation gets no new connections (its DNAT and mark only ever applied
 * to new ones), so its count only falls, and it is taken once everything
 * else has been quiet for the settle time. After that one dump, conntrack
 * events (update and destroy, subscribed while a generation drains, before
 * its first dump) say when an entry with its mark changed: it is counted
 * again only then, at most every 250 ms, and every 10 s in case an event
 * was lost. Without events, again with backoff (250 ms to 2 s) while
 * connections remain. Where an event source is missing, gend's log says
 * so once. */
#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <time.h>

#include "../sandbox/cgroup.h"
#include "../sandbox/netns.h"
#include "../sandbox/veth.h"
#include "conntrack.h"
#include "gend.h"
#include "idle.h"
#include "log.h"
#include "quiet.h"

#define CT_RECHECK_MIN_USEC (250 * USEC_PER_MSEC)
#define CT_SAFETY_USEC (10 * USEC_PER_SEC)       /* with events: a lost one is found */
#define CT_RECHECK_MAX_USEC (2 * USEC_PER_SEC)
#define FREEZE_WAIT_USEC (2 * USEC_PER_SEC)
#define KILL_WAIT_USEC (5 * USEC_PER_SEC)


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
        _cleanup_free_ char *idle = NULL;
        unsigned all, probe = 0;
        int r = cg_count_procs(g->cgroup, &all);

        if (r < 0)
                return r;
        if (asprintf(&idle, "%s/" IDLE_CGROUP, g->cgroup) < 0)
                return err_set(ENOMEM, "counting");
        if (access(idle, F_OK) == 0 && cg_count_procs(idle, &probe) < 0)
                probe = 0;              /* gone meanwhile */
        *ret = all > probe ? all - probe : 0;
        return 0;
}

int gen_count(struct generation *g) {
        int r = count_procs(g, &g->procs);
        return r < 0 ? r : count_conns(g);
}

static bool countable(const struct generation *g) {
        return gen_state_is_live(g->state) && g->state != GEN_FROZEN &&
               g->state != GEN_FAILING && g->cgroup;
}

int gend_count_all(struct gend *d, struct service *only) {
        unsigned n = d->n_blocks;
        _cleanup_free_ unsigned *conns = NULL;
        bool any = false;
        int r = 0;

        for (struct service *s = d->services; s; s = s->next)
                for (struct generation *g = s->gens; g; g = g->next)
                        any |= (!only || s == only) && countable(g) && g->has_block;
        if (any && d->ct) {
                if (!(conns = calloc(n, sizeof(unsigned))))
                        return err_set(ENOMEM, "counting");
                r = ct_count_live_by_block(d->ct, &d->marks, conns, n);
        }
        for (struct service *s = d->services; s; s = s->next)
                for (struct generation *g = s->gens; g; g = g->next) {
                        if ((only && s != only) || !countable(g))
                                continue;
                        if (count_procs(g, &g->procs) < 0)
                                r = r < 0 ? r : -EIO;
                        if (conns && r >= 0 && g->has_block)
                                g->conns = conns[g->block];
                }
        return r;
}

/* Conntrack events */

static void on_ct_event(uint32_t mark, void *userdata) {
        struct gend *d = userdata;

        if (!(mark & d->marks.mask))
                return;                 /* not one of gen's (the filter drops most) */
        for (struct service *s = d->services; s; s = s->next)
                for (struct generation *g = s->gens; g; g = g->next)
                        if (g->state == GEN_DRAINING && g->has_block &&
                            (mark & d->marks.mask) == g->mark && !g->conns_dirty) {
                                g->conns_dirty = true;
                                drain_poke(g);
                        }
}

void drain_events_close(struct gend *d) {
        d->ct_events_io = sd_event_source_disable_unref(d->ct_events_io);
        ct_events_close(d->ct_events);
        d->ct_events = NULL;
}

static void all_dirty(struct gend *d) {
        for (struct service *s = d->services; s; s = s->next)
                for (struct generation *g = s->gens; g; g = g->next)
                        if (g->state == GEN_DRAINING) {
                                g->conns_dirty = true;
                                drain_poke(g);
                        }
}

static void events_failed(struct gend *d, const char *why) {
        drain_events_close(d);
        d->ct_events_failed = true;
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

/* From gend's start on (an entry made while nobody listened has no
 * events), for good; tried once. */
void drain_events_open(struct gend *d) {
        char why[512];
        int r;

        if (d->ct_events || d->ct_events_failed || !d->ct)
                return;
        if ((r = ct_events_open(d->marks.mask, on_ct_event, d, &d->ct_events)) < 0) {
                snprintf(why, sizeof(why), "%s", err_msg());
                events_failed(d, why);
                return;
        }
        r = sd_event_add_io(d->event, &d->ct_events_io, ct_events_fd(d->ct_events), EPOLLIN,
                            on_ct_events, d);
        if (r < 0) {
                snprintf(why, sizeof(why), "sd_event_add_io(conntrack events): %s", strerror(-r));
                events_failed(d, why);
        }
}

void drain_stop(struct generation *g) {
        g->drain_timer = sd_event_source_disable_unref(g->drain_timer);
        g->deadline_timer = sd_event_source_disable_unref(g->deadline_timer);
        g->drain_watch = sd_event_source_disable_unref(g->drain_watch);
        idle_free(g->idle);
        g->idle = NULL;
        g->procs_since = 0;
}

void drain_poke(struct generation *g) {
        if (g->drain_timer) {
                sd_event_source_set_time(g->drain_timer, now_usec(CLOCK_MONOTONIC));
                sd_event_source_set_enabled(g->drain_timer, SD_EVENT_ONESHOT);
        }
}

static int on_drain_watch(sd_event_source *s, const struct inotify_event *ev, void *userdata) {
        (void)s, (void)ev;
        drain_poke(userdata);
        return 0;
}

/* cgroup.events changes when the cgroup empties (or freezes). */
static void watch_cgroup(struct generation *g) {
        struct gend *d = g->svc->d;
        _cleanup_free_ char *events = NULL;
        int r;

        if (!g->cgroup || g->drain_watch)
                return;
        if (asprintf(&events, "%s/cgroup.events", g->cgroup) < 0) {
                events = NULL;
                r = -ENOMEM;
        } else
                r = sd_event_add_inotify(d->event, &g->drain_watch, events, IN_MODIFY,
                                         on_drain_watch, g);
        if (r < 0 && r != -ENOENT && !d->said_inotify) {
                d->said_inotify = true;
                log_warn("inotify(%s): %s; a draining generation's emptying is seen by polling "
                         "instead", events ? events : "cgroup.events", strerror(-r));
        }
}

/* Once per gend: what has no event source, and so is polled. */
static void say_polling(struct generation *g) {
        char every[32];

        if (g->svc->d->said_polling)
                return;
        g->svc->d->said_polling = true;
        log_info("drain: a cgroup's process count changes without an event, so draining "
                 "generations' processes are counted every [drain] poll-interval (%s for %s); "
                 "cgroup.events and the main process's exit count at once",
                 format_duration(every, sizeof(every), g->policy->poll_interval_usec),
                 g->svc->name);
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

/* Connections are counted again when an event with its mark came (or
 * without events, with backoff), never more often than every 250 ms. */
static bool count_due(struct generation *g, uint64_t now) {
        if (now < g->ct_next)
                return false;
        if (!g->svc->d->ct_events)
                return true;
        return !g->ct_counted || g->conns_dirty || now - g->ct_counted >= CT_SAFETY_USEC;
}

/* True when it fired an event: the drain is over, and g may be gone.
 * *ret_wake (if not NULL): when the settle time of what is quiet ends. */
static bool evaluate(struct generation *g, uint64_t *ret_wake) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        unsigned before = g->conns;
        struct quiet_view v = {
                .now = now, .settle = g->policy->settle_usec, .procs_since = g->procs_since,
                .idle = g->idle != NULL, .no_procs = g->procs_since && g->procs == 0,
                .idle_since = g->idle_since, .idle_last = g->idle_last,
                .conns_zero = g->conns_zero,
        };

        uint64_t since;
        enum quiet_step step = quiet_decide(&v, &since);

        if (ret_wake)
                *ret_wake = since ? since + v.settle : 0;
        switch (step) {
        case QUIET_WAIT:
                return false;
        case QUIET_COUNT_CONNS:
                if (!count_due(g, now))
                        return false;
                g->conns_dirty = false;
                g->ct_counted = now;
                if (count_conns(g) < 0) {
                        log_warn("%s: generation %u: counting for the drain: %s", g->svc->name,
                                 g->n, err_msg());
                } else if (g->conns == 0) {
                        g->conns_zero = true;
                        if (before)
                                idle_ask(g);
                        return evaluate(g, ret_wake);
                } else if (g->conns != before)
                        idle_ask(g);
                g->ct_next = now + g->ct_backoff;
                if (!g->svc->d->ct_events)
                        g->ct_backoff = g->ct_backoff * 2 > CT_RECHECK_MAX_USEC
                                        ? CT_RECHECK_MAX_USEC : g->ct_backoff * 2;
                return false;
        case QUIET_CONFIRM:
                if (!idle_running(g->idle))
                        idle_ask(g);
                return false;
        case QUIET_DONE:
                gen_fire(g, EV_QUIESCENT);
                return true;
        }
        return false;
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

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        struct generation *g = userdata;
        uint64_t now = now_usec(CLOCK_MONOTONIC), wake = 0, next;
        unsigned procs;
        (void)usec;

        if (count_procs(g, &procs) < 0) {
                log_warn("%s: generation %u: counting for the drain: %s", g->svc->name,
                         g->n, err_msg());
                g->procs_since = 0;
        } else {
                bool changed = procs != g->procs;
                g->procs = procs;
                if (procs > g->quiet_level)
                        g->procs_since = 0;
                else if (!g->procs_since) {
                        g->procs_since = now;
                        g->ct_next = 0;
                        g->ct_backoff = CT_RECHECK_MIN_USEC;
                }
                /* No process left: no task can run, nobody to ask. */
                if (procs && (changed || now >= g->idle_next))
                        idle_ask(g);
        }
        if (evaluate(g, &wake))
                return 0;
        /* The next look: the poll, or sooner what is due (the end of a
         * settle time, the idle probe's next run, the next count of
         * connections). */
        next = now + g->policy->poll_interval_usec;
        if (wake > now && wake < next)
                next = wake;
        if (g->idle && g->procs && g->idle_next > now && g->idle_next < next)
                next = g->idle_next;
        if (!g->conns_zero && g->ct_next > now && g->ct_next < next)
                next = g->ct_next;
        sd_event_source_set_time(s, next);
        sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        struct generation *g = userdata;
        enum forced_by by = g->forced ? FORCED_NOW : FORCED_TIMEOUT;
        (void)s, (void)usec;

        if (gen_count(g) < 0)
                log_warn("%s: generation %u: counting what the deadline cuts: %s", g->svc->name,
                         g->n, err_msg());
        g->forced = true;
        g->forced_by = by;
        cut_free(g->cut);
        g->cut = NULL;
        if (cut_collect(g, by, &g->cut) < 0)
                log_warn("%s: generation %u: %s", g->svc->name, g->n, err_msg());
        gen_fire(g, EV_DEADLINE);
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
void drain_enter(struct generation *g) {
        const struct policy *p = g->policy;
        int r;

        if (!g->drain_usec)
                g->drain_usec = now_usec(CLOCK_MONOTONIC);
        g->procs_since = g->idle_since = g->idle_last = g->idle_next = g->ct_counted = 0;
        g->conns_zero = g->idle_again = g->conns_dirty = false;
        g->idle_said = 0;
        g->ct_next = 0;
        g->ct_backoff = CT_RECHECK_MIN_USEC;
        g->quiet_level = p->quiet_procs == QUIET_BASELINE ? g->baseline : (unsigned)p->quiet_procs;
        if (p->stop_signal && !g->signalled && g->pidfd >= 0) {
                if (syscall(SYS_pidfd_send_signal, g->pidfd, p->stop_signal, NULL, 0) < 0)
                        log_warn("%s: generation %u: pidfd_send_signal(%s): %s", p->name, g->n,
                                 sigabbrev_np(p->stop_signal), strerror(errno));
                g->signalled = true;
        }
        drain_events_open(g->svc->d);   /* if gend's start did not */
        watch_cgroup(g);
        say_polling(g);
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

/* Teardown, the entry action of frozen and failing: freeze, wait until
 * frozen (cgroup.events), cgroup.kill, wait until empty, remove what the
 * generation made, then EV_GONE. Every step runs from the loop. */
enum { TD_START = 1, TD_FREEZING, TD_KILLED };

static void teardown_step(struct generation *g);

static int on_cg_event(sd_event_source *s, const struct inotify_event *ev, void *userdata) {
        (void)s, (void)ev;
        teardown_step(userdata);
        return 0;
}

static int on_teardown_timer(sd_event_source *s, uint64_t usec, void *userdata);

static void arm_timer(struct generation *g, uint64_t usec) {
        g->teardown_timer = sd_event_source_disable_unref(g->teardown_timer);
        if (sd_event_add_time_relative(g->svc->d->event, &g->teardown_timer, CLOCK_MONOTONIC, usec,
                                       1, on_teardown_timer, g) < 0)
                log_error("%s: generation %u: cannot arm the teardown timer", g->svc->name, g->n);
}

static void kill_now(struct generation *g) {
        if (cg_kill(g->cgroup) < 0)
                log_error("%s: generation %u: %s", g->svc->name, g->n, err_msg());
        g->teardown_step = TD_KILLED;
        arm_timer(g, KILL_WAIT_USEC);
}

/* Freezing took too long, the kill did, or the cgroup could not be read. */
static int on_teardown_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct generation *g = userdata;
        char d[32];
        (void)s, (void)usec;

        g->teardown_timer = sd_event_source_disable_unref(g->teardown_timer);
        if (g->teardown_step == TD_FREEZING) {
                log_warn("%s: generation %u: cgroup not frozen after %s; killing it anyway",
                         g->svc->name, g->n, format_duration(d, sizeof(d), FREEZE_WAIT_USEC));
                kill_now(g);
        } else if (g->teardown_step == TD_KILLED) {
                log_warn("%s: generation %u: cgroup still populated %s after cgroup.kill; "
                         "killing again", g->svc->name, g->n,
                         format_duration(d, sizeof(d), KILL_WAIT_USEC));
                kill_now(g);
        }
        teardown_step(g);
        return 0;
}

/* What this generation made, each failure said with its object; then its
 * conntrack entries, so its mark and address can serve another one. */
static void remove_objects(struct generation *g) {
        struct gend *d = g->svc->d;
        const char *svc = g->svc->name;
        unsigned deleted;

        if (g->cgroup && cg_destroy(g->cgroup) < 0)
                log_error("%s: generation %u: %s", svc, g->n, err_msg());
        if (g->netns && netns_destroy(g->netns) < 0)
                log_error("%s: generation %u: %s", svc, g->n, err_msg());
        if (g->has_veth && veth_destroy(g->veth) < 0)
                log_error("%s: generation %u: %s", svc, g->n, err_msg());
        if (limits_destroy(&g->limits) < 0)
                log_error("%s: generation %u: %s", svc, g->n, err_msg());
        if (g->cgroup) {
                _cleanup_free_ char *svc_cg = strdup(g->cgroup);
                if (svc_cg) {
                        *strrchr(svc_cg, '/') = 0;
                        rmdir(svc_cg);  /* the service's directory, when empty */
                }
        }
        if (g->has_block && d->ct && ct_delete(d->ct, g->mark, d->marks.mask, 0, &deleted) < 0)
                log_error("%s: generation %u: %s", svc, g->n, err_msg());
}

static void teardown_step(struct generation *g) {
        bool populated = false, frozen = false;
        int r = 0;

        if (g->cgroup && (r = cg_read_events(g->cgroup, &populated, &frozen)) < 0 && r != -ENOENT) {
                /* Unreadable is not empty: try again, and say so. */
                log_error("%s: generation %u: %s; trying again", g->svc->name, g->n, err_msg());
                arm_timer(g, USEC_PER_SEC);
                return;
        }
        if (r == -ENOENT)
                populated = false;      /* no cgroup: nothing runs */
        if (g->teardown_step == TD_START) {
                if (populated) {
                        if (cg_freeze(g->cgroup) < 0)
                                log_warn("%s: generation %u: %s", g->svc->name, g->n, err_msg());
                        g->teardown_step = TD_FREEZING;
                        arm_timer(g, FREEZE_WAIT_USEC);
                } else
                        g->teardown_step = TD_KILLED;
        }
        if (g->teardown_step == TD_FREEZING && (frozen || !populated)) {
                if (populated)
                        kill_now(g);
                else
                        g->teardown_step = TD_KILLED;
        }
        if (g->teardown_step == TD_KILLED && !populated) {
                teardown_stop(g);
                remove_objects(g);
                gen_fire(g, EV_GONE);   /* may free g */
        }
}

static int on_teardown_start(sd_event_source *s, uint64_t usec, void *userdata) {
        (void)s, (void)usec;
        teardown_step(userdata);
        return 0;
}

void teardown_enter(struct generation *g) {
        _cleanup_free_ char *events = NULL;
        int r;

        g->teardown_step = TD_START;
        if (g->cgroup) {
                if (asprintf(&events, "%s/cgroup.events", g->cgroup) < 0)
                        events = NULL;
                r = events ? sd_event_add_inotify(g->svc->d->event, &g->cg_watch, events, IN_MODIFY,
                                                  on_cg_event, g)
                           : -ENOMEM;
                if (r < 0 && r != -ENOENT)
                        log_warn("%s: generation %u: inotify(%s): %s; polling instead",
                                 g->svc->name, g->n, events ? events : "cgroup.events",
                                 strerror(-r));
        }
        /* From the loop: the state change finishes having its consequences
         * before the generation can be gone. */
        g->teardown_timer = sd_event_source_disable_unref(g->teardown_timer);
        if (sd_event_add_time_relative(g->svc->d->event, &g->teardown_timer, CLOCK_MONOTONIC, 0, 1,
                                       on_teardown_start, g) < 0)
                log_error("%s: generation %u: cannot start its teardown", g->svc->name, g->n);
}

void teardown_stop(struct generation *g) {
        g->cg_watch = sd_event_source_disable_unref(g->cg_watch);
        g->teardown_timer = sd_event_source_disable_unref(g->teardown_timer);
}

/* OOM kills and refused forks, from the limit cgroups' event counters,
 * read every second for the live generations that have limits. */
/* A live generation with a memory or pids limit, whose events to read. */
static bool watched(const struct generation *g) {
        return gen_state_is_live(g->state) && g->state != GEN_FROZEN &&
               g->state != GEN_FAILING && g->limits.v2_dir &&
               (g->policy->memory_max || g->policy->pids_max);
}

/* The timer runs only while a generation has limits: gend at rest, with
 * none, never wakes for it. */
void limits_watch_update(struct gend *d) {
        bool any = false;

        for (struct service *s = d->services; s && !any; s = s->next)
                for (struct generation *g = s->gens; g && !any; g = g->next)
                        any = watched(g);
        if (d->events_timer &&
            sd_event_source_set_enabled(d->events_timer, any ? SD_EVENT_ON : SD_EVENT_OFF) < 0)
                log_warn("cannot %s the limits events timer", any ? "enable" : "disable");
}

static int on_events_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct gend *d = userdata;
        (void)usec;

        for (struct service *sv = d->services; sv; sv = sv->next)
                for (struct generation *g = sv->gens; g; g = g->next) {
                        unsigned oom, pids;
                        if (!watched(g) || limits_events(&d->limits, &g->limits, &oom, &pids) < 0)
                                continue;
                        if (oom > g->oom_kills)
                                log_warn("%s: generation %u: %u process%s OOM-killed at its "
                                         "memory limit (%u in all)", sv->name, g->n,
                                         oom - g->oom_kills, oom - g->oom_kills == 1 ? "" : "es", oom);
                        if (pids > g->pids_refused)
                                log_warn("%s: generation %u: %u fork%s refused at its pids limit "
                                         "of %llu (%u in all)", sv->name, g->n,
                                         pids - g->pids_refused, pids - g->pids_refused == 1 ? "" : "s",
                                         (unsigned long long)g->policy->pids_max, pids);
                        g->oom_kills = oom;
                        g->pids_refused = pids;
                }
        sd_event_source_set_time_relative(s, USEC_PER_SEC);
        limits_watch_update(d);
        return 0;
}

int limits_watch_start(struct gend *d) {
        int r = sd_event_add_time_relative(d->event, &d->events_timer, CLOCK_MONOTONIC,
                                           USEC_PER_SEC, 0, on_events_timer, d);
        if (r < 0)
                return err_setx(-r, "sd_event_add_time: %s", strerror(-r));
        limits_watch_update(d);
        return 0;
}
