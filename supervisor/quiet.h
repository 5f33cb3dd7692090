/* When a draining generation is quiescent (DESIGN.md, "Quiescence,
 * precisely"), as a pure decision over what the drain has seen, so it is
 * unit-tested without a kernel.
 *
 * Quiescent: the process count at its quiet level, no live marked
 * connection, and the idle probe (if the policy has one) passing, all of
 * them continuously for settle. Processes and connections are followed
 * by events, so each has a "since"; the idle probe is asked now and
 * then, so "continuously" means a streak of passing runs that began (the
 * first run's start) at or before the window and a passing run started
 * at or after its end. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct quiet_view {
        uint64_t now, settle;           /* usec, CLOCK_MONOTONIC */
        uint64_t procs_since;           /* at the quiet level since; 0: above it */
        uint64_t conns_since;           /* no live connection since; 0: some, or not known */
        bool idle;                      /* the policy has an idle probe */
        bool no_procs;                  /* not one process left: no task can run */
        uint64_t idle_since;            /* start of the first passing run of the
                                         * current streak; 0: the last run failed */
        uint64_t idle_last;             /* start of the latest passing run */
};

enum quiet_step {
        QUIET_WAIT,                     /* not quiet, or not for settle yet */
        QUIET_CONFIRM,                  /* all held: one more idle run closes the window */
        QUIET_DONE,                     /* quiescent */
};

/* The next step; *ret_since (if not NULL) says since when all has been
 * quiet (0: not quiet), so the window ends at since + settle. */
enum quiet_step quiet_decide(const struct quiet_view *v, uint64_t *ret_since);
const char *quiet_step_to_string(enum quiet_step s);
