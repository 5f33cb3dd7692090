#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "../../sandbox/dns.h"
#include "../../sandbox/util.h"

#define HEAD "# made by gend for this generation from the host's resolv.conf\n"

static void resolv_is(const char *host, char *const *dns, const char *want) {
        char *out = NULL;
        assert_int_equal(dns_resolv_conf(host, "10.213.0.1", dns, &out), 0);
        assert_string_equal(out, want);
        free(out);
}

/* systemd-resolved's stub: the gateway takes its place, the rest stays. */
static void test_stub(void **state) {
        (void)state;
        resolv_is("# This is /run/systemd/resolve/stub-resolv.conf\n"
                  "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n", NULL,
                  HEAD "# This is /run/systemd/resolve/stub-resolv.conf\n"
                  "nameserver 10.213.0.1\noptions edns0 trust-ad\nsearch .\n");
}

/* dnsmasq on 127.0.0.1 and ::1: one gateway line, where the first was;
 * a real nameserver after it stays. */
static void test_loopback_mixed(void **state) {
        (void)state;
        resolv_is("domain example.org\nnameserver 127.0.0.1\nnameserver ::1\n"
                  "nameserver 192.0.2.53\n", NULL,
                  HEAD "domain example.org\nnameserver 10.213.0.1\nnameserver 192.0.2.53\n");
        resolv_is("nameserver 0.0.0.0\n", NULL, HEAD "nameserver 10.213.0.1\n");
        resolv_is("  nameserver\t127.1.2.3  # local\n", NULL, HEAD "nameserver 10.213.0.1\n");
}

/* Nameservers the generation can reach stay as they are. */
static void test_remote_kept(void **state) {
        (void)state;
        resolv_is("nameserver 10.255.255.53\n", NULL, HEAD "nameserver 10.255.255.53\n");
        resolv_is("nameserver 2001:db8::1\nnameserver 198.51.100.1", NULL,
                  HEAD "nameserver 2001:db8::1\nnameserver 198.51.100.1\n");
        /* "nameservers" is not the keyword: an unknown line, kept. */
        resolv_is("nameservers 127.0.0.1\n", NULL,
                  HEAD "nameservers 127.0.0.1\nnameserver 10.213.0.1\n");
}

/* No nameserver at all (the resolver would ask the generation's own
 * loopback): the gateway. No file: the same. */
static void test_none(void **state) {
        (void)state;
        resolv_is("search example.org\n", NULL, HEAD "search example.org\nnameserver 10.213.0.1\n");
        resolv_is("", NULL, HEAD "nameserver 10.213.0.1\n");
        resolv_is(NULL, NULL, HEAD "nameserver 10.213.0.1\n");
}

/* [sandbox] dns replaces every nameserver, where the first one was. */
static void test_dns_override(void **state) {
        char *dns[] = { "9.9.9.9", "2620:fe::fe", NULL };
        (void)state;
        resolv_is("search a.example\nnameserver 127.0.0.53\nnameserver 192.0.2.1\noptions ndots:2\n",
                  dns, HEAD "search a.example\nnameserver 9.9.9.9\nnameserver 2620:fe::fe\n"
                  "options ndots:2\n");
        resolv_is("options rotate\n", dns,
                  HEAD "options rotate\nnameserver 9.9.9.9\nnameserver 2620:fe::fe\n");
}

static void test_hosts(void **state) {
        char *extra[] = { "10.0.0.5 db", "fd00::7 cache.local", NULL };
        char *out = NULL;
        (void)state;
        assert_int_equal(dns_hosts("web-3", "10.213.0.2", extra, &out), 0);
        assert_string_equal(out, "# made by gend for generation web-3\n"
                            "127.0.0.1\tlocalhost\n"
                            "::1\tlocalhost ip6-localhost ip6-loopback\n"
                            "10.213.0.2\tweb-3\n"
                            "10.0.0.5\tdb\n"
                            "fd00::7\tcache.local\n");
        free(out);
        assert_int_equal(dns_hosts("api-1", "10.213.0.6", NULL, &out), 0);
        assert_non_null(strstr(out, "\n10.213.0.6\tapi-1\n"));
        free(out);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_stub),        cmocka_unit_test(test_loopback_mixed),
                cmocka_unit_test(test_remote_kept), cmocka_unit_test(test_none),
                cmocka_unit_test(test_dns_override), cmocka_unit_test(test_hosts),
        };
        return cmocka_run_group_tests_name("dns", tests, NULL, NULL);
}
