#include "userns.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "util.h"

int userns_base(unsigned slot, uid_t *ret) {
        if (slot >= USERNS_SLOTS)
                return err_setx(ERANGE, "address block %u has no user id range: at most %u "
                                "generations with private-users = yes can live at once",
                                slot, USERNS_SLOTS);
        *ret = (uid_t)(USERNS_FIRST + slot * USERNS_SIZE);
        return 0;
}

static int write_map(pid_t pid, const char *which, uid_t base) {
        char path[64], map[64];

        snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, which);
        snprintf(map, sizeof(map), "0 %u %u\n", (unsigned)base, USERNS_SIZE);
        return write_file(path, map);
}

int userns_create(uid_t base, int *ret_fd) {
        struct clone_args args = { .flags = CLONE_NEWUSER, .exit_signal = SIGCHLD };
        _cleanup_close_ int rd = -1, wr = -1;
        char path[64];
        int fds[2], fd, r;
        pid_t pid;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return err_set(errno, "pipe2");
        rd = fds[0];
        wr = fds[1];
        pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
        if (pid < 0)
                return err_set(errno, "clone3(CLONE_NEWUSER)");
        if (pid == 0) {
                /* Holds the namespace until the parent has it: EOF. */
                char c;
                closep(&wr);
                while (read(rd, &c, 1) < 0 && errno == EINTR)
                        ;
                _exit(0);
        }
        r = write_map(pid, "uid_map", base);
        if (r >= 0)
                r = write_map(pid, "gid_map", base);
        snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
        fd = r >= 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
        if (r >= 0 && fd < 0)
                r = err_set(errno, "open(%s)", path);
        closep(&wr);
        wr = -1;
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        if (r < 0)
                return r;
        *ret_fd = fd;
        return 0;
}
