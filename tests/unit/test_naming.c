#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <unistd.h>

#include "../../sandbox/naming.h"
#include "../../sandbox/util.h"

static void test_pool(void **state) {
        struct pool p;
        char buf[32];
        (void)state;
        assert_int_equal(pool_parse("10.213.0.0/16", &p), 0);
        assert_int_equal(pool_blocks(&p), 16384);
        assert_string_equal(ip4_to_string(pool_host_addr(&p, 0), buf, sizeof(buf)), "10.213.0.1");
        assert_string_equal(ip4_to_string(pool_gen_addr(&p, 0), buf, sizeof(buf)), "10.213.0.2");
        assert_string_equal(ip4_to_string(pool_gen_addr(&p, 2), buf, sizeof(buf)), "10.213.0.10");
        assert_string_equal(ip4_to_string(pool_gen_addr(&p, 16383), buf, sizeof(buf)), "10.213.255.254");
        assert_true(pool_contains(&p, pool_gen_addr(&p, 16383)));
        assert_false(pool_contains(&p, 0x0ad40001));
        assert_string_equal(pool_to_string(&p, buf, sizeof(buf)), "10.213.0.0/16");
        assert_int_equal(pool_parse("10.213.0.1/16", &p), -EINVAL);     /* host bits */
        assert_int_equal(pool_parse("10.213.0.0/29", &p), -EINVAL);
        assert_int_equal(pool_parse("10.213.0.0", &p), -EINVAL);
        assert_int_equal(pool_parse("10.213.0.0/", &p), -EINVAL);
        assert_int_equal(pool_parse("10.0.0.0/8", &p), 0);
        assert_int_equal(pool_blocks(&p), 65536);                       /* the mark's 16 bits */
}

/* Round robin, and each half of the pool for its own kind. */
static void test_alloc(void **state) {
        uint8_t used[8] = { 1, 1, 0, 1, 0, 0, 0, 0 };
        (void)state;
        assert_int_equal(pool_take(used, 4, 0, 0, false), 2);
        assert_int_equal(pool_take(used, 4, 3, 0, false), 2);          /* wraps around */
        used[2] = 1;
        assert_int_equal(pool_take(used, 4, 0, 0, false), -ENOSPC);
        used[0] = 0;
        assert_int_equal(pool_take(used, 4, 1, 0, false), 0);
        /* 8 blocks, half 4: [4, 8) closed, [0, 4) open. */
        memset(used, 0, sizeof(used));
        assert_int_equal(pool_take(used, 8, 0, 4, true), 4);
        assert_int_equal(pool_take(used, 8, 5, 4, false), 0);
        assert_int_equal(pool_take(used, 8, 2, 4, false), 2);
        memset(used + 4, 1, 4);
        assert_int_equal(pool_take(used, 8, 0, 4, true), -ENOSPC);
        /* Blocks past 2 half (pool larger than a power of two) are open. */
        memset(used, 1, 4);
        assert_int_equal(pool_take((uint8_t[6]){ 1, 1, 1, 1, 1, 0 }, 6, 0, 2, false), 5);
}

static void test_names(void **state) {
        char a[IFNAME_MAX], b[IFNAME_MAX];
        char *ns = NULL;
        (void)state;
        veth_host_name("a-service-with-20ch", 4000000000U, a);
        assert_true(strlen(a) <= 15);
        assert_int_equal(a[0], 'g');
        veth_host_name("web", 1, a);
        veth_host_name("web", 2, b);
        assert_string_not_equal(a, b);
        veth_host_name("web", 12, a);
        veth_host_name("web1", 2, b);   /* "web/12" vs "web1/2": no clash */
        assert_string_not_equal(a, b);
        /* Stable: a restarted gend finds the same name. */
        veth_host_name("web", 1, a);
        veth_host_name("web", 1, b);
        assert_string_equal(a, b);
        assert_int_equal(netns_name("web", 3, &ns), 0);
        assert_string_equal(ns, "gen-web-3");
        free(ns);
}

