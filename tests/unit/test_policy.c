#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <linux/capability.h>

#include "../../policy/policy.h"
#include "../../sandbox/util.h"

static const char good[] =
        "[service]\n"
        "exec = /usr/bin/php easyswoole start 'produce mode'\n"
        "directory = /srv/web/current        # gen new --dir overrides\n"
        "user = www-data\n"
        "environment = APP_ENV=prod\n"
        "environment = LANG=C.UTF-8\n"
        "\n"
        "[listen]\n"
        "port = 80:9501/tcp\n"
        "port = 8443:9502\n"
        "port = 5353:53/udp\n"
        "[ready]\n"
        "probe = http GET /health 200\n"
        "timeout = 10s\n"
        "[drain]\n"
        "quiet-procs = 3\n"
        "settle = 200ms\n"
        "stop-signal = SIGTERM\n"
        "timeout = 2m\n"
        "[limits]\n"
        "memory = 512M\n"
        "pids = 512\n"
        "cpu = 1.5\n"
        "nofile = 65536\n"
        "[sandbox]\n"
        "capabilities = CAP_NET_BIND_SERVICE\n"
        "seccomp = strict\n"
        "private-tmp = yes\n";

static void test_good(void **state) {
        struct policy *p = NULL;
        (void)state;
        assert_int_equal(policy_parse_string("web", good, &p), 0);
        assert_string_equal(p->argv[0], "/usr/bin/php");
        assert_string_equal(p->argv[3], "produce mode");
        assert_null(p->argv[4]);
        assert_string_equal(p->directory, "/srv/web/current");
        assert_string_equal(p->user, "www-data");
        assert_int_equal(strv_length(p->env), 2);
        assert_int_equal(p->n_ports, 3);
        assert_int_equal(p->ports[0].public_port, 80);
        assert_int_equal(p->ports[0].inner_port, 9501);
        assert_int_equal(p->ports[1].proto, IPPROTO_TCP);
        assert_int_equal(p->ports[2].proto, IPPROTO_UDP);
        assert_int_equal(p->probe, PROBE_HTTP);
        assert_string_equal(p->probe_path, "/health");
        assert_int_equal(p->probe_status, 200);
        assert_int_equal(p->ready_timeout_usec, 10 * USEC_PER_SEC);
        assert_int_equal(p->quiet_procs, 3);
        assert_int_equal(p->settle_usec, 200 * USEC_PER_MSEC);
        assert_int_equal(p->stop_signal, SIGTERM);
        assert_int_equal(p->drain_timeout_usec, 120 * USEC_PER_SEC);
        assert_int_equal(p->memory_max, 512ULL << 20);
        assert_int_equal(p->pids_max, 512);
        assert_int_equal(p->cpu_milli, 1500);
        assert_int_equal(p->nofile, 65536);
        assert_true(p->caps_set);
        assert_int_equal(p->caps, 1ULL << CAP_NET_BIND_SERVICE);
        assert_string_equal(p->seccomp, "strict");
        assert_true(p->private_tmp);
        assert_true(p->new_uts);
        policy_free(p);
}

static void test_defaults(void **state) {
        struct policy *p = NULL;
        (void)state;
        assert_int_equal(policy_parse_string("api", "[service]\nexec=/bin/srv\n[listen]\nport=8080:80\n", &p), 0);
        assert_int_equal(p->probe, PROBE_TCP);
        assert_int_equal(p->quiet_procs, QUIET_BASELINE);
        assert_int_equal(p->settle_usec, 200 * USEC_PER_MSEC);
        assert_int_equal(p->drain_timeout_usec, 60 * USEC_PER_SEC);
        assert_int_equal(p->ready_timeout_usec, 10 * USEC_PER_SEC);
        assert_int_equal(p->stop_signal, 0);
        assert_false(p->caps_set);
        assert_null(p->seccomp);
        assert_null(p->user);
        policy_free(p);
}

/* Each bad file fails with file:line and words that say what is allowed. */
static void test_bad(void **state) {
        static const struct { const char *text, *expect; } cases[] = {
                { "[service]\nexec=/bin/x\n[listen]\nport=80:9501\n[drain]\nsettle = soon\n",
                  "web:6: [drain] settle: 'soon' is not a duration" },
                { "[service]\nexec=/bin/x\nfoo=1\n", "web:3: unknown key 'foo' in [service] (allowed: exec," },
                { "[bogus]\nkey = 1\n", "web:2: unknown section [bogus]" },
                { "[listen]\nport=80:9501\n", "[service] exec is missing" },
                { "[service]\nexec=/bin/x\n", "[listen] port is missing" },
                { "[service]\nexec=bin/x\n", "web:2: [service] exec: the program must be an absolute path" },
                { "[service]\nexec=/bin/x 'open\n", "cannot split" },
                { "[service]\nexec=/bin/x\n[listen]\nport=70000:1\n", "web:4: [listen] port: must be PUBLIC:INSIDE" },
                { "[service]\nexec=/bin/x\n[listen]\nport=80:1\nport=80:2\n", "listed twice" },
                { "[service]\nexec=/bin/x\n[listen]\nport=80:1\n[ready]\nprobe=http GET health 200\n", "must be 'tcp', 'http GET /PATH STATUS' or 'exec /PATH [ARGS]'" },
                { "[service]\nexec=/bin/x\n[listen]\nport=80:1\n[drain]\nquiet-procs=some\n", "must be 'baseline' or a number" },
                { "[service]\nexec=/bin/x\n[listen]\nport=80:1\n[drain]\nstop-signal=KILL\n", "must be none, SIGHUP" },
                { "[service]\nexec=/bin/x\n[listen]\nport=80:1\n[sandbox]\ncapabilities=CAP_FLY\n", "'CAP_FLY' is not a capability name" },
                { "[service]\nexec=/bin/x\n[listen]\nport=80:1\n[limits]\nmemory=1K\n", "at least 4M" },
                { "[service]\nexec=/bin/x\n[listen]\nport=80:1\n[sandbox]\nseccomp=loose\n", "must be 'default', 'strict'" },
                { "[service]\nexec=/bin/x\nuser=\n", "web:3: [service] user: empty value" },
                { "[service]\nexec=/bin/x\nthis line has no equals sign\n", "web:3: syntax error" },
        };
        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct policy *p = NULL;
                int r = policy_parse_string("web", cases[i].text, &p);
                if (r >= 0 || !strstr(err_msg(), cases[i].expect))
                        fail_msg("case %zu: got \"%s\", want \"%s\"", i, r < 0 ? err_msg() : "success",
                                 cases[i].expect);
                assert_null(p);
        }
}

