/* The sample service of gen's tests and demo, like the classic easyswoole
 * case: it answers "generation N", and every request starts a background
 * task process that runs SAMPLE_TASK_MS (1000) and then writes a marker.
 *
 *   GET /health   200 "ok" (SAMPLE_HEALTH_STATUS overrides the status)
 *   GET /status   this process's /proc/self/status
 *   GET /keyctl   tries add_key(2) (denied by both seccomp profiles): "errno N"
 *   GET /thread   starts and joins a thread: "thread ok"
 *   GET /int80    getpid through the i386 ABI (int $0x80): "int80 RESULT"
 *   GET /forkbomb forks as fast as it can for 3 s: "forks N refused M"
 *   GET /hog      a child touches memory, 1 MiB at a time, up to 1 GiB
 *   GET /handoff  a task process that waits for SAMPLE_MARKERS/handoff-go
 *                 (at most 30 s), then forks the task proper and exits at
 *                 once, as a daemonizing worker does: the task runs in a
 *                 process that did not exist when the drain began
 *                 (start-N-PID names the first, done-N-PID the second)
 *   GET /try/OP/ARG  tries what a contained generation must not manage and
 *                 answers "ok ..." or "errno N": read/PATH (answers the
 *                 first line), append/PATH, rewrite/PATH (writes back what
 *                 it reads: nothing changes even where it works), kill/PID
 *                 (SIGTERM), stat/PATH, cgjoin/PATH (a child writes its pid
 *                 to that cgroup.procs), procs (counts /proc/PID entries)
 *   GET /...      "generation N\n"; a task writes SAMPLE_MARKERS/done-N-PID
 *                 after SAMPLE_MARKERS/start-N-PID was written here.
 * Listens on 0.0.0.0:SAMPLE_PORT (9501). With SAMPLE_UDP_PORT set, a child
 * process also answers each UDP datagram to that port with "generation N\n".
 * A release directory can break it
 * on purpose: a file "health-status" there sets the health answer, a file
 * "exit-now" makes it exit with status 3 at once.
 *
 * SAMPLE_KEEPALIVE=1 (for the benchmarks' keep-alive load): HTTP/1.1, one
 * thread per connection, connections kept open between requests (closed
 * after 2 s idle). SIGTERM (gen's [drain] stop-signal when draining
 * starts) no longer ends it: from then on every answer says "Connection:
 * close" and its connection is closed after it, so clients move to the
 * new generation; it serves until it is stopped. Only GET /health and
 * GET / are served in this mode. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *markers;
static const char *gen = "?";

static int env_int(const char *name, int def) {
        const char *v = getenv(name);
        return v && *v ? atoi(v) : def;
}

/* A marker holds the time it was made (CLOCK_REALTIME, s.ns): a file's
 * mtime has only the kernel's tick. */
static void touch(const char *kind, pid_t pid) {
        char path[512], when[64];
        struct timespec ts;
        int fd, n;

        if (!markers)
                return;
        snprintf(path, sizeof(path), "%s/%s-%s-%d", markers, kind, gen, (int)pid);
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
                return;
        clock_gettime(CLOCK_REALTIME, &ts);
        n = snprintf(when, sizeof(when), "%lld.%09ld\n", (long long)ts.tv_sec, ts.tv_nsec);
        if (write(fd, when, (size_t)n) != n)
                perror("sample: marker");
        close(fd);
}

static void task(int ms) {
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
        touch("done", getpid());
        _exit(0);
}

/* A task handed on once the test says so (its file appears): a process
 * that forks the task and goes. */
static void handoff(int task_ms) {
        char go[512];
        struct timespec tick = { 0, 10000000L };

        snprintf(go, sizeof(go), "%s/handoff-go", markers ? markers : ".");
        for (int i = 0; i < 3000 && access(go, F_OK) < 0; i++)
                nanosleep(&tick, NULL);
        if (fork() == 0)
                task(task_ms);
        _exit(0);
}

static void answer(int fd, int status, const char *body, size_t len) {
        char head[256];
        int n = snprintf(head, sizeof(head), "HTTP/1.0 %d %s\r\nContent-Length: %zu\r\n"
                         "Connection: close\r\n\r\n", status, status == 200 ? "OK" : "Error", len);
        if (write(fd, head, n) < 0 || write(fd, body, len) < 0) {
                /* the client went away */
        }
}

static void *thread_main(void *arg) { return arg; }

