/* The end of a generation: freeze, kill, remove what it made (the entry
 * action of frozen and failing). Its cgroup.events changes and its main
 * process's end come through the lifecycle (teardown_poke). */
#include <string.h>

#include "../sandbox/cgroup.h"
#include "../sandbox/netns.h"
#include "../sandbox/veth.h"
#include "conntrack.h"
#include "gend.h"
#include "log.h"

#define FREEZE_WAIT_USEC (2 * USEC_PER_SEC)
#define KILL_WAIT_USEC (5 * USEC_PER_SEC)

/* Teardown, the entry action of frozen and failing: freeze, wait until
 * frozen (cgroup.events), cgroup.kill, wait until empty, remove what the
 * generation made, then EV_GONE. Every step runs from the loop. */
enum { TD_START = 1, TD_FREEZING, TD_KILLED };

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
        teardown_poke(g);
        return 0;
}

/* A removed generation's block (its address and mark) comes back once
 * its link is gone and its conntrack entries are deleted. The link goes
 * with the namespace, in the kernel's own time: a veth pair deleted by
 * request waits for RCU grace periods, 10-30 ms of gend's time, which
 * the namespace's cleanup spends in a worker of its own. The entries are
 * deleted right after "retired" is said (a walk of the whole table). */
struct release {
        unsigned block;
        uint32_t mark;
        char veth[IFNAME_MAX];          /* "": none made */
        uint64_t since;
        bool ct_done;
};

#define RELEASE_FIRST_USEC (25 * USEC_PER_MSEC)
#define RELEASE_MAX_USEC USEC_PER_SEC
#define RELEASE_FORCE_USEC (5 * USEC_PER_SEC)   /* then the link is deleted by request */

static int on_release_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        (void)s, (void)usec;
        release_look(userdata, false);
        return 0;
}

static void release_arm(struct gend *d, uint64_t usec) {
        d->release_timer = sd_event_source_disable_unref(d->release_timer);
        if (sd_event_add_time_relative(d->event, &d->release_timer, CLOCK_MONOTONIC, usec, 1,
                                       on_release_timer, d) < 0)
                log_error("cannot arm the timer that gives back removed generations' blocks; "
                          "they come back when the pool runs short");
}

/* Its link deleted by request: something outside the generation holds its
 * namespace (nsenter, ip netns exec), or the block is needed now. false:
 * the block cannot be given back. */
static bool release_link(const struct release *r, bool now) {
        char d[32];

        if (!now)
                log_warn("link %s still there %s after its generation's namespace was let go "
                         "(something else holds the namespace: nsenter, ip netns exec, a bind "
                         "mount); deleting it", r->veth,
                         format_duration(d, sizeof(d), RELEASE_FORCE_USEC));
        if (veth_destroy(r->veth) < 0) {
                log_error("%s; its address block is not used again", err_msg());
                return false;
        }
        return true;
}

void release_look(struct gend *d, bool now) {
        uint64_t t = now_usec(CLOCK_MONOTONIC);
        unsigned deleted;

        for (unsigned i = 0; i < d->n_releases;) {
                struct release *r = &d->releases[i];
                int there = 0;

                if (!r->ct_done && d->ct && ct_delete(d->ct, r->mark, d->marks.mask, 0, &deleted) < 0)
                        log_error("%s", err_msg());
                r->ct_done = true;
                if (r->veth[0] && (there = veth_exists(r->veth)) < 0)
                        log_warn("%s", err_msg());
                if (there && !now && t - r->since < RELEASE_FORCE_USEC) {
                        i++;
                        continue;
                }
                if (!there || release_link(r, now))
                        d->blocks_used[r->block] = 0;
                *r = d->releases[--d->n_releases];
        }
        if (!d->n_releases) {
                d->release_timer = sd_event_source_disable_unref(d->release_timer);
                d->release_delay = 0;
                return;
        }
        d->release_delay = !d->release_delay ? RELEASE_FIRST_USEC
                           : 2 * d->release_delay < RELEASE_MAX_USEC ? 2 * d->release_delay
                                                                     : RELEASE_MAX_USEC;
        release_arm(d, d->release_delay);
}

