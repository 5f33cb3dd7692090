/* Forwarding: commits rule changes as iptables-restore transactions, one
 * at a time, without blocking the event loop. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "rules.h"

struct fwd;
typedef void (*fwd_done_t)(void *userdata, int r, const char *error);

/* Checks iptables-restore is there and whether shared GEN-* chains exist
 * already (they are then left in place: another gend's, or an earlier
 * one's). Blocks; called before the loop runs. */
int fwd_new(const struct pool *pool, struct fwd **ret);
void fwd_free(struct fwd *f);
int fwd_submit(struct fwd *f, enum rules_op op, const struct rules_target *t,
               fwd_done_t done, void *userdata);
/* The SIGCHLD reaper hands every exited pid here first. */
bool fwd_child_exited(struct fwd *f, pid_t pid, int status);
