/* gend's model: services, their generations, and the daemon around them. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "../policy/policy.h"
#include "../sandbox/limits.h"
#include "../sandbox/naming.h"
#include "fsm.h"
#include "probe.h"

struct gend;
struct service;
struct client;

struct generation {
        struct service *svc;
        struct generation *next;
        unsigned n;
        enum gen_state state;
        char *failure;                  /* why it failed, for gen list */

        pid_t pid;                      /* main process, 0 once reaped */
        int pidfd;
        int exit_status;                /* wait status, when exited */
        bool exited;

        unsigned block;                 /* address block in the pool */
        bool has_block;
        uint32_t addr, host_addr;
        char veth[IFNAME_MAX];
        bool has_veth;                  /* made by this generation */
        char *netns;                    /* NULL until made */
        char *cgroup;                   /* absolute path, NULL until made */
        char *log_path;
        struct gen_limits limits;
        unsigned oom_kills, pids_refused; /* from the limit cgroups' events */

        uint64_t created_usec, ready_usec, drain_usec; /* CLOCK_MONOTONIC */
        uint64_t created_realtime;
        unsigned baseline;              /* processes when it became ready */
        unsigned procs, conns;          /* last counted */

        struct probe *probe;
        struct probe_target probe_target;
        char **env;                     /* its environment, for exec probes too */
        char *directory;                /* its release directory */
        bool switch_when_ready;
        unsigned replaced;              /* the generation a switch to it replaced */

        /* draining */
        sd_event_source *drain_timer, *deadline_timer;
        uint64_t quiet_since;
        uint64_t ct_next, ct_backoff;   /* when to count connections again */
        unsigned quiet_level;
        uint64_t drain_timeout_usec;    /* gen retire --timeout, 0: the policy's */
        bool forced;                    /* --now, or the deadline passed */

        /* teardown: freeze, kill, remove */
        sd_event_source *cg_watch, *teardown_timer;
        int teardown_step;
        bool torn_down;
};

struct service {
        struct gend *d;
        struct service *next;
        struct policy *policy;
        struct generation *gens;        /* ascending n */
        unsigned next_gen;
        struct generation *active;      /* what the rules point at */
        bool has_rules;
        bool has_udp;                   /* a UDP port: switches flush UDP conntrack */
        bool rules_busy;                /* a commit for it is in flight */
};

struct gend {
        sd_event *event;
        struct service *services;
        char *config_dir, *run_dir, *state_dir, *log_dir, *profile_dir;
        char *cgroup_base;
        struct limits_host limits;
        sd_event_source *events_timer;
        struct pool pool;
        uint8_t *blocks_used;
        struct fwd *fwd;
        struct ct *ct;
        struct client *clients;
        int listen_fd;
        char *socket_path;
};

/* Events a generation reports to whoever waits on it (control.c). */
enum gen_report {
        REPORT_PROGRESS,
        REPORT_READY,
        REPORT_SWITCHED,
        REPORT_FAILED,                  /* never ready, or switch failed */
        REPORT_RETIRED,
};
void control_report(struct generation *g, enum gen_report what, const char *msg);

/* generation.c */
void gen_transition(struct generation *g, enum gen_event e);
void gen_torn_down(struct generation *g);
struct service *service_find(struct gend *d, const char *name);
struct generation *gen_find(struct service *s, unsigned n);
int gen_new(struct service *s, const char *dir, bool do_switch, struct generation **ret);
int gen_switch(struct generation *g);
int gen_rollback(struct service *s, struct generation **ret);
int gen_retire(struct generation *g, bool force, bool now, uint64_t timeout_usec);
void gen_child_exited(struct gend *d, pid_t pid, int status);
unsigned gend_live_count(struct gend *d, unsigned *ret_services);
void services_free(struct gend *d);
uint64_t gen_age_usec(const struct generation *g);
void gen_log_path(struct gend *d, const char *svc, unsigned n, char **ret);

/* drain.c */
int drain_start(struct generation *g);
int drain_rearm(struct generation *g);          /* new deadline or --now */
void drain_stop(struct generation *g);
int teardown_start(struct generation *g);
int gen_count(struct generation *g);
/* Live generations' processes and connections (of one service, or all),
 * for gen list: one walk of the conntrack table, and none when not needed. */
int gend_count_all(struct gend *d, struct service *only);
int limits_watch_start(struct gend *d);
