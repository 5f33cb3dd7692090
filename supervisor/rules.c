#include "rules.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../sandbox/util.h"

/* Jumps from built-in chains. Appended, so rules others put first win;
 * FORWARD and INPUT are inserted first because a DROP policy or a DROP
 * rule there (Docker) would otherwise stop the generations' traffic. */
static const struct jump {
        const char *table, *chain, *match, *target;
        bool insert;
} jumps[RULES_N_JUMPS] = {
        { "nat", "PREROUTING", "-m addrtype --dst-type LOCAL", "GEN-DNAT", false },
        { "nat", "OUTPUT", "-m addrtype --dst-type LOCAL", "GEN-DNAT", false },
        { "nat", "POSTROUTING", "", "GEN-POST", false },
        { "filter", "FORWARD", "", "GEN-FWD", true },
        { "filter", "INPUT", "", "GEN-INPUT", true },
};

int rules_chain_name(const char *service, char *buf, size_t n) {
        if ((size_t)snprintf(buf, n, "GEN-S-%s", service) >= n || strlen(buf) > 28)
                return -ENAMETOOLONG;
        return 0;
}

/* "CHAIN[ MATCH] -j TARGET", the rule as iptables-save prints it after -A. */
static void jump_spec(const struct jump *j, char *buf, size_t n) {
        snprintf(buf, n, "%s%s%s -j %s", j->chain, *j->match ? " " : "", j->match, j->target);
}

/* Exactly one copy of each jump of this table: add a missing one, delete
 * the extra copies (an older gend's, or a crash's). */
static void jumps_fix(FILE *out, const char *table, const unsigned *seen) {
        char spec[128];

        for (unsigned i = 0; i < RULES_N_JUMPS; i++) {
                const struct jump *j = &jumps[i];
                if (strcmp(j->table, table) != 0)
                        continue;
                jump_spec(j, spec, sizeof(spec));
                if (seen[i] == 0 && j->insert)
                        fprintf(out, "-I %s 1%s%s -j %s\n", j->chain, *j->match ? " " : "",
                                j->match, j->target);
                else if (seen[i] == 0)
                        fprintf(out, "-A %s\n", spec);
                for (unsigned k = 1; k < seen[i]; k++)
                        fprintf(out, "-D %s\n", spec);
        }
}

static void filter_base(FILE *out, const struct rules_base *b) {
        char p[32];

        pool_to_string(&b->pool, p, sizeof(p));
        fprintf(out, ":GEN-FWD - [0:0]\n:GEN-INPUT - [0:0]\n");
        /* A generation reaches another one only through a public port (DNAT),
         * like any client, never at its own address: refused at once. */
        fprintf(out, "-A GEN-FWD -s %s -d %s -p tcp -m conntrack ! --ctstate DNAT -j REJECT "
                "--reject-with tcp-reset\n", p, p);
        fprintf(out, "-A GEN-FWD -s %s -d %s -m conntrack ! --ctstate DNAT -j REJECT "
                "--reject-with icmp-port-unreachable\n", p, p);
        fprintf(out, "-A GEN-FWD -d %s -j ACCEPT\n-A GEN-FWD -s %s -j ACCEPT\n", p, p);
        /* route_localnet is on for gen's veth links; like kube-proxy
         * (CVE-2020-8558), drop new connections to 127/8 that did not come
         * from lo, so no generation reaches the host's loopback services
         * (but the resolver gend forwards to, by DNAT). */
        fprintf(out, "-A GEN-INPUT -d 127.0.0.0/8 ! -i lo -m conntrack ! --ctstate "
                "RELATED,ESTABLISHED,DNAT -j DROP\n");
        if (b->closed_prefix) {
                /* [sandbox] host-ports = closed: the host's own ports refuse its
                 * generations (public ports and the resolver are DNAT, and stay). */
                char c[32], a[16];
                snprintf(c, sizeof(c), "%s/%u", ip4_to_string(b->closed, a, sizeof(a)),
                         b->closed_prefix);
                fprintf(out, "-A GEN-INPUT -s %s -p tcp -m conntrack ! --ctstate "
                        "RELATED,ESTABLISHED,DNAT -j REJECT --reject-with tcp-reset\n", c);
                fprintf(out, "-A GEN-INPUT -s %s -m conntrack ! --ctstate "
                        "RELATED,ESTABLISHED,DNAT -j REJECT --reject-with icmp-port-unreachable\n", c);
        }
}

