#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "../../supervisor/rules.h"

static const struct port_map ports[] = {
        { 80, 9501, IPPROTO_TCP },
        { 5353, 53, IPPROTO_UDP },
};

static char *render(enum rules_op op, bool install, bool remove) {
        struct pool pool;
        struct rules_target t = { "web", ports, 2, 0x0ad50006, 0x47450001 };
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        assert_int_equal(pool_parse("10.213.0.0/16", &pool), 0);
        assert_int_equal(rules_render(f, op, &t, &pool, install, remove), 0);
        fclose(f);
        return buf;
}

static void expect(const char *text, const char *line) {
        if (!strstr(text, line))
                fail_msg("missing \"%s\" in:\n%s", line, text);
}

static void refuse(const char *text, const char *line) {
        if (strstr(text, line))
                fail_msg("unexpected \"%s\" in:\n%s", line, text);
}

/* Only GEN-* chains are created or changed; built-ins only get jumps. */
static void only_gen_chains(const char *text) {
        char *copy = strdup(text), *save = NULL;
        for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                char chain[64];
                if (l[0] == ':' || !strncmp(l, "-X ", 3)) {
                        sscanf(l + (l[0] == ':' ? 1 : 3), "%63s", chain);
                        if (strncmp(chain, "GEN-", 4))
                                fail_msg("touches chain %s: %s", chain, l);
                } else if (l[0] == '-') {
                        sscanf(l + 3, "%63s", chain);
                        if (strncmp(chain, "GEN-", 4) && !strstr(l, "-j GEN-"))
                                fail_msg("a rule in %s that is not a jump to GEN-*: %s", chain, l);
                }
                if (!strncmp(l, "-F", 2) || !strncmp(l, "-P", 2))
                        fail_msg("flush or policy change: %s", l);
        }
        free(copy);
}

static void test_add_with_base(void **state) {
        char *t = render(RULES_ADD, true, false);
        (void)state;
        expect(t, "*filter\n:GEN-FWD - [0:0]\n:GEN-INPUT - [0:0]\n");
        expect(t, "-A GEN-FWD -d 10.213.0.0/16 -j ACCEPT\n");
        expect(t, "-A GEN-INPUT -d 127.0.0.0/8 ! -i lo -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\n");
        expect(t, "-I FORWARD 1 -j GEN-FWD\n");
        expect(t, "-I INPUT 1 -j GEN-INPUT\n");
        expect(t, "*nat\n:GEN-DNAT - [0:0]\n:GEN-POST - [0:0]\n");
        expect(t, "-A PREROUTING -m addrtype --dst-type LOCAL -j GEN-DNAT\n");
        expect(t, "-A OUTPUT -m addrtype --dst-type LOCAL -j GEN-DNAT\n");
        expect(t, "-A POSTROUTING -j GEN-POST\n");
        expect(t, "-A GEN-POST -s 127.0.0.0/8 -d 10.213.0.0/16 -j MASQUERADE\n");
        expect(t, ":GEN-S-web - [0:0]\n-A GEN-S-web -j CONNMARK --set-xmark 0x47450001/0xffffffff\n");
        expect(t, "-A GEN-S-web -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.213.0.6:9501\n");
        expect(t, "-A GEN-S-web -p udp -m udp --dport 5353 -j DNAT --to-destination 10.213.0.6:53\n");
        expect(t, "-A GEN-DNAT -p tcp -m tcp --dport 80 -j GEN-S-web\n");
        expect(t, "-A GEN-DNAT -p udp -m udp --dport 5353 -j GEN-S-web\n");
        only_gen_chains(t);
        free(t);
}

static void test_add_without_base(void **state) {
        char *t = render(RULES_ADD, false, false);
        (void)state;
        refuse(t, "*filter");
        refuse(t, "GEN-POST");
        refuse(t, "PREROUTING");
        expect(t, "-A GEN-DNAT -p tcp -m tcp --dport 80 -j GEN-S-web\n");
        only_gen_chains(t);
        free(t);
}

/* A switch is one nat transaction that rewrites only GEN-S-web. */
static void test_switch(void **state) {
        char *t = render(RULES_SWITCH, false, false);
        (void)state;
        assert_string_equal(t,
                "*nat\n"
                ":GEN-S-web - [0:0]\n"
                "-A GEN-S-web -j CONNMARK --set-xmark 0x47450001/0xffffffff\n"
                "-A GEN-S-web -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.213.0.6:9501\n"
                "-A GEN-S-web -p udp -m udp --dport 5353 -j DNAT --to-destination 10.213.0.6:53\n"
                "COMMIT\n");
        free(t);
}

static void test_remove(void **state) {
        char *t = render(RULES_REMOVE, false, true);
        (void)state;
        expect(t, "-D GEN-DNAT -p tcp -m tcp --dport 80 -j GEN-S-web\n");
        expect(t, ":GEN-S-web - [0:0]\n-X GEN-S-web\n");
        expect(t, "-D PREROUTING -m addrtype --dst-type LOCAL -j GEN-DNAT\n");
        expect(t, "-D POSTROUTING -j GEN-POST\n");
        expect(t, "-X GEN-DNAT\n");
        expect(t, "-D FORWARD -j GEN-FWD\n");
        expect(t, "-D INPUT -j GEN-INPUT\n");
        expect(t, "-X GEN-INPUT\n");
        /* The service's jumps go before its chain, the chain before the base. */
        assert_true(strstr(t, "-D GEN-DNAT") < strstr(t, "-X GEN-S-web"));
        assert_true(strstr(t, "-X GEN-S-web") < strstr(t, "-X GEN-DNAT"));
        only_gen_chains(t);
        free(t);
        t = render(RULES_REMOVE, false, false);
        refuse(t, "-X GEN-DNAT");
        refuse(t, "PREROUTING");
        free(t);
}

static void test_chain_name(void **state) {
        char buf[64];
        (void)state;
        assert_int_equal(rules_chain_name("abcdefghijklmnopqrst", buf, sizeof(buf)), 0);
        assert_true(strlen(buf) <= 28);   /* iptables' limit */
        assert_int_equal(rules_chain_name("abcdefghijklmnopqrstuvw", buf, sizeof(buf)), -ENAMETOOLONG);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_add_with_base), cmocka_unit_test(test_add_without_base),
                cmocka_unit_test(test_switch),        cmocka_unit_test(test_remove),
                cmocka_unit_test(test_chain_name),
        };
        return cmocka_run_group_tests_name("rules", tests, NULL, NULL);
}
