/* A cgroup's processes and their exits, as events: a pidfd for each
 * process (pidfd_open), watched by the loop, so a drain learns of an exit
 * when it happens. A fork has no event (the proc connector, which has
 * one, serves the initial network namespace only, and every process of
 * the host): procwatch_scan finds the newcomers when the caller looks. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

struct procwatch;
typedef void (*procwatch_fn)(void *userdata);

/* The processes of cgroup's subtree but for its child skip (NULL: none);
 * fn is called from the loop when one of them exits. */
int procwatch_new(sd_event *e, const char *cgroup, const char *skip, procwatch_fn fn,
                  void *userdata, struct procwatch **ret);
/* Reads the cgroup: watches the processes new to it, forgets the gone;
 * *ret_count: how many live there now. */
int procwatch_scan(struct procwatch *w, unsigned *ret_count);
/* Without reading the cgroup: the processes of the last scan whose exit
 * has not come. At most the live count: what forked since is not in it. */
unsigned procwatch_live(const struct procwatch *w);
void procwatch_free(struct procwatch *w);
