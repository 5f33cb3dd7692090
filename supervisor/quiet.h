/* When a draining generation is quiescent (DESIGN.md, "Quiescence,
 * precisely"), as a pure decision over what the drain has seen, so it is
 * unit-tested without a kernel.
 *
 * Quiescent: the process count at its quiet level, the idle probe (if the
 * policy has one) passing, continuously for settle, and no live marked
 * connection. Processes are seen continuously; the idle probe is asked
 * now and then, so "continuously" means a streak of passing runs that
 * began (the first run's start) at or before the window and a passing
 * run started at or after its end. Connections of a draining generation
 * only go away (its mark only ever applied to new connections), so one
 * count of none is for good; it is the costly look (a conntrack dump), so
 * it is taken last. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct quiet_view {
        uint64_t now, settle;           /* usec, CLOCK_MONOTONIC */
        uint64_t procs_since;           /* at the quiet level since; 0: above it */
        bool idle;                      /* the policy has an idle probe */
        bool no_procs;                  /* not one process left: no task can run */
        uint64_t idle_since;            /* start of the first passing run of the
                                         * current streak; 0: the last run failed */
        uint64_t idle_last;             /* start of the latest passing run */
        bool conns_zero;                /* counted, and none */
};

enum quiet_step {
        QUIET_WAIT,                     /* not quiet, or not for settle yet */
        QUIET_COUNT_CONNS,              /* quiet for settle: count the connections */
        QUIET_CONFIRM,                  /* all held: one more idle run closes the window */
        QUIET_DONE,                     /* quiescent */
};

/* The next step; *ret_since (if not NULL) says since when it has been
 * quiet (0: not quiet). */
enum quiet_step quiet_decide(const struct quiet_view *v, uint64_t *ret_since);
const char *quiet_step_to_string(enum quiet_step s);
