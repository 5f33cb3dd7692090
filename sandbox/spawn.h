/* Starting a generation: clone3() straight into its cgroup, in new mount,
 * UTS, IPC and PID namespaces (as its confine asks), joining its network
 * namespace, its view of the file system made (view.c), then its user
 * namespace; in its directory, output to its log. With a PID namespace
 * the process gend gets is the namespace's pid 1 (init.c), which starts
 * the server and passes gend's signals on to it; without one it is the
 * server itself. */
#pragma once

#include <sys/types.h>

struct confine;

struct spawn_opts {
        char *const *argv;
        char *const *envp;
        const char *directory;          /* chdir here, inside its view */
        int cgroup_fd;                  /* CLONE_INTO_CGROUP */
        int netns_fd;                   /* spawn_start only */
        int log_fd;                     /* stdout and stderr */
        const struct confine *confine;  /* NULL: none (spawn_start only) */
        const int *join_fds;            /* cgroup.procs of v1 limit cgroups, by enum lim_ctl, -1: none */
        unsigned n_join;
};

/* On success the server has exec'd; a failure in the child before exec
 * ("chdir(/srv/x): No such file or directory") is returned here. */
int spawn_start(const struct spawn_opts *o, pid_t *ret_pid, int *ret_pidfd);
/* Where gen-init is: beside gend, or ../libexec/gen from it. */
int spawn_init_path(char **ret);

/* Runs argv inside the running generation whose main process pidfd
 * refers to: in its cgroups, every namespace of it, its view, its user
 * namespace, under the same confine. Does not wait: ret_pid (gend's
 * child) ends as the command does; failing to enter, with status 126,
 * an execve that fails, 127, saying why on the log. Killing ret_pid kills
 * the command too. */
int spawn_enter(const struct spawn_opts *o, int pidfd, pid_t *ret_pid);
