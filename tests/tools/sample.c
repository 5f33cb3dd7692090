/* The sample service of gen's tests and demo, like the classic easyswoole
 * case: it answers "generation N", and every request starts a background
 * task process that runs SAMPLE_TASK_MS (1000) and then writes a marker.
 *
 *   GET /health   200 "ok" (SAMPLE_HEALTH_STATUS overrides the status)
 *   GET /status   this process's /proc/self/status
 *   GET /...      "generation N\n"; a task writes SAMPLE_MARKERS/done-N-PID
 *                 after SAMPLE_MARKERS/start-N-PID was written here.
 * Listens on 0.0.0.0:SAMPLE_PORT (9501). A release directory can break it
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
#include <sys/socket.h>
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
