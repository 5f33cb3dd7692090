#include "spawn.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "confine.h"
#include "util.h"

struct child_error {
        int error;
        char msg[512];
};

static pid_t clone3_into(int cgroup_fd, int *ret_pidfd) {
        struct clone_args args = {
                .flags = CLONE_INTO_CGROUP | CLONE_PIDFD,
                .pidfd = (uint64_t)(uintptr_t)ret_pidfd,
                .exit_signal = SIGCHLD,
                .cgroup = (uint64_t)cgroup_fd,
        };
        return (pid_t)syscall(SYS_clone3, &args, sizeof(args));
}

static void reset_signals(void) {
        sigset_t all;
        struct sigaction dfl = { .sa_handler = SIG_DFL };

        for (int s = 1; s < _NSIG; s++)
                if (s != SIGKILL && s != SIGSTOP)
                        sigaction(s, &dfl, NULL);
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
}

_Noreturn static void child_fail(int pipe_fd) {
        struct child_error e = { .error = errno };
        snprintf(e.msg, sizeof(e.msg), "%s", err_msg());
        if (write(pipe_fd, &e, sizeof(e)) < 0) {
                /* the parent sees the exit status instead */
        }
        _exit(127);
}

_Noreturn static void child(const struct spawn_opts *o, int pipe_fd) {
        int null_fd;

        reset_signals();
        /* v1 limit cgroups first: every process it forks is counted there. */
        for (unsigned i = 0; i < o->n_join; i++)
                if (o->join_fds[i] >= 0 && write(o->join_fds[i], "0", 1) != 1) {
                        err_set(errno, "join cgroup v1 limit group");
                        child_fail(pipe_fd);
                }
        if (setns(o->netns_fd, CLONE_NEWNET) < 0) {
                err_set(errno, "setns(CLONE_NEWNET)");
                child_fail(pipe_fd);
        }
        if (setsid() < 0) {
                err_set(errno, "setsid");
                child_fail(pipe_fd);
        }
        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(o->log_fd, 1) < 0 ||
            dup2(o->log_fd, 2) < 0) {
                err_set(errno, "redirect stdin/stdout/stderr");
                child_fail(pipe_fd);
        }
        if (chdir(o->directory) < 0) {
                err_set(errno, "chdir(%s)", o->directory);
                child_fail(pipe_fd);
        }
        if (o->confine) {
                int r = confine_apply(o->confine);
                if (r < 0) {
                        errno = -r;
                        child_fail(pipe_fd);
                }
        }
        execve(o->argv[0], o->argv, o->envp);
        err_set(errno, "execve(%s)", o->argv[0]);
        child_fail(pipe_fd);
}

int spawn_start(const struct spawn_opts *o, pid_t *ret_pid, int *ret_pidfd) {
        _cleanup_close_ int rd = -1, wr = -1;
        int fds[2], pidfd = -1;
        struct child_error e;
        ssize_t n;
        pid_t pid;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return err_set(errno, "pipe2");
        rd = fds[0];
        wr = fds[1];
        pid = clone3_into(o->cgroup_fd, &pidfd);
        if (pid < 0)
                return err_set(errno, "clone3(CLONE_INTO_CGROUP)");
        if (pid == 0) {
                closep(&rd);
                child(o, wr);
        }
        closep(&wr);
        do
                n = read(rd, &e, sizeof(e));
        while (n < 0 && errno == EINTR);
        if (n > 0) {
                waitpid(pid, NULL, 0);
                close(pidfd);
                e.msg[sizeof(e.msg) - 1] = 0;
                return err_setx(e.error ? e.error : EIO, "%s", e.msg);
        }
        *ret_pid = pid;
        *ret_pidfd = pidfd;
        return 0;
}
