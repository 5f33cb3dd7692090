#include "idle.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <sys/stat.h>

#include "../sandbox/naming.h"
#include "../sandbox/spawn.h"
#include "../sandbox/util.h"

/* An HTTP answer's head may take this much beside the body it keeps. */
#define HEAD_MAX 2048

struct idle {
        sd_event *event;
        const struct policy *policy;
        const struct probe_target *target;
        idle_done_t done;
        void *userdata;
        int cgroup_fd;                  /* exec: its runs' cgroup, IDLE_CGROUP below the
                                           generation's, which the drain does not count */

        /* the run under way */
        bool running;
        uint64_t start_usec;
        pid_t pid;                      /* exec: the child, until reaped */
        int fd;                         /* exec: the read end of its pipe; http: the socket */
        sd_event_source *io, *timer;
        char buf[HEAD_MAX + IDLE_OUTPUT_MAX + 1];
        size_t len;
        bool truncated, eof;
        char fail_why[160];             /* a run that could not start */

        struct idle_result last;
};

void idle_describe(const struct policy *p, char *buf, size_t n) {
        size_t used;

        if (p->idle == IDLE_HTTP) {
                snprintf(buf, n, "http GET %s %d", p->idle_path, p->idle_status);
                return;
        }
        used = snprintf(buf, n, "exec");
        for (char **a = p->idle_argv; a && *a && used < n; a++)
                used += snprintf(buf + used, n - used, " %s", *a);
}

/* Text for people and for JSON: valid UTF-8 kept, ANSI escape sequences
 * dropped, other control characters but newline and tab made '?'. */
static size_t clean_text(char *s, size_t len) {
        size_t in = 0, out = 0;

        while (in < len) {
                unsigned char c = s[in];
                size_t k = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
                         : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
                bool ok = k > 0 && in + k <= len;

                if (c == 0x1b && in + 1 < len && s[in + 1] == '[') {   /* CSI ... final byte */
                        size_t e = in + 2;
                        while (e < len && ((unsigned char)s[e] < 0x40 || (unsigned char)s[e] > 0x7e))
                                e++;
                        in = e < len ? e + 1 : len;
                        continue;
                }
                for (size_t i = 1; ok && i < k; i++)
                        ok = ((unsigned char)s[in + i] & 0xc0) == 0x80;
                if (ok && k == 3)
                        ok = !(c == 0xe0 && (unsigned char)s[in + 1] < 0xa0) &&
                             !(c == 0xed && (unsigned char)s[in + 1] > 0x9f);
                if (ok && k == 4)
                        ok = !(c == 0xf0 && (unsigned char)s[in + 1] < 0x90) &&
                             !(c == 0xf4 && (unsigned char)s[in + 1] > 0x8f);
                if (!ok || (k == 1 && ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f))) {
                        s[out++] = '?';
                        in++;
                        continue;
                }
                memmove(s + out, s + in, k);
                out += k;
                in += k;
        }
        s[out] = 0;
        return out;
}

static void run_close(struct idle *i) {
        i->io = sd_event_source_disable_unref(i->io);
        i->timer = sd_event_source_disable_unref(i->timer);
        if (i->fd >= 0)
                close(i->fd);
        i->fd = -1;
        i->pid = 0;
        i->len = 0;
        i->truncated = i->eof = false;
        i->fail_why[0] = 0;
        i->running = false;
}

/* The run is over: its result is kept, and the caller told (last: it may
 * free i). */
static void finish(struct idle *i, bool passed, const char *body, size_t len, const char *why) {
        struct idle_result *r = &i->last;
        idle_done_t done = i->done;
        void *userdata = i->userdata;

        r->valid = true;
        r->passed = passed;
        r->start_usec = i->start_usec;
        r->end_usec = now_usec(CLOCK_MONOTONIC);
        snprintf(r->why, sizeof(r->why), "%s", why);
        r->truncated = i->truncated || len > IDLE_OUTPUT_MAX;
        r->len = len > IDLE_OUTPUT_MAX ? IDLE_OUTPUT_MAX : len;
        memcpy(r->output, body, r->len);
        r->len = clean_text(r->output, r->len);
        run_close(i);
        done(userdata);
}

