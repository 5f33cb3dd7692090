/* Forwarding: runs iptables-restore transactions, one at a time, without
 * blocking the event loop, each with a time limit and its whole error
 * text. The helpers are resolved once, at start, to absolute paths from a
 * fixed search path (never the inherited PATH). */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "rules.h"

struct fwd;
/* r < 0: the transaction did not apply; error says why, whole. */
typedef void (*fwd_done_t)(void *userdata, int r, const char *error);

int fwd_new(sd_event *e, struct fwd **ret);
void fwd_free(struct fwd *f);
/* What the kernel has of gen's chains (iptables-save), blocking: at start. */
int fwd_read(struct fwd *f, struct rules_seen *ret);
/* Queues one transaction (iptables-restore --noflush input; text is
 * copied). done is always called later from the event loop, never from
 * inside fwd_submit, also when iptables-restore cannot be started. */
int fwd_submit(struct fwd *f, const char *what, const char *text, fwd_done_t done,
               void *userdata);
/* Runs one transaction now, blocking: at start, before the loop runs. */
int fwd_apply_now(struct fwd *f, const char *what, const char *text);
/* The SIGCHLD reaper hands every exited pid here first. */
bool fwd_child_exited(struct fwd *f, pid_t pid, int status);
