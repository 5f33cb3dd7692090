#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../sandbox/cgroup.h"

static const char hybrid[] =
        "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
        "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:5 - cgroup2 cgroup2 rw\n";
static const char pure[] =
        "22 28 0:21 / /proc rw,nosuid - proc proc rw\n"
        "25 28 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";

static void test_mountinfo(void **state) {
        char *m = NULL;
        (void)state;
        assert_int_equal(cg_parse_mountinfo(hybrid, &m), 0);
        assert_string_equal(m, "/sys/fs/cgroup/unified");
        free(m);
        assert_int_equal(cg_parse_mountinfo(pure, &m), 0);
        assert_string_equal(m, "/sys/fs/cgroup");
        free(m);
        assert_int_equal(cg_parse_mountinfo("22 28 0:21 / /proc rw - proc proc rw\n", &m), -ENOENT);
}

static void test_self(void **state) {
        char *p = NULL;
        (void)state;
        assert_int_equal(cg_parse_self("4:memory:/x\n0::/system.slice/gend.service\n", &p), 0);
        assert_string_equal(p, "/system.slice/gend.service");
        free(p);
        assert_int_equal(cg_parse_self("4:memory:/x\n", &p), -ENOENT);
}

static void test_base(void **state) {
        char *b = NULL;
        (void)state;
        /* Below the cgroup gend runs in (systemd's Delegate=yes). */
        assert_int_equal(cg_base_for("/system.slice/gend.service", &b), 0);
        assert_string_equal(b, "/system.slice/gend.service/gen");
        free(b);
        assert_int_equal(cg_base_for("/", &b), 0);
        assert_string_equal(b, "/gen");
        free(b);
        /* A restarted gend already sits in its leaf. */
        assert_int_equal(cg_base_for("/system.slice/gend.service/gen/supervisor", &b), 0);
        assert_string_equal(b, "/system.slice/gend.service/gen");
        free(b);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_mountinfo), cmocka_unit_test(test_self),
                cmocka_unit_test(test_base),
        };
        return cmocka_run_group_tests_name("cgroup", tests, NULL, NULL);
}
