#include "quiet.h"

static uint64_t later(uint64_t a, uint64_t b) {
        return a > b ? a : b;
}

enum quiet_step quiet_decide(const struct quiet_view *v, uint64_t *ret_since) {
        bool ask = v->idle && !v->no_procs;
        uint64_t since = 0;

        if (v->procs_since && v->conns_since && (!ask || v->idle_since))
                since = later(later(v->procs_since, v->conns_since), ask ? v->idle_since : 0);
        if (ret_since)
                *ret_since = since;
        if (!since || v->now < since || v->now - since < v->settle)
                return QUIET_WAIT;
        if (ask && v->idle_last < since + v->settle)
                return QUIET_CONFIRM;
        return QUIET_DONE;
}

const char *quiet_step_to_string(enum quiet_step s) {
        static const char *const names[] = { "wait", "confirm", "done" };
        return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}
