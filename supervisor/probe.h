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

/* Where the probe goes: the generation's address, and for exec probes its
 * network namespace, directory, log and environment. */
struct probe_target {
        uint32_t addr;
        uint16_t port;
        const char *netns;              /* name under /run/netns */
        const char *directory;
        const char *log_path;
        char *const *envp;
};

int probe_start(sd_event *e, const struct policy *p, const struct probe_target *t,
                probe_done_t done, void *userdata, struct probe **ret);
void probe_free(struct probe *p);
/* The SIGCHLD reaper hands exited pids here: true if it was this probe's. */
bool probe_child_exited(struct probe *p, pid_t pid, int status);