static void nat_base(FILE *out, const struct rules_base *b) {
        char p[32], dns[16];

        pool_to_string(&b->pool, p, sizeof(p));
        fprintf(out, ":GEN-DNAT - [0:0]\n:GEN-POST - [0:0]\n");
        /* Host clients on 127/8 need a source the generation can answer. */
        fprintf(out, "-A GEN-POST -s 127.0.0.0/8 -d %s -j MASQUERADE\n", p);
        /* The generations' own outgoing traffic leaves as the host. */
        fprintf(out, "-A GEN-POST -s %s ! -d %s -j MASQUERADE\n", p, p);
        if (b->dns) {
                /* The host's resolver listens on loopback: generations ask
                 * their gateway, and reach it there. */
                ip4_to_string(b->dns, dns, sizeof(dns));
                for (int udp = 1; udp >= 0; udp--)
                        fprintf(out, "-A GEN-DNAT -s %s -d %s -p %s -m %s --dport 53 -j DNAT "
                                "--to-destination %s:53\n", p, p, udp ? "udp" : "tcp",
                                udp ? "udp" : "tcp", dns);
        }
}

static void dnat_jumps(FILE *out, const struct rules_target *t, const char *chain, bool add) {
        for (unsigned i = 0; i < t->n_ports; i++)
                fprintf(out, "%s GEN-DNAT -p %s -m %s --dport %u -j %s\n", add ? "-A" : "-D",
                        proto_to_string(t->ports[i].proto), proto_to_string(t->ports[i].proto),
                        t->ports[i].public_port, chain);
}

static void service_chain(FILE *out, const struct rules_target *t, const char *chain) {
        char a[16];

        ip4_to_string(t->addr, a, sizeof(a));
        /* Declaring the chain flushes it: old rules out, new in, one commit. */
        fprintf(out, ":%s - [0:0]\n", chain);
        fprintf(out, "-A %s -j CONNMARK --set-xmark 0x%x/0x%x\n", chain, t->mark, t->mask);
        for (unsigned i = 0; i < t->n_ports; i++)
                fprintf(out, "-A %s -p %s -m %s --dport %u -j DNAT --to-destination %s:%u\n",
                        chain, proto_to_string(t->ports[i].proto),
                        proto_to_string(t->ports[i].proto), t->ports[i].public_port, a,
                        t->ports[i].inner_port);
}

static bool same_ports(const struct rules_target *a, const struct rules_target *b) {
        return a->n_ports == b->n_ports &&
               memcmp(a->ports, b->ports, a->n_ports * sizeof(*a->ports)) == 0;
}

int rules_render(FILE *out, enum rules_op op, const struct rules_target *t,
                 const struct rules_target *old) {
        char chain[32];

        if (rules_chain_name(t->service, chain, sizeof(chain)) < 0)
                return -ENAMETOOLONG;
        fprintf(out, "*nat\n");
        switch (op) {
        case RULES_ADD:
                service_chain(out, t, chain);
                dnat_jumps(out, t, chain, true);
                break;
        case RULES_SWITCH:
                if (old && !same_ports(old, t))
                        dnat_jumps(out, old, chain, false);
                service_chain(out, t, chain);
                if (old && !same_ports(old, t))
                        dnat_jumps(out, t, chain, true);
                break;
        case RULES_REMOVE:
                dnat_jumps(out, t, chain, false);
                fprintf(out, ":%s - [0:0]\n-X %s\n", chain, chain);
                break;
        }
        fprintf(out, "COMMIT\n");
        return ferror(out) ? -EIO : 0;
}

static bool wanted(const struct rules_target *t, unsigned n, const char *chain) {
        char c[32];
        for (unsigned i = 0; i < n; i++)
                if (rules_chain_name(t[i].service, c, sizeof(c)) == 0 && strcmp(c, chain) == 0)
                        return true;
        return false;
}

