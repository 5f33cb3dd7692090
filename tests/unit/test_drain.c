/* The drain's pure parts: when a generation is quiescent (quiet.c), and
 * the [drain] keys of the idle probe. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "../../policy/policy.h"
#include "../../sandbox/util.h"
#include "../../supervisor/conntrack.h"
#include "../../supervisor/quiet.h"

#define MS 1000ULL

/* Settle 500 ms, an idle probe, at t = 10 s. */
static struct quiet_view view(void) {
        return (struct quiet_view){ .now = 10000 * MS, .settle = 500 * MS, .idle = true };
}

static void test_processes_alone(void **state) {
        struct quiet_view v = view();
        uint64_t since;
        (void)state;

        v.idle = false;
        v.conns_since = 1 * MS;
        assert_int_equal(quiet_decide(&v, &since), QUIET_WAIT);        /* above the level */
        assert_int_equal(since, 0);
        v.procs_since = v.now - 499 * MS;
        assert_int_equal(quiet_decide(&v, NULL), QUIET_WAIT);          /* not for settle yet */
        v.procs_since = v.now - 500 * MS;
        assert_int_equal(quiet_decide(&v, &since), QUIET_DONE);
        assert_int_equal(since, v.now - 500 * MS);
        v.settle = 0;                   /* the first quiet look is enough */
        v.procs_since = v.now;
        assert_int_equal(quiet_decide(&v, NULL), QUIET_DONE);
}

/* The case of pre-forked task workers: processes quiet all along, the
 * application busy. Only its word ends the drain. */
static void test_idle_probe_decides(void **state) {
        struct quiet_view v = view();
        uint64_t since;
        (void)state;

        v.procs_since = v.conns_since = 1 * MS;
        assert_int_equal(quiet_decide(&v, &since), QUIET_WAIT);        /* the probe says busy */
        assert_int_equal(since, 0);
        /* It passed 200 ms ago: not for settle yet. */
        v.idle_since = v.idle_last = v.now - 200 * MS;
        assert_int_equal(quiet_decide(&v, &since), QUIET_WAIT);
        assert_int_equal(since, v.now - 200 * MS);
        /* Passing since 600 ms, but nothing asked since: one more run closes the window. */
        v.idle_since = v.idle_last = v.now - 600 * MS;
        assert_int_equal(quiet_decide(&v, NULL), QUIET_CONFIRM);
        v.idle_last = v.now - 100 * MS;                 /* started after the window began + settle */
        assert_int_equal(quiet_decide(&v, NULL), QUIET_DONE);
        /* A failed run ends the streak. */
        v.idle_since = v.idle_last = 0;
        assert_int_equal(quiet_decide(&v, NULL), QUIET_WAIT);
}

/* The window starts when the later of processes and probe got quiet. */
static void test_window_is_the_later(void **state) {
        struct quiet_view v = view();
        uint64_t since;
        (void)state;

        v.conns_since = 1 * MS;
        v.idle_since = v.now - 5000 * MS;
        v.idle_last = v.now - 400 * MS;
        v.procs_since = v.now - 300 * MS;               /* a task process ended 300 ms ago */
        assert_int_equal(quiet_decide(&v, &since), QUIET_WAIT);
        assert_int_equal(since, v.now - 300 * MS);
        v.now += 200 * MS;                              /* 500 ms of quiet processes */
        assert_int_equal(quiet_decide(&v, NULL), QUIET_CONFIRM);   /* last run is too old */
        v.idle_last = v.now;
        assert_int_equal(quiet_decide(&v, NULL), QUIET_DONE);
        /* Processes above the level: the probe's word alone is not enough. */
        v.procs_since = 0;
        assert_int_equal(quiet_decide(&v, &since), QUIET_WAIT);
        assert_int_equal(since, 0);
}

/* Connections count as the rest: none live, for settle. */
static void test_connections(void **state) {
        struct quiet_view v = view();
        uint64_t since;
        (void)state;

        v.procs_since = v.idle_since = v.now - 800 * MS;
        v.idle_last = v.now - 100 * MS;
        assert_int_equal(quiet_decide(&v, &since), QUIET_WAIT);        /* some are live */
        assert_int_equal(since, 0);
        v.conns_since = v.now - 20 * MS;                /* the last one closed 20 ms ago */
        assert_int_equal(quiet_decide(&v, &since), QUIET_WAIT);
        assert_int_equal(since, v.now - 20 * MS);       /* the window ends 480 ms from now */
        v.now += 480 * MS;
        assert_int_equal(quiet_decide(&v, NULL), QUIET_CONFIRM);
        v.idle_last = v.now;
        assert_int_equal(quiet_decide(&v, NULL), QUIET_DONE);
}

/* No process left: nothing can run a task, nobody to ask. */
static void test_no_process_left(void **state) {
        struct quiet_view v = view();
        (void)state;

        v.procs_since = v.now - 500 * MS;
        v.no_procs = true;
        v.conns_since = v.now - 500 * MS;
        assert_int_equal(quiet_decide(&v, NULL), QUIET_DONE);
        assert_string_equal(quiet_step_to_string(QUIET_CONFIRM), "confirm");
}

