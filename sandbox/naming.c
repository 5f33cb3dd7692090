#include "naming.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

int pool_parse(const char *s, struct pool *ret) {
        char buf[32], *slash;
        struct in_addr a;
        unsigned long prefix;
        char *end;

        if (strlen(s) >= sizeof(buf))
                return -EINVAL;
        strcpy(buf, s);
        slash = strchr(buf, '/');
        if (!slash)
                return -EINVAL;
        *slash = 0;
        if (inet_pton(AF_INET, buf, &a) != 1)
                return -EINVAL;
        prefix = strtoul(slash + 1, &end, 10);
        if (*end || slash[1] == 0 || prefix < 8 || prefix > 28)
                return -EINVAL;
        uint32_t base = ntohl(a.s_addr), mask = ~0U << (32 - prefix);
        if (base & ~mask)
                return -EINVAL;         /* host bits set: say the network exactly */
        ret->base = base;
        ret->prefix = (unsigned)prefix;
        return 0;
}

unsigned pool_blocks(const struct pool *p) {
        unsigned n = 1U << (30 - p->prefix);
        return n > 65536 ? 65536 : n;   /* marks have at most 16 bits: no more live at once */
}

uint32_t pool_host_addr(const struct pool *p, unsigned block) { return p->base + block * 4 + 1; }
uint32_t pool_gen_addr(const struct pool *p, unsigned block) { return p->base + block * 4 + 2; }

bool pool_contains(const struct pool *p, uint32_t addr) {
        uint32_t mask = ~0U << (32 - p->prefix);
        return (addr & mask) == p->base;
}

int pool_take(const uint8_t *used, unsigned n, unsigned start, unsigned half, bool closed) {
        for (unsigned i = 0; i < n; i++) {
                unsigned b = (start + i) % n;
                bool in_closed = half && b >= half && b < 2 * half;
                if (!used[b] && in_closed == closed)
                        return (int)b;
        }
        return -ENOSPC;
}

const char *ip4_to_string(uint32_t addr, char *buf, size_t n) {
        snprintf(buf, n, "%u.%u.%u.%u", addr >> 24, (addr >> 16) & 255, (addr >> 8) & 255,
                 addr & 255);
        return buf;
}

const char *pool_to_string(const struct pool *p, char *buf, size_t n) {
        char a[16];
        snprintf(buf, n, "%s/%u", ip4_to_string(p->base, a, sizeof(a)), p->prefix);
        return buf;
}

static uint32_t fnv1a(const char *s, uint32_t h) {
        for (; *s; s++) {
                h ^= (unsigned char)*s;
                h *= 16777619U;
        }
        return h;
}

void veth_host_name(const char *service, unsigned gen, char ret[IFNAME_MAX]) {
        char g[16];
        snprintf(g, sizeof(g), "/%u", gen);
        snprintf(ret, IFNAME_MAX, "g%08xh", fnv1a(g, fnv1a(service, 2166136261U)));
}

int netns_name(const char *service, unsigned gen, char **ret) {
        return asprintf(ret, "gen-%s-%u", service, gen) < 0 ? -ENOMEM : 0;
}

int marks_parse(const char *s, struct marks *ret) {
        unsigned long v;
        unsigned shift = 0, bits = 0;
        char *end;

        if (strncmp(s, "0x", 2) != 0 || !s[2])
                return -EINVAL;
        errno = 0;
        v = strtoul(s + 2, &end, 16);
        if (errno || *end || v == 0 || v > 0xffffffffUL)
                return -EINVAL;
        while (!(v >> shift & 1))
                shift++;
        while (shift + bits < 32 && (v >> (shift + bits) & 1))
                bits++;
        if ((v >> shift) != (1UL << bits) - 1 || bits < 2 || bits > 16)
                return -EINVAL;         /* not contiguous, or too small / large */
        *ret = (struct marks){ .mask = (uint32_t)v, .shift = shift, .n = (1U << bits) - 1 };
        return 0;
}

uint32_t marks_value(const struct marks *m, unsigned block) {
        return ((uint32_t)(block + 1) << m->shift) & m->mask;
}

int marks_block(const struct marks *m, uint32_t ctmark) {
        uint32_t field = (ctmark & m->mask) >> m->shift;
        return field == 0 || field > m->n ? -1 : (int)field - 1;
}
