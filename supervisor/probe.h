/* Readiness probes against a generation's own address, asynchronous: a
 * try every 100 ms until one passes or the policy's timeout passes. */
#pragma once

#include <stdint.h>
#include <systemd/sd-event.h>

#include "../policy/policy.h"

struct probe;
/* r >= 0: ready; r < 0: never ready, why says what the last try met
 * ("connect 10.213.0.2:9501 refused"). */
typedef void (*probe_done_t)(void *userdata, int r, const char *why);

int probe_start(sd_event *e, const struct policy *p, uint32_t addr, uint16_t port,
                probe_done_t done, void *userdata, struct probe **ret);
void probe_free(struct probe *p);
