/* Readiness probes against a generation's own address, asynchronous: a
 * try every 100 ms until one passes or the policy's timeout passes. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "../policy/policy.h"

struct probe;
/* r >= 0: ready; r < 0: never ready, why says what the last try met
 * ("connect 10.213.0.2:9501 refused"). */
typedef void (*probe_done_t)(void *userdata, int r, const char *why);

struct confine;
struct gen_limits;

/* Where the probe goes: the generation's address, and for exec probes the
 * generation itself (its main process's pidfd, to enter its namespaces;
 * its cgroups; its confine), its directory, log and environment. */
struct probe_target {
        uint32_t addr;
        uint16_t port;
        int pidfd;
        const char *cgroup;             /* absolute path */
        const struct gen_limits *limits;
        const struct confine *confine;
        const char *directory;
        const char *log_path;
        char *const *envp;
};

int probe_start(sd_event *e, const struct policy *p, const struct probe_target *t,
                probe_done_t done, void *userdata, struct probe **ret);
void probe_free(struct probe *p);
/* The SIGCHLD reaper hands exited pids here: true if it was this probe's. */
bool probe_child_exited(struct probe *p, pid_t pid, int status);