/* Reads what there is; at most the buffer, the rest is counted as cut. */
static void read_some(struct idle *i) {
        size_t cap = i->policy->idle == IDLE_HTTP ? sizeof(i->buf) - 1 : IDLE_OUTPUT_MAX;
        char scratch[4096];

        for (;;) {
                bool full = i->len >= cap;
                ssize_t n = full ? read(i->fd, scratch, sizeof(scratch))
                                 : read(i->fd, i->buf + i->len, cap - i->len);
                if (n > 0 && full)
                        i->truncated = true;
                else if (n > 0)
                        i->len += n;
                if (n == 0)
                        i->eof = true;
                if (n <= 0)
                        break;
        }
        i->buf[i->len] = 0;
}

/* exec */

static void exec_done(struct idle *i, int status) {
        char why[160];
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;

        if (code >= 0)
                snprintf(why, sizeof(why), "exit status %d%s", code,
                         code == 126 ? " (it could not enter the generation)"
                         : code == 127 ? " (it could not be executed)" : "");
        else
                snprintf(why, sizeof(why), "killed by signal %s",
                         sigabbrev_np(WTERMSIG(status)) ?: "?");
        read_some(i);
        finish(i, code == 0, i->buf, i->len, why);
}

bool idle_child_exited(struct idle *i, pid_t pid, int status) {
        if (!i->running || i->pid <= 0 || pid != i->pid)
                return false;
        i->pid = 0;
        exec_done(i, status);
        return true;
}

static int on_pipe(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct idle *i = userdata;
        (void)fd, (void)revents;

        read_some(i);
        if (i->eof)     /* the program may still run: its exit ends the run */
                i->io = sd_event_source_disable_unref(s);
        return 0;
}

/* exec: inside the generation as its own processes are (every namespace,
 * its view, its confine, in its directory; spawn_enter), but in a cgroup of
 * its own below the generation's, so the probe is not a process the drain
 * waits for. Its output comes back through a pipe. */
static int start_exec(struct idle *i) {
        const struct probe_target *t = i->target;
        struct spawn_opts o = {
                .argv = i->policy->idle_argv, .envp = t->envp, .directory = t->directory,
                .cgroup_fd = i->cgroup_fd, .netns_fd = -1, .confine = t->confine,
        };
        int p[2], r;
        pid_t pid;

        if (pipe2(p, O_CLOEXEC) < 0)
                return err_set(errno, "pipe2");
        o.log_fd = p[1];
        r = spawn_enter(&o, t->pidfd, &pid);
        close(p[1]);
        if (r < 0) {
                close(p[0]);
                return r;
        }
        i->pid = pid;
        i->fd = p[0];
        if (fcntl(i->fd, F_SETFL, O_NONBLOCK) < 0 ||
            sd_event_add_io(i->event, &i->io, i->fd, EPOLLIN, on_pipe, i) < 0)
                return err_set(errno ? errno : EIO, "watching the idle probe's output");
        return 0;
}

/* http */

static void http_done(struct idle *i) {
        char *sp = strchr(i->buf, ' '), *body;
        int status = sp && strncmp(i->buf, "HTTP/", 5) == 0 ? atoi(sp + 1) : 0;
        char why[160];
        size_t off;

        if (status < 100) {
                finish(i, false, i->buf, i->len, "not an HTTP answer");
                return;
        }
        body = strstr(i->buf, "\r\n\r\n");
        off = body ? (size_t)(body - i->buf) + 4
                   : (body = strstr(i->buf, "\n\n")) ? (size_t)(body - i->buf) + 2 : i->len;
        if (status == i->policy->idle_status)
                snprintf(why, sizeof(why), "answered %d", status);
        else
                snprintf(why, sizeof(why), "answered %d, not %d", status, i->policy->idle_status);
        finish(i, status == i->policy->idle_status, i->buf + off, i->len - off, why);
}

static int on_socket(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct idle *i = userdata;
        int err = 0;
        socklen_t len = sizeof(err);
        char req[512], why[160];
        (void)s;

        if (revents & EPOLLOUT) {
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
                        snprintf(why, sizeof(why), "connect: %s", strerror(err ? err : errno));
                        finish(i, false, "", 0, why);
                        return 0;
                }
                snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nUser-Agent: gend (idle probe)\r\n"
                         "\r\n", i->policy->idle_path);
                if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
                        snprintf(why, sizeof(why), "send: %s", strerror(errno));
                        finish(i, false, "", 0, why);
                        return 0;
                }
                sd_event_source_set_io_events(i->io, EPOLLIN);
                return 0;
        }
        read_some(i);
        if (i->eof || (revents & (EPOLLHUP | EPOLLERR)))
                http_done(i);
        return 0;
}

