/* Rendering gen's iptables rules as iptables-restore input, and reading
 * back what iptables-save shows of them. Pure: the only place that knows
 * the rules' shape (DESIGN.md, "Forwarding rules").
 *
 * One gend per network namespace owns every chain named GEN-* there. Its
 * base (GEN-DNAT, GEN-POST, GEN-FWD, GEN-INPUT and one jump to each from a
 * built-in chain) is put in place when gend starts, so generations reach
 * out from their first instant; a service's chain GEN-S-<svc> exists while
 * one of its generations is active. Nothing else is ever touched: rules of
 * other programs in the built-in chains stay as they are, and marks only
 * use the bits of gend's mask. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../policy/policy.h"
#include "../sandbox/naming.h"

struct rules_base {
        struct pool pool;
        uint32_t closed;                /* the part of the pool whose generations do not */
        unsigned closed_prefix;         /* reach the host's own ports; prefix 0: none */
        uint32_t dns;                   /* a resolver on the host's loopback that
                                           generations reach at their gateway, 0: none */
};

struct rules_target {
        const char *service;
        const struct port_map *ports;
        unsigned n_ports;
        uint32_t addr;                  /* the active generation */
        uint32_t mark, mask;
};

enum rules_op {
        RULES_ADD,                      /* the service's first rules */
        RULES_SWITCH,                   /* point them at another generation */
        RULES_REMOVE,                   /* take the service out */
};

/* The jumps from built-in chains, as iptables-save prints them. */
enum { RULES_N_JUMPS = 5 };

/* What iptables-save -t nat / -t filter showed of gen's objects. */
struct rules_seen {
        unsigned jumps[RULES_N_JUMPS];  /* how many copies of each jump */
        char **chains;                  /* every GEN-* chain, nat and filter */
        char **service_addrs;           /* "svc=a.b.c.d", what GEN-S-svc DNATs to */
};

/* One transaction for iptables-restore --noflush changing one service; a
 * switch also moves the service's jumps when its ports changed from old's
 * (a reloaded policy), NULL: they did not. */
int rules_render(FILE *out, enum rules_op op, const struct rules_target *t,
                 const struct rules_target *old);
/* One transaction that makes the kernel's GEN-* objects what gend wants:
 * the base, exactly one copy of each jump, the given services' chains, and
 * no other GEN-* chain. */
int rules_render_reconcile(FILE *out, const struct rules_base *b, const struct rules_seen *seen,
                           const struct rules_target *t, unsigned n);
int rules_parse_save(const char *save_text, struct rules_seen *ret);
void rules_seen_done(struct rules_seen *s);
/* What GEN-S-<service> DNATs to in seen, 0: no such chain. */
uint32_t rules_seen_addr(const struct rules_seen *s, const char *service);
int rules_chain_name(const char *service, char *buf, size_t n);
