/* Counting and deleting a generation's connections by their conntrack
 * mark (set by its GEN-S-* chain, in gend's mask only), read over
 * ctnetlink with libnl-nf. */
#pragma once

#include <stdint.h>

#include "../sandbox/naming.h"

struct ct;

int ct_open(struct ct **ret);
void ct_close(struct ct *c);
/* Entries whose mark has value mark under mask, not TIME_WAIT or CLOSE. */
int ct_count_live(struct ct *c, uint32_t mark, uint32_t mask, unsigned *ret);
/* The same for every block at once, into counts[block]: one walk. */
int ct_count_live_by_block(struct ct *c, const struct marks *m, unsigned *counts, unsigned n);
/* A live connection, as its first packet had it. */
struct ct_conn {
        int proto;                      /* IPPROTO_TCP, IPPROTO_UDP, ... */
        uint32_t src, dst;              /* host order: the peer, and where it connected to */
        uint16_t sport, dport;
        char state[16];                 /* TCP state, "" for other protocols */
};
/* The live entries with that mark: at most max into out, *ret_total all. */
int ct_list_live(struct ct *c, uint32_t mark, uint32_t mask, struct ct_conn *out, unsigned max,
                 unsigned *ret_n, unsigned *ret_total);
/* Deletes the entries with that mark (of one protocol, or 0: all). */
int ct_delete(struct ct *c, uint32_t mark, uint32_t mask, int proto, unsigned *ret_deleted);
