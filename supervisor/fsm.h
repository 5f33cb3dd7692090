/* The lifecycle of a generation, as one table (DESIGN.md). */
#pragma once

enum gen_state {
        GEN_STARTING,
        GEN_READY,
        GEN_ACTIVE,
        GEN_DRAINING,
        GEN_FROZEN,
        GEN_RETIRED,
        GEN_FAILED,
        _GEN_STATE_MAX,
};

enum gen_event {
        EV_PROBE_OK,            /* readiness probe passed */
        EV_PROBE_FAIL,          /* probe deadline passed */
        EV_EXIT,                /* main process exited */
        EV_ACTIVATE,            /* rules now point at it */
        EV_DEACTIVATE,          /* rules point elsewhere (or nowhere) */
        EV_RETIRE,              /* operator asked */
        EV_QUIESCENT,           /* drained */
        EV_DEADLINE,            /* drain timeout */
        EV_KILLED,              /* cgroup empty and removed */
        _EV_MAX,
};

/* The next state, or -EINVAL where the event is not allowed. */
int fsm_next(enum gen_state s, enum gen_event e);
const char *gen_state_to_string(enum gen_state s);
const char *gen_event_to_string(enum gen_event e);
/* Still has kernel objects (or will have): counts as live. */
int gen_state_is_live(enum gen_state s);
