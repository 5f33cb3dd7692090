/* What a forced drain cut. A drain that the deadline or --now ends is
 * never clean: what was still running is collected at that moment (the
 * processes above the quiet level with their command lines, the live
 * connections with their peers, the idle probe's last word), said in the
 * log, sent with the retired event, kept in the generation's record, and
 * shown by gen list for a while after it is gone. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct generation;

enum forced_by {
        FORCED_NOT,                     /* clean: quiescent */
        FORCED_TIMEOUT,                 /* the drain timeout passed */
        FORCED_NOW,                     /* gen retire --now */
        _FORCED_MAX,
};

#define CUT_LIST_MAX 32                 /* processes and connections listed, each */

struct cut_proc {
        int pid;
        char *cmdline;
};

struct cut_conn {
        char proto[8];
        char peer[24], to[24];          /* a.b.c.d:port */
        char state[16];
};

struct drain_cut {
        enum forced_by by;
        uint64_t after_usec;            /* how long it had drained */
        unsigned procs, quiet_level, conns;
        struct cut_proc proc[CUT_LIST_MAX];     /* the newest processes above the quiet level */
        unsigned n_proc;
        struct cut_conn conn[CUT_LIST_MAX];
        unsigned n_conn;
        char *idle_probe;               /* the policy's idle probe, NULL: none */
        bool idle_valid, idle_passed, idle_truncated;
        uint64_t idle_age_usec;         /* of its last result, at the cut */
        char *idle_why, *idle_output;
};

const char *forced_by_to_string(enum forced_by b);
int forced_by_from_string(const char *s);
/* At the deadline or --now, before the generation is frozen: its counts
 * (g->procs, g->conns) as they are now, and what they are made of. */
int cut_collect(struct generation *g, enum forced_by by, struct drain_cut **ret);
void cut_free(struct drain_cut *c);
json_t *cut_to_json(const struct drain_cut *c);
int cut_from_json(json_t *j, struct drain_cut **ret);
/* The warning in gend's log: one line, then one per thing cut. */
void cut_log(const char *svc, unsigned n, const struct drain_cut *c);