/* The block of G, given back later; without memory for that, now. */
static void release_later(struct generation *g) {
        struct gend *d = g->svc->d;
        unsigned deleted;

        if (!g->has_block)
                return;
        if (GROW(d->releases, d->n_releases, d->cap_releases, 8) < 0) {
                if (g->has_veth && veth_destroy(g->veth) < 0)
                        log_error("%s: generation %u: %s", g->svc->name, g->n, err_msg());
                if (d->ct && ct_delete(d->ct, g->mark, d->marks.mask, 0, &deleted) < 0)
                        log_error("%s: generation %u: %s", g->svc->name, g->n, err_msg());
                return;                 /* the block comes back with the generation */
        }
        struct release *r = &d->releases[d->n_releases++];
        *r = (struct release){ .block = g->block, .mark = g->mark, .since = now_usec(CLOCK_MONOTONIC) };
        if (g->has_veth)
                snprintf(r->veth, sizeof(r->veth), "%s", g->veth);
        g->has_block = false;           /* the release has it now */
        if (!d->release_timer)
                release_arm(d, 0);      /* after "retired" is said */
}

/* What this generation made, each failure said with its object; its link,
 * conntrack entries and block are given back later (above). */
static void remove_objects(struct generation *g) {
        const char *svc = g->svc->name;

        if (g->cgroup && cg_destroy(g->cgroup) < 0)
                log_error("%s: generation %u: %s", svc, g->n, err_msg());
        if (g->netns && netns_destroy(g->netns) < 0)
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
        release_later(g);
}

/* The cgroup's state; false: unreadable (said, and looked at again in 1 s). */
static bool read_cgroup(struct generation *g, bool *populated, bool *frozen) {
        int r = 0;

        *populated = *frozen = false;
        if (g->cgroup && (r = cg_read_events(g->cgroup, populated, frozen)) < 0 && r != -ENOENT) {
                /* Unreadable is not empty: try again, and say so. */
                log_error("%s: generation %u: %s; trying again", g->svc->name, g->n, err_msg());
                arm_timer(g, USEC_PER_SEC);
                return false;
        }
        if (r == -ENOENT)
                *populated = false;     /* no cgroup: nothing runs */
        return true;
}

/* The first step, freezing: at once, the moment the decision is taken. */
static void teardown_freeze(struct generation *g, bool populated) {
        if (populated) {
                if (cg_freeze(g->cgroup) < 0)
                        log_warn("%s: generation %u: %s", g->svc->name, g->n, err_msg());
                g->teardown_step = TD_FREEZING;
                arm_timer(g, FREEZE_WAIT_USEC);
        } else
                g->teardown_step = TD_KILLED;
}

/* The steps the cgroup allows now; the lifecycle pokes on every change
 * of cgroup.events and at the main process's end. That end comes sooner:
 * the kernel says a cgroup.events change at most every 10 ms (12 ms at
 * 250 Hz), so "populated 0" right after "frozen" waits out that
 * interval, while with private-pids (the default) the main process is
 * the init of its pid namespace, which ends after every other process in
 * it; without, cgroup.events still says it. */
void teardown_poke(struct generation *g) {
        bool populated, frozen;

        if (!read_cgroup(g, &populated, &frozen))
                return;
        if (g->teardown_step == TD_START)
                teardown_freeze(g, populated);
        if (g->teardown_step == TD_FREEZING && (frozen || !populated)) {
                if (populated)
                        kill_now(g);
                else
                        g->teardown_step = TD_KILLED;
        }
        if (g->teardown_step == TD_KILLED && !populated) {
                teardown_stop(g);
                remove_objects(g);
                g->teardown_done(g, EV_GONE);   /* may free g */
        }
}

static int on_teardown_start(sd_event_source *s, uint64_t usec, void *userdata) {
        (void)s, (void)usec;
        teardown_poke(userdata);
        return 0;
}

void teardown_enter(struct generation *g, gen_report_fn done) {
        bool populated, frozen;

        g->teardown_done = done;
        g->teardown_step = TD_START;
        g->teardown_timer = sd_event_source_disable_unref(g->teardown_timer);
        /* Frozen now; the rest from the loop: the state change finishes
         * having its consequences before the generation can be gone. */
        if (g->cgroup && read_cgroup(g, &populated, &frozen)) {
                teardown_freeze(g, populated);
                if (g->teardown_step == TD_FREEZING)
                        return;         /* cgroup.events says when it is frozen */
        }
        if (g->teardown_timer)
                return;                 /* unreadable: looked at again */
        if (sd_event_add_time_relative(g->svc->d->event, &g->teardown_timer, CLOCK_MONOTONIC, 0, 1,
                                       on_teardown_start, g) < 0)
                log_error("%s: generation %u: cannot start its teardown", g->svc->name, g->n);
}

void teardown_stop(struct generation *g) {
        g->teardown_timer = sd_event_source_disable_unref(g->teardown_timer);
}
