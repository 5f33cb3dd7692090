/* Names and addresses of a generation's kernel objects, derived from
 * (service, generation) and its address block. Pure. */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#define IFNAME_MAX 16   /* IFNAMSIZ, with the NUL */

struct pool {
        uint32_t base;          /* network, host order */
        unsigned prefix;        /* /8 .. /28 */
};

/* Each generation gets a /30 block: .0 network, .1 host side, .2 generation. */
int pool_parse(const char *s, struct pool *ret);
unsigned pool_blocks(const struct pool *p);
uint32_t pool_host_addr(const struct pool *p, unsigned block);
uint32_t pool_gen_addr(const struct pool *p, unsigned block);
bool pool_contains(const struct pool *p, uint32_t addr);
/* The first block from start on (round robin over n) that is not used
 * and lies in the wanted part: [half, 2 half) when closed, the rest
 * otherwise (half 0: no closed part); -ENOSPC when none. */
int pool_take(const uint8_t *used, unsigned n, unsigned start, unsigned half, bool closed);
const char *pool_to_string(const struct pool *p, char *buf, size_t n);

const char *ip4_to_string(uint32_t addr, char *buf, size_t n);

/* Host side veth name: "g" + 8 hex of a hash of service/generation + "h". */
void veth_host_name(const char *service, unsigned gen, char ret[IFNAME_MAX]);
/* netns name: gen-<service>-<gen>, for ip netns exec. */
int netns_name(const char *service, unsigned gen, char **ret);
/* Connection marks: gen uses only the bits of one contiguous mask (gend -M),
 * so other users of conntrack marks keep theirs. A generation's mark is its
 * block number + 1 in that field; 0 in the field means "not gen's". */
struct marks {
        uint32_t mask;
        unsigned shift;         /* of the mask's lowest bit */
        unsigned n;             /* distinct marks: blocks that can be live at once */
};
#define GEN_MARK_MASK_DEFAULT "0x0fff0000"
int marks_parse(const char *s, struct marks *ret);      /* contiguous, 2 to 16 bits */
uint32_t marks_value(const struct marks *m, unsigned block);
/* The block a conntrack mark names, or -1 when the field is not gen's. */
int marks_block(const struct marks *m, uint32_t ctmark);
