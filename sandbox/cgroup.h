/* cgroup v2: where gen's subtree lives, and the life of one generation's
 * cgroup: create, count, freeze, kill, remove. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* Pure parsers, for the tests. */
int cg_parse_mountinfo(const char *mountinfo, char **ret_mount);
int cg_parse_self(const char *proc_self_cgroup, char **ret_path);
int cg_base_for(const char *self, char **ret_base);

/* Finds the cgroup2 mount and the cgroup gend runs in, makes gen's
 * directory below it and moves gend into its leaf "supervisor". */
int cg_setup(char **ret_base);

int cg_create(const char *path);
int cg_destroy(const char *path);          /* idempotent; -EBUSY while populated */
int cg_open(const char *path);             /* O_PATH dir fd for CLONE_INTO_CGROUP */
/* The processes of path's subtree, but for its child cgroup named skip
 * (NULL: none): fn for each, until it returns < 0. */
typedef int (*cg_pid_fn)(pid_t pid, void *userdata);
int cg_walk_pids(const char *path, const char *skip, cg_pid_fn fn, void *userdata);
int cg_count_procs(const char *path, const char *skip, unsigned *ret);
int cg_read_events(const char *path, bool *ret_populated, bool *ret_frozen);
int cg_freeze(const char *path);
int cg_kill(const char *path);
