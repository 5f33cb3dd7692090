#include "fsm.h"

#include <errno.h>

#define _ (-1)

/* Rows: states; columns: events. */
static const signed char table[_GEN_STATE_MAX][_EV_MAX] = {
        /*               PROBE_OK   PROBE_FAIL  EXIT          ACTIVATE    DEACTIVATE    RETIRE        QUIESCENT   DEADLINE    KILLED */
        [GEN_STARTING] = { GEN_READY, GEN_FAILED, GEN_FAILED,   _,          _,            _,            _,          _,          _ },
        [GEN_READY]    = { _,         _,          GEN_FAILED,   GEN_ACTIVE, _,            GEN_DRAINING, _,          _,          _ },
        [GEN_ACTIVE]   = { _,         _,          GEN_FAILED,   _,          GEN_DRAINING, _,            _,          _,          _ },
        [GEN_DRAINING] = { _,         _,          GEN_DRAINING, GEN_ACTIVE, _,            GEN_DRAINING, GEN_FROZEN, GEN_FROZEN, _ },
        [GEN_FROZEN]   = { _,         _,          GEN_FROZEN,   _,          _,            _,            _,          _,          GEN_RETIRED },
        [GEN_RETIRED]  = { _,         _,          _,            _,          _,            _,            _,          _,          _ },
        [GEN_FAILED]   = { _,         _,          GEN_FAILED,   _,          _,            GEN_RETIRED,  _,          _,          _ },
};

int fsm_next(enum gen_state s, enum gen_event e) {
        if ((unsigned)s >= _GEN_STATE_MAX || (unsigned)e >= _EV_MAX || table[s][e] < 0)
                return -EINVAL;
        return table[s][e];
}

const char *gen_state_to_string(enum gen_state s) {
        static const char *const names[_GEN_STATE_MAX] = {
                "starting", "ready", "active", "draining", "frozen", "retired", "failed",
        };
        return (unsigned)s < _GEN_STATE_MAX ? names[s] : "?";
}

const char *gen_event_to_string(enum gen_event e) {
        static const char *const names[_EV_MAX] = {
                "probe-ok", "probe-fail", "exit", "activate", "deactivate",
                "retire", "quiescent", "deadline", "killed",
        };
        return (unsigned)e < _EV_MAX ? names[e] : "?";
}

int gen_state_is_live(enum gen_state s) {
        return s != GEN_RETIRED && s != GEN_FAILED;
}
