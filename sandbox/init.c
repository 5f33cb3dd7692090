#include "init.h"

#include <signal.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

int init_exit_code(int wstatus) {
        if (WIFEXITED(wstatus))
                return WEXITSTATUS(wstatus);
        if (WIFSIGNALED(wstatus))
                return 128 + WTERMSIG(wstatus);
        return 255;
}

/* Signals the kernel makes for a process itself (faults), and job control
 * from a terminal the generation has not got: not passed on. */
static bool passed_on(int sig) {
        switch (sig) {
        case SIGCHLD: case SIGSEGV: case SIGBUS: case SIGILL: case SIGFPE: case SIGTRAP:
        case SIGSYS: case SIGTSTP: case SIGTTIN: case SIGTTOU:
                return false;
        default:
                return true;
        }
}

_Noreturn void init_run(pid_t server) {
        struct signalfd_siginfo si;
        bool server_done = false, linger = false;
        int status = 0, sfd;
        sigset_t all;

        sigfillset(&all);
        sfd = signalfd(-1, &all, SFD_CLOEXEC);
        if (sfd < 0) {
                dprintf(2, "gen-init: signalfd: %s\n", strerror(errno));
                _exit(127);
        }
        for (;;) {
                pid_t p;
                int st;

                if (read(sfd, &si, sizeof(si)) != sizeof(si)) {
                        if (errno == EINTR)
                                continue;
                        dprintf(2, "gen-init: read(signalfd): %s\n", strerror(errno));
                        _exit(127);
                }
                if (si.ssi_signo != SIGCHLD) {
                        if (!passed_on((int)si.ssi_signo))
                                continue;
                        /* From outside the namespace (gend): pid 0 here. */
                        if (si.ssi_pid == 0)
                                linger = true;
                        if (!server_done)
                                kill(server, (int)si.ssi_signo);
                        continue;
                }
                while ((p = waitpid(-1, &st, WNOHANG)) > 0)
                        if (p == server) {
                                server_done = true;
                                status = st;
                        }
                if (server_done && (!linger || (p < 0 && errno == ECHILD)))
                        _exit(init_exit_code(status));
        }
}
