/* A bounded load: COUNT requests, one new connection each, for at most
 * SECONDS, every INTERVAL_MS. Prints what answered:
 *   requests 500 failed 0 gen:1=231 gen:2=269 order 1,2
 * "order" lists the generations in the order they first answered, with a
 * generation listed again if answers went back to it. Exit 0 if no request
 * failed. Refuses addresses outside 127.0.0.0/8 unless --netns-peer, which
 * the tests use from a client namespace they made themselves. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_GEN 64

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int wait_fd(int fd, short ev, int ms) {
        struct pollfd p = { fd, ev, 0 };
        return poll(&p, 1, ms) == 1 ? 0 : -1;
}

/* One request; returns the generation that answered, or -1. */
static int one(const struct sockaddr_in *sa, char *err, size_t n) {
        char buf[1024];
        size_t got = 0;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), e = 0;
        socklen_t len = sizeof(e);
        const char req[] = "GET / HTTP/1.0\r\n\r\n";
        ssize_t r;

        if (fd < 0)
                return snprintf(err, n, "socket: %s", strerror(errno)), -1;
        if ((connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 && errno != EINPROGRESS) ||
            wait_fd(fd, POLLOUT, 3000) < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0 || e) {
                snprintf(err, n, "connect: %s", e ? strerror(e) : "timeout");
                close(fd);
                return -1;
        }
        if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != sizeof(req) - 1) {
                snprintf(err, n, "send: %s", strerror(errno));
                close(fd);
                return -1;
        }
        while (got < sizeof(buf) - 1) {
                if (wait_fd(fd, POLLIN, 3000) < 0) {
                        snprintf(err, n, "read: timeout");
                        close(fd);
                        return -1;
                }
                r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
                if (r <= 0)
                        break;
                got += r;
        }
        close(fd);
        buf[got] = 0;
        char *g = strstr(buf, "\r\n\r\ngeneration ");
        /* HTTP/1.0 or 1.1: stock servers answer a 1.0 request either way. */
        if (strncmp(buf, "HTTP/1.", 7) != 0 || strncmp(buf + 8, " 200", 4) != 0 || !g) {
                snprintf(err, n, "bad answer: %.40s", buf);
                return -1;
        }
        return atoi(g + 15);
}

int main(int argc, char **argv) {
        struct sockaddr_in sa = { .sin_family = AF_INET };
        unsigned counts[MAX_GEN] = { 0 }, failed = 0, done = 0;
        int order[256], n_order = 0, last = 0;
        bool peer = argc > 1 && strcmp(argv[1], "--netns-peer") == 0;
        char err[128] = "";

        if (peer)
                argv++, argc--;
        if (argc != 6 || inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
                fprintf(stderr, "usage: load [--netns-peer] ADDR PORT COUNT SECONDS INTERVAL_MS\n");
                return 2;
        }
        if (!peer && (ntohl(sa.sin_addr.s_addr) >> 24) != 127) {
                fprintf(stderr, "load: %s is not on loopback\n", argv[1]);
                return 2;
        }
        sa.sin_port = htons(atoi(argv[2]));
        unsigned count = atoi(argv[3]);
        double end = now() + atof(argv[4]);
        struct timespec iv = { 0, atoi(argv[5]) * 1000000L };

        while (done < count && now() < end) {
                int g = one(&sa, err, sizeof(err));
                done++;
                if (g < 0 || g >= MAX_GEN) {
                        failed++;
                        fprintf(stderr, "load: request %u failed: %s\n", done, err);
                } else {
                        counts[g]++;
                        if (g != last && n_order < 256)
                                order[n_order++] = g;
                        last = g;
                }
                nanosleep(&iv, NULL);
        }
        printf("requests %u failed %u", done, failed);
        for (int g = 0; g < MAX_GEN; g++)
                if (counts[g])
                        printf(" gen:%d=%u", g, counts[g]);
        printf(" order ");
        for (int i = 0; i < n_order; i++)
                printf("%s%d", i ? "," : "", order[i]);
        printf("\n");
        return failed ? 1 : 0;
}
