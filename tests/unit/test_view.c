#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../../sandbox/init.h"
#include "../../sandbox/userns.h"
#include "../../sandbox/util.h"
#include "../../sandbox/view.h"

/* A hybrid host: v1 hierarchies in a tmpfs, cgroup2 at unified. */
static const char hybrid[] =
        "23 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
        "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
        "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
        "36 31 0:33 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
        "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids,release_agent=/x\n"
        "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n"
        "50 23 0:40 / /mnt/other rw - cgroup cgroup rw,memory\n";

static void test_plan_hybrid(void **state) {
        const char *ctls[] = { "pids", "cpu", NULL };
        struct view_cgroup *v;
        unsigned n;
        bool tmpfs;
        (void)state;
        assert_int_equal(view_cgroup_plan(hybrid, ctls, &v, &n, &tmpfs), 0);
        assert_true(tmpfs);
        assert_int_equal(n, 3);
        assert_string_equal(v[0].where, "/sys/fs/cgroup/cpu,cpuacct");
        assert_string_equal(v[0].fstype, "cgroup");
        assert_string_equal(v[0].options, "cpu,cpuacct");
        assert_string_equal(v[1].where, "/sys/fs/cgroup/pids");
        assert_string_equal(v[1].options, "pids");              /* no release_agent */
        assert_string_equal(v[2].where, "/sys/fs/cgroup/unified");
        assert_string_equal(v[2].fstype, "cgroup2");
        assert_null(v[2].options);
        view_cgroup_free(v, n);
}

/* Pure cgroup v2 (Debian 12 with systemd): one mount, no tmpfs. */
static void test_plan_v2(void **state) {
        struct view_cgroup *v;
        unsigned n;
        bool tmpfs;
        (void)state;
        assert_int_equal(view_cgroup_plan(
                "25 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 "
                "cgroup2 rw,nsdelegate,memory_recursiveprot\n", NULL, &v, &n, &tmpfs), 0);
        assert_false(tmpfs);
        assert_int_equal(n, 1);
        assert_string_equal(v[0].where, "/sys/fs/cgroup");
        view_cgroup_free(v, n);
}

static void test_exit_code(void **state) {
        (void)state;
        assert_int_equal(init_exit_code(3 << 8), 3);
        assert_int_equal(init_exit_code(0), 0);
        assert_int_equal(init_exit_code(SIGTERM), 128 + SIGTERM);
        assert_int_equal(init_exit_code(SIGKILL | 0x80), 128 + SIGKILL);    /* core dumped */
}

static void test_userns_base(void **state) {
        uid_t u;
        (void)state;
        assert_int_equal(userns_base(0, &u), 0);
        assert_int_equal(u, 0x70000000U);
        assert_int_equal(userns_base(3, &u), 0);
        assert_int_equal(u, 0x70030000U);
        assert_int_equal(userns_base(USERNS_SLOTS - 1, &u), 0);
        assert_true(u + USERNS_SIZE - 1 < 0x7ffe0000U);
        assert_int_equal(userns_base(USERNS_SLOTS, &u), -ERANGE);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_plan_hybrid), cmocka_unit_test(test_plan_v2),
                cmocka_unit_test(test_exit_code),   cmocka_unit_test(test_userns_base),
        };
        return cmocka_run_group_tests_name("view", tests, NULL, NULL);
}
