#include "fwd.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "log.h"

#define TIMEOUT_USEC (30 * USEC_PER_SEC)
#define HOLD_POLL_USEC (20 * USEC_PER_MSEC)
#define ERR_MAX 4096

struct job {
        char *what, *text;
        fwd_done_t done;
        void *userdata;
        struct job *next;
};

struct fwd {
        sd_event *event;
        char restore[64], save[64];     /* absolute paths */
        struct job *head, *tail;
        pid_t pid;                      /* iptables-restore running, or 0 */
        int err_fd;
        char err[ERR_MAX];
        size_t err_len;
        sd_event_source *err_io, *timer, *defer;
        char *hold;
        uint64_t timeout_usec;
};

static const char *const search_path[] = { "/usr/sbin", "/usr/bin", "/sbin", "/bin" };
static char *const helper_env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL };

static int resolve(const char *name, char *buf, size_t n) {
        for (size_t i = 0; i < ELEMENTSOF(search_path); i++) {
                snprintf(buf, n, "%s/%s", search_path[i], name);
                if (access(buf, X_OK) == 0)
                        return 0;
        }
        return err_setx(ENOENT, "%s is not in /usr/sbin, /usr/bin, /sbin or /bin (is the "
                        "iptables package installed? apt-get install iptables)", name);
}

/* In the child: a clean slate, then exec. It dies with gend: a
 * transaction must not land after a restarted gend has read the rules. */
