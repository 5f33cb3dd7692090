/* A generation's link to the host: a veth pair made with libnl-route, the
 * host side HOST_IF with host_addr/30, the inside "eth0" with gen_addr/30,
 * loopback up and a default route via the host side. */
#pragma once

#include <stdint.h>

int veth_create(const char *host_if, int netns_fd, uint32_t host_addr, uint32_t gen_addr);
int veth_destroy(const char *host_if);          /* idempotent */