/* Marks use only the bits of gend's mask: other users keep theirs. */
static void test_marks(void **state) {
        struct marks m;
        (void)state;
        assert_int_equal(marks_parse(GEN_MARK_MASK_DEFAULT, &m), 0);
        assert_int_equal(m.mask, 0x0fff0000);
        assert_int_equal(m.shift, 16);
        assert_int_equal(m.n, 4095);
        assert_int_equal(marks_value(&m, 0), 0x00010000);
        assert_int_equal(marks_value(&m, 5), 0x00060000);
        assert_int_equal(marks_value(&m, 4094), 0x0fff0000);
        assert_int_equal(marks_value(&m, 5) & ~m.mask, 0);
        /* Another program's bits around ours do not change whose it is. */
        assert_int_equal(marks_block(&m, 0xf0064000), 5);
        assert_int_equal(marks_block(&m, 0xf000c000), -1);     /* field 0: not gen's */
        assert_int_equal(marks_parse("0xff", &m), 0);
        assert_int_equal(m.shift, 0);
        assert_int_equal(m.n, 255);
        assert_int_equal(marks_parse("0x0f0f0000", &m), -EINVAL);   /* not contiguous */
        assert_int_equal(marks_parse("0x1", &m), -EINVAL);          /* one bit: too small */
        assert_int_equal(marks_parse("0xffffffff", &m), -EINVAL);   /* 32 bits: too large */
        assert_int_equal(marks_parse("4096", &m), -EINVAL);         /* hex only */
        assert_int_equal(marks_parse("0x", &m), -EINVAL);
        assert_int_equal(marks_parse("0x100000000", &m), -EINVAL);
}

static void test_no_collisions(void **state) {
        /* Many generations of a few services: no two host links alike. */
        static char seen[4000][IFNAME_MAX];
        const char *svcs[] = { "web", "api", "worker", "web2" };
        unsigned n = 0;
        (void)state;
        for (unsigned s = 0; s < 4; s++)
                for (unsigned g = 1; g <= 1000; g++, n++) {
                        veth_host_name(svcs[s], g, seen[n]);
                        for (unsigned i = 0; i < n; i++)
                                if (strcmp(seen[i], seen[n]) == 0)
                                        fail_msg("%s/%u clashes with an earlier name %s", svcs[s], g, seen[n]);
                }
}

/* The generation counter: made once, then rewritten in place at a fixed
 * width (same inode, same size), whatever an earlier version wrote. */
static void test_counter(void **state) {
        char dir[] = "/tmp/gen-unit-counter.XXXXXX", path[64], *txt = NULL;
        struct stat a, b;
        FILE *f;
        (void)state;
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/web.next", dir);
        assert_int_equal(write_counter(path, 7), 0);
        assert_int_equal(read_file(path, &txt, NULL), 0);
        assert_string_equal(txt, "         7\n");
        free(txt);
        assert_int_equal(stat(path, &a), 0);
        assert_int_equal(write_counter(path, 4294967295UL), 0);
        assert_int_equal(stat(path, &b), 0);
        assert_int_equal(a.st_ino, b.st_ino);
        assert_int_equal(b.st_size, COUNTER_LEN);
        assert_int_equal(read_file(path, &txt, NULL), 0);
        assert_string_equal(txt, "4294967295\n");
        free(txt);
        assert_int_equal(write_counter(path, 10000000000UL), -EOVERFLOW);
        assert_non_null(f = fopen(path, "w"));          /* as versions before wrote it */
        fputs("12\n", f);
        fclose(f);
        assert_int_equal(write_counter(path, 13), 0);
        assert_int_equal(read_file(path, &txt, NULL), 0);
        assert_string_equal(txt, "        13\n");
        free(txt);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(dir), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pool), cmocka_unit_test(test_alloc),
                cmocka_unit_test(test_names), cmocka_unit_test(test_no_collisions),
                cmocka_unit_test(test_marks), cmocka_unit_test(test_counter),
        };
        return cmocka_run_group_tests_name("naming", tests, NULL, NULL);
}
