/* Starting a generation's main process: clone3() straight into its cgroup,
 * joining its network namespace, in its directory, output to its log. */
#pragma once

#include <sys/types.h>

struct confine;

struct spawn_opts {
        char *const *argv;
        char *const *envp;
        const char *directory;
        int cgroup_fd;                  /* CLONE_INTO_CGROUP */
        int netns_fd;
        int log_fd;                     /* stdout and stderr */
        const struct confine *confine;  /* NULL: none */
        const int *join_fds;            /* cgroup.procs of v1 limit cgroups, -1: none */
        unsigned n_join;
};

/* On success the process has exec'd; a failure in the child before exec
 * ("chdir(/srv/x): No such file or directory") is returned here. */
int spawn_start(const struct spawn_opts *o, pid_t *ret_pid, int *ret_pidfd);
