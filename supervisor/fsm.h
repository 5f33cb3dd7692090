/* The lifecycle of a generation, as one table (DESIGN.md). Pure. The
 * table says which event moves which state where; generation.c runs the
 * entry and exit actions that belong to states. */
#pragma once

enum gen_state {
        GEN_STARTING,           /* made; its readiness probe runs */
        GEN_READY,              /* passed its probe; no rules point at it */
        GEN_SWITCHING,          /* a rule transaction pointing at it is in flight */
        GEN_ACTIVE,             /* the rules point at it */
        GEN_DRAINING,           /* rules point elsewhere; waiting for quiescence */
        GEN_FROZEN,             /* drained: being frozen, killed and removed */
        GEN_RETIRED,            /* gone */
        GEN_FAILING,            /* never made it, or died: being removed */
        GEN_FAILED,             /* removed; kept in the list until retired */
        _GEN_STATE_MAX,
};

enum gen_event {
        EV_PROBE_OK,            /* readiness probe passed */
        EV_PROBE_FAIL,          /* it never became ready, or could not be made */
        EV_EXIT,                /* main process exited */
        EV_SWITCH,              /* a rule transaction to it starts */
        EV_SWITCHED,            /* ... and applied */
        EV_SWITCH_FAILED,       /* ... and did not */
        EV_DEACTIVATE,          /* rules point elsewhere (or nowhere) */
        EV_RETIRE,              /* operator asked */
        EV_QUIESCENT,           /* drained */
        EV_DEADLINE,            /* drain timeout, or --now */
        EV_GONE,                /* its kernel objects are removed */
        _EV_MAX,
};

/* The next state, or -EINVAL where the event is not allowed. */
int fsm_next(enum gen_state s, enum gen_event e);
const char *gen_state_to_string(enum gen_state s);
int gen_state_from_string(const char *s);
const char *gen_event_to_string(enum gen_event e);
/* Still has kernel objects (or will have): counts as live. */
int gen_state_is_live(enum gen_state s);