/* Bounded in time: every process stops forking after 3 s and exits. */
static void forkbomb(unsigned *ret_forks, unsigned *ret_refused) {
        struct timespec start, now;
        unsigned forks = 0, refused = 0;

        clock_gettime(CLOCK_MONOTONIC, &start);
        do {
                pid_t p = fork();
                if (p == 0) {
                        struct timespec ts = { 3, 0 };
                        nanosleep(&ts, NULL);
                        _exit(0);
                }
                if (p > 0)
                        forks++;
                else {
                        /* A refused fork still costs the kernel a task and a
                         * stack, freed after an RCU grace period but charged
                         * to the memory limit until then: tens of thousands a
                         * second fill 64M of kernel memory and the OOM killer
                         * takes the server. 0.1 ms between refusals. */
                        struct timespec ts = { 0, 100000 };
                        refused++;
                        nanosleep(&ts, NULL);
                }
                clock_gettime(CLOCK_MONOTONIC, &now);
        } while (now.tv_sec - start.tv_sec < 3);
        *ret_forks = forks;
        *ret_refused = refused;
}

static void hog(void) {
        for (int i = 0; i < 1024; i++) {
                char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (p == MAP_FAILED)
                        _exit(1);
                memset(p, i, 1 << 20);
        }
        _exit(0);
}

static int try_read(const char *path, char *out, size_t n) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t len;

        if (fd < 0)
                return errno;
        len = read(fd, out, n - 1);
        close(fd);
        if (len < 0)
                return errno;
        for (ssize_t i = 0; i < len; i++)
                if (out[i] == 0)
                        out[i] = ' ';
        out[len] = 0;
        out[strcspn(out, "\n")] = 0;
        return 0;
}

static int try_write(const char *path, int flags, const char *data, size_t len) {
        int fd = open(path, O_WRONLY | O_CLOEXEC | flags);
        int e = 0;

        if (fd < 0)
                return errno;
        if (write(fd, data, len) < 0)
                e = errno;
        close(fd);
        return e;
}

/* The child writes its own pid: the server stays where it is. */
static int try_cgjoin(const char *path) {
        int st = 0;
        pid_t pid = fork();

        if (pid == 0) {
                char buf[32];
                int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
                _exit(try_write(path, 0, buf, n));
        }
        if (pid < 0)
                return errno;
        signal(SIGCHLD, SIG_DFL);
        waitpid(pid, &st, 0);
        signal(SIGCHLD, SIG_IGN);
        return WIFEXITED(st) ? WEXITSTATUS(st) : EINTR;
}

static int count_procs(void) {
        DIR *d = opendir("/proc");
        struct dirent *de;
        int n = 0;

        while (d && (de = readdir(d)))
                n += de->d_name[0] >= '1' && de->d_name[0] <= '9';
        if (d)
                closedir(d);
        return n;
}

/* connect to A.B.C.D:PORT within 2 s: 0 or the errno it met. */
static int try_connect(const char *arg) {
        struct sockaddr_in sa = { .sin_family = AF_INET };
        char addr[64];
        const char *colon = strrchr(arg, ':');
        struct pollfd p;
        int fd, e = 0;
        socklen_t len = sizeof(e);

        if (!colon || (size_t)(colon - arg) >= sizeof(addr))
                return EINVAL;
        snprintf(addr, sizeof(addr), "%.*s", (int)(colon - arg), arg);
        sa.sin_port = htons(atoi(colon + 1));
        if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
                return EINVAL;
        if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
                return errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
                e = errno;
        else {
                p = (struct pollfd){ fd, POLLOUT, 0 };
                if (poll(&p, 1, 2000) != 1)
                        e = ETIMEDOUT;
                else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
                        e = errno;
        }
        close(fd);
        return e;
}

/* resolve NAME (getaddrinfo: /etc/hosts, then DNS): its first IPv4
 * address into out, or the resolver's error. */
static int try_resolve(const char *name, char *out, size_t n) {
        struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res;
        int r = getaddrinfo(name, NULL, &hints, &res);

        if (r != 0) {
                snprintf(out, n, "%s", gai_strerror(r));
                return EHOSTUNREACH;
        }
        inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, out, n);
        freeaddrinfo(res);
        return 0;
}

static size_t try_op(const char *op, char *body, size_t n) {
        char arg[1024], first[512] = "";
        const char *slash = strchr(op, '/');
        int e = 0;

        snprintf(arg, sizeof(arg), "%.*s", (int)strcspn(slash ? slash : "", " \r\n"),
                 slash ? slash : "");
        if (strncmp(op, "read/", 5) == 0)
                e = try_read(arg, first, sizeof(first));
        else if (strncmp(op, "append/", 7) == 0)
                e = try_write(arg, O_APPEND, "gen-escape\n", 11);
        else if (strncmp(op, "rewrite/", 8) == 0) {
                char now[512];
                e = try_read(arg, now, sizeof(now));
                if (!e) {
                        strcat(now, "\n");
                        e = try_write(arg, 0, now, strlen(now));
                }
        } else if (strncmp(op, "kill/", 5) == 0)
                e = kill(atoi(arg + 1), SIGTERM) < 0 ? errno : 0;
        else if (strncmp(op, "stat/", 5) == 0) {
                struct stat st;
                e = stat(arg, &st) < 0 ? errno : 0;
        } else if (strncmp(op, "cgjoin/", 7) == 0)
                e = try_cgjoin(arg);
        else if (strncmp(op, "connect/", 8) == 0)
                e = try_connect(arg + 1);
        else if (strncmp(op, "resolve/", 8) == 0) {
                e = try_resolve(arg + 1, first, sizeof(first));
                if (e)
                        return snprintf(body, n, "error %s\n", first);
        }
        else if (strncmp(op, "procs", 5) == 0)
                return snprintf(body, n, "procs %d\n", count_procs());
        else
                return snprintf(body, n, "unknown\n");
        if (e)
                return snprintf(body, n, "errno %d\n", e);
        return snprintf(body, n, "ok %s\n", first);
}

