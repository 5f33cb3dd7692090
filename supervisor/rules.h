/* Rendering the GEN-* rules as iptables-restore input. Pure: the only
 * place that knows the rules' shape (DESIGN.md, "Forwarding rules"). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../policy/policy.h"
#include "../sandbox/naming.h"

struct rules_target {
        const char *service;
        const struct port_map *ports;
        unsigned n_ports;
        uint32_t addr;                  /* the active generation */
        uint32_t mark;
};

enum rules_op {
        RULES_ADD,                      /* the service's first rules */
        RULES_SWITCH,                   /* point them at another generation */
        RULES_REMOVE,                   /* take the service out */
};

/* One transaction for iptables-restore --noflush: the service change, with
 * the shared chains and their jumps from built-in chains installed first
 * (base_install) or removed last (base_remove). */
int rules_render(FILE *out, enum rules_op op, const struct rules_target *t,
                 const struct pool *pool, bool base_install, bool base_remove);
int rules_chain_name(const char *service, char *buf, size_t n);
