/* Clients of gend's control socket that misbehave, for the flood test.
 * Each mode is bounded and exits by itself within 60 s (alarm).
 *
 *   ctlflood flood SOCKET COUNT HOLD_MS
 *       opens COUNT (at most 20000) connections that send nothing, as fast
 *       as it can (a full backlog is retried for at most 30 s in all),
 *       holds them HOLD_MS (at most 10000), then closes them all. Prints
 *       "opened N of COUNT in MS ms (W workers); held H, answered A (busy
 *       B)": held, gend kept it; answered, gend said something (busy: that
 *       it is busy). Workers (processes) share them when the hard limit on
 *       open files is below COUNT.
 *   ctlflood idle SOCKET TEXT
 *       sends TEXT (no newline) and keeps its side open; prints
 *       "answer after MS ms: LINE" and "closed after MS ms" (or
 *       "not closed within 30 s").
 *   ctlflood busy SOCKET N
 *       opens N connections that send nothing, waits until gend took
 *       them, then one more: prints "held H of N" and "extra: LINE". */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FLOOD_MAX 20000

static struct sockaddr_un sa = { .sun_family = AF_UNIX };

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void nap_us(long us) {
        struct timespec ts = { us / 1000000, us % 1000000 * 1000 };
        nanosleep(&ts, NULL);
}

/* A connected socket, or -1 (errno EAGAIN: the backlog is full). */
static int dial(void) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

        if (fd < 0)
                return -1;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int e = errno;
                close(fd);
                errno = e;
                return -1;
        }
        return fd;
}

/* What gend said on fd so far (one line, without its newline): 1, nothing
 * yet: 0, closed with nothing said: -1. */
static int peek_line(int fd, char *buf, size_t n) {
        ssize_t r = recv(fd, buf, n - 1, MSG_DONTWAIT | MSG_PEEK);
        if (r < 0)
                return errno == EAGAIN ? 0 : -1;
        if (r == 0)
                return -1;
        buf[r] = 0;
        buf[strcspn(buf, "\n")] = 0;
        return 1;
}

/* One worker's share: opens count connections, holds them, closes them;
 * writes "opened held answered busy ms" to out_fd. */
static void flood_worker(int count, int hold_ms, int out_fd) {
        static int fds[FLOOD_MAX];
        int opened = 0, held = 0, answered = 0, busy = 0;
        double start = now_ms(), end = start + 30000;
        char line[512];

        while (opened < count && now_ms() < end) {
                int fd = dial();
                if (fd >= 0)
                        fds[opened++] = fd;
                else if (errno == EAGAIN)
                        nap_us(100);    /* gend has not accepted the backlog yet */
                else {
                        fprintf(stderr, "ctlflood: connect(%s): %s\n", sa.sun_path, strerror(errno));
                        break;
                }
        }
        double took = now_ms() - start;
        nap_us(hold_ms * 1000L);
        for (int i = 0; i < opened; i++) {
                int r = peek_line(fds[i], line, sizeof(line));
                held += r == 0;
                answered += r == 1;
                busy += r == 1 && strstr(line, "gend is busy") != NULL;
                close(fds[i]);
        }
        dprintf(out_fd, "%d %d %d %d %.0f\n", opened, held, answered, busy, took);
}

/* The connections are shared among workers (processes), as many as the
 * hard limit on open files asks for: each holds at most that many. */
static int flood(int count, int hold_ms) {
        struct rlimit rl;
        int per, workers, p[2], opened = 0, held = 0, answered = 0, busy = 0;
        double took = 0, t;
        FILE *f;

        if (count < 1 || count > FLOOD_MAX || hold_ms < 0 || hold_ms > 10000)
                return 2;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_max < 1024) {
                fprintf(stderr, "ctlflood: the hard limit on open files is too low\n");
                return 1;
        }
        per = rl.rlim_max - 64 > FLOOD_MAX ? FLOOD_MAX : (int)(rl.rlim_max - 64);
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || pipe2(p, O_CLOEXEC) < 0) {
                perror("ctlflood: setrlimit/pipe2");
                return 1;
        }
        workers = (count + per - 1) / per;
        for (int w = 0; w < workers; w++) {
                int share = count / workers + (w < count % workers);
                pid_t pid = fork();
                if (pid < 0) {
                        perror("ctlflood: fork");
                        return 1;
                }
                if (pid == 0) {
                        close(p[0]);
                        flood_worker(share, hold_ms, p[1]);
                        _exit(0);
                }
        }
        close(p[1]);
        f = fdopen(p[0], "r");
        for (int o, h, a, b; f && fscanf(f, "%d %d %d %d %lf", &o, &h, &a, &b, &t) == 5;)
                opened += o, held += h, answered += a, busy += b, took = t > took ? t : took;
        while (wait(NULL) > 0)
                ;
        printf("opened %d of %d in %.0f ms (%d worker%s); held %d, answered %d (busy %d)\n",
               opened, count, took, workers, workers == 1 ? "" : "s", held, answered, busy);
        return opened == count ? 0 : 1;
}

