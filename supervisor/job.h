/* Jobs: every operation on a service (new, switch, rollback, retire, and
 * the repair after its active generation died) is a job on the service's
 * queue, run one at a time, finished by its own completion, as systemd's
 * jobs are. Whoever asked (a client, or nobody) gets the result through
 * its callback; it may go away meanwhile, and the job goes on. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "gend.h"

enum job_type {
        JOB_NEW,
        JOB_SWITCH,
        JOB_ROLLBACK,
        JOB_RETIRE,
        JOB_REPAIR,
        _JOB_TYPE_MAX,
};

struct job_request {
        enum job_type type;
        const char *dir;                /* new: release directory, NULL: the policy's */
        bool no_switch;                 /* new: stop at ready */
        unsigned n;                     /* switch, retire: the generation */
        bool force, now;                /* retire */
        uint64_t timeout_usec;          /* retire: drain deadline, 0: the policy's */
        unsigned restart_of;            /* new: replaces this crashed generation */
};

struct job_result {
        int r;                          /* < 0: failed, error says why */
        const char *error;
        unsigned n;                     /* the generation it was about */
        unsigned replaced;              /* the one a switch replaced: it drains now */
};

struct job;
typedef void (*job_done_t)(void *userdata, const struct job_result *res);

int job_submit(struct service *s, const struct job_request *req, job_done_t done,
               void *userdata, struct job **ret);
/* The requester went away: the job goes on and reports to nobody. */
void job_detach(struct job *j);
/* The generation a job is about, once known (0 before). */
unsigned job_target(const struct job *j);
/* The jobs listen to the lifecycle (gen_listen): a generation of their
 * service changed state. */
void job_notice(struct gend *d, const struct notice *n);
/* The reaper hands exited pids here (a job's readiness re-check). */
bool jobs_child_exited(struct gend *d, pid_t pid, int status);
void jobs_free(struct service *s);
const char *job_type_to_string(enum job_type t);
