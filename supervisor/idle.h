/* The idle probe ([drain] idle): the application's own word that its
 * tasks are done, asked inside a draining generation. Servers whose task
 * workers are persistent processes (Swoole, easyswoole) run tasks without
 * changing their process count, so only the application can say its
 * queue is empty.
 *
 * One run at a time, asynchronous: 'exec' runs a program inside the
 * generation, as the exec readiness probe does (every namespace, its view
 * and confine, its directory and environment), in a cgroup of its own
 * below the generation's that the drain does not count, and passes when
 * it exits 0; 'http' GETs a path on the generation's
 * address and passes when the answer has the policy's status. Either is
 * killed (or given up) after [drain] idle-timeout. Its output (the
 * program's standard output and error, or the answer's body) is kept,
 * at most IDLE_OUTPUT_MAX bytes, for gen status and for the report of a
 * forced drain. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "../policy/policy.h"
#include "probe.h"

#define IDLE_OUTPUT_MAX 4096
#define IDLE_CGROUP "gen-idle"        /* below the generation's cgroup */

struct idle_result {
        bool valid;                     /* a run has finished */
        bool passed;
        uint64_t start_usec, end_usec;  /* CLOCK_MONOTONIC */
        char why[160];                  /* "exit status 1", "timed out after 5.0 s" */
        char output[IDLE_OUTPUT_MAX + 1];
        size_t len;
        bool truncated;                 /* it said more than IDLE_OUTPUT_MAX */
};

struct idle;
/* A run finished: idle_last() has its result. The callback may free i. */
typedef void (*idle_done_t)(void *userdata);

int idle_new(sd_event *e, const struct policy *p, const struct probe_target *t, idle_done_t done,
             void *userdata, struct idle **ret);
void idle_free(struct idle *i);
/* Starts a run now; -EBUSY while one runs. A run that cannot start
 * finishes at once as failed (its result says why). */
int idle_run(struct idle *i);
bool idle_running(const struct idle *i);
const struct idle_result *idle_last(const struct idle *i);
/* The SIGCHLD reaper hands exited pids here: true if it was this probe's. */
bool idle_child_exited(struct idle *i, pid_t pid, int status);
/* "exec /usr/bin/php easyswoole task status", "http GET /tasks 200". */
void idle_describe(const struct policy *p, char *buf, size_t n);