/* Reads until gend closes: its first line, and when it closed. */
static int idle(const char *text) {
        char buf[4096];
        size_t got = 0;
        double start;
        int fd;

        for (int i = 0; (fd = dial()) < 0 && errno == EAGAIN && i < 1000; i++)
                nap_us(1000);
        if (fd < 0) {
                fprintf(stderr, "ctlflood: connect(%s): %s\n", sa.sun_path, strerror(errno));
                return 1;
        }
        if (send(fd, text, strlen(text), MSG_NOSIGNAL) != (ssize_t)strlen(text)) {
                perror("ctlflood: send");
                return 1;
        }
        start = now_ms();
        for (bool said = false;;) {
                struct pollfd p = { fd, POLLIN, 0 };
                double left = start + 30000 - now_ms();
                ssize_t r;

                if (left <= 0 || poll(&p, 1, (int)left) != 1) {
                        printf("not closed within 30 s\n");
                        return 1;
                }
                r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
                if (r > 0)
                        got += r;
                buf[got] = 0;
                if (!said && strchr(buf, '\n')) {
                        printf("answer after %.0f ms: %.*s\n", now_ms() - start,
                               (int)strcspn(buf, "\n"), buf);
                        said = true;
                }
                if (r <= 0 || got == sizeof(buf) - 1) {
                        printf("closed after %.0f ms\n", now_ms() - start);
                        return 0;
                }
        }
}

static int busy(int n) {
        static int fds[256];
        char line[512];
        int held = 0, extra, r;

        if (n < 1 || n > 255)
                return 2;
        for (int i = 0; i < n; i++)
                if ((fds[i] = dial()) < 0) {
                        fprintf(stderr, "ctlflood: connect(%s): %s\n", sa.sun_path, strerror(errno));
                        return 1;
                }
        nap_us(500 * 1000);             /* gend accepts them meanwhile */
        if ((extra = dial()) < 0) {
                fprintf(stderr, "ctlflood: connect(%s): %s\n", sa.sun_path, strerror(errno));
                return 1;
        }
        struct pollfd p = { extra, POLLIN, 0 };
        r = poll(&p, 1, 5000) == 1 ? peek_line(extra, line, sizeof(line)) : 0;
        for (int i = 0; i < n; i++) {
                char l[512];
                held += peek_line(fds[i], l, sizeof(l)) == 0;
        }
        printf("held %d of %d\n", held, n);
        printf("extra: %s\n", r == 1 ? line : r == 0 ? "(no answer within 5 s)" : "(closed)");
        for (int i = 0; i < n; i++)
                close(fds[i]);
        close(extra);
        return 0;
}

int main(int argc, char **argv) {
        alarm(60);                      /* every mode ends by itself */
        if (argc < 3 || strlen(argv[2]) >= sizeof(sa.sun_path))
                goto usage;
        strcpy(sa.sun_path, argv[2]);
        if (!strcmp(argv[1], "flood") && argc == 5)
                return flood(atoi(argv[3]), atoi(argv[4]));
        if (!strcmp(argv[1], "idle") && argc == 4)
                return idle(argv[3]);
        if (!strcmp(argv[1], "busy") && argc == 4)
                return busy(atoi(argv[3]));
usage:
        fprintf(stderr, "usage: ctlflood flood SOCKET COUNT HOLD_MS | idle SOCKET TEXT | "
                "busy SOCKET N\n");
        return 2;
}
