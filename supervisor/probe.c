#include "probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "../sandbox/cgroup.h"
#include "../sandbox/limits.h"
#include "../sandbox/naming.h"
#include "../sandbox/spawn.h"
#include "../sandbox/util.h"

/* The next try after a failed one: 5 ms, doubling, then every 100 ms. A
 * server is most often ready within milliseconds of its first try, and
 * one that takes seconds is tried no more often than every 100 ms. Each
 * timer to the microsecond (sd-event's default accuracy, 0, lets it
 * slip by 250 ms). */
#define RETRY_FIRST_USEC (5 * USEC_PER_MSEC)
#define RETRY_USEC (100 * USEC_PER_MSEC)

struct probe {
        sd_event *event;
        const struct policy *policy;
        uint32_t addr;
        uint16_t port;
        probe_done_t done;
        void *userdata;
        int fd;
        sd_event_source *io, *retry, *deadline, *attempt_timer;
        uint64_t retry_usec;            /* after the next failed try */
        /* exec probes */
        const struct probe_target *target;
        int cgroup_fd, log_fd;
        int join[_LIM_MAX];             /* v1 limit cgroups, limits_open_join */
        pid_t pid;
        char reply[256];
        size_t reply_len;
        char last[256];                 /* what the last try met */
};

static void attempt_close(struct probe *p) {
        if (p->pid > 0)
                kill(p->pid, SIGKILL);  /* reaped by gend's reaper as an unknown pid */
        p->pid = 0;
        p->io = sd_event_source_disable_unref(p->io);
        p->attempt_timer = sd_event_source_disable_unref(p->attempt_timer);
        if (p->fd >= 0)
                close(p->fd);
        p->fd = -1;
        p->reply_len = 0;
}

void probe_free(struct probe *p) {
        if (!p)
                return;
        attempt_close(p);
        sd_event_source_disable_unref(p->retry);
        sd_event_source_disable_unref(p->deadline);
        if (p->cgroup_fd >= 0)
                close(p->cgroup_fd);
        if (p->log_fd >= 0)
                close(p->log_fd);
        for (int c = 0; c < _LIM_MAX; c++)
                if (p->join[c] >= 0)
                        close(p->join[c]);
        free(p);
}

static void finish(struct probe *p, int r) {
        /* The callback may free p: copy what it needs. */
        probe_done_t done = p->done;
        char why[256];

        snprintf(why, sizeof(why), "%s", p->last);
        attempt_close(p);
        p->retry = sd_event_source_disable_unref(p->retry);
        p->deadline = sd_event_source_disable_unref(p->deadline);
        done(p->userdata, r, why);
}

static int start_attempt(struct probe *p);

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        struct probe *p = userdata;
        (void)s, (void)usec;
        p->retry = sd_event_source_disable_unref(p->retry);
        start_attempt(p);
        return 0;
}

static void attempt_failed(struct probe *p) {
        uint64_t wait = p->retry_usec;

        attempt_close(p);
        p->retry_usec = 2 * wait < RETRY_USEC ? 2 * wait : RETRY_USEC;
        if (sd_event_add_time_relative(p->event, &p->retry, CLOCK_MONOTONIC, wait, 1,
                                       on_retry, p) < 0) {
                snprintf(p->last, sizeof(p->last), "cannot schedule the next probe");
                finish(p, -ENOMEM);
        }
}

static void where(struct probe *p, char *buf, size_t n) {
        char a[16];
        snprintf(buf, n, "%s:%u", ip4_to_string(p->addr, a, sizeof(a)), p->port);
}

static void http_reply(struct probe *p) {
        char *sp = strchr(p->reply, ' ');
        int status = sp ? atoi(sp + 1) : 0;
        char w[32];

        where(p, w, sizeof(w));
        if (strncmp(p->reply, "HTTP/", 5) != 0 || status < 100) {
                snprintf(p->last, sizeof(p->last), "GET http://%s%s: not an HTTP answer", w,
                         p->policy->probe_path);
                attempt_failed(p);
        } else if (status != p->policy->probe_status) {
                snprintf(p->last, sizeof(p->last), "GET http://%s%s answered %d, not %d", w,
                         p->policy->probe_path, status, p->policy->probe_status);
                attempt_failed(p);
        } else
                finish(p, 0);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct probe *p = userdata;
        char w[32];
        int err = 0;
        socklen_t len = sizeof(err);
        (void)s;

        where(p, w, sizeof(w));
        if (revents & EPOLLOUT) {
                char req[512];
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
                        snprintf(p->last, sizeof(p->last), "connect %s %s", w,
                                 err == ECONNREFUSED ? "refused" : strerror(err ? err : errno));
                        attempt_failed(p);
                        return 0;
                }
                if (p->policy->probe == PROBE_TCP) {
                        finish(p, 0);
                        return 0;
                }
                snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: gend\r\n\r\n",
                         p->policy->probe_path, w);
                if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
                        snprintf(p->last, sizeof(p->last), "send to %s: %s", w, strerror(errno));
                        attempt_failed(p);
                        return 0;
                }
                sd_event_source_set_io_events(p->io, EPOLLIN);
                return 0;
        }
        ssize_t n = recv(fd, p->reply + p->reply_len, sizeof(p->reply) - 1 - p->reply_len, 0);
        if (n > 0) {
                p->reply_len += n;
                p->reply[p->reply_len] = 0;
                if (!strchr(p->reply, '\n') && p->reply_len < sizeof(p->reply) - 1)
                        return 0;
                http_reply(p);
                return 0;
        }
        snprintf(p->last, sizeof(p->last), "GET http://%s%s: connection closed without an answer",
                 w, p->policy->probe_path);
        attempt_failed(p);
        return 0;
}

