/* A generation's connections, as conntrack sees them: entries carrying its
 * mark (set by its GEN-S-* chain), read over ctnetlink with libnl-nf. */
#pragma once

#include <stdint.h>

struct ct;

int ct_open(struct ct **ret);
void ct_close(struct ct *c);
/* Live: TCP entries not in TIME_WAIT or CLOSE, and every other entry. */
int ct_count_live(struct ct *c, uint32_t mark, unsigned *ret);
/* All generations at once, in one walk of the table: counts[block] for
 * blocks below n (the table is walked whole whatever the filter). */
int ct_count_live_by_block(struct ct *c, unsigned *counts, unsigned n);
/* UDP entries of a generation that is no longer active (kube-proxy's
 * lesson: a UDP flow never ends by itself, so it would stick to the old one). */
int ct_delete_udp(struct ct *c, uint32_t mark, unsigned *ret_deleted);