int rules_render_reconcile(FILE *out, const struct rules_base *b, const struct rules_seen *seen,
                           const struct rules_target *t, unsigned n) {
        char chain[32];

        fprintf(out, "*filter\n");
        filter_base(out, b);
        jumps_fix(out, "filter", seen->jumps);
        fprintf(out, "COMMIT\n*nat\n");
        nat_base(out, b);
        for (unsigned i = 0; i < n; i++) {
                if (rules_chain_name(t[i].service, chain, sizeof(chain)) < 0)
                        return -ENAMETOOLONG;
                service_chain(out, &t[i], chain);
                dnat_jumps(out, &t[i], chain, true);
        }
        /* Service chains of services that no longer serve: GEN-DNAT, the
         * only chain that jumps to them, was flushed above. */
        for (char **c = seen->chains; c && *c; c++)
                if (strncmp(*c, "nat:GEN-S-", 10) == 0 && !wanted(t, n, *c + 4))
                        fprintf(out, ":%s - [0:0]\n-X %s\n", *c + 4, *c + 4);
        jumps_fix(out, "nat", seen->jumps);
        fprintf(out, "COMMIT\n");
        return ferror(out) ? -EIO : 0;
}

void rules_seen_done(struct rules_seen *s) {
        strv_free(s->chains);
        strv_free(s->service_addrs);
        *s = (struct rules_seen){ 0 };
}

static int parse_line(struct rules_seen *s, const char *table, const char *l) {
        char spec[128], name[64], addr[16];
        char *e;

        if (l[0] == ':' && strncmp(l + 1, "GEN-", 4) == 0) {
                if (sscanf(l + 1, "%63s", name) != 1)
                        return 0;
                return asprintf(&e, "%s:%s", table, name) < 0 || strv_push(&s->chains, e) < 0
                               ? -ENOMEM : 0;
        }
        if (strncmp(l, "-A ", 3) != 0)
                return 0;
        for (unsigned i = 0; i < RULES_N_JUMPS; i++) {
                jump_spec(&jumps[i], spec, sizeof(spec));
                if (strcmp(jumps[i].table, table) == 0 && strcmp(l + 3, spec) == 0)
                        s->jumps[i]++;
        }
        /* -A GEN-S-web -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.213.0.2:9501 */
        if (strcmp(table, "nat") == 0 && strncmp(l + 3, "GEN-S-", 6) == 0 &&
            sscanf(l + 9, "%63s", name) == 1 && (e = strstr(l, "--to-destination ")) &&
            sscanf(e + 17, "%15[0-9.]", addr) == 1 && !rules_seen_addr(s, name)) {
                char *kv;
                if (asprintf(&kv, "%s=%s", name, addr) < 0 || strv_push(&s->service_addrs, kv) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int rules_parse_save(const char *text, struct rules_seen *ret) {
        struct rules_seen s = { 0 };
        char table[16] = "";

        for (const char *l = text; l && *l;) {
                const char *nl = strchr(l, '\n');
                size_t len = nl ? (size_t)(nl - l) : strlen(l);
                _cleanup_free_ char *line = strndup(l, len);
                l = nl ? nl + 1 : NULL;
                if (!line) {
                        rules_seen_done(&s);
                        return -ENOMEM;
                }
                if (line[0] == '*')
                        snprintf(table, sizeof(table), "%s", line + 1);
                else if (parse_line(&s, table, line) < 0) {
                        rules_seen_done(&s);
                        return -ENOMEM;
                }
        }
        *ret = s;
        return 0;
}

uint32_t rules_seen_addr(const struct rules_seen *s, const char *service) {
        size_t n = strlen(service);
        unsigned a, b, c, d;

        for (char **kv = s->service_addrs; kv && *kv; kv++)
                if (strncmp(*kv, service, n) == 0 && (*kv)[n] == '=' &&
                    sscanf(*kv + n + 1, "%u.%u.%u.%u", &a, &b, &c, &d) == 4)
                        return a << 24 | b << 16 | c << 8 | d;
        return 0;
}
