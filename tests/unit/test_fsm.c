#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "../../supervisor/fsm.h"

static void test_lifecycle(void **state) {
        (void)state;
        /* The path of a deployment. */
        assert_int_equal(fsm_next(GEN_STARTING, EV_PROBE_OK), GEN_READY);
        assert_int_equal(fsm_next(GEN_READY, EV_SWITCH), GEN_SWITCHING);
        assert_int_equal(fsm_next(GEN_SWITCHING, EV_SWITCHED), GEN_ACTIVE);
        assert_int_equal(fsm_next(GEN_ACTIVE, EV_DEACTIVATE), GEN_DRAINING);
        assert_int_equal(fsm_next(GEN_DRAINING, EV_QUIESCENT), GEN_FROZEN);
        assert_int_equal(fsm_next(GEN_DRAINING, EV_DEADLINE), GEN_FROZEN);
        assert_int_equal(fsm_next(GEN_FROZEN, EV_GONE), GEN_RETIRED);
        /* Failures: removed first, then failed. */
        assert_int_equal(fsm_next(GEN_STARTING, EV_PROBE_FAIL), GEN_FAILING);
        assert_int_equal(fsm_next(GEN_STARTING, EV_EXIT), GEN_FAILING);
        assert_int_equal(fsm_next(GEN_ACTIVE, EV_EXIT), GEN_FAILING);
        assert_int_equal(fsm_next(GEN_SWITCHING, EV_EXIT), GEN_FAILING);
        assert_int_equal(fsm_next(GEN_FAILING, EV_GONE), GEN_FAILED);
        /* A switch that did not apply leaves it ready. */
        assert_int_equal(fsm_next(GEN_SWITCHING, EV_SWITCH_FAILED), GEN_READY);
        /* Rollback: a draining generation becomes active again. */
        assert_int_equal(fsm_next(GEN_DRAINING, EV_SWITCH), GEN_SWITCHING);
        /* Retire of a ready one drains it; of a failed one drops it. */
        assert_int_equal(fsm_next(GEN_READY, EV_RETIRE), GEN_DRAINING);
        assert_int_equal(fsm_next(GEN_FAILED, EV_RETIRE), GEN_RETIRED);
        /* The main process may end while draining: the drain goes on. */
        assert_int_equal(fsm_next(GEN_DRAINING, EV_EXIT), GEN_DRAINING);
}

static void test_refused(void **state) {
        (void)state;
        /* Only a ready (or draining) generation is switched to. */
        assert_int_equal(fsm_next(GEN_STARTING, EV_SWITCH), -EINVAL);
        assert_int_equal(fsm_next(GEN_FAILED, EV_SWITCH), -EINVAL);
        assert_int_equal(fsm_next(GEN_FROZEN, EV_SWITCH), -EINVAL);
        assert_int_equal(fsm_next(GEN_SWITCHING, EV_SWITCH), -EINVAL);
        assert_int_equal(fsm_next(GEN_READY, EV_SWITCHED), -EINVAL);
        /* The active one is not retired directly: it is deactivated first. */
        assert_int_equal(fsm_next(GEN_ACTIVE, EV_RETIRE), -EINVAL);
        /* Nothing brings a dying generation back. */
        for (int e = 0; e < _EV_MAX; e++) {
                assert_true(fsm_next(GEN_FAILING, e) < 0 || e == EV_GONE || e == EV_EXIT);
                assert_true(fsm_next(GEN_FROZEN, e) < 0 || e == EV_GONE || e == EV_EXIT);
        }
        /* Retired is final. */
        for (int e = 0; e < _EV_MAX; e++)
                assert_int_equal(fsm_next(GEN_RETIRED, e), -EINVAL);
        assert_int_equal(fsm_next(_GEN_STATE_MAX, EV_EXIT), -EINVAL);
        assert_int_equal(fsm_next(GEN_READY, _EV_MAX), -EINVAL);
}

static void test_names(void **state) {
        (void)state;
        for (int s = 0; s < _GEN_STATE_MAX; s++)
                assert_string_not_equal(gen_state_to_string(s), "?");
        for (int e = 0; e < _EV_MAX; e++)
                assert_string_not_equal(gen_event_to_string(e), "?");
        assert_string_equal(gen_state_to_string(GEN_DRAINING), "draining");
        assert_string_equal(gen_state_to_string(_GEN_STATE_MAX), "?");
        for (int s = 0; s < _GEN_STATE_MAX; s++)
                assert_int_equal(gen_state_from_string(gen_state_to_string(s)), s);
        assert_int_equal(gen_state_from_string("nonsense"), -EINVAL);
        assert_true(gen_state_is_live(GEN_DRAINING));
        assert_false(gen_state_is_live(GEN_FAILED));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_lifecycle), cmocka_unit_test(test_refused),
                cmocka_unit_test(test_names),
        };
        return cmocka_run_group_tests_name("fsm", tests, NULL, NULL);
}
