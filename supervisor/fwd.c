#include "fwd.h"

#include <fcntl.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>

#include "log.h"

struct job {
        enum rules_op op;
        char *service;
        struct port_map ports[POLICY_PORTS_MAX];
        unsigned n_ports;
        uint32_t addr, mark;
        fwd_done_t done;
        void *userdata;
        struct job *next;
};

struct fwd {
        struct pool pool;
        struct job *head, *tail;
        pid_t pid;                      /* iptables-restore running, or 0 */
        int err_fd;
        bool base_installed;
        bool foreign;                   /* shared chains found at start */
        unsigned n_services;            /* services with rules, ours */
};

extern char **environ;

static int run_quiet(char *const argv[], int *ret_status) {
        posix_spawn_file_actions_t fa;
        pid_t pid;
        int r;

        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                return err_set(r, "posix_spawnp(%s)", argv[0]);
        if (waitpid(pid, ret_status, 0) < 0)
                return err_set(errno, "waitpid(%s)", argv[0]);
        return 0;
}

int fwd_new(const struct pool *pool, struct fwd **ret) {
        char *version[] = { "iptables-restore", "--version", NULL };
        char *probe[] = { "iptables", "-w", "5", "-t", "nat", "-S", "GEN-DNAT", NULL };
        struct fwd *f;
        int st, r;

        r = run_quiet(version, &st);
        if (r < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
                return err_setx(ENOENT, "iptables-restore does not run (is the iptables "
                                "package installed? apt-get install iptables)");
        f = calloc(1, sizeof(*f));
        if (!f)
                return err_set(ENOMEM, "fwd");
        f->pool = *pool;
        f->err_fd = -1;
        r = run_quiet(probe, &st);
        if (r < 0) {
                free(f);
                return r;
        }
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
                f->base_installed = f->foreign = true;
                log_warn("iptables chain GEN-DNAT exists already (an earlier gend's rules?): "
                         "shared GEN-* chains are kept as they are");
        }
        *ret = f;
        return 0;
}

static void job_free(struct job *j) {
        if (j) {
                free(j->service);
                free(j);
        }
}

void fwd_free(struct fwd *f) {
        if (!f)
                return;
        while (f->head) {
                struct job *j = f->head;
                f->head = j->next;
                job_free(j);
        }
        if (f->err_fd >= 0)
                close(f->err_fd);
        free(f);
}

static int job_render(struct fwd *f, struct job *j, char **ret, size_t *ret_len) {
        struct rules_target t = { j->service, j->ports, j->n_ports, j->addr, j->mark };
        FILE *out = open_memstream(ret, ret_len);
        bool install = j->op == RULES_ADD && !f->base_installed;
        bool remove = j->op == RULES_REMOVE && f->n_services == 1 && !f->foreign;
        int r;

        if (!out)
                return err_set(errno, "open_memstream");
        r = rules_render(out, j->op, &t, &f->pool, install, remove);
        fclose(out);
        if (r < 0) {
                free(*ret);
                return err_setx(-r, "render rules for %s: %s", j->service, strerror(-r));
        }
        return 0;
}

static void job_finish(struct fwd *f, struct job *j, int r, const char *error);

static int job_start(struct fwd *f, struct job *j) {
        char *argv[] = { "iptables-restore", "--noflush", "-w", "5", NULL };
        _cleanup_free_ char *text = NULL;
        _cleanup_close_ int in_w = -1, err_r = -1;
        size_t len;
        int in[2], err[2], r;
        pid_t pid;

        if ((r = job_render(f, j, &text, &len)) < 0)
                return r;
        if (len >= 65536)
                return err_setx(E2BIG, "rules for %s: %zu bytes, more than one pipe holds",
                                j->service, len);
        if (pipe2(in, O_CLOEXEC) < 0)
                return err_set(errno, "pipe2");
        in_w = in[1];
        if (pipe2(err, O_CLOEXEC | O_NONBLOCK) < 0) {
                close(in[0]);
                return err_set(errno, "pipe2");
        }
        err_r = err[0];
        pid = fork();
        if (pid < 0) {
                close(in[0]);
                close(err[1]);
                return err_set(errno, "fork(iptables-restore)");
        }
        if (pid == 0) {
                if (dup2(in[0], 0) < 0 || dup2(err[1], 1) < 0 || dup2(err[1], 2) < 0)
                        _exit(126);
                execvp(argv[0], argv);
                _exit(127);
        }
        close(in[0]);
        close(err[1]);
        if (write(in_w, text, len) != (ssize_t)len)
                log_warn("write(iptables-restore stdin): %s", strerror(errno));
        f->pid = pid;
        f->err_fd = TAKE_FD(err_r);
        return 0;
}

static void run_next(struct fwd *f) {
        while (!f->pid && f->head) {
                struct job *j = f->head;
                int r = job_start(f, j);
                if (r >= 0)
                        return;
                f->head = j->next;
                if (!f->head)
                        f->tail = NULL;
                job_finish(f, j, r, err_msg());
        }
}

int fwd_submit(struct fwd *f, enum rules_op op, const struct rules_target *t, fwd_done_t done,
               void *userdata) {
        struct job *j = calloc(1, sizeof(*j));

        if (!j || !(j->service = strdup(t->service))) {
                free(j);
                return err_set(ENOMEM, "fwd_submit");
        }
        j->op = op;
        memcpy(j->ports, t->ports, t->n_ports * sizeof(*t->ports));
        j->n_ports = t->n_ports;
        j->addr = t->addr;
        j->mark = t->mark;
        j->done = done;
        j->userdata = userdata;
        if (f->tail)
                f->tail->next = j;
        else
                f->head = j;
        f->tail = j;
        run_next(f);
        return 0;
}

static void job_finish(struct fwd *f, struct job *j, int r, const char *error) {
        if (r >= 0) {
                if (j->op == RULES_ADD) {
                        f->base_installed = true;
                        f->n_services++;
                } else if (j->op == RULES_REMOVE) {
                        if (f->n_services == 1 && !f->foreign)
                                f->base_installed = false;
                        f->n_services--;
                }
        }
        if (j->done)
                j->done(j->userdata, r, error);
        job_free(j);
}

bool fwd_child_exited(struct fwd *f, pid_t pid, int status) {
        char buf[1024] = "";
        struct job *j = f->head;
        ssize_t n;

        if (!f->pid || pid != f->pid)
                return false;
        f->pid = 0;
        n = read(f->err_fd, buf, sizeof(buf) - 1);
        buf[n > 0 ? n : 0] = 0;
        buf[strcspn(buf, "\n")] = 0;
        close(f->err_fd);
        f->err_fd = -1;
        f->head = j->next;
        if (!f->head)
                f->tail = NULL;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                job_finish(f, j, 0, NULL);
        else {
                char msg[1200];
                snprintf(msg, sizeof(msg), "iptables-restore (%s %s) failed: %s",
                         j->op == RULES_ADD ? "add" : j->op == RULES_SWITCH ? "switch" : "remove",
                         j->service,
                         WIFEXITED(status) && WEXITSTATUS(status) == 127 ? "not found"
                         : *buf ? buf : "exited with an error");
                job_finish(f, j, -EIO, msg);
        }
        run_next(f);
        return true;
}
