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

static char *render_switch(enum rules_op op, const struct port_map *old_ports, unsigned n_old) {
        struct rules_target t = { "web", ports, 2, 0x0ad50006, 0x00010000, 0x0fff0000 };
        struct rules_target old = { "web", old_ports, n_old, 0, 0, 0 };
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        assert_int_equal(rules_render(f, op, &t, old_ports ? &old : NULL), 0);
        fclose(f);
        return buf;
}

static char *render(enum rules_op op) { return render_switch(op, NULL, 0); }

static char *reconcile(const char *save_text, unsigned n, uint32_t dns) {
        struct rules_base b = { .dns = dns, .closed = 0x0ad52000, .closed_prefix = 19 };
        struct rules_target t[] = {
                { "web", ports, 2, 0x0ad50006, 0x00010000, 0x0fff0000 },
                { "api", ports, 1, 0x0ad5000a, 0x00020000, 0x0fff0000 },
        };
        struct rules_seen seen;
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        assert_int_equal(pool_parse("10.213.0.0/16", &b.pool), 0);
        assert_int_equal(rules_parse_save(save_text, &seen), 0);
        assert_int_equal(rules_render_reconcile(f, &b, &seen, t, n), 0);
        rules_seen_done(&seen);
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

/* The base comes with gend's start, so generations reach out from their
 * first instant, before any service has rules. */
static void test_base_on_a_clean_host(void **state) {
        char *t = reconcile("*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n*filter\nCOMMIT\n", 0, 0);
        (void)state;
        expect(t, "*filter\n:GEN-FWD - [0:0]\n:GEN-INPUT - [0:0]\n");
        expect(t, "-A GEN-FWD -s 10.213.0.0/16 -d 10.213.0.0/16 -p tcp -m conntrack ! --ctstate DNAT -j REJECT --reject-with tcp-reset\n");
        expect(t, "-A GEN-FWD -s 10.213.0.0/16 -d 10.213.0.0/16 -m conntrack ! --ctstate DNAT -j REJECT --reject-with icmp-port-unreachable\n");
        expect(t, "-A GEN-INPUT -s 10.213.32.0/19 -p tcp -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j REJECT --reject-with tcp-reset\n");
        expect(t, "-A GEN-FWD -d 10.213.0.0/16 -j ACCEPT\n");
        expect(t, "-A GEN-INPUT -d 127.0.0.0/8 ! -i lo -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\n");
        expect(t, "-I FORWARD 1 -j GEN-FWD\n");
        expect(t, "-I INPUT 1 -j GEN-INPUT\n");
        expect(t, "*nat\n:GEN-DNAT - [0:0]\n:GEN-POST - [0:0]\n");
        expect(t, "-A PREROUTING -m addrtype --dst-type LOCAL -j GEN-DNAT\n");
        expect(t, "-A OUTPUT -m addrtype --dst-type LOCAL -j GEN-DNAT\n");
        expect(t, "-A POSTROUTING -j GEN-POST\n");
        expect(t, "-A GEN-POST -s 127.0.0.0/8 -d 10.213.0.0/16 -j MASQUERADE\n");
        expect(t, "-A GEN-POST -s 10.213.0.0/16 ! -d 10.213.0.0/16 -j MASQUERADE\n");
        refuse(t, "--dport 53");
        refuse(t, "GEN-S-");
        refuse(t, "-D ");
        only_gen_chains(t);
        free(t);
}

/* What a crashed or older gend left: duplicate jumps go, one stays; rules
 * of services that no longer serve go; others' rules are never named. */
static void test_reconcile_repairs(void **state) {
        const char *save =
                "*nat\n"
                ":PREROUTING ACCEPT [0:0]\n:GEN-DNAT - [0:0]\n:GEN-S-old - [0:0]\n:GEN-S-web - [0:0]\n"
                ":KUBE-SERVICES - [0:0]\n"
                "-A PREROUTING -j KUBE-SERVICES\n"
                "-A PREROUTING -m addrtype --dst-type LOCAL -j GEN-DNAT\n"
                "-A PREROUTING -m addrtype --dst-type LOCAL -j GEN-DNAT\n"
                "-A PREROUTING -m addrtype --dst-type LOCAL -j GEN-DNAT\n"
                "-A OUTPUT -m addrtype --dst-type LOCAL -j GEN-DNAT\n"
                "-A GEN-S-web -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.213.0.2:9501\n"
                "-A GEN-S-old -p tcp -m tcp --dport 81 -j DNAT --to-destination 10.213.0.9:9501\n"
                "COMMIT\n*filter\n-A FORWARD -j GEN-FWD\n-A INPUT -j GEN-INPUT\nCOMMIT\n";
        struct rules_seen seen;
        char *t = reconcile(save, 1, 0x7f000035);
        (void)state;

        assert_int_equal(rules_parse_save(save, &seen), 0);
        assert_int_equal(seen.jumps[0], 3);
        assert_int_equal(rules_seen_addr(&seen, "web"), 0x0ad50002);
        assert_int_equal(rules_seen_addr(&seen, "old"), 0x0ad50009);
        assert_int_equal(rules_seen_addr(&seen, "none"), 0);
        rules_seen_done(&seen);

        /* Two of three PREROUTING copies deleted, none added. */
        assert_non_null(strstr(t, "-D PREROUTING -m addrtype --dst-type LOCAL -j GEN-DNAT\n"
                                  "-D PREROUTING -m addrtype --dst-type LOCAL -j GEN-DNAT\n"));
        refuse(t, "-A PREROUTING");
        refuse(t, "-A OUTPUT");
        refuse(t, "-I FORWARD");
        expect(t, "-A POSTROUTING -j GEN-POST\n");
        /* The serving service, rebuilt; the one that does not serve, gone. */
        expect(t, ":GEN-S-web - [0:0]\n-A GEN-S-web -j CONNMARK --set-xmark 0x10000/0xfff0000\n");
        expect(t, "-A GEN-DNAT -p tcp -m tcp --dport 80 -j GEN-S-web\n");
        expect(t, ":GEN-S-old - [0:0]\n-X GEN-S-old\n");
        /* The host's resolver on loopback, reached at the gateway. */
        expect(t, "-A GEN-DNAT -s 10.213.0.0/16 -d 10.213.0.0/16 -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.53:53\n");
        refuse(t, "KUBE");
        only_gen_chains(t);
        free(t);
}

static void test_add(void **state) {
        char *t = render(RULES_ADD);
        (void)state;
        refuse(t, "*filter");
        refuse(t, "GEN-POST");
        refuse(t, "PREROUTING");
        expect(t, ":GEN-S-web - [0:0]\n-A GEN-S-web -j CONNMARK --set-xmark 0x10000/0xfff0000\n");
        expect(t, "-A GEN-S-web -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.213.0.6:9501\n");
        expect(t, "-A GEN-S-web -p udp -m udp --dport 5353 -j DNAT --to-destination 10.213.0.6:53\n");
        expect(t, "-A GEN-DNAT -p tcp -m tcp --dport 80 -j GEN-S-web\n");
        expect(t, "-A GEN-DNAT -p udp -m udp --dport 5353 -j GEN-S-web\n");
        only_gen_chains(t);
        free(t);
}

/* A switch is one nat transaction that rewrites only GEN-S-web, and marks
 * with gend's mask only. */
static void test_switch(void **state) {
        char *t = render_switch(RULES_SWITCH, ports, 2);
        (void)state;
        assert_string_equal(t,
                "*nat\n"
                ":GEN-S-web - [0:0]\n"
                "-A GEN-S-web -j CONNMARK --set-xmark 0x10000/0xfff0000\n"
                "-A GEN-S-web -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.213.0.6:9501\n"
                "-A GEN-S-web -p udp -m udp --dport 5353 -j DNAT --to-destination 10.213.0.6:53\n"
                "COMMIT\n");
        free(t);
}

/* A reloaded policy with other ports: its jumps move in the same commit. */
static void test_switch_new_ports(void **state) {
        static const struct port_map before[] = { { 8080, 9501, IPPROTO_TCP } };
        char *t = render_switch(RULES_SWITCH, before, 1);
        (void)state;
        expect(t, "-D GEN-DNAT -p tcp -m tcp --dport 8080 -j GEN-S-web\n");
        expect(t, "-A GEN-DNAT -p tcp -m tcp --dport 80 -j GEN-S-web\n");
        assert_true(strstr(t, "-D GEN-DNAT") < strstr(t, ":GEN-S-web"));
        only_gen_chains(t);
        free(t);
}

static void test_remove(void **state) {
        char *t = render(RULES_REMOVE);
        (void)state;
        expect(t, "-D GEN-DNAT -p tcp -m tcp --dport 80 -j GEN-S-web\n");
        expect(t, ":GEN-S-web - [0:0]\n-X GEN-S-web\n");
        assert_true(strstr(t, "-D GEN-DNAT") < strstr(t, "-X GEN-S-web"));
        /* The base stays: gend's other services and outgoing traffic need it. */
        refuse(t, "-X GEN-DNAT");
        refuse(t, "PREROUTING");
        only_gen_chains(t);
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
                cmocka_unit_test(test_base_on_a_clean_host), cmocka_unit_test(test_reconcile_repairs),
                cmocka_unit_test(test_add),           cmocka_unit_test(test_switch),
                cmocka_unit_test(test_switch_new_ports), cmocka_unit_test(test_remove),
                cmocka_unit_test(test_chain_name),
        };
        return cmocka_run_group_tests_name("rules", tests, NULL, NULL);
}
