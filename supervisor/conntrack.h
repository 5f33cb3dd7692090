/* Counting and deleting a generation's connections by their conntrack
 * mark (set by its GEN-S-* chain, in gend's mask only), read over
 * ctnetlink with libnl-nf. */
#pragma once

#include <stdbool.h>
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

/* A set of entries by their CTA_ID (unique among live entries), sorted. */
struct ct_ids {
        uint32_t *v;
        unsigned n, cap;
};
int ct_ids_add(struct ct_ids *s, uint32_t id);  /* 1: added, 0: there already */
bool ct_ids_del(struct ct_ids *s, uint32_t id); /* true: it was there */
bool ct_ids_has(const struct ct_ids *s, uint32_t id);
void ct_ids_clear(struct ct_ids *s);
/* The live entries with that mark, into a set that replaces *ret's. */
int ct_live_ids(struct ct *c, uint32_t mark, uint32_t mask, struct ct_ids *ret);

/* Conntrack events (ctnetlink's update and destroy groups): fn is called
 * for each entry that changed state or went away, so a drain follows its
 * connections without counting them again. Only the entries whose mark is
 * followed: none at first, then the marks given to ct_events_follow; a
 * socket filter drops the others' events in the kernel, and while none is
 * followed the socket is in the destroy group alone (an active
 * generation's connections would cost the kernel five or six update
 * events each, and gend a wakeup for each).
 *
 * With net.netfilter.nf_conntrack_events = 2 (the kernel's default) an
 * entry has events only if a socket was in a conntrack group when it was
 * made: open early (gend does when it starts), not when a drain begins. */
struct ct_event {
        uint32_t mark, id;
        int proto;
        bool gone;                      /* destroyed */
        bool state_known;               /* TCP: it carried the state (it changed) */
        bool live;                      /* by ct_count_live's measure, when known */
};
struct ct_events;
typedef void (*ct_event_fn)(const struct ct_event *ev, void *userdata);
int ct_events_open(uint32_t mask, ct_event_fn fn, void *userdata, struct ct_events **ret);
/* Follows the entries whose mark, masked, is one of marks[] (n = 0: none). */
int ct_events_follow(struct ct_events *e, const uint32_t *marks, unsigned n);
int ct_events_fd(const struct ct_events *e);
/* Reads what is queued; -ENOBUFS: the socket overflowed and events were
 * lost (count everything again). */
int ct_events_read(struct ct_events *e);
void ct_events_close(struct ct_events *e);
