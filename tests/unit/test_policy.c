#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
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

/* Numbers: digits, an optional fraction where the unit allows it, nothing
 * else: no sign, exponent, hex or white space. */
static void test_numbers(void **state) {
        static const char *const bad_durations[] = {
                "0x10s", "1e9h", "1e3s", "1E3s", "+1s", "-1s", " 1s", "1s ", "1 s", ".5s", "1.s",
                "10", "s", "", "1.5.2s", "1ss", "1,5s", "infs", "nans", "1S", "1sec", "0x1p3s",
                "1.0000000001s",
        };
        static const char *const bad_sizes[] = {
                "1e18", "0x10", "0x10M", "+5M", "-5M", " 5M", "5 M", "5M ", "1.5", ".5G", "1.G",
                "12X", "5MB", "5KiB", "", "M", "1e3K",
        };
        static const char *const bad_counts[] = {
                "+1", "-1", "1.0", "0x10", "1e3", "", " 1", "1 ", "1 024", "1,024", "ten",
        };
        uint64_t v;
        (void)state;

        for (size_t i = 0; i < ELEMENTSOF(bad_durations); i++)
                if (parse_duration(bad_durations[i], &v) != -EINVAL)
                        fail_msg("duration '%s' was taken", bad_durations[i]);
        for (size_t i = 0; i < ELEMENTSOF(bad_sizes); i++)
                if (parse_size(bad_sizes[i], &v) != -EINVAL)
                        fail_msg("size '%s' was taken", bad_sizes[i]);
        for (size_t i = 0; i < ELEMENTSOF(bad_counts); i++)
                if (parse_count(bad_counts[i], &v) != -EINVAL)
                        fail_msg("count '%s' was taken", bad_counts[i]);

        assert_int_equal(parse_duration("0s", &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(parse_duration("200ms", &v), 0);
        assert_int_equal(v, 200000);
        assert_int_equal(parse_duration("0.5ms", &v), 0);
        assert_int_equal(v, 500);
        assert_int_equal(parse_duration("2min", &v), 0);
        assert_int_equal(v, 120 * USEC_PER_SEC);
        assert_int_equal(parse_duration("2m", &v), 0);
        assert_int_equal(v, 120 * USEC_PER_SEC);
        assert_int_equal(parse_duration("1.25h", &v), 0);
        assert_int_equal(v, 4500 * USEC_PER_SEC);
        assert_int_equal(parse_duration("1.123456789s", &v), 0);       /* truncated to us */
        assert_int_equal(v, 1123456);
        /* Past 64 bits: in the digits, or once the unit is applied. */
        assert_int_equal(parse_duration("99999999999999999999s", &v), -ERANGE);
        assert_int_equal(parse_duration("6000000000000h", &v), -ERANGE);

        assert_int_equal(parse_size("1.5G", &v), 0);
        assert_int_equal(v, 3ULL << 29);
        assert_int_equal(parse_size("512", &v), 0);
        assert_int_equal(v, 512);
        assert_int_equal(parse_size("0", &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(parse_size("64k", &v), 0);
        assert_int_equal(v, 64 << 10);
        assert_int_equal(parse_size("4T", &v), 0);
        assert_int_equal(v, 4ULL << 40);
        assert_int_equal(parse_size("20000000T", &v), -ERANGE);

        assert_int_equal(parse_count("007", &v), 0);
        assert_int_equal(v, 7);
        assert_int_equal(parse_count("18446744073709551615", &v), 0);
        assert_int_equal(v, UINT64_MAX);
        assert_int_equal(parse_count("18446744073709551616", &v), -ERANGE);

        assert_int_equal(parse_decimal("1.5", 1000, 3, &v), 0);
        assert_int_equal(v, 1500);
        assert_int_equal(parse_decimal("2", 1000, 3, &v), 0);
        assert_int_equal(v, 2000);
        assert_int_equal(parse_decimal("0.0005", 1000, 3, &v), -EINVAL);
        assert_int_equal(parse_decimal("1e3", 1000, 3, &v), -EINVAL);
}

/* A policy with the defaults around one [section] and its lines. */
static char *with(const char *extra) {
        char *s;
        assert_true(asprintf(&s, "[service]\nexec = /bin/x\n[listen]\nport = 80:9501\n%s",
                             extra) > 0);
        return s;
}

/* Parsing text must fail with a message that starts with want. */
static void expect_error(const char *text, const char *want) {
        struct policy *p = NULL;
        int r = policy_parse_string("web", text, &p);

        if (r >= 0 || strncmp(err_msg(), want, strlen(want)) != 0)
                fail_msg("%s\ngot:  %s\nwant: %s...", text, r < 0 ? err_msg() : "success",
                         want);
        assert_int_equal(r, -EINVAL);
        assert_null(p);
}

static void expect_ok(const char *text, struct policy **ret) {
        if (policy_parse_string("web", text, ret) < 0)
                fail_msg("%s\nfailed: %s", text, err_msg());
}

/* Each value out of its key's range names file:line, the key and the range. */
static void test_ranges(void **state) {
        static const struct { const char *lines, *want; } cases[] = {
                /* the examples of the issue */
                { "[ready]\ntimeout = 0s\n",
                  "web:6: [ready] timeout: '0s' is out of range: more than 0, at most 1h" },
                { "[ready]\ntimeout = 1e9h\n",
                  "web:6: [ready] timeout: '1e9h' is not a duration (use e.g. 200ms, 10s, 2m): "
                  "digits, an optional .fraction and a unit ms, s, m, min or h, without sign, "
                  "exponent or spaces; more than 0, at most 1h" },
                { "[drain]\nsettle = 0x10s\n",
                  "web:6: [drain] settle: '0x10s' is not a duration" },
                { "[limits]\ncore = 1e18\n",
                  "web:6: [limits] core: must be 0 or a size of at most 64T (bytes, or a number "
                  "with an optional .fraction and K, M, G or T, e.g. 512M), not '1e18'" },
                /* durations */
                { "[ready]\ntimeout = 61m\n", "web:6: [ready] timeout: '61m' is out of range: more than 0, at most 1h" },
                { "[ready]\ntimeout = 1000000000h\n", "web:6: [ready] timeout: '1000000000h' is out of range" },
                { "[ready]\ntimeout = 99999999999999999999h\n", "web:6: [ready] timeout: '99999999999999999999h' is out of range" },
                { "[ready]\ntimeout = 10\n", "web:6: [ready] timeout: '10' is not a duration" },
                { "[ready]\ntimeout = -1s\n", "web:6: [ready] timeout: '-1s' is not a duration" },
                { "[ready]\ntimeout = +1s\n", "web:6: [ready] timeout: '+1s' is not a duration" },
                { "[ready]\ntimeout = 1 s\n", "web:6: [ready] timeout: '1 s' is not a duration" },
                { "[drain]\nsettle = 11m\n", "web:6: [drain] settle: '11m' is out of range: 0 to 10m" },
                { "[drain]\nsettle = 1e2ms\n", "web:6: [drain] settle: '1e2ms' is not a duration" },
                { "[drain]\ntimeout = 0s\n", "web:6: [drain] timeout: '0s' is out of range: more than 0, at most 24h" },
                { "[drain]\ntimeout = 0.0000001s\n", "web:6: [drain] timeout: '0.0000001s' is out of range" },
                { "[drain]\ntimeout = 25h\n", "web:6: [drain] timeout: '25h' is out of range: more than 0, at most 24h" },
                /* counts */
                { "[drain]\nquiet-procs = -1\n", "web:6: [drain] quiet-procs: must be 'baseline' or a number of processes from 0 to 1000000, not '-1'" },
                { "[drain]\nquiet-procs = 0x10\n", "web:6: [drain] quiet-procs: must be 'baseline' or a number" },
                { "[limits]\npids = 0\n", "web:6: [limits] pids: must be a number of processes from 1 to 4194304 (digits only), not '0'" },
                { "[limits]\npids = 1e3\n", "web:6: [limits] pids: must be a number of processes from 1 to 4194304" },
                { "[limits]\npids = +5\n", "web:6: [limits] pids: must be a number of processes from 1 to 4194304" },
                { "[limits]\nnofile = 15\n", "web:6: [limits] nofile: must be a number of files from 16 to 1048576 (digits only), not '15'" },
                { "[limits]\nnofile = 1 024\n", "web:6: [limits] nofile: must be a number of files" },
                { "[limits]\nnproc = 0x40\n", "web:6: [limits] nproc: must be a number of processes from 1 to 4194304" },
                { "[ready]\nprobe = http GET /health +200\n", "web:6: [ready] probe: '+200' is not an HTTP status (100 to 599)" },
                { "[ready]\nprobe = http GET /health 2e2\n", "web:6: [ready] probe: '2e2' is not an HTTP status" },
                /* sizes and CPUs */
                { "[limits]\nmemory = 1K\n", "web:6: [limits] memory: must be a size of at least 4M and at most 64T" },
                { "[limits]\nmemory = 65T\n", "web:6: [limits] memory: must be a size of at least 4M and at most 64T" },
                { "[limits]\nmemory = 1e9\n", "web:6: [limits] memory: must be a size" },
                { "[limits]\nmemory = 0x10000000\n", "web:6: [limits] memory: must be a size" },
                { "[limits]\nmemory = 1.5\n", "web:6: [limits] memory: must be a size" },
                { "[limits]\ncore = 65T\n", "web:6: [limits] core: must be 0 or a size of at most 64T" },
                { "[limits]\ncore = -1\n", "web:6: [limits] core: must be 0 or a size" },
                { "[limits]\ncpu = 1e1\n", "web:6: [limits] cpu: must be a number of CPUs from 0.01 to 4096 with at most 3 decimals, such as 0.5 or 2, not '1e1'" },
                { "[limits]\ncpu = 0.001\n", "web:6: [limits] cpu: must be a number of CPUs from 0.01 to 4096" },
                { "[limits]\ncpu = 0.0015\n", "web:6: [limits] cpu: must be a number of CPUs" },
                { "[limits]\ncpu = 4097\n", "web:6: [limits] cpu: must be a number of CPUs" },
                { "[limits]\ncpu = +1\n", "web:6: [limits] cpu: must be a number of CPUs" },
                { "[limits]\ncpu = 0x2\n", "web:6: [limits] cpu: must be a number of CPUs" },
        };
        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *text = with(cases[i].lines);
                expect_error(text, cases[i].want);
        }
}

/* The edges that are in range. */
static void test_ranges_ok(void **state) {
        struct policy *p = NULL;
        _cleanup_free_ char *text = with("[ready]\ntimeout = 1h\n"
                                         "[drain]\nsettle = 0s\ntimeout = 24h\nquiet-procs = 0\n"
                                         "[limits]\nmemory = 1.5G\ncore = 0\ncpu = 0.01\n"
                                         "pids = 4194304\nnofile = 16\n");
        (void)state;
        expect_ok(text, &p);
        assert_int_equal(p->ready_timeout_usec, 3600 * USEC_PER_SEC);
        assert_int_equal(p->settle_usec, 0);
        assert_int_equal(p->drain_timeout_usec, 24 * 3600 * USEC_PER_SEC);
        assert_int_equal(p->quiet_procs, 0);
        assert_int_equal(p->memory_max, 3ULL << 29);
        assert_true(p->core_set);
        assert_int_equal(p->core, 0);
        assert_int_equal(p->cpu_milli, 10);
        assert_int_equal(p->pids_max, 4194304);
        assert_int_equal(p->nofile, 16);
        policy_free(p);
        p = NULL;
        free(text);
        text = with("[ready]\ntimeout = 1.5s\n[drain]\nsettle = 10m\ntimeout = 1ms\n"
                    "[limits]\ncore = 64T\nmemory = 4M\ncpu = 4096\n");
        expect_ok(text, &p);
        assert_int_equal(p->ready_timeout_usec, 1500 * USEC_PER_MSEC);
        assert_int_equal(p->settle_usec, 600 * USEC_PER_SEC);
        assert_int_equal(p->drain_timeout_usec, USEC_PER_MSEC);
        assert_int_equal(p->core, 64ULL << 40);
        assert_int_equal(p->memory_max, 4ULL << 20);
        assert_int_equal(p->cpu_milli, 4096000);
        policy_free(p);
}

/* A key that is not repeatable, given twice, names both lines, also in two
 * blocks of the same section; an indented line is no sly way around it. */
static void test_duplicates(void **state) {
        static const struct { const char *text, *want; } cases[] = {
                { "[service]\nexec = /bin/x\n[listen]\nport = 80:1\n[ready]\nprobe = tcp\n\n"
                  "# the ready check\ntimeout = 10s\nprobe = http GET / 200\ntimeout = 20s\n",
                  "web:10: [ready] probe given again (first at line 6)" },
                { "[service]\nexec = /bin/x\n[listen]\nport = 80:1\n[ready]\ntimeout = 10s\n"
                  "[drain]\nsettle = 1s\n\n[ready]\n\n\ntimeout = 20s\n",
                  "web:13: [ready] timeout given again (first at line 6)" },
                { "[service]\nexec = /bin/x\nexec = /bin/y\n[listen]\nport = 80:1\n",
                  "web:3: [service] exec given again (first at line 2)" },
                { "[service]\nexec = /bin/x\n[listen]\nport = 80:1\n[service]\nexec = /bin/y\n",
                  "web:6: [service] exec given again (first at line 2)" },
                { "[service]\nexec = /bin/x\n[listen]\nport = 80:1\n[limits]\ncore = 0\n"
                  "core = 1M\n", "web:7: [limits] core given again (first at line 6)" },
                { "[service]\nexec = /bin/x\n[listen]\nport = 80:1\n[sandbox]\nseccomp = strict\n"
                  "[sandbox]\nseccomp = /etc/gen/my.profile\n",
                  "web:8: [sandbox] seccomp given again (first at line 6)" },
                /* the same key again, even with a bad value the second time */
                { "[service]\nexec = /bin/x\nuser = a\nuser =\n",
                  "web:4: [service] user given again (first at line 3)" },
                /* inih would take this as more of exec's value */
                { "[service]\nexec = /bin/x\n  user = nobody\n[listen]\nport = 80:1\n",
                  "web:3: [service] exec: this line starts with white space, so it would "
                  "continue the value of line 2; a value is one line: remove the indentation" },
                { "[service]\nexec = /bin/x\n\n\tdirectory = /srv\n",
                  "web:4: [service] exec: this line starts with white space, so it would "
                  "continue the value of line 2" },
        };
        struct policy *p = NULL;
        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                expect_error(cases[i].text, cases[i].want);
        /* Repeatable keys, over two blocks too; an indented first key. */
        expect_ok("[service]\n  exec = /bin/x\nenvironment = A=1\n[listen]\nport = 80:1\n"
                  "[service]\nenvironment = B=2\n[listen]\nport = 81:1\n", &p);
        assert_int_equal(strv_length(p->env), 2);
        assert_int_equal(p->n_ports, 2);
        assert_int_equal(p->line[KEY_ENVIRONMENT], 3);
        assert_int_equal(p->line[KEY_PORT], 5);
        policy_free(p);
}

/* Every key kept remembers its line. */
static void test_lines(void **state) {
        struct policy *p = NULL;
        (void)state;
        expect_ok(good, &p);
        assert_int_equal(p->line[KEY_EXEC], 2);
        assert_int_equal(p->line[KEY_DIRECTORY], 3);
        assert_int_equal(p->line[KEY_USER], 4);
        assert_int_equal(p->line[KEY_ENVIRONMENT], 5);
        assert_int_equal(p->line[KEY_PORT], 9);
        assert_int_equal(p->line[KEY_PROBE], 13);
        assert_int_equal(p->line[KEY_READY_TIMEOUT], 14);
        assert_int_equal(p->line[KEY_SETTLE], 17);
        assert_int_equal(p->line[KEY_MEMORY], 21);
        assert_int_equal(p->line[KEY_CAPABILITIES], 26);
        assert_int_equal(p->line[KEY_SECCOMP], 27);
        assert_int_equal(p->line[KEY_GROUP], 0);
        assert_int_equal(p->line[KEY_CORE], 0);
        assert_string_equal(policy_key_to_string(KEY_READY_TIMEOUT), "[ready] timeout");
        assert_string_equal(policy_key_to_string(KEY_PRIVATE_TMP), "[sandbox] private-tmp");
        policy_free(p);
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

/* Fixtures on the file system for the host checks, made once and removed
 * in the group teardown, also when a test fails. */
static char fix[] = "/tmp/gen-unit-policy-XXXXXX";
static char profile_dir[PATH_MAX];

static void put(const char *name, const char *text, mode_t mode) {
        char path[PATH_MAX];
        int fd;

        snprintf(path, sizeof(path), "%s/%s", fix, name);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        assert_int_equal(fchmod(fd, mode), 0);
        close(fd);
}

static int setup_fixtures(void **state) {
        char path[PATH_MAX + 16];
        (void)state;
        if (!mkdtemp(fix) || !realpath("policy/profiles", profile_dir))
                return -1;
        put("plain", "data\n", 0644);
        put("server", "#!/bin/sh\nexit 0\n", 0755);
        put("no-interp.sh", "#!/nonexistent-gen/php -q\n", 0755);
        put("empty-interp.sh", "#!   \n", 0755);
        put("relative-interp.sh", "#!sh\n", 0755);
        put("bad.profile", "deny\nnot_a_syscall\n", 0644);
        put("ok.profile", "# mine\ndeny\nkexec_load\n", 0644);
        snprintf(path, sizeof(path), "%s/subdir", fix);
        return mkdir(path, 0755);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void)st, (void)flag, (void)ftw;
        return remove(path);
}

static int teardown_fixtures(void **state) {
        (void)state;
        return fix[strlen(fix) - 1] == 'X' ? 0 : nftw(fix, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* Parses and validates text; a want of NULL means both succeed. */
static void expect_valid(const char *text, const char *want) {
        struct policy *p = NULL;
        int r;

        expect_ok(text, &p);
        r = policy_validate(p);
        if (!want && r < 0)
                fail_msg("%s\nrefused: %s", text, err_msg());
        if (want && (r >= 0 || strcmp(err_msg(), want) != 0))
                fail_msg("%s\ngot:  %s\nwant: %s", text, r < 0 ? err_msg() : "success", want);
        policy_free(p);
}

#define SERVICE(exec) "[service]\nexec = " exec "\n[listen]\nport = 80:1\n"

/* Each check against the host names file:line and key of what will fail. */
static void test_validate(void **state) {
        char text[8192], want[8192];
        (void)state;

        /* exec: missing, a directory, not a regular file, not executable */
        expect_valid(SERVICE("/nonexistent-gen/server --port 1"),
                     "web:2: [service] exec: /nonexistent-gen/server: No such file or directory");
        snprintf(text, sizeof(text), SERVICE("%s/subdir"), fix);
        snprintf(want, sizeof(want), "web:2: [service] exec: %s/subdir: a directory, not a "
                 "program", fix);
        expect_valid(text, want);
        expect_valid(SERVICE("/dev/null"), "web:2: [service] exec: /dev/null: not a regular file");
        snprintf(text, sizeof(text), SERVICE("%s/plain"), fix);
        snprintf(want, sizeof(want), "web:2: [service] exec: %s/plain: not executable (mode "
                 "0644)", fix);
        expect_valid(text, want);
        snprintf(text, sizeof(text), SERVICE("%s/plain/x"), fix);
        snprintf(want, sizeof(want), "web:2: [service] exec: %s/plain/x: Not a directory", fix);
        expect_valid(text, want);
        /* a script whose interpreter is missing fails in execve too */
        snprintf(text, sizeof(text), SERVICE("%s/no-interp.sh start"), fix);
        snprintf(want, sizeof(want), "web:2: [service] exec: %s/no-interp.sh: the interpreter "
                 "of its '#!' line, /nonexistent-gen/php: No such file or directory", fix);
        expect_valid(text, want);
        snprintf(text, sizeof(text), SERVICE("%s/empty-interp.sh"), fix);
        snprintf(want, sizeof(want), "web:2: [service] exec: %s/empty-interp.sh: its '#!' line "
                 "names no interpreter", fix);
        expect_valid(text, want);
        snprintf(text, sizeof(text), SERVICE("%s/relative-interp.sh"), fix);
        snprintf(want, sizeof(want), "web:2: [service] exec: %s/relative-interp.sh: the "
                 "interpreter 'sh' of its '#!' line is not an absolute path", fix);
        expect_valid(text, want);

        /* user and group */
        expect_valid(SERVICE("/bin/sh") "[service]\nuser = gen-no-such-user\n",
                     "web:6: [service] user: 'gen-no-such-user': no such user");
        expect_valid(SERVICE("/bin/sh") "[service]\nuser = root\ngroup = gen-no-such-group\n",
                     "web:7: [service] group: 'gen-no-such-group': no such group");

        /* directory */
        expect_valid("[service]\nexec = /bin/sh\ndirectory = /nonexistent-gen/release\n"
                     "[listen]\nport = 80:1\n",
                     "web:3: [service] directory: /nonexistent-gen/release: No such file or "
                     "directory");
        expect_valid("[service]\nexec = /bin/sh\ndirectory = /bin/sh\n[listen]\nport = 80:1\n",
                     "web:3: [service] directory: /bin/sh: not a directory");

        /* an exec probe's program */
        expect_valid(SERVICE("/bin/sh") "[ready]\nprobe = exec /nonexistent-gen/check -q\n",
                     "web:6: [ready] probe: /nonexistent-gen/check: No such file or directory");
        expect_valid(SERVICE("/bin/sh") "[ready]\nprobe = exec /etc/passwd\n",
                     "web:6: [ready] probe: /etc/passwd: not executable (mode 0644)");

        /* a seccomp profile by path must load */
        expect_valid(SERVICE("/bin/sh") "[sandbox]\nseccomp = /etc/passwd\n",
                     "web:6: [sandbox] seccomp: /etc/passwd:1: the first line must be 'deny' "
                     "(listed calls fail with EPERM) or 'allow' (only listed calls work, "
                     "others fail with ENOSYS)");
        expect_valid(SERVICE("/bin/sh") "[sandbox]\nseccomp = /nonexistent-gen.profile\n",
                     "web:6: [sandbox] seccomp: open(/nonexistent-gen.profile): No such file "
                     "or directory");
        snprintf(text, sizeof(text), SERVICE("/bin/sh") "[sandbox]\nseccomp = %s/bad.profile\n",
                 fix);
        snprintf(want, sizeof(want), "web:6: [sandbox] seccomp: %s/bad.profile:2: unknown "
                 "system call 'not_a_syscall'", fix);
        expect_valid(text, want);

        /* private-tmp hides what is below /tmp */
        snprintf(text, sizeof(text), SERVICE("%s/server") "[sandbox]\nprivate-tmp = yes\n", fix);
        snprintf(want, sizeof(want), "web:6: [sandbox] private-tmp: yes gives the generation an "
                 "empty /tmp of its own, which hides the program %s/server ([service] exec, "
                 "line 2)", fix);
        expect_valid(text, want);
        /* ... and so does the default, said at the program's line */
        snprintf(text, sizeof(text), SERVICE("%s/server"), fix);
        snprintf(want, sizeof(want), "web:2: [service] exec: %s/server is below /tmp, which the "
                 "generation's own empty /tmp hides (private-tmp is yes by default): move it, "
                 "put it in its directory or a [sandbox] readable path, or set private-tmp = no",
                 fix);
        expect_valid(text, want);
        /* its directory and the granted paths are mounted back on top */
        snprintf(text, sizeof(text), "[service]\ndirectory = %s\nexec = /bin/sh\n[listen]\n"
                 "port = 80:1\n[sandbox]\nprivate-tmp = yes\n", fix);
        expect_valid(text, NULL);
        snprintf(text, sizeof(text), SERVICE("%s/server") "[sandbox]\nreadable = %s\n", fix, fix);
        expect_valid(text, NULL);
        snprintf(text, sizeof(text), SERVICE("%s/server") "[sandbox]\nprivate-tmp = no\n", fix);
        expect_valid(text, NULL);

        /* granted paths must exist */
        expect_valid(SERVICE("/bin/sh") "[sandbox]\nwritable = /var /nonexistent-gen/cache\n",
                     "web:6: [sandbox] writable: /nonexistent-gen/cache: No such file or "
                     "directory");
        expect_valid(SERVICE("/bin/sh") "[sandbox]\nreadable = /nonexistent-gen/keys\n",
                     "web:6: [sandbox] readable: /nonexistent-gen/keys: No such file or "
                     "directory");

        /* all good */
        expect_valid(SERVICE("/bin/sh -c 'exec server'"), NULL);
        snprintf(text, sizeof(text), "[service]\nexec = %s/server\ndirectory = %s\nuser = root\n"
                 "group = root\n[listen]\nport = 80:1\n[ready]\nprobe = exec %s/server\n"
                 "[sandbox]\nseccomp = %s/ok.profile\n", fix, fix, fix, fix);
        expect_valid(text, NULL);
        snprintf(text, sizeof(text), SERVICE("/bin/sh") "[sandbox]\nseccomp = %s/strict.profile\n"
                 "private-tmp = yes\n", profile_dir);
        expect_valid(text, NULL);
        expect_valid(SERVICE("/bin/sh") "[sandbox]\nseccomp = strict\n", NULL);
}

struct collected {
        char *msgs[8];
        unsigned n;
};

static void collect(const char *msg, void *userdata) {
        struct collected *c = userdata;
        assert_true(c->n < ELEMENTSOF(c->msgs));
        c->msgs[c->n++] = strdup(msg);
}

/* gend -n: every bad file is reported with its line, the good ones load. */
static void test_load_dir_each(void **state) {
        static const struct { const char *name, *text, *want; } files[] = {
                { "a-good.policy", SERVICE("/bin/sh"), NULL },
                { "b-missing.policy", SERVICE("/nonexistent-gen/b"),
                  "b-missing.policy:2: [service] exec: /nonexistent-gen/b: No such file or "
                  "directory" },
                { "c-timeout.policy", SERVICE("/bin/sh") "[ready]\ntimeout = 0s\n",
                  "c-timeout.policy:6: [ready] timeout: '0s' is out of range" },
                { "d-twice.policy", SERVICE("/bin/sh") "[ready]\ntimeout = 1s\n[drain]\n"
                  "settle = 0s\n[ready]\ntimeout = 2s\n",
                  "d-twice.policy:10: [ready] timeout given again (first at line 6)" },
                { "e-port.policy", "[service]\nexec = /bin/sh\n[listen]\nport = 80:2\n",
                  "both claim public port 80/tcp" },
                { "f-good.policy", "[service]\nexec = /bin/sh\n[listen]\nport = 81:2\n", NULL },
                { "g-user.policy", SERVICE("/bin/sh") "[service]\nuser = gen-no-such-user\n",
                  "g-user.policy:6: [service] user: 'gen-no-such-user': no such user" },
        };
        struct collected c = { .n = 0 };
        struct policy **v = NULL;
        unsigned n = 0, w = 0;
        char dir[64], path[PATH_MAX];
        (void)state;

        snprintf(dir, sizeof(dir), "%s/etc", fix);
        assert_int_equal(mkdir(dir, 0755), 0);
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                snprintf(path, sizeof(path), "etc/%s", files[i].name);
                put(path, files[i].text, 0644);
        }
        put("etc/ignored.txt", "not a policy", 0644);

        assert_int_equal(policy_load_dir_each(dir, policy_validate, collect, &c, &v, &n), 5);
        assert_int_equal(n, 2);
        assert_string_equal(v[0]->name, "a-good");
        assert_string_equal(v[1]->name, "f-good");
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                if (!files[i].want)
                        continue;
                snprintf(path, sizeof(path), "%s/%s", dir, files[i].want);
                const char *want = strchr(files[i].want, ':') ? path : files[i].want;
                if (!strstr(c.msgs[w], want))
                        fail_msg("%s: got \"%s\", want \"%s\"", files[i].name, c.msgs[w], want);
                w++;
        }
        assert_int_equal(w, c.n);
        for (unsigned i = 0; i < c.n; i++)
                free(c.msgs[i]);
        for (unsigned i = 0; i < n; i++)
                policy_free(v[i]);
        free(v);

        /* gend's start: the first bad file fails the whole set; it does
         * not look at the host, so b-missing parses, and conflicts. */
        v = NULL;
        assert_int_equal(policy_load_dir(dir, &v, &n), -EINVAL);
        assert_null(v);
        snprintf(path, sizeof(path), "%s/a-good.policy and %s/b-missing.policy both claim public "
                 "port 80/tcp", dir, dir);
        if (strncmp(err_msg(), path, strlen(path)) != 0)
                fail_msg("got \"%s\", want \"%s...\"", err_msg(), path);
        /* A directory that cannot be read is an error of its own. */
        assert_int_equal(policy_load_dir_each("/nonexistent-gen", policy_validate, collect, &c,
                                              &v, &n), -ENOENT);
        assert_string_equal(err_msg(), "opendir(/nonexistent-gen): No such file or directory");
}

/* Containment is on by default; each part has a key that relaxes it. */
static void test_containment(void **state) {
        struct policy *p = NULL;
        (void)state;
        assert_int_equal(policy_parse_string("web", "[service]\nexec=/x\n[listen]\nport=80:1\n", &p), 0);
        assert_true(p->private_users && p->private_pids && p->private_devices && p->private_tmp);
        assert_true(p->protect_system && p->protect_kernel && p->protect_cgroups);
        assert_null(p->writable);
        assert_null(p->dns);
        policy_free(p);
        p = NULL;
        assert_int_equal(policy_parse_string("web", "[service]\nexec=/x\n[listen]\nport=80:1\n"
                "[sandbox]\nprivate-users = no\nprivate-pids = no\nprivate-devices = no\n"
                "protect-system = no\nprotect-kernel = no\nprotect-cgroups = no\n"
                "private-tmp = no\n"
                "writable = /var/lib/web '/srv/with space'\nwritable = /run/web\n"
                "readable = /etc/ssl/private\n"
                "hosts = db 10.0.0.5\nhosts = cache.local fd00::7\n"
                "dns = 10.0.0.53 2001:db8::53\n", &p), 0);
        assert_false(p->private_users || p->private_pids || p->private_devices || p->private_tmp);
        assert_false(p->protect_system || p->protect_kernel || p->protect_cgroups);
        assert_int_equal(strv_length(p->writable), 3);
        assert_string_equal(p->writable[1], "/srv/with space");
        assert_string_equal(p->writable[2], "/run/web");
        assert_string_equal(p->readable[0], "/etc/ssl/private");
        assert_string_equal(p->hosts[0], "10.0.0.5 db");
        assert_string_equal(p->hosts[1], "fd00::7 cache.local");
        assert_string_equal(p->dns[1], "2001:db8::53");
        policy_free(p);

        static const struct { const char *line, *expect; } bad[] = {
                { "writable = var/lib", "'var/lib' is not an absolute path" },
                { "writable = /", "'/' is not an absolute path" },
                { "writable = /srv/../etc", "without . or .. parts" },
                { "readable = /etc/./ssl", "without . or .. parts" },
                { "hosts = db", "must be NAME ADDRESS" },
                { "hosts = db 10.0.0.300", "must be NAME ADDRESS" },
                { "hosts = -db 10.0.0.3", "must be NAME ADDRESS" },
                { "dns = 127.0.0.1 resolver", "'resolver' is not an IPv4 or IPv6 address" },
                { "dns = 1.1.1.1 1.0.0.1 8.8.8.8 8.8.4.4", "at most 3 nameservers" },
                { "protect-system = strict", "[sandbox] protect-system: must be yes or no" },
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char text[256];
                snprintf(text, sizeof(text), "[service]\nexec=/x\n[listen]\nport=80:1\n[sandbox]\n%s\n",
                         bad[i].line);
                p = NULL;
                if (policy_parse_string("web", text, &p) >= 0 || !strstr(err_msg(), bad[i].expect))
                        fail_msg("case %zu: got \"%s\", want \"%s\"", i, p ? "success" : err_msg(),
                                 bad[i].expect);
                assert_null(p);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_good),     cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_bad),      cmocka_unit_test(test_names),
                cmocka_unit_test(test_words),    cmocka_unit_test(test_values),
                cmocka_unit_test(test_conflicts), cmocka_unit_test(test_exec_probe),
                cmocka_unit_test(test_numbers),  cmocka_unit_test(test_ranges),
                cmocka_unit_test(test_ranges_ok), cmocka_unit_test(test_duplicates),
                cmocka_unit_test(test_lines),    cmocka_unit_test(test_validate),
                cmocka_unit_test(test_load_dir_each), cmocka_unit_test(test_containment),
        };
        return cmocka_run_group_tests_name("policy", tests, setup_fixtures, teardown_fixtures);
}
