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
 *   GET /...      "generation N\n"; a task writes SAMPLE_MARKERS/done-N-PID
 *                 after SAMPLE_MARKERS/start-N-PID was written here.
 * Listens on 0.0.0.0:SAMPLE_PORT (9501). With SAMPLE_UDP_PORT set, a child
 * process also answers each UDP datagram to that port with "generation N\n".
 * A release directory can break it
 * on purpose: a file "health-status" there sets the health answer, a file
 * "exit-now" makes it exit with status 3 at once. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/mman.h>
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

static void touch(const char *kind, pid_t pid) {
        char path[512];
        int fd;

        if (!markers)
                return;
        snprintf(path, sizeof(path), "%s/%s-%s-%d", markers, kind, gen, (int)pid);
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0)
                close(fd);
}

static void task(int ms) {
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
        touch("done", getpid());
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
                else
                        refused++;
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
        fprintf(stderr, "sample: generation %s listening on port %d\n", gen, ntohs(sa.sin_port));
        for (;;) {
                int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                        continue;
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
                serve(fd, task_ms, health);
        }
}
