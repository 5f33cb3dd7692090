/* [limits] memory, pids and cpu through cgroups: in cgroup v2 where the
 * controller can be delegated to gen's subtree, else in the controller's
 * cgroup v1 hierarchy (hybrid hosts), in gen's own directory below the
 * cgroup gend runs in there. A limit neither can enforce is an error. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct policy;

enum lim_ctl { LIM_MEMORY, LIM_PIDS, LIM_CPU, _LIM_MAX };
enum lim_where { LIM_NONE, LIM_V2, LIM_V1 };

struct limits_host {
        enum lim_where where[_LIM_MAX];
        char *v1_base[_LIM_MAX];        /* gen's directory in the v1 hierarchy */
        char *why[_LIM_MAX];            /* why a hierarchy there could not be used */
};

/* One generation's limit cgroups in v1 (v2 ones are its own cgroup). */
struct gen_limits {
        char *v1_dir[_LIM_MAX];
        char *v2_dir;
};

const char *lim_ctl_to_string(enum lim_ctl c);
/* Pure: where each controller is, from /proc/self/mountinfo, /proc/self/
 * cgroup and the controllers gen's v2 directory has. */
int limits_plan(const char *mountinfo, const char *self_cgroup, const char *v2_controllers,
                struct limits_host *ret);
/* Pure: the first limit p asks for that h cannot enforce, as an error. */
int limits_check(const struct limits_host *h, const struct policy *p);

/* Finds the controllers, delegates v2 ones to v2_base's subtree, makes v1
 * base directories. */
int limits_setup(const char *v2_base, struct limits_host *ret);
void limits_host_done(struct limits_host *h);
/* Before the process starts: the service directory's delegation, the v1
 * directories, the values. ret_join gets fds of the v1 directories from
 * limits_open_join, for the child to join (-1 where none). */
int limits_create(const struct limits_host *h, const struct policy *p, const char *svc,
                  unsigned gen, const char *v2_dir, struct gen_limits *ret, int ret_join[_LIM_MAX]);
/* An fd a new single-threaded child joins v1_dir with: it writes "0". */
int limits_open_join(const char *v1_dir);
/* The v1 directories of generation GEN of SVC that l does not name yet
 * but exist: made by a gend that died before it recorded them. */
void limits_claim(const struct limits_host *h, const char *svc, unsigned gen,
                  struct gen_limits *l);
int limits_destroy(struct gen_limits *l);       /* idempotent */
/* Memory only: the cgroups stay (gend exits, its generations run on). */
void limits_release(struct gen_limits *l);
/* OOM kills and refused forks so far. */
int limits_events(const struct limits_host *h, const struct gen_limits *l, unsigned *ret_oom,
                  unsigned *ret_pids_max);
