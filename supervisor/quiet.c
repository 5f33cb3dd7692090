#include "quiet.h"

enum quiet_step quiet_decide(const struct quiet_view *v, uint64_t *ret_since) {
        bool ask = v->idle && !v->no_procs;
        uint64_t since = v->procs_since;

        if (since && ask && (!v->idle_since || v->idle_since > since))
                since = v->idle_since;
        if (ret_since)
                *ret_since = since;
        if (!since || v->now < since || v->now - since < v->settle)
                return QUIET_WAIT;
        if (!v->conns_zero)
                return QUIET_COUNT_CONNS;
        if (ask && v->idle_last < since + v->settle)
                return QUIET_CONFIRM;
        return QUIET_DONE;
}

const char *quiet_step_to_string(enum quiet_step s) {
        static const char *const names[] = { "wait", "count-conns", "confirm", "done" };
        return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}
