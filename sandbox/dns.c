#include "dns.h"

#include <arpa/inet.h>
#include <string.h>

#include "util.h"

static bool on_loopback(const char *addr) {
        struct in_addr a4;
        struct in6_addr a6;

        if (inet_pton(AF_INET, addr, &a4) == 1)
                return (ntohl(a4.s_addr) >> 24) == 127 || a4.s_addr == 0;
        if (inet_pton(AF_INET6, addr, &a6) == 1)
                return IN6_IS_ADDR_LOOPBACK(&a6) || IN6_IS_ADDR_UNSPECIFIED(&a6);
        return false;
}

/* "nameserver ADDR": the address (in buf), else NULL. */
static const char *nameserver_of(const char *line, size_t len, char *buf, size_t n) {
        const char *p = line, *end = line + len;
        size_t alen;

        while (p < end && (*p == ' ' || *p == '\t'))
                p++;
        if ((size_t)(end - p) < 11 || strncmp(p, "nameserver", 10) != 0 ||
            (p[10] != ' ' && p[10] != '\t'))
                return NULL;
        p += 10;
        while (p < end && (*p == ' ' || *p == '\t'))
                p++;
        alen = strcspn(p, " \t\r\n#;");
        if (p + alen > end)
                alen = end - p;
        if (alen == 0 || alen >= n)
                return NULL;
        memcpy(buf, p, alen);
        buf[alen] = 0;
        return buf;
}

static void emit(FILE *f, char *const *dns, const char *gateway) {
        if (!dns) {
                fprintf(f, "nameserver %s\n", gateway);
                return;
        }
        for (char *const *d = dns; *d; d++)
                fprintf(f, "nameserver %s\n", *d);
}

int dns_resolv_conf(const char *host_text, const char *gateway, char *const *dns, char **ret) {
        _cleanup_free_ char *out = NULL;
        size_t out_len = 0;
        unsigned kept = 0;
        bool placed = false;
        FILE *f = open_memstream(&out, &out_len);

        if (!f)
                return -ENOMEM;
        fprintf(f, "# made by gend for this generation from the host's resolv.conf\n");
        for (const char *line = host_text ? host_text : ""; *line;) {
                size_t len = strcspn(line, "\n");
                char addr[64];
                const char *ns = nameserver_of(line, len, addr, sizeof(addr));

                if (!ns)
                        fprintf(f, "%.*s\n", (int)len, line);
                else if (!dns && !on_loopback(ns)) {
                        fprintf(f, "nameserver %s\n", ns);
                        kept++;
                } else if (!placed) {
                        emit(f, dns, gateway);
                        placed = true;
                }
                line += len + (line[len] == '\n');
        }
        if (!placed && (dns || kept == 0))
                emit(f, dns, gateway);
        if (fclose(f) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(out);
        return 0;
}

int dns_hosts(const char *hostname, const char *addr, char *const *extra, char **ret) {
        _cleanup_free_ char *out = NULL;
        size_t out_len = 0;
        FILE *f = open_memstream(&out, &out_len);

        if (!f)
                return -ENOMEM;
        fprintf(f, "# made by gend for generation %s\n"
                   "127.0.0.1\tlocalhost\n"
                   "::1\tlocalhost ip6-localhost ip6-loopback\n"
                   "%s\t%s\n", hostname, addr, hostname);
        for (char *const *e = extra; e && *e; e++) {
                const char *sp = strchr(*e, ' ');
                if (sp)
                        fprintf(f, "%.*s\t%s\n", (int)(sp - *e), *e, sp + 1);
        }
        if (fclose(f) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(out);
        return 0;
}
