/* Who holds a public port on this host (gend's network namespace): a
 * socket listening on it (TCP) or bound to it (UDP), and its process. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 1 and a description ("pid 812 (nginx) listens on 0.0.0.0:8080") when
 * held, 0 when free, -errno when it cannot be told. */
int port_holder(int proto, uint16_t port, char *buf, size_t n);
/* Pure, for the tests: the first socket of a /proc/net/{tcp,udp}[6] table
 * on port in the given state (hex, "0A" LISTEN, "07" UDP unconnected):
 * its inode and local address. */
int port_find_in_table(const char *table, uint16_t port, const char *state, bool ipv6,
                       unsigned long *ret_inode, char *addr, size_t n);
