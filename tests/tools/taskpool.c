/* A server built like Swoole/easyswoole's task workers, for gen's drain
 * tests: a main process that answers HTTP, and a fixed pool of task
 * worker processes, forked at start and kept, that run the tasks the
 * requests queue. Its process count never changes while tasks run, so
 * only the server itself can say its tasks are done.
 *
 *   GET /health   200 "ok"
 *   GET /tasks    the pool's state, one line per worker (like easyswoole's
 *                 `task status`): 200 when nothing runs or waits, else 503
 *   GET /...      queues a task of TASKPOOL_TASK_MS (1000) ms and answers
 *                 "generation N" at once
 *
 * Markers in TASKPOOL_MARKERS, else SAMPLE_MARKERS (if set): queued-N-ID when a request queued a
 * task, start-N-ID when a worker began it, done-N-ID when it finished, so
 * a test counts tasks cut: queued without done.
 *
 * SIGTERM: it stops accepting, runs every queued task to its end, then
 * exits (a server that finishes its work on a stop signal).
 *
 *   taskpool --status   asks 127.0.0.1:TASKPOOL_PORT for GET /tasks, prints
 *                       the answer; exits 0 when idle, 1 when busy, 2 when
 *                       it cannot ask (for [drain] idle = exec ...)
 *
 * Environment: TASKPOOL_PORT (9501), TASKPOOL_WORKERS (4),
 * TASKPOOL_TASK_MS (1000), GEN_GENERATION. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 32
#define MAX_QUEUE 4096

struct worker {
        pid_t pid;
        int fd;                         /* main's end of its socketpair */
        uint32_t task;                  /* 0: idle */
        double since;
};

static struct worker workers[MAX_WORKERS];
static int n_workers;
static uint32_t queue[MAX_QUEUE];
static unsigned q_head, q_len, next_id, done_count;
static const char *markers, *gen = "?";
static volatile sig_atomic_t stopping;

static int env_int(const char *name, int def) {
        const char *v = getenv(name);
        return v && *v ? atoi(v) : def;
}

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void touch(const char *kind, uint32_t id) {
        char path[512];
        int fd;

        if (!markers)
                return;
        snprintf(path, sizeof(path), "%s/%s-%s-%u", markers, kind, gen, id);
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0)
                close(fd);
}

static void worker_main(int fd, int task_ms) {
        uint32_t id;

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        while (read(fd, &id, sizeof(id)) == sizeof(id)) {
                struct timespec ts = { task_ms / 1000, (task_ms % 1000) * 1000000L };
                touch("start", id);
                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                        ;
                touch("done", id);
                if (write(fd, &id, sizeof(id)) != sizeof(id))
                        break;
        }
        _exit(0);
}

static void dispatch(void) {
        for (int w = 0; w < n_workers && q_len; w++) {
                if (workers[w].task)
                        continue;
                uint32_t id = queue[q_head];
                if (write(workers[w].fd, &id, sizeof(id)) != sizeof(id))
                        continue;
                q_head = (q_head + 1) % MAX_QUEUE;
                q_len--;
                workers[w].task = id;
                workers[w].since = now();
        }
}

static int running(void) {
        int n = 0;
        for (int w = 0; w < n_workers; w++)
                n += workers[w].task != 0;
        return n;
}

static size_t status_text(char *buf, size_t n) {
        size_t used = snprintf(buf, n, "taskpool generation %s: %d workers, %d running, %u "
                               "queued, %u done\n", gen, n_workers, running(), q_len, done_count);
        for (int w = 0; w < n_workers && used < n; w++) {
                if (workers[w].task)
                        used += snprintf(buf + used, n - used, "worker %d (pid %d): task %u, "
                                         "running for %d ms\n", w, (int)workers[w].pid,
                                         workers[w].task,
                                         (int)((now() - workers[w].since) * 1000));
                else
                        used += snprintf(buf + used, n - used, "worker %d (pid %d): idle\n", w,
                                         (int)workers[w].pid);
        }
        return used < n ? used : n - 1;
}

static void answer(int fd, int status, const char *body, size_t len) {
        char head[256];
        int n = snprintf(head, sizeof(head), "HTTP/1.0 %d %s\r\nContent-Length: %zu\r\n"
                         "Connection: close\r\n\r\n", status, status == 200 ? "OK" : "Busy", len);
        if (write(fd, head, n) < 0 || write(fd, body, len) < 0) {
                /* the client went away */
        }
}

static void serve(int fd) {
        char req[2048], body[8192];
        size_t got = 0;
        ssize_t n;
        int len;

        while (got < sizeof(req) - 1 && (n = read(fd, req + got, sizeof(req) - 1 - got)) > 0) {
                got += n;
                req[got] = 0;
                if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
                        break;
        }
        req[got] = 0;
        if (strncmp(req, "GET /health", 11) == 0)
                answer(fd, 200, "ok\n", 3);
        else if (strncmp(req, "GET /tasks", 10) == 0) {
                size_t l = status_text(body, sizeof(body));
                answer(fd, running() || q_len ? 503 : 200, body, l);
        } else if (strncmp(req, "GET ", 4) == 0) {
                if (q_len == MAX_QUEUE) {
                        len = snprintf(body, sizeof(body), "generation %s: queue full\n", gen);
                        answer(fd, 503, body, len);
                } else {
                        uint32_t id = ++next_id;
                        queue[(q_head + q_len++) % MAX_QUEUE] = id;
                        touch("queued", id);
                        dispatch();
                        len = snprintf(body, sizeof(body), "generation %s\ntask %u queued\n", gen, id);
                        answer(fd, 200, body, len);
                }
        }
        close(fd);
}

