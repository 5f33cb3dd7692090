#include "fsm.h"

#include <errno.h>
#include <string.h>

#define _ (-1)
#define STARTING GEN_STARTING
#define READY GEN_READY
#define SWITCHING GEN_SWITCHING
#define ACTIVE GEN_ACTIVE
#define DRAINING GEN_DRAINING
#define FROZEN GEN_FROZEN
#define RETIRED GEN_RETIRED
#define FAILING GEN_FAILING
#define FAILED GEN_FAILED

/* Rows: states; columns: events. */
static const signed char table[_GEN_STATE_MAX][_EV_MAX] = {
        /*              PROBE_OK PROBE_FAIL EXIT      SWITCH     SWITCHED SWITCH_FAILED DEACTIVATE RETIRE    QUIESCENT DEADLINE GONE */
        [STARTING]  = { READY,   FAILING,   FAILING,  _,         _,       _,            _,         _,        _,        _,       _ },
        [READY]     = { _,       _,         FAILING,  SWITCHING, _,       _,            _,         DRAINING, _,        _,       _ },
        [SWITCHING] = { _,       _,         FAILING,  _,         ACTIVE,  READY,        _,         _,        _,        _,       _ },
        [ACTIVE]    = { _,       _,         FAILING,  _,         _,       _,            DRAINING,  _,        _,        _,       _ },
        [DRAINING]  = { _,       _,         DRAINING, SWITCHING, _,       _,            _,         DRAINING, FROZEN,   FROZEN,  _ },
        [FROZEN]    = { _,       _,         FROZEN,   _,         _,       _,            _,         _,        _,        _,       RETIRED },
        [RETIRED]   = { _,       _,         _,        _,         _,       _,            _,         _,        _,        _,       _ },
        [FAILING]   = { _,       _,         FAILING,  _,         _,       _,            _,         _,        _,        _,       FAILED },
        [FAILED]    = { _,       _,         _,        _,         _,       _,            _,         RETIRED,  _,        _,       _ },
};

static const char *const state_names[_GEN_STATE_MAX] = {
        "starting", "ready", "switching", "active", "draining", "frozen", "retired",
        "failing", "failed",
};

int fsm_next(enum gen_state s, enum gen_event e) {
        if ((unsigned)s >= _GEN_STATE_MAX || (unsigned)e >= _EV_MAX || table[s][e] < 0)
                return -EINVAL;
        return table[s][e];
}

const char *gen_state_to_string(enum gen_state s) {
        return (unsigned)s < _GEN_STATE_MAX ? state_names[s] : "?";
}

int gen_state_from_string(const char *s) {
        for (int i = 0; i < _GEN_STATE_MAX; i++)
                if (strcmp(s, state_names[i]) == 0)
                        return i;
        return -EINVAL;
}

const char *gen_event_to_string(enum gen_event e) {
        static const char *const names[_EV_MAX] = {
                "probe-ok", "probe-fail", "exit", "switch", "switched", "switch-failed",
                "deactivate", "retire", "quiescent", "deadline", "gone",
        };
        return (unsigned)e < _EV_MAX ? names[e] : "?";
}

int gen_state_is_live(enum gen_state s) {
        return s != GEN_RETIRED && s != GEN_FAILED;
}