static int start_http(struct idle *i) {
        const struct probe_target *t = i->target;
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(t->port),
                                  .sin_addr.s_addr = htonl(t->addr) };
        int r;

        if (!t->port)
                return err_setx(EINVAL, "the policy has no TCP port to ask on");
        i->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (i->fd < 0)
                return err_set(errno, "socket");
        if (connect(i->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
                return err_set(errno, "connect");
        r = sd_event_add_io(i->event, &i->io, i->fd, EPOLLOUT, on_socket, i);
        return r < 0 ? err_setx(-r, "sd_event_add_io: %s", strerror(-r)) : 0;
}

/* The run's time is up, or it could not start (fail_why). */
static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct idle *i = userdata;
        char why[160], d[32];
        (void)s, (void)usec;

        if (i->fail_why[0]) {
                snprintf(why, sizeof(why), "%s", i->fail_why);
                finish(i, false, "", 0, why);
                return 0;
        }
        format_duration(d, sizeof(d), i->policy->idle_timeout_usec);
        if (i->pid > 0) {
                /* Not reaped yet (the reaper would have ended the run), so
                 * the pid and its group are still this child's. */
                kill(-i->pid, SIGKILL);
                kill(i->pid, SIGKILL);  /* gend's reaper takes it as an unknown pid */
                i->pid = 0;
                snprintf(why, sizeof(why), "timed out after %s: killed", d);
        } else
                snprintf(why, sizeof(why), "no answer within %s", d);
        read_some(i);
        if (i->policy->idle == IDLE_HTTP) {
                char *body = strstr(i->buf, "\r\n\r\n");
                size_t off = body ? (size_t)(body - i->buf) + 4 : i->len;
                finish(i, false, i->buf + off, i->len - off, why);
        } else
                finish(i, false, i->buf, i->len, why);
        return 0;
}

int idle_run(struct idle *i) {
        int r;

        if (i->running)
                return -EBUSY;
        i->running = true;
        i->start_usec = now_usec(CLOCK_MONOTONIC);
        r = i->policy->idle == IDLE_EXEC ? start_exec(i) : start_http(i);
        if (r < 0) {
                /* Said as its result, from the loop: never inside the caller. */
                snprintf(i->fail_why, sizeof(i->fail_why), "%s", err_msg());
                i->io = sd_event_source_disable_unref(i->io);
                if (i->pid > 0) {
                        kill(-i->pid, SIGKILL);
                        kill(i->pid, SIGKILL);
                        i->pid = 0;
                }
        }
        r = sd_event_add_time_relative(i->event, &i->timer, CLOCK_MONOTONIC,
                                       i->fail_why[0] ? 0 : i->policy->idle_timeout_usec, 1,
                                       on_timer, i);
        if (r < 0) {
                if (i->pid > 0) {
                        kill(-i->pid, SIGKILL);
                        kill(i->pid, SIGKILL);
                }
                run_close(i);
                return err_setx(-r, "sd_event_add_time: %s", strerror(-r));
        }
        return 0;
}

bool idle_running(const struct idle *i) {
        return i->running;
}

const struct idle_result *idle_last(const struct idle *i) {
        return &i->last;
}

int idle_new(sd_event *e, const struct policy *p, const struct probe_target *t, idle_done_t done,
             void *userdata, struct idle **ret) {
        struct idle *i;
        int r;

        if (p->idle == IDLE_NONE)
                return err_setx(EINVAL, "no idle probe");
        if (!(i = calloc(1, sizeof(*i))))
                return err_set(ENOMEM, "idle probe");
        *i = (struct idle){ .event = e, .policy = p, .target = t, .done = done,
                            .userdata = userdata, .cgroup_fd = -1, .fd = -1 };
        if (p->idle == IDLE_EXEC) {
                _cleanup_free_ char *cg = NULL;
                if (!t->cgroup || asprintf(&cg, "%s/" IDLE_CGROUP, t->cgroup) < 0) {
                        free(i);
                        return err_setx(ENOENT, "the generation has no cgroup to run its idle "
                                        "probe below");
                }
                if ((mkdir(cg, 0755) < 0 && errno != EEXIST) ||
                    (i->cgroup_fd = open(cg, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
                        r = err_set(errno, "idle probe cgroup %s", cg);
                        free(i);
                        return r;
                }
        }
        *ret = i;
        return 0;
}

void idle_free(struct idle *i) {
        if (!i)
                return;
        if (i->running && i->pid > 0) {
                kill(-i->pid, SIGKILL);
                kill(i->pid, SIGKILL);
        }
        run_close(i);
        if (i->cgroup_fd >= 0)
                close(i->cgroup_fd);
        free(i);
}