static void test_exec_probe(void **state) {
        struct policy *p = NULL;
        (void)state;
        assert_int_equal(policy_parse_string("web", "[service]\nexec=/x\n[listen]\nport=80:1\n"
                                             "[ready]\nprobe = exec /bin/sh -c 'test -e ok'\n", &p), 0);
        assert_int_equal(p->probe, PROBE_EXEC);
        assert_string_equal(p->probe_argv[0], "/bin/sh");
        assert_string_equal(p->probe_argv[2], "test -e ok");
        assert_null(p->probe_argv[3]);
        policy_free(p);
        p = NULL;
        assert_true(policy_parse_string("web", "[service]\nexec=/x\n[listen]\nport=80:1\n"
                                        "[ready]\nprobe = exec check.sh\n", &p) < 0);
        assert_non_null(strstr(err_msg(), "'exec /PATH [ARGS]'"));
}

static void test_names(void **state) {
        (void)state;
        assert_true(policy_name_valid("web"));
        assert_true(policy_name_valid("api-v2_x"));
        assert_false(policy_name_valid(""));
        assert_false(policy_name_valid("-web"));
        assert_false(policy_name_valid("Web"));
        assert_false(policy_name_valid("web.x"));
        assert_false(policy_name_valid("abcdefghijklmnopqrstu"));   /* 21 characters */
}

static void test_words(void **state) {
        char **w = NULL;
        (void)state;
        assert_int_equal(split_words("  /bin/a  'b c' \"d \\\"e\\\"\" f\\ g h''i ", &w), 0);
        assert_int_equal(strv_length(w), 5);
        assert_string_equal(w[0], "/bin/a");
        assert_string_equal(w[1], "b c");
        assert_string_equal(w[2], "d \"e\"");
        assert_string_equal(w[3], "f g");
        assert_string_equal(w[4], "hi");
        strv_free(w);
        w = NULL;
        assert_int_equal(split_words("'unterminated", &w), -EINVAL);
        assert_int_equal(split_words("   ", &w), -EINVAL);
        assert_int_equal(split_words("a \\", &w), -EINVAL);
}

static void test_values(void **state) {
        uint64_t v;
        struct port_map m;
        int sig;
        (void)state;
        assert_int_equal(parse_duration("250ms", &v), 0);
        assert_int_equal(v, 250000);
        assert_int_equal(parse_duration("1.5s", &v), 0);
        assert_int_equal(v, 1500000);
        assert_int_equal(parse_duration("1h", &v), 0);
        assert_int_equal(v, 3600ULL * 1000000);
        assert_int_equal(parse_duration("10", &v), -EINVAL);
        assert_int_equal(parse_duration("-1s", &v), -EINVAL);
        assert_int_equal(parse_duration("s", &v), -EINVAL);
        assert_int_equal(parse_size("2G", &v), 0);
        assert_int_equal(v, 2ULL << 30);
        assert_int_equal(parse_size("12X", &v), -EINVAL);
        assert_int_equal(parse_port_map("80:9501/tcp", &m), 0);
        assert_int_equal(m.public_port, 80);
        assert_int_equal(parse_port_map("80:0", &m), -EINVAL);
        assert_int_equal(parse_port_map("80", &m), -EINVAL);
        assert_int_equal(parse_port_map("80:81/sctp", &m), -EINVAL);
        assert_int_equal(parse_port_map(":81", &m), -EINVAL);
        assert_int_equal(parse_signal("SIGQUIT", &sig), 0);
        assert_int_equal(sig, SIGQUIT);
        assert_int_equal(parse_signal("none", &sig), 0);
        assert_int_equal(sig, 0);
        assert_int_equal(parse_signal("SIGKILL", &sig), -EINVAL);
}

static void test_conflicts(void **state) {
        struct policy *a = NULL, *b = NULL;
        (void)state;
        assert_int_equal(policy_parse_string("a", "[service]\nexec=/x\n[listen]\nport=80:1\n", &a), 0);
        assert_int_equal(policy_parse_string("b", "[service]\nexec=/x\n[listen]\nport=81:1\nport=80:2\n", &b), 0);
        struct policy *v[] = { a, b };
        assert_true(policy_check_conflicts(v, 2) < 0);
        assert_non_null(strstr(err_msg(), "both claim public port 80/tcp"));
        b->ports[1].proto = IPPROTO_UDP;
        assert_int_equal(policy_check_conflicts(v, 2), 0);
        policy_free(a);
        policy_free(b);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_good),     cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_bad),      cmocka_unit_test(test_names),
                cmocka_unit_test(test_words),    cmocka_unit_test(test_values),
                cmocka_unit_test(test_conflicts), cmocka_unit_test(test_exec_probe),
        };
        return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
