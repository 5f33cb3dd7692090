/* gend's model: services, their generations, jobs, and the daemon around
 * them. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "../policy/policy.h"
#include "../sandbox/confine.h"
#include "../sandbox/limits.h"
#include "../sandbox/naming.h"
#include "conntrack.h"
#include "cut.h"
#include "fsm.h"
#include "probe.h"
#include "rules.h"

struct gend;
struct service;
struct job;
struct idle;
struct procwatch;
struct release;
struct generation;

/* How the drain and the teardown tell the lifecycle (generation.c) that
 * they are over: the event it fires. g may be gone afterwards. */
typedef void (*gen_report_fn)(struct generation *g, enum gen_event e);

struct generation {
        struct service *svc;
        struct generation *next;
        struct policy *policy;          /* the one it was made with */
        unsigned n;
        enum gen_state state;
        char *failure;                  /* why it failed, for gen list */

        pid_t pid;                      /* main process, 0 once it exited */
        uint64_t pid_start;             /* its start time, to know it again */
        int pidfd;
        sd_event_source *pidfd_watch;   /* adopted: not gend's child */
        int exit_status;                /* wait status, -1: not known */
        bool adopted;
        unsigned restart_of;            /* the crashed generation it replaced, 0: none */

        unsigned block;                 /* address block in the pool */
        bool has_block;
        uint32_t addr, host_addr, mark;
        char veth[IFNAME_MAX];
        bool has_veth;                  /* made by this generation */
        char *netns;                    /* NULL until made */
        char *cgroup;                   /* absolute path, NULL until made */
        char *log_path;
        char *directory;                /* its release directory */
        char **env;                     /* its environment, for exec probes too */
        struct gen_limits limits;
        struct confine confine;         /* what it runs under, for exec probes too */
        unsigned oom_kills, pids_refused;

        /* CLOCK_MONOTONIC: one clock for the whole boot, also across gend
         * restarts, so a record's times stay true. */
        uint64_t created_usec, ready_usec, drain_usec;
        uint64_t created_realtime;
        unsigned baseline;              /* processes when it became ready */
        unsigned procs, conns;          /* last counted */

        struct probe *probe;            /* readiness, while starting */
        struct probe_target probe_target;

        /* draining (drain.c; what each means: quiet.h) */
        sd_event_source *drain_timer, *deadline_timer;
        struct procwatch *procwatch;    /* its processes' exits; NULL: polled */
        uint64_t procs_since;           /* at the quiet level since; 0: above it */
        struct ct_ids conn_ids;         /* its live connections, when followed */
        bool conns_followed;            /* conn_ids is true: a dump, then events */
        bool conns_dirty;               /* not followed, or an event it cannot place */
        bool procs_moved, conns_moved;  /* a count changed: ask the idle probe */
        uint64_t conns_since;           /* none live since; 0: some, or not known */
        uint64_t ct_counted;            /* when its connections were counted last */
        uint64_t ct_next, ct_backoff;   /* when to count connections again */
        unsigned quiet_level;
        uint64_t drain_timeout_usec;    /* gen retire --timeout, 0: the policy's */
        bool forced;                    /* --now, or the deadline passed */
        bool signalled;                 /* stop-signal sent */
        struct idle *idle;              /* [drain] idle, while draining */
        bool idle_again;                /* something changed during its run: again */
        signed char idle_said;          /* the log said: 1 idle, -1 busy, 0 nothing yet */
        uint64_t idle_since, idle_last, idle_next;
        enum forced_by forced_by;       /* why it was forced (kept in the record) */
        struct drain_cut *cut;          /* what the force cut */

        gen_report_fn drain_done;       /* quiescent or deadline: to the lifecycle */

        /* teardown (frozen or failing): freeze, kill, remove */
        sd_event_source *teardown_timer;
        int teardown_step;
        gen_report_fn teardown_done;    /* gone: to the lifecycle */

        sd_event_source *cg_watch;      /* cgroup.events, from draining on (generation.c) */
};

/* A generation whose drain was forced stays in gen list, as retired with
 * what was cut, for RETIRED_KEEP_USEC after it is gone (not across a
 * restart of gend). */
#define RETIRED_KEEP_USEC (600 * USEC_PER_SEC)
#define RETIRED_KEEP_MAX 8

struct retired_note {
        struct retired_note *next;
        unsigned n;
        uint32_t addr;
        uint64_t created_usec, retired_usec;
        struct drain_cut *cut;
};

struct service {
        struct gend *d;
        struct service *next;
        char *name;
        struct policy *policy;          /* NULL: its policy file is gone */
        struct generation *gens;        /* ascending n */
        unsigned next_gen;
        struct generation *active;      /* state active: what the rules point at */
        bool has_rules;                 /* GEN-S-<name> is in the kernel */
        struct port_map rule_ports[POLICY_PORTS_MAX]; /* the ports it forwards */
        unsigned n_rule_ports;
        struct job *jobs;               /* queue: the head runs */
        /* [service] restart = on-failure */
        sd_event_source *restart_timer;
        unsigned restarts;              /* in all, for gen list */
        unsigned restarts_in_window;
        uint64_t window_start;
        unsigned crashed;               /* the generation a pending restart replaces */
        struct retired_note *retired;   /* forced ones, newest first */
};

/* What the lifecycle tells whoever listens (control.c): structured, so
 * sentences are made at the edge. */