static void serve(int fd, int task_ms, int health) {
        char req[4096], body[8192];
        size_t got = 0;
        ssize_t n;

        while (got < sizeof(req) - 1 && (n = read(fd, req + got, sizeof(req) - 1 - got)) > 0) {
                got += n;
                req[got] = 0;
                if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
                        break;
        }
        req[got] = 0;
        if (strncmp(req, "GET /health", 11) == 0) {
                answer(fd, health, "ok\n", 3);
        } else if (strncmp(req, "GET /status", 11) == 0) {
                int s = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
                ssize_t len = s >= 0 ? read(s, body, sizeof(body)) : -1;
                if (s >= 0)
                        close(s);
                answer(fd, 200, body, len > 0 ? (size_t)len : 0);
        } else if (strncmp(req, "GET /keyctl", 11) == 0) {
                long r = syscall(SYS_add_key, "user", "gen-test", "x", 1, -3 /* session */);
                int len = snprintf(body, sizeof(body), "errno %d\n", r < 0 ? errno : 0);
                answer(fd, 200, body, len);
        } else if (strncmp(req, "GET /int80", 10) == 0) {
                long r = -1;
#if defined(__x86_64__)
                __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L /* i386 getpid */) : "memory");
#endif
                int len = snprintf(body, sizeof(body), "int80 %ld\n", r);
                answer(fd, 200, body, len);
        } else if (strncmp(req, "GET /thread", 11) == 0) {
                pthread_t t;
                int e = pthread_create(&t, NULL, thread_main, NULL);
                if (e == 0)
                        pthread_join(t, NULL);
                int len = snprintf(body, sizeof(body), e ? "thread failed: %s\n" : "thread ok\n",
                                   strerror(e));
                answer(fd, 200, body, len);
        } else if (strncmp(req, "GET /forkbomb", 13) == 0) {
                unsigned forks, refused;
                signal(SIGCHLD, SIG_DFL);
                forkbomb(&forks, &refused);
                while (waitpid(-1, NULL, 0) > 0)
                        ;
                signal(SIGCHLD, SIG_IGN);
                int len = snprintf(body, sizeof(body), "forks %u refused %u\n", forks, refused);
                answer(fd, 200, body, len);
        } else if (strncmp(req, "GET /hog", 8) == 0) {
                pid_t pid = fork();
                int st = 0;
                if (pid == 0)
                        hog();
                signal(SIGCHLD, SIG_DFL);
                if (pid > 0)
                        waitpid(pid, &st, 0);
                signal(SIGCHLD, SIG_IGN);
                int len = snprintf(body, sizeof(body), "hog %s %d\n",
                                   WIFSIGNALED(st) ? "killed by signal" : "exited",
                                   WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
                answer(fd, 200, body, len);
        } else if (strncmp(req, "GET /handoff", 12) == 0) {
                pid_t pid = fork();
                if (pid == 0) {
                        close(fd);
                        handoff(task_ms);
                }
                if (pid > 0)
                        touch("start", pid);
                int len = snprintf(body, sizeof(body), "generation %s\n", gen);
                answer(fd, pid > 0 ? 200 : 500, body, len);
        } else if (strncmp(req, "GET /try/", 9) == 0) {
                size_t len = try_op(req + 9, body, sizeof(body));
                answer(fd, 200, body, len);
        } else if (strncmp(req, "GET ", 4) == 0) {
                pid_t pid = fork();
                if (pid == 0) {
                        close(fd);
                        task(task_ms);
                }
                if (pid > 0)
                        touch("start", pid);
                int len = snprintf(body, sizeof(body), "generation %s\n", gen);
                answer(fd, pid > 0 ? 200 : 500, body, len);
        }
        close(fd);
}

static volatile sig_atomic_t draining;

static void on_term(int sig) {
        (void)sig;
        draining = 1;
}

struct ka_conn {
        int fd, task_ms, health;
};

