#include "spawn.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "confine.h"
#include "init.h"
#include "limits.h"
#include "userns.h"
#include "util.h"
#include "view.h"


struct child_error {
        int error;
        char msg[512];
};

static pid_t clone3_into(uint64_t flags, int cgroup_fd, int *ret_pidfd) {
        struct clone_args args = {
                .flags = CLONE_INTO_CGROUP | flags | (ret_pidfd ? CLONE_PIDFD : 0),
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

static int join_v1(const struct spawn_opts *o) {
        /* v1 limit cgroups first: every process it forks is counted there
         * (limits_open_join: it moves itself as a thread, it has one). */
        for (unsigned i = 0; i < o->n_join; i++)
                if (o->join_fds[i] >= 0 && write(o->join_fds[i], "0", 1) != 1)
                        return err_set(errno, "join cgroup v1 limit group");
        return 0;
}

static int stdio_to_log(int log_fd) {
        _cleanup_close_ int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

        if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0)
                return err_set(errno, "redirect stdin/stdout/stderr");
        return 0;
}

static int enter_userns(const struct confine *c, int userns_fd) {
        if (c && c->private_users && setns(userns_fd, CLONE_NEWUSER) < 0)
                return err_set(errno, "setns(CLONE_NEWUSER)");
        return 0;
}

/* The namespaces it has besides the network one, and its view: made while
 * it is still root on the host (its user namespace owns none of them, so
 * inside it cannot change them). */
static int make_world(const struct spawn_opts *o, int userns_fd) {
        const struct confine *c = o->confine;
        const char *v1_ctls[_LIM_MAX + 1] = { 0 };
        unsigned n = 0;
        int r;

        for (unsigned i = 0; i < o->n_join && i < _LIM_MAX; i++)
                if (o->join_fds[i] >= 0)
                        v1_ctls[n++] = lim_ctl_to_string(i);
        /* Its caps are in its user namespace, not the network namespace's:
         * CAP_NET_BIND_SERVICE becomes this sysctl of its own netns. */
        if (c->low_ports &&
            (r = write_file("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0")) < 0)
                return r;
        /* After CLONE_INTO_CGROUP and the v1 joins: its cgroups are the root. */
        if (c->protect_cgroups && unshare(CLONE_NEWCGROUP) < 0)
                return err_set(errno, "unshare(CLONE_NEWCGROUP)");
        if (c->new_uts && sethostname(c->hostname, strlen(c->hostname)) < 0)
                return err_set(errno, "sethostname(%s)", c->hostname);
        return view_setup(c, userns_fd, v1_ctls);
}

_Noreturn static void exec_server(const struct spawn_opts *o, int userns_fd, int pipe_fd) {
        int r;

        if ((r = enter_userns(o->confine, userns_fd)) < 0 ||
            (o->confine && (r = confine_apply(o->confine)) < 0)) {
                errno = -r;
                child_fail(pipe_fd);
        }
        execve(o->argv[0], o->argv, o->envp);
        err_set(errno, "execve(%s)", o->argv[0]);
        child_fail(pipe_fd);
}

/* gen-init: beside gend's own program (the build tree), else in
 * ../libexec/gen from it (an installed PREFIX). Nothing compiled in, no
 * fallback: without it a generation with its own PID namespace does not
 * start, and gend says so when it starts. */
int spawn_init_path(char **ret) {
        static const char *const rel[] = { "gen-init", "../libexec/gen/gen-init" };
        char self[4096];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        char *slash;

        if (n <= 0)
                return err_set(errno, "readlink(/proc/self/exe)");
        self[n] = 0;
        if (!(slash = strrchr(self, '/')))
                return err_setx(ENOENT, "/proc/self/exe: %s is not a path", self);
        slash[1] = 0;
        for (size_t i = 0; i < ELEMENTSOF(rel); i++) {
                char *path;
                if (asprintf(&path, "%s%s", self, rel[i]) < 0)
                        return err_set(ENOMEM, "gen-init");
                if (access(path, X_OK) == 0) {
                        *ret = path;
                        return 0;
                }
                free(path);
        }
        return err_setx(ENOENT, "gen-init, a generation's pid 1, is neither in %s nor in "
                        "%s../libexec/gen/ (make install puts it there)", self, self);
}

static int open_init(void) {
        _cleanup_free_ char *path = NULL;
        int r = spawn_init_path(&path), fd;

        if (r < 0)
                return r;
        fd = open(path, O_PATH | O_CLOEXEC);
        return fd < 0 ? err_set(errno, "open(%s)", path) : fd;
}

/* Pid 1 keeps CAP_KILL only (in its user namespace: over the generation's
 * processes alone), to pass signals on to a server of any uid. */
static int drop_to_init(const struct confine *c, int userns_fd) {
        cap_value_t kill_cap = CAP_KILL;
        cap_t caps;
        int r;

        if ((r = confine_limits(c)) < 0 || (r = enter_userns(c, userns_fd)) < 0)
                return r;
        if (c->private_users && (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 ||
                                 setresuid(0, 0, 0) < 0))
                return err_set(errno, "switch to root of its user namespace");
        for (cap_value_t v = 0; v <= (cap_value_t)cap_max_bits() - 1; v++)
                if (v != CAP_KILL && cap_drop_bound(v) < 0)
                        return err_set(errno, "cap_drop_bound(%d)", v);
        if (!(caps = cap_init()))
                return err_set(errno, "cap_init");
        cap_set_flag(caps, CAP_PERMITTED, 1, &kill_cap, CAP_SET);
        cap_set_flag(caps, CAP_EFFECTIVE, 1, &kill_cap, CAP_SET);
        r = cap_set_proc(caps);
        cap_free(caps);
        if (r < 0)
                return err_set(errno, "cap_set_proc(CAP_KILL)");
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return err_set(errno, "prctl(PR_SET_NO_NEW_PRIVS)");
        prctl(PR_SET_NAME, "gen-init", 0, 0, 0);
        return 0;
}

/* Its pid 1 from here on: gen-init when it can exec it, else gend's copy
 * of the same code. Nothing of gend's stays open in it (the pipe to gend
 * closes here). */
_Noreturn static void become_init(pid_t server, int init_fd) {
        char pid[16], *argv[] = { "gen-init", pid, NULL }, *envp[] = { NULL };

        snprintf(pid, sizeof(pid), "%d", (int)server);
        close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
        syscall(SYS_execveat, init_fd, "", argv, envp, AT_EMPTY_PATH);
        /* The server runs already: kill it with us, say why on its log. */
        dprintf(2, "gend: execveat(gen-init): %s\n", strerror(errno));
        kill(server, SIGKILL);
        _exit(127);
}

_Noreturn static void child(const struct spawn_opts *o, int userns_fd, int init_fd,
                            int pipe_fd) {
        const struct confine *c = o->confine;
        sigset_t all;
        pid_t server;
        int r;

        reset_signals();
        if ((r = join_v1(o)) < 0)
                goto fail;
        if (setns(o->netns_fd, CLONE_NEWNET) < 0) {
                r = err_set(errno, "setns(CLONE_NEWNET)");
                goto fail;
        }
        if (c && (r = make_world(o, userns_fd)) < 0)
                goto fail;
        if (setsid() < 0) {
                r = err_set(errno, "setsid");
                goto fail;
        }
        if ((r = stdio_to_log(o->log_fd)) < 0)
                goto fail;
        if (chdir(o->directory) < 0) {
                r = err_set(errno, "chdir(%s)", o->directory);
                goto fail;
        }
        if (!c || !c->private_pids)
                exec_server(o, userns_fd, pipe_fd);

        /* Pid 1 of its PID namespace: signals wait in the mask until
         * init_run reads them; the server starts with none blocked. */
        sigfillset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        server = fork();
        if (server < 0) {
                r = err_set(errno, "fork");
                goto fail;
        }
        if (server == 0) {
                reset_signals();
                exec_server(o, userns_fd, pipe_fd);
        }
        if ((r = drop_to_init(c, userns_fd)) < 0) {
                kill(server, SIGKILL);
                goto fail;
        }
        become_init(server, init_fd);
fail:
        errno = -r;
        child_fail(pipe_fd);
}

int spawn_start(const struct spawn_opts *o, pid_t *ret_pid, int *ret_pidfd) {
        const struct confine *c = o->confine;
        _cleanup_close_ int rd = -1, wr = -1, userns_fd = -1, init_fd = -1;
        uint64_t flags = 0;
        int fds[2], pidfd = -1, r;
        struct child_error e;
        ssize_t n;
        pid_t pid;

        if (c) {
                flags = CLONE_NEWNS | (c->new_uts ? CLONE_NEWUTS : 0) |
                        (c->new_ipc ? CLONE_NEWIPC : 0) | (c->private_pids ? CLONE_NEWPID : 0);
                if (c->private_users && (r = userns_create(c->uid_base, &userns_fd)) < 0)
                        return r;
                if (c->private_pids && (init_fd = open_init()) < 0)
                        return init_fd;
        }
        if (pipe2(fds, O_CLOEXEC) < 0)
                return err_set(errno, "pipe2");
        rd = fds[0];
        wr = fds[1];
        pid = clone3_into(flags, o->cgroup_fd, &pidfd);
        if (pid < 0)
                return err_set(errno, "clone3(CLONE_INTO_CGROUP)");
        if (pid == 0) {
                closep(&rd);
                child(o, userns_fd, init_fd, wr);
        }
        closep(&wr);
        wr = -1;
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

/* ---- a command inside a running generation (exec probes) ---- */

_Noreturn static void enter_fail(const char *what, int status) {
        dprintf(2, "gend: %s: %s\n", what, err_msg());
        _exit(status);
}

_Noreturn static void enter_inner(const struct spawn_opts *o, int pidfd, pid_t parent) {
        struct confine c = *o->confine;
        int r;

        reset_signals();
        if (c.private_users && setns(pidfd, CLONE_NEWUSER) < 0) {
                err_set(errno, "setns(pidfd, CLONE_NEWUSER)");
                enter_fail("enter the generation", 126);
        }
        if (setsid() < 0 || stdio_to_log(o->log_fd) < 0 || chdir(o->directory) < 0) {
                err_set(errno, "stdio or chdir(%s)", o->directory);
                enter_fail("enter the generation", 126);
        }
        c.pdeath_signal = SIGKILL;
        if ((r = confine_apply(&c)) < 0)
                enter_fail("confine", 126);
        if (getppid() != parent)
                _exit(126);     /* the one that waits for it is gone */
        execve(o->argv[0], o->argv, o->envp);
        err_set(errno, "execve(%s)", o->argv[0]);
        enter_fail("probe", 127);
}

/* Waits for the command and ends as it did, so gend sees its status. */
_Noreturn static void enter_outer(const struct spawn_opts *o, int pidfd) {
        int ns = CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP |
                 CLONE_NEWPID;
        int st;
        pid_t pid;

        reset_signals();
        if (join_v1(o) < 0)
                enter_fail("enter the generation", 126);
        if (setns(pidfd, ns) < 0) {
                err_set(errno, "setns(pidfd of its main process)");
                enter_fail("enter the generation", 126);
        }
        pid = fork();
        if (pid < 0) {
                err_set(errno, "fork");
                enter_fail("enter the generation", 126);
        }
        if (pid == 0)
                enter_inner(o, pidfd, getppid());
        close_range(3, ~0U, 0);
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        _exit(126);
        if (WIFSIGNALED(st)) {
                prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
                signal(WTERMSIG(st), SIG_DFL);
                raise(WTERMSIG(st));
        }
        _exit(init_exit_code(st));
}

int spawn_enter(const struct spawn_opts *o, int pidfd, pid_t *ret_pid) {
        pid_t pid;

        if (!o->confine)
                return err_setx(EINVAL, "what the generation runs under is not known (its "
                                "release directory or policy changed since it started)");
        if (pidfd < 0)
                return err_setx(ESRCH, "its main process has exited");
        pid = clone3_into(0, o->cgroup_fd, NULL);
        if (pid < 0)
                return err_set(errno, "clone3(CLONE_INTO_CGROUP)");
        if (pid == 0)
                enter_outer(o, pidfd);
        *ret_pid = pid;
        return 0;
}
