#include "rules.h"

#include <errno.h>
#include <string.h>

/* Jumps from built-in chains. Appended, so rules others put first win;
 * FORWARD and INPUT are inserted first because a DROP policy or a DROP
 * rule there (Docker) would otherwise stop the generations' traffic. */
static const struct jump {
        const char *table, *chain, *match, *target;
        bool insert;
} jumps[] = {
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

static void jumps_render(FILE *out, const char *table, bool add) {
        for (size_t i = 0; i < sizeof(jumps) / sizeof(jumps[0]); i++) {
                const struct jump *j = &jumps[i];
                if (strcmp(j->table, table) != 0)
                        continue;
                fprintf(out, "%s %s%s%s%s -j %s\n", !add ? "-D" : j->insert ? "-I" : "-A",
                        j->chain, j->insert && add ? " 1" : "", *j->match ? " " : "", j->match,
                        j->target);
        }
}

static void nat_base(FILE *out, const struct pool *pool, bool install) {
        char p[32];
        pool_to_string(pool, p, sizeof(p));
        if (install) {
                fprintf(out, ":GEN-DNAT - [0:0]\n:GEN-POST - [0:0]\n");
                /* Host clients on 127/8 need a source the generation can answer. */
                fprintf(out, "-A GEN-POST -s 127.0.0.0/8 -d %s -j MASQUERADE\n", p);
                /* The generations' own outgoing traffic leaves as the host. */
                fprintf(out, "-A GEN-POST -s %s ! -d %s -j MASQUERADE\n", p, p);
                jumps_render(out, "nat", true);
        } else {
                jumps_render(out, "nat", false);
                fprintf(out, ":GEN-DNAT - [0:0]\n:GEN-POST - [0:0]\n-X GEN-DNAT\n-X GEN-POST\n");
        }
}

static void filter_base(FILE *out, const struct pool *pool, bool install) {
        char p[32];
        pool_to_string(pool, p, sizeof(p));
        fprintf(out, "*filter\n");
        if (install) {
                fprintf(out, ":GEN-FWD - [0:0]\n:GEN-INPUT - [0:0]\n");
                fprintf(out, "-A GEN-FWD -d %s -j ACCEPT\n-A GEN-FWD -s %s -j ACCEPT\n", p, p);
                /* route_localnet is on for gen's veth links; like kube-proxy
                 * (CVE-2020-8558), drop new connections to 127/8 that did not
                 * come from lo, so no generation reaches the host's loopback
                 * services. */
                fprintf(out, "-A GEN-INPUT -d 127.0.0.0/8 ! -i lo -m conntrack ! --ctstate "
                        "RELATED,ESTABLISHED,DNAT -j DROP\n");
                jumps_render(out, "filter", true);
        } else {
                jumps_render(out, "filter", false);
                fprintf(out, ":GEN-FWD - [0:0]\n:GEN-INPUT - [0:0]\n-X GEN-FWD\n-X GEN-INPUT\n");
        }
        fprintf(out, "COMMIT\n");
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
        fprintf(out, "-A %s -j CONNMARK --set-xmark 0x%08x/0x%08x\n", chain, t->mark, 0xffffffffU);
        for (unsigned i = 0; i < t->n_ports; i++)
                fprintf(out, "-A %s -p %s -m %s --dport %u -j DNAT --to-destination %s:%u\n",
                        chain, proto_to_string(t->ports[i].proto),
                        proto_to_string(t->ports[i].proto), t->ports[i].public_port, a,
                        t->ports[i].inner_port);
}

int rules_render(FILE *out, enum rules_op op, const struct rules_target *t,
                 const struct pool *pool, bool base_install, bool base_remove) {
        char chain[32];

        if (rules_chain_name(t->service, chain, sizeof(chain)) < 0)
                return -ENAMETOOLONG;
        if (base_install)
                filter_base(out, pool, true);
        fprintf(out, "*nat\n");
        if (base_install)
                nat_base(out, pool, true);
        switch (op) {
        case RULES_ADD:
                service_chain(out, t, chain);
                dnat_jumps(out, t, chain, true);
                break;
        case RULES_SWITCH:
                service_chain(out, t, chain);
                break;
        case RULES_REMOVE:
                dnat_jumps(out, t, chain, false);
                fprintf(out, ":%s - [0:0]\n-X %s\n", chain, chain);
                break;
        }
        if (base_remove)
                nat_base(out, pool, false);
        fprintf(out, "COMMIT\n");
        if (base_remove)
                filter_base(out, pool, false);
        return ferror(out) ? -EIO : 0;
}