static void answer_ka(int fd, int status, const char *body, size_t len, bool close_it) {
        char buf[512];
        int n = snprintf(buf, sizeof(buf), "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nConnection: %s"
                         "\r\n\r\n%.*s", status, status == 200 ? "OK" : "Error", len,
                         close_it ? "close" : "keep-alive", (int)len, body);
        if (write(fd, buf, n) < 0) {
                /* the client went away */
        }
}

/* One keep-alive connection: requests until the client closes, 2 s idle,
 * or draining. */
static void *serve_ka(void *arg) {
        struct ka_conn c = *(struct ka_conn *)arg;
        char req[4096] = "", body[64];
        size_t got = 0;

        free(arg);
        for (;;) {
                char *end;
                ssize_t n;

                while (!(end = strstr(req, "\r\n\r\n")) || got == 0) {
                        if (got >= sizeof(req) - 1 ||
                            (n = read(c.fd, req + got, sizeof(req) - 1 - got)) <= 0)
                                goto out;
                        got += n;
                        req[got] = 0;
                }
                bool close_it = draining || strcasestr(req, "\r\nConnection: close") != NULL;
                if (strncmp(req, "GET /health", 11) == 0)
                        answer_ka(c.fd, c.health, "ok\n", 3, close_it);
                else if (strncmp(req, "GET / ", 6) == 0) {
                        pid_t pid = fork();
                        if (pid == 0) {
                                close(c.fd);
                                task(c.task_ms);
                        }
                        if (pid > 0)
                                touch("start", pid);
                        int len = snprintf(body, sizeof(body), "generation %s\n", gen);
                        answer_ka(c.fd, pid > 0 ? 200 : 500, body, len, close_it);
                } else
                        answer_ka(c.fd, 404, "not here\n", 9, true), close_it = true;
                if (close_it)
                        break;
                end += 4;
                got -= end - req;
                memmove(req, end, got + 1);
        }
out:
        close(c.fd);
        return NULL;
}

static void serve_keepalive(int lfd, int task_ms, int health) {
        struct timeval tv = { 2, 0 };
        struct sigaction sa = { .sa_handler = on_term, .sa_flags = SA_RESTART };
        pthread_attr_t attr;

        sigaction(SIGTERM, &sa, NULL);
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 64 * 1024);
        for (;;) {
                struct ka_conn *c;
                pthread_t t;
                int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

                if (fd < 0)
                        continue;
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
                if (!(c = malloc(sizeof(*c)))) {
                        close(fd);
                        continue;
                }
                *c = (struct ka_conn){ fd, task_ms, health };
                if (pthread_create(&t, &attr, serve_ka, c) != 0) {
                        close(fd);
                        free(c);
                }
        }
}

/* SAMPLE_UDP_PORT: an echo of the generation, in a process of its own. */
static void udp_echo(int port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        char buf[512], reply[64];
        int len = snprintf(reply, sizeof(reply), "generation %s\n", gen);

        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                perror("sample: udp");
                _exit(1);
        }
        fprintf(stderr, "sample: generation %s answering UDP on port %d\n", gen, port);
        for (;;) {
                struct sockaddr_in from;
                socklen_t fl = sizeof(from);
                if (recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl) < 0)
                        continue;
                sendto(fd, reply, len, 0, (struct sockaddr *)&from, fl);
        }
}

int main(void) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(env_int("SAMPLE_PORT", 9501)) };
        struct timeval tv = { 2, 0 };
        int one = 1, lfd, task_ms = env_int("SAMPLE_TASK_MS", 1000);
        int health = env_int("SAMPLE_HEALTH_STATUS", 200);

        FILE *hs = fopen("health-status", "re");
        if (hs) {
                if (fscanf(hs, "%d", &health) != 1)
                        health = 500;
                fclose(hs);
        }
        if (access("exit-now", F_OK) == 0) {
                fprintf(stderr, "sample: exit-now found in the release directory: exiting\n");
                return 3;
        }
        markers = getenv("SAMPLE_MARKERS");
        if (getenv("GEN_GENERATION"))
                gen = getenv("GEN_GENERATION");
        signal(SIGCHLD, SIG_IGN);       /* tasks are reaped by the kernel */
        if (env_int("SAMPLE_UDP_PORT", 0) > 0 && fork() == 0)
                udp_echo(env_int("SAMPLE_UDP_PORT", 0));
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 512) < 0) {
                perror("sample: listen");
                return 1;
        }
        fprintf(stderr, "sample: generation %s listening on port %d%s\n", gen, ntohs(sa.sin_port),
                env_int("SAMPLE_KEEPALIVE", 0) ? " (keep-alive)" : "");
        if (env_int("SAMPLE_KEEPALIVE", 0))
                serve_keepalive(lfd, task_ms, health);
        for (;;) {
                int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                        continue;
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
                serve(fd, task_ms, health);
        }
}