static void on_term(int sig) {
        (void)sig;
        stopping = 1;
}

static int ask_status(void) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(env_int("TASKPOOL_PORT", 9501)),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        struct timeval tv = { 2, 0 };
        char buf[16384];
        size_t got = 0;
        ssize_t n;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const char req[] = "GET /tasks HTTP/1.0\r\n\r\n";
        char *body;

        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
            connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            write(fd, req, sizeof(req) - 1) != sizeof(req) - 1) {
                fprintf(stderr, "taskpool --status: 127.0.0.1:%d: %s\n", ntohs(sa.sin_port),
                        strerror(errno));
                return 2;
        }
        while (got < sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
                got += n;
        buf[got] = 0;
        close(fd);
        body = strstr(buf, "\r\n\r\n");
        if (strncmp(buf, "HTTP/1.0 ", 9) != 0 || !body) {
                fprintf(stderr, "taskpool --status: not an answer: %.60s\n", buf);
                return 2;
        }
        fputs(body + 4, stdout);
        return atoi(buf + 9) == 200 ? 0 : 1;
}

int main(int argc, char **argv) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(env_int("TASKPOOL_PORT", 9501)) };
        struct sigaction term = { .sa_handler = on_term };
        struct timeval tv = { 2, 0 };
        struct pollfd pfd[MAX_WORKERS + 1];
        int one = 1, lfd, task_ms = env_int("TASKPOOL_TASK_MS", 1000);

        if (argc == 2 && strcmp(argv[1], "--status") == 0)
                return ask_status();
        if (argc != 1) {
                fprintf(stderr, "usage: taskpool [--status]\n");
                return 2;
        }
        markers = getenv("TASKPOOL_MARKERS") ?: getenv("SAMPLE_MARKERS");
        if (getenv("GEN_GENERATION"))
                gen = getenv("GEN_GENERATION");
        n_workers = env_int("TASKPOOL_WORKERS", 4);
        if (n_workers < 1 || n_workers > MAX_WORKERS)
                n_workers = 4;
        signal(SIGPIPE, SIG_IGN);
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 512) < 0) {
                perror("taskpool: listen");
                return 1;
        }
        for (int w = 0; w < n_workers; w++) {
                int sp[2];
                if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
                        perror("taskpool: socketpair");
                        return 1;
                }
                workers[w].pid = fork();
                if (workers[w].pid == 0) {
                        close(lfd);
                        close(sp[0]);
                        for (int k = 0; k < w; k++)
                                close(workers[k].fd);
                        worker_main(sp[1], task_ms);
                }
                close(sp[1]);
                workers[w].fd = sp[0];
        }
        sigaction(SIGTERM, &term, NULL);
        fprintf(stderr, "taskpool: generation %s listening on port %d, %d task workers\n", gen,
                ntohs(sa.sin_port), n_workers);
        for (;;) {
                int n = 0;
                if (stopping && lfd >= 0) {
                        close(lfd);
                        lfd = -1;
                        fprintf(stderr, "taskpool: SIGTERM: no new requests; finishing %d running "
                                "and %u queued tasks\n", running(), q_len);
                }
                if (stopping && !running() && !q_len)
                        break;
                if (lfd >= 0)
                        pfd[n++] = (struct pollfd){ .fd = lfd, .events = POLLIN };
                for (int w = 0; w < n_workers; w++)
                        pfd[n++] = (struct pollfd){ .fd = workers[w].fd, .events = POLLIN };
                if (poll(pfd, n, -1) < 0)
                        continue;       /* EINTR: SIGTERM */
                for (int i = 0; i < n; i++) {
                        if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        if (pfd[i].fd == lfd) {
                                int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                                if (fd < 0)
                                        continue;
                                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
                                serve(fd);
                                continue;
                        }
                        for (int w = 0; w < n_workers; w++) {
                                uint32_t id;
                                if (workers[w].fd != pfd[i].fd)
                                        continue;
                                if (read(workers[w].fd, &id, sizeof(id)) != sizeof(id)) {
                                        fprintf(stderr, "taskpool: worker %d is gone\n", w);
                                        return 1;
                                }
                                workers[w].task = 0;
                                done_count++;
                        }
                }
                dispatch();
        }
        for (int w = 0; w < n_workers; w++)
                close(workers[w].fd);
        while (wait(NULL) > 0)
                ;
        fprintf(stderr, "taskpool: every task done (%u); exiting\n", done_count);
        return 0;
}