/* The set of a draining generation's live connections, as events keep it. */
static void test_connection_set(void **state) {
        struct ct_ids s = {};
        (void)state;

        for (int id = 1000; id > 0; id -= 7)
                assert_int_equal(ct_ids_add(&s, (uint32_t)id), 1);
        assert_int_equal(s.n, 143);
        assert_int_equal(ct_ids_add(&s, 993), 0);       /* there already */
        assert_int_equal(s.n, 143);
        for (unsigned i = 1; i < s.n; i++)
                assert_true(s.v[i - 1] < s.v[i]);
        assert_true(ct_ids_has(&s, 6));
        assert_false(ct_ids_has(&s, 7));
        assert_true(ct_ids_del(&s, 6));
        assert_false(ct_ids_del(&s, 6));                /* a destroy of what it never had */
        assert_true(ct_ids_del(&s, 1000));
        assert_int_equal(s.n, 141);
        while (s.n)
                assert_true(ct_ids_del(&s, s.v[s.n / 2]));
        assert_int_equal(ct_ids_add(&s, UINT32_MAX), 1);
        assert_true(ct_ids_has(&s, UINT32_MAX));
        ct_ids_clear(&s);
        assert_int_equal(s.n, 0);
        assert_null(s.v);
}

static const char *with(const char *drain) {
        static char buf[1024];
        snprintf(buf, sizeof(buf), "[service]\nexec = /bin/x\n[listen]\nport = 80:9501\n[drain]\n%s",
                 drain);
        return buf;
}

static void test_idle_keys(void **state) {
        struct policy *p = NULL;
        (void)state;

        assert_int_equal(policy_parse_string("web", with("settle = 1s\n"), &p), 0);
        assert_int_equal(p->idle, IDLE_NONE);
        assert_int_equal(p->idle_interval_usec, USEC_PER_SEC);
        assert_int_equal(p->idle_timeout_usec, 5 * USEC_PER_SEC);
        assert_int_equal(p->poll_interval_usec, 50 * MS);
        policy_free(p);
        assert_int_equal(policy_parse_string("web", with("poll-interval = 1s\n"), &p), 0);
        assert_int_equal(p->poll_interval_usec, USEC_PER_SEC);
        policy_free(p);

        assert_int_equal(policy_parse_string("web", with("idle = exec /usr/bin/php easyswoole "
                                                         "task status\nidle-interval = 250ms\n"
                                                         "idle-timeout = 2s\n"), &p), 0);
        assert_int_equal(p->idle, IDLE_EXEC);
        assert_string_equal(p->idle_argv[0], "/usr/bin/php");
        assert_string_equal(p->idle_argv[3], "status");
        assert_null(p->idle_argv[4]);
        assert_int_equal(p->idle_interval_usec, 250 * MS);
        assert_int_equal(p->idle_timeout_usec, 2 * USEC_PER_SEC);
        policy_free(p);

        assert_int_equal(policy_parse_string("web", with("idle = http GET /tasks 200\n"), &p), 0);
        assert_int_equal(p->idle, IDLE_HTTP);
        assert_string_equal(p->idle_path, "/tasks");
        assert_int_equal(p->idle_status, 200);
        policy_free(p);

        assert_int_equal(policy_parse_string("web", with("idle = none\n"), &p), 0);
        assert_int_equal(p->idle, IDLE_NONE);
        policy_free(p);
}

static void test_idle_errors(void **state) {
        static const struct { const char *drain, *msg; } bad[] = {
                { "idle = exec php status\n", "web:6: [drain] idle: must be 'exec /PATH [ARGS]', "
                  "'http GET /PATH STATUS' or 'none', not 'exec php status'" },
                { "idle = http GET /tasks\n", "web:6: [drain] idle: must be" },
                { "idle = http GET /tasks 99\n", "web:6: [drain] idle: '99' is not an HTTP status" },
                { "idle = tcp\n", "web:6: [drain] idle: must be" },
                { "idle = exec '/bin/x\n", "web:6: [drain] idle: cannot split" },
                { "idle-interval = 5ms\n", "web:6: [drain] idle-interval: '5ms' is out of range: "
                  "10ms to 10m" },
                { "idle-interval = often\n", "web:6: [drain] idle-interval: 'often' is not a "
                  "duration" },
                { "idle-timeout = 0s\n", "web:6: [drain] idle-timeout: '0s' is out of range: more "
                  "than 0, at most 10m" },
                { "idle-timeout = 11m\n", "web:6: [drain] idle-timeout: '11m' is out of range" },
                { "poll-interval = 5ms\n", "web:6: [drain] poll-interval: '5ms' is out of range: "
                  "10ms to 10s" },
                { "poll-interval = 11s\n", "web:6: [drain] poll-interval: '11s' is out of range" },
                { "idle = none\nidle = none\n", "web:7: [drain] idle given again (first at line 6)" },
                { "idle-delay = 1s\n", "unknown key 'idle-delay' in [drain] (allowed: quiet-procs, "
                  "settle, stop-signal, timeout, idle, idle-interval, idle-timeout, poll-interval)" },
        };
        (void)state;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct policy *p = NULL;
                assert_int_equal(policy_parse_string("web", with(bad[i].drain), &p), -EINVAL);
                assert_null(p);
                if (!strstr(err_msg(), bad[i].msg))
                        fail_msg("%s: got '%s', want '%s'", bad[i].drain, err_msg(), bad[i].msg);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_processes_alone), cmocka_unit_test(test_idle_probe_decides),
                cmocka_unit_test(test_window_is_the_later), cmocka_unit_test(test_connections),
                cmocka_unit_test(test_no_process_left), cmocka_unit_test(test_idle_keys),
                cmocka_unit_test(test_idle_errors), cmocka_unit_test(test_connection_set),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
