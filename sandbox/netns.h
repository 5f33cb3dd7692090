/* Named network namespaces at /run/netns/NAME, as ip-netns(8) makes them. */
#pragma once

int netns_create(const char *name, int *ret_fd);
int netns_destroy(const char *name);            /* idempotent */
/* Runs fn(arg) with the calling thread in the namespace netns_fd, then
 * returns to the namespace it came from. */
int netns_run_in(int netns_fd, int (*fn)(void *arg), void *arg);
