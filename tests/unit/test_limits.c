#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../policy/policy.h"
#include "../../sandbox/limits.h"
#include "../../sandbox/util.h"

/* This kind of host: cgroup2 without controllers, pids/memory/cpu in v1,
 * gend nested in memory (as under a session's memory cgroup). */
static const char hybrid_mi[] =
        "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
        "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
        "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
        "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
static const char hybrid_self[] =
        "8:pids:/\n4:memory:/process_api/0e15\n2:cpuacct:/\n1:cpu:/\n0::/gen-test-1\n";

static struct policy *with_limits(const char *lines) {
        char text[512];
        struct policy *p = NULL;
        snprintf(text, sizeof(text), "[service]\nexec=/x\n[listen]\nport=80:1\n[limits]\n%s", lines);
        assert_int_equal(policy_parse_string("web", text, &p), 0);
        return p;
}

static void test_hybrid(void **state) {
        struct limits_host h;
        (void)state;
        assert_int_equal(limits_plan(hybrid_mi, hybrid_self, "hugetlb\n", &h), 0);
        assert_int_equal(h.where[LIM_MEMORY], LIM_V1);
        assert_int_equal(h.where[LIM_PIDS], LIM_V1);
        assert_int_equal(h.where[LIM_CPU], LIM_V1);
        /* Below the cgroup gend runs in, in each hierarchy. */
        assert_string_equal(h.v1_base[LIM_MEMORY], "/sys/fs/cgroup/memory/process_api/0e15/gen");
        assert_string_equal(h.v1_base[LIM_PIDS], "/sys/fs/cgroup/pids/gen");
        struct policy *p = with_limits("memory=64M\npids=32\ncpu=0.5\n");
        assert_int_equal(limits_check(&h, p), 0);
        policy_free(p);
        limits_host_done(&h);
}

static void test_pure_v2(void **state) {
        struct limits_host h;
        (void)state;
        assert_int_equal(limits_plan("25 28 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
                                     "0::/system.slice/gend.service\n", "cpuset cpu io memory pids\n", &h), 0);
        for (int c = 0; c < _LIM_MAX; c++) {
                assert_int_equal(h.where[c], LIM_V2);
                assert_null(h.v1_base[c]);
        }
        limits_host_done(&h);
}

/* A combined v1 mount (cpu,cpuacct) is found by either name. */
static void test_combined(void **state) {
        struct limits_host h;
        (void)state;
        assert_int_equal(limits_plan("32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n",
                                     "3:cpu,cpuacct:/a\n0::/\n", "", &h), 0);
        assert_int_equal(h.where[LIM_CPU], LIM_V1);
        assert_string_equal(h.v1_base[LIM_CPU], "/sys/fs/cgroup/cpu,cpuacct/a/gen");
        assert_int_equal(h.where[LIM_MEMORY], LIM_NONE);
        limits_host_done(&h);
}

/* Where no hierarchy has the controller, a policy asking for it fails
 * before anything starts, saying which limit. */
static void test_cannot_enforce(void **state) {
        struct limits_host h;
        (void)state;
        assert_int_equal(limits_plan("41 31 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
                                     "0::/\n", "cpu io\n", &h), 0);
        assert_int_equal(h.where[LIM_MEMORY], LIM_NONE);
        assert_int_equal(h.where[LIM_CPU], LIM_V2);
        struct policy *p = with_limits("cpu=1\n");
        assert_int_equal(limits_check(&h, p), 0);
        policy_free(p);
        p = with_limits("cpu=1\nmemory=64M\n");
        assert_int_equal(limits_check(&h, p), -EOPNOTSUPP);
        assert_non_null(strstr(err_msg(), "[limits] memory cannot be enforced on this host: neither cgroup v2 nor a writable"));
        policy_free(p);
        p = with_limits("nofile=100\n");        /* an rlimit needs no cgroup */
        assert_int_equal(limits_check(&h, p), 0);
        policy_free(p);
        limits_host_done(&h);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_hybrid), cmocka_unit_test(test_pure_v2),
                cmocka_unit_test(test_combined), cmocka_unit_test(test_cannot_enforce),
        };
        return cmocka_run_group_tests_name("limits", tests, NULL, NULL);
}