enum notice_kind {
        NOTICE_CREATED,                 /* its process runs */
        NOTICE_STATE,                   /* from -> g->state */
};

struct notice {
        enum notice_kind kind;
        struct generation *g;
        enum gen_state from;
};

typedef void (*notice_fn)(struct gend *d, const struct notice *n);
#define NOTICE_LISTENERS_MAX 4

struct gend {
        sd_event *event;
        struct service *services;
        char *config_dir, *run_dir, *state_dir, *log_dir, *profile_dir;
        char *cgroup_base;
        struct limits_host limits;
        sd_event_source *events_timer;
        struct rules_base base;
        struct marks marks;
        unsigned n_blocks;              /* blocks usable: pool and marks allow */
        unsigned half;                  /* [half, 2 half): host-ports = closed; the rest open */
        uint8_t *blocks_used;
        unsigned next_block;            /* blocks are handed out round robin */
        struct fwd *fwd;
        struct ct *ct;
        /* drain.c: conntrack events while a generation drains, and what
         * the log was told once */
        struct ct_events *ct_events;
        sd_event_source *ct_events_io;
        bool ct_events_failed, said_polling, said_forks, said_inotify;
        char **unmanaged;               /* records not taken back: "PATH: why" */
        /* teardown.c: blocks of removed generations, back once their link
         * is gone and their conntrack entries are deleted */
        struct release *releases;
        unsigned n_releases, cap_releases;
        sd_event_source *release_timer;
        uint64_t release_delay;
        struct client *clients;
        unsigned n_clients;
        int listen_fd, lock_fd;
        char *socket_path;
        notice_fn listeners[NOTICE_LISTENERS_MAX]; /* in the order they came */
};

/* service.c: the services, their policies */
struct service *service_find(struct gend *d, const char *name);
int service_add(struct gend *d, const char *name, struct policy *p, struct service **ret);
void service_serving_note(struct service *s, char *buf, size_t n);
unsigned gend_live_count(struct gend *d, unsigned *ret_services);
int gend_reload(struct gend *d);
void services_status(struct gend *d);

/* generation.c: a generation's life */
struct generation *gen_find(struct service *s, unsigned n);
/* Runs the event e: the next state's entry actions, the record, the
 * notice. A refused event changes nothing and returns -EINVAL. */
int gen_fire(struct generation *g, enum gen_event e);
/* The entry actions of g's state, alone: a restarted gend resumes a
 * generation in the state its record and the kernel say. */
void gen_enter_state(struct generation *g);
void gen_fail(struct generation *g, const char *why);
/* A new generation: its number taken and on the list, starting; then made
 * and probed. A failure of gen_start leaves it failing, and says why. */
int gen_alloc(struct service *s, struct generation **ret);
int gen_start(struct generation *g, const char *dir);
void gen_child_exited(struct gend *d, pid_t pid, int status);
void gen_notify_created(struct generation *g);
/* The lifecycle's notices go to each listener, in the order they came
 * (the jobs first: gend's start). */
int gen_listen(struct gend *d, notice_fn fn);
void gen_unlisten(struct gend *d, notice_fn fn);
uint64_t gen_age_usec(const struct generation *g);
struct rules_target gen_rules_target(struct generation *g);
int gen_watch_pidfd(struct generation *g);
void gen_free(struct generation *g);
void gen_set_failure(struct generation *g, const char *why);

/* record.c: a generation's record on disk */
int record_save(struct generation *g);
void record_remove(struct generation *g);
/* Calls fn for each record found, with the parsed generation (not yet on
 * any list; fn takes it). */
int records_load(struct gend *d, int (*fn)(struct gend *d, const char *svc,
                                           struct generation *g, const struct port_map *ports,
                                           unsigned n_ports));

/* adopt.c: a restarted gend takes its generations back */
int gend_adopt(struct gend *d);

/* drain.c: the entry action of draining; done hears its end */
void drain_enter(struct generation *g, gen_report_fn done);
void drain_stop(struct generation *g);
int drain_rearm(struct generation *g);          /* new deadline or --now */
/* Count again now: something changed (its main process exited). */
void drain_poke(struct generation *g);
/* Conntrack events: from gend's start (drains count connections again
 * only when one changed), closed at exit. */
void drain_events_open(struct gend *d);
void drain_events_close(struct gend *d);
/* The reaper hands exited pids here: the idle probe's. */
bool drain_child_exited(struct generation *g, pid_t pid, int status);
/* Retired: a forced one is noted for gen list; old notes go. */
void drain_note_retired(struct generation *g);
void retired_prune(struct service *s, bool all);
struct retired_note *retired_find(struct service *s, unsigned n);
/* teardown.c: the entry action of frozen and failing; done hears its end */
void teardown_enter(struct generation *g, gen_report_fn done);
void teardown_stop(struct generation *g);
/* Look again: its cgroup.events changed, or its main process is gone
 * (killed: its cgroup may be empty now). May free g. */
void teardown_poke(struct generation *g);
/* Gives back the blocks whose links are gone (done by itself soon after a
 * removal). now: links still there are deleted by request, for a pool
 * that has no other free block, and at gend's end. */
void release_look(struct gend *d, bool now);
int gen_count(struct generation *g);
/* Live generations' processes and connections (of one service, or all),
 * for gen list: one walk of the conntrack table, and none when not needed. */
int gend_count_all(struct gend *d, struct service *only);
int limits_watch_start(struct gend *d);
void limits_watch_update(struct gend *d);      /* after a state change */
