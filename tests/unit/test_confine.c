#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../sandbox/confine.h"
#include "../../sandbox/util.h"

static bool has(const int *nrs, unsigned n, const char *name) {
        int nr = seccomp_syscall_resolve_name(name);
        for (unsigned i = 0; i < n; i++)
                if (nrs[i] == nr)
                        return true;
        return false;
}

static void test_shipped(void **state) {
        bool allow;
        int *nrs = NULL;
        unsigned n;
        (void)state;
        assert_int_equal(seccomp_profile_load("policy/profiles/default.profile", &allow, &nrs, &n), 0);
        assert_false(allow);
        assert_true(has(nrs, n, "kexec_load"));
        assert_true(has(nrs, n, "init_module"));
        assert_true(has(nrs, n, "mount"));
        assert_true(has(nrs, n, "bpf"));
        assert_true(has(nrs, n, "add_key"));
        assert_true(has(nrs, n, "setns"));
        assert_false(has(nrs, n, "clone"));
        free(nrs);
        assert_int_equal(seccomp_profile_load("policy/profiles/strict.profile", &allow, &nrs, &n), 0);
        assert_true(allow);
        /* What threads and a server need, and what the tests call denied. */
        assert_true(has(nrs, n, "clone3"));
        assert_true(has(nrs, n, "futex"));
        assert_true(has(nrs, n, "accept4"));
        assert_true(has(nrs, n, "execve"));
        assert_false(has(nrs, n, "add_key"));
        assert_false(has(nrs, n, "mount"));
        free(nrs);
}

static void test_bad_profile(void **state) {
        char path[] = "/tmp/gen-profile-XXXXXX";
        bool allow;
        int *nrs = NULL;
        unsigned n;
        int fd = mkstemp(path);
        FILE *f = fdopen(fd, "w");
        (void)state;
        fprintf(f, "# comment\ndeny\nfrobnicate\n");
        fclose(f);
        assert_int_equal(seccomp_profile_load(path, &allow, &nrs, &n), -EINVAL);
        char want[128];
        snprintf(want, sizeof(want), "%s:3: unknown system call 'frobnicate'", path);
        assert_string_equal(err_msg(), want);
        f = fopen(path, "w");
        fprintf(f, "mount\n");
        fclose(f);
        assert_int_equal(seccomp_profile_load(path, &allow, &nrs, &n), -EINVAL);
        assert_non_null(strstr(err_msg(), ":1: the first line must be 'deny'"));
        unlink(path);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_shipped), cmocka_unit_test(test_bad_profile),
        };
        return cmocka_run_group_tests_name("confine", tests, NULL, NULL);
}