/* exec: the check runs inside the generation, as its own processes do:
 * in its cgroups and namespaces, under its confine, in its directory,
 * writing to its log; it passes by exiting 0. */
static int start_exec(struct probe *p) {
        const struct probe_target *t = p->target;
        struct spawn_opts o = {
                .argv = p->policy->probe_argv, .envp = t->envp, .directory = t->directory,
                .cgroup_fd = p->cgroup_fd, .netns_fd = -1, .log_fd = p->log_fd,
                .confine = t->confine, .join_fds = p->join, .n_join = _LIM_MAX,
        };
        pid_t pid;

        if (spawn_enter(&o, t->pidfd, &pid) < 0) {
                snprintf(p->last, sizeof(p->last), "exec %s: %s", o.argv[0], err_msg());
                attempt_failed(p);
                return 0;
        }
        p->pid = pid;
        return 0;
}

bool probe_child_exited(struct probe *p, pid_t pid, int status) {
        char *const *argv;

        if (p->pid <= 0 || pid != p->pid)
                return false;
        argv = p->policy->probe_argv;
        p->pid = 0;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
                finish(p, 0);
                return true;
        }
        if (WIFEXITED(status))
                snprintf(p->last, sizeof(p->last), "exec %s exited with status %d%s", argv[0],
                         WEXITSTATUS(status), WEXITSTATUS(status) == 126 ? " (could not enter "
                         "the generation's namespace or directory)" : "");
        else
                snprintf(p->last, sizeof(p->last), "exec %s was killed by signal %s", argv[0],
                         sigabbrev_np(WTERMSIG(status)) ?: "?");
        attempt_failed(p);
        return true;
}

/* One try that hears nothing (a SYN or an answer lost) ends after
 * ATTEMPT_USEC and the next one starts: the readiness deadline is never
 * spent on a single try. */
#define ATTEMPT_USEC (1 * USEC_PER_SEC)
static int on_attempt_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        struct probe *p = userdata;
        char w[32];
        (void)s, (void)usec;

        p->attempt_timer = sd_event_source_disable_unref(p->attempt_timer);
        where(p, w, sizeof(w));
        snprintf(p->last, sizeof(p->last), "no answer from %s within %llu ms", w,
                 ATTEMPT_USEC / USEC_PER_MSEC);
        attempt_failed(p);
        return 0;
}

static int start_attempt(struct probe *p) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(p->port),
                                  .sin_addr.s_addr = htonl(p->addr) };
        char w[32];
        int r;

        if (p->policy->probe == PROBE_EXEC)
                return start_exec(p);
        where(p, w, sizeof(w));
        p->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (p->fd < 0) {
                snprintf(p->last, sizeof(p->last), "socket: %s", strerror(errno));
                attempt_failed(p);
                return 0;
        }
        if (connect(p->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
                snprintf(p->last, sizeof(p->last), "connect %s: %s", w, strerror(errno));
                attempt_failed(p);
                return 0;
        }
        r = sd_event_add_io(p->event, &p->io, p->fd, EPOLLOUT, on_io, p);
        if (r >= 0)
                r = sd_event_add_time_relative(p->event, &p->attempt_timer, CLOCK_MONOTONIC,
                                               ATTEMPT_USEC, 1000, on_attempt_timeout, p);
        if (r < 0) {
                snprintf(p->last, sizeof(p->last), "sd-event: %s", strerror(-r));
                finish(p, r);
        }
        return 0;
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        struct probe *p = userdata;
        (void)s, (void)usec;
        if (!*p->last) {
                char w[32];
                where(p, w, sizeof(w));
                snprintf(p->last, sizeof(p->last), "no answer from %s", w);
        }
        finish(p, -ETIMEDOUT);
        return 0;
}

/* What an exec probe enters, opened once for every try. */
static int open_exec(struct probe *p) {
        const struct probe_target *t = p->target;
        int r;

        if ((r = cg_open(t->cgroup)) < 0)
                return r;
        p->cgroup_fd = r;
        for (int c = 0; c < _LIM_MAX; c++) {
                if (!t->limits->v1_dir[c])
                        continue;
                if ((p->join[c] = limits_open_join(t->limits->v1_dir[c])) < 0)
                        return p->join[c];
        }
        p->log_fd = open(t->log_path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY);
        if (p->log_fd < 0)
                return err_set(errno, "open(%s)", t->log_path);
        return 0;
}

int probe_start(sd_event *e, const struct policy *pol, const struct probe_target *t,
                probe_done_t done, void *userdata, struct probe **ret) {
        struct probe *p = calloc(1, sizeof(*p));
        int r;

        if (!p)
                return err_set(ENOMEM, "probe");
        *p = (struct probe){ .event = e, .policy = pol, .addr = t->addr, .port = t->port,
                             .done = done, .userdata = userdata, .fd = -1, .target = t,
                             .cgroup_fd = -1, .log_fd = -1, .join = { -1, -1, -1 },
                             .retry_usec = RETRY_FIRST_USEC };
        if (pol->probe == PROBE_EXEC && (r = open_exec(p)) < 0) {
                probe_free(p);
                return r;
        }
        r = sd_event_add_time_relative(e, &p->deadline, CLOCK_MONOTONIC,
                                       pol->ready_timeout_usec, 1, on_deadline, p);
        if (r < 0) {
                probe_free(p);
                return err_setx(-r, "sd_event_add_time: %s", strerror(-r));
        }
        *ret = p;
        start_attempt(p);
        return 0;
}