_Noreturn static void exec_helper(const char *path, char *const argv[], int in_fd, int out_fd,
                                  pid_t parent) {
        sigset_t none;
        struct sigaction dfl = { .sa_handler = SIG_DFL };

        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                _exit(125);

        for (int s = 1; s < _NSIG; s++)
                if (s != SIGKILL && s != SIGSTOP)
                        sigaction(s, &dfl, NULL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
                _exit(126);
        close_range(3, ~0U, 0);
        execve(path, argv, helper_env);
        dprintf(2, "execve(%s): %s", path, strerror(errno));
        _exit(127);
}

/* The transaction's text as an fd to read from: no pipe size limit. */
static int text_fd(const char *text) {
        int fd = memfd_create("gen-rules", MFD_CLOEXEC);
        size_t len = strlen(text), done = 0;

        if (fd < 0)
                return err_set(errno, "memfd_create");
        while (done < len) {
                ssize_t n = write(fd, text + done, len - done);
                if (n < 0) {
                        int e = errno;
                        close(fd);
                        return err_set(e, "write(memfd)");
                }
                done += n;
        }
        lseek(fd, 0, SEEK_SET);
        return fd;
}

static int run_blocking(struct fwd *f, char *const argv[], const char *input, char **ret_out) {
        _cleanup_close_ int in = -1, out = -1;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = 0;
        int p[2], st;
        pid_t pid;

        (void)f;
        if ((in = input ? text_fd(input) : open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
                return input ? in : err_set(errno, "open(/dev/null)");
        if (pipe2(p, O_CLOEXEC) < 0)
                return err_set(errno, "pipe2");
        out = p[0];
        pid_t self = getpid();
        pid = fork();
        if (pid < 0) {
                close(p[1]);
                return err_set(errno, "fork(%s)", argv[0]);
        }
        if (pid == 0)
                exec_helper(argv[0], argv, in, p[1], self);
        close(p[1]);
        for (;;) {
                if (cap - len < 4096) {
                        char *nb = realloc(buf, cap += 65536);
                        if (!nb) {
                                kill(pid, SIGKILL);
                                waitpid(pid, NULL, 0);
                                return err_set(ENOMEM, "%s", argv[0]);
                        }
                        buf = nb;
                }
                ssize_t n = read(out, buf + len, cap - len - 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                len += n;
        }
        buf[len] = 0;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                while (len && buf[len - 1] == '\n')
                        buf[--len] = 0;
                return err_setx(EIO, "%s failed (%s %d): %s", argv[0],
                                WIFEXITED(st) ? "status" : "signal",
                                WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), buf);
        }
        if (ret_out)
                *ret_out = TAKE_PTR(buf);
        return 0;
}

static void fwd_set_hold(struct fwd *f, const char *path);

/* For the tests' races only, each said in the log: GEN_TEST_HOLD_RULES=FILE
 * (transactions wait while FILE exists), GEN_TEST_IPTABLES_RESTORE=PATH (a
 * stand-in), GEN_TEST_RULES_TIMEOUT_MS=N. */
static void test_hooks(struct fwd *f) {
        const char *hold = getenv("GEN_TEST_HOLD_RULES"), *restore =
                getenv("GEN_TEST_IPTABLES_RESTORE"), *timeout = getenv("GEN_TEST_RULES_TIMEOUT_MS");

        if (hold && *hold) {
                fwd_set_hold(f, hold);
                log_warn("test hook: rule transactions wait while %s exists", hold);
        }
        if (restore && *restore && strlen(restore) < sizeof(f->restore)) {
                snprintf(f->restore, sizeof(f->restore), "%s", restore);
                log_warn("test hook: rule transactions run %s", restore);
        }
        if (timeout && atoi(timeout) > 0) {
                f->timeout_usec = (uint64_t)atoi(timeout) * USEC_PER_MSEC;
                log_warn("test hook: rule transactions time out after %s ms", timeout);
        }
}

int fwd_new(sd_event *e, struct fwd **ret) {
        struct fwd *f = calloc(1, sizeof(*f));
        int r;

        if (!f)
                return err_set(ENOMEM, "fwd");
        f->err_fd = -1;
        f->event = sd_event_ref(e);
        if ((r = resolve("iptables-restore", f->restore, sizeof(f->restore))) < 0 ||
            (r = resolve("iptables-save", f->save, sizeof(f->save))) < 0) {
                fwd_free(f);
                return r;
        }
        f->timeout_usec = TIMEOUT_USEC;
        test_hooks(f);
        log_info("iptables helpers: %s, %s", f->restore, f->save);
        *ret = f;
        return 0;
}

static void job_free(struct job *j) {
        if (j) {
                free(j->what);
                free(j->text);
                free(j);
        }
}

static void attempt_close(struct fwd *f) {
        f->err_io = sd_event_source_disable_unref(f->err_io);
        f->timer = sd_event_source_disable_unref(f->timer);
        if (f->err_fd >= 0)
                close(f->err_fd);
        f->err_fd = -1;
}

void fwd_free(struct fwd *f) {
        if (!f)
                return;
        if (f->pid > 0)
                kill(f->pid, SIGKILL);  /* reaped by gend's reaper as an unknown pid */
        attempt_close(f);
        sd_event_source_disable_unref(f->defer);
        while (f->head) {
                struct job *j = f->head;
                f->head = j->next;
                job_free(j);
        }
        free(f->hold);
        sd_event_unref(f->event);
        free(f);
}

static void fwd_set_hold(struct fwd *f, const char *path) {
        free(f->hold);
        f->hold = path ? strdup(path) : NULL;
}

int fwd_read(struct fwd *f, struct rules_seen *ret) {
        char *nat[] = { f->save, "-t", "nat", NULL }, *filter[] = { f->save, "-t", "filter", NULL };
        _cleanup_free_ char *a = NULL, *b = NULL, *all = NULL;
        int r;

        if ((r = run_blocking(f, nat, NULL, &a)) < 0 || (r = run_blocking(f, filter, NULL, &b)) < 0)
                return r;
        if (asprintf(&all, "%s\n%s", a, b) < 0)
                return err_set(ENOMEM, "iptables-save");
        if (rules_parse_save(all, ret) < 0)
                return err_set(ENOMEM, "iptables-save");
        return 0;
}

int fwd_apply_now(struct fwd *f, const char *what, const char *text) {
        char *argv[] = { f->restore, "--noflush", "-w", "5", NULL };
        int r = run_blocking(f, argv, text, NULL);
        return r < 0 ? err_prefix(-r, "%s", what) : 0;
}

static void run_next(struct fwd *f);

static void finish(struct fwd *f, int r, const char *error) {
        struct job *j = f->head;

        f->head = j->next;
        if (!f->head)
                f->tail = NULL;
        j->done(j->userdata, r, error);
        job_free(j);
        run_next(f);
}

static int on_err(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct fwd *f = userdata;
        char sink[512];
        (void)s, (void)revents;

        for (;;) {
                size_t room = sizeof(f->err) - 1 - f->err_len;
                ssize_t n = room ? read(fd, f->err + f->err_len, room) : read(fd, sink, sizeof(sink));
                if (n <= 0)
                        break;
                if (room)
                        f->err_len += n;
        }
        f->err[f->err_len] = 0;
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        struct fwd *f = userdata;
        char msg[ERR_MAX + 256];
        (void)s, (void)usec;

        kill(f->pid, SIGKILL);          /* reaped as an unknown pid */
        f->pid = 0;
        on_err(NULL, f->err_fd, 0, f);
        char took[32];
        format_duration(took, sizeof(took), f->timeout_usec);
        snprintf(msg, sizeof(msg), "iptables-restore (%s) did not finish within %s; killed%s%s",
                 f->head->what, took, f->err_len ? ": " : "", f->err);
        attempt_close(f);
        finish(f, -ETIMEDOUT, msg);
        return 0;
}

static int start(struct fwd *f, struct job *j) {
        char *argv[] = { f->restore, "--noflush", "-w", "5", NULL };
        _cleanup_close_ int in = -1;
        int p[2], r;
        pid_t pid;

        if ((in = text_fd(j->text)) < 0)
                return in;
        if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
                return err_set(errno, "pipe2");
        pid_t self = getpid();
        pid = fork();
        if (pid < 0) {
                r = err_set(errno, "fork(%s)", f->restore);
                close(p[0]);
                close(p[1]);
                return r;
        }
        if (pid == 0)
                exec_helper(f->restore, argv, in, p[1], self);
        close(p[1]);
        f->pid = pid;
        f->err_fd = p[0];
        f->err_len = 0;
        f->err[0] = 0;
        if ((r = sd_event_add_io(f->event, &f->err_io, f->err_fd, EPOLLIN, on_err, f)) < 0 ||
            (r = sd_event_add_time_relative(f->event, &f->timer, CLOCK_MONOTONIC, f->timeout_usec,
                                            0, on_timeout, f)) < 0)
                log_warn("iptables-restore (%s): sd-event: %s; no time limit", j->what,
                         strerror(-r));
        return 0;
}

static int on_defer(sd_event_source *s, void *userdata);

static int on_hold(sd_event_source *s, uint64_t usec, void *userdata) {
        (void)usec;
        return on_defer(s, userdata);
}

static int on_defer(sd_event_source *s, void *userdata) {
        struct fwd *f = userdata;
        char msg[1200];
        int r;
        (void)s;

        f->defer = sd_event_source_disable_unref(f->defer);
        if (f->pid || !f->head)
                return 0;
        if (f->hold && access(f->hold, F_OK) == 0) {
                sd_event_add_time_relative(f->event, &f->defer, CLOCK_MONOTONIC, HOLD_POLL_USEC,
                                           0, on_hold, f);
                return 0;
        }
        r = start(f, f->head);
        if (r < 0) {
                snprintf(msg, sizeof(msg), "iptables-restore (%s) cannot start: %s", f->head->what,
                         err_msg());
                finish(f, r, msg);
        }
        return 0;
}

/* Starting always goes through the loop, so done() never runs inside a
 * caller's call. */
static void run_next(struct fwd *f) {
        if (f->pid || !f->head || f->defer)
                return;
        if (sd_event_add_defer(f->event, &f->defer, on_defer, f) < 0)
                log_error("iptables-restore (%s): cannot schedule it", f->head->what);
}

int fwd_submit(struct fwd *f, const char *what, const char *text, fwd_done_t done,
               void *userdata) {
        struct job *j = calloc(1, sizeof(*j));

        if (!j || !(j->what = strdup(what)) || !(j->text = strdup(text))) {
                job_free(j);
                return err_set(ENOMEM, "fwd_submit");
        }
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

bool fwd_child_exited(struct fwd *f, pid_t pid, int status) {
        char msg[ERR_MAX + 256];

        if (!f || !f->pid || pid != f->pid)
                return false;
        f->pid = 0;
        on_err(NULL, f->err_fd, 0, f);
        while (f->err_len && f->err[f->err_len - 1] == '\n')
                f->err[--f->err_len] = 0;
        attempt_close(f);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
                finish(f, 0, NULL);
                return true;
        }
        snprintf(msg, sizeof(msg), "iptables-restore (%s) failed (%s %d)%s%s", f->head->what,
                 WIFEXITED(status) ? "status" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                 f->err_len ? ": " : "", f->err);
        finish(f, -EIO, msg);
        return true;
}
