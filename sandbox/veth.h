/* A generation's link to the host: a veth pair made with libnl-route, the
 * host side HOST_IF with host_addr/30, the inside "eth0" with gen_addr/30,
 * loopback up and a default route via the host side. Each end's MAC is
 * made from its address, and each knows the other's as a permanent
 * neighbour entry (no ARP; no room taken in the kernel's neighbour table,
 * one for all namespaces, which refuses entries past gc_thresh3). Both
 * ends are running when veth_create returns. */
#pragma once

#include <stdint.h>

int veth_create(const char *host_if, int netns_fd, uint32_t host_addr, uint32_t gen_addr);
int veth_destroy(const char *host_if);          /* idempotent */
/* 1: HOST_IF is a link here, 0: it is not; < 0: cannot tell. */
int veth_exists(const char *host_if);

/* Calls fn for every IPv4 address on a host link (the namespace gend runs
 * in), with the link's name: who uses what in the pool. */
int host_addrs_foreach(void (*fn)(uint32_t addr, const char *ifname, void *userdata),
                       void *userdata);
