/* A UDP client on a fixed source port, for gen's tests: sends a datagram
 * every INTERVAL_MS, COUNT times, from SRC_PORT to ADDR:PORT, and prints
 * one line per answer, "MS_SINCE_EPOCH N" (N: the generation that
 * answered), then a summary:
 *   sent 200 answered 198 gen:1=40 gen:2=158 order 1,2
 * Refuses addresses outside 127.0.0.0/8. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_GEN 64

static long long ms_now(int clock) {
        struct timespec ts;
        clock_gettime(clock, &ts);
        return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
        struct sockaddr_in to = { .sin_family = AF_INET }, me = { .sin_family = AF_INET };
        unsigned counts[MAX_GEN] = { 0 }, sent = 0, answered = 0, count;
        int order[256], n_order = 0, last = 0, one = 1, fd, interval;

        if (argc != 6 || inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) {
                fprintf(stderr, "usage: udpclient ADDR PORT SRC_PORT COUNT INTERVAL_MS\n");
                return 2;
        }
        if ((ntohl(to.sin_addr.s_addr) >> 24) != 127) {
                fprintf(stderr, "udpclient: %s is not on loopback\n", argv[1]);
                return 2;
        }
        to.sin_port = htons(atoi(argv[2]));
        me.sin_port = htons(atoi(argv[3]));
        count = atoi(argv[4]);
        interval = atoi(argv[5]);
        if (count > 100000 || interval < 1) {
                fprintf(stderr, "udpclient: at most 100000 datagrams, every 1 ms or more\n");
                return 2;
        }
        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(fd, (struct sockaddr *)&me, sizeof(me)) < 0) {
                perror("udpclient: bind");
                return 1;
        }
        for (long long next = ms_now(CLOCK_MONOTONIC); sent < count || ms_now(CLOCK_MONOTONIC) < next;) {
                struct pollfd p = { fd, POLLIN, 0 };
                long long wait = next - ms_now(CLOCK_MONOTONIC);
                char buf[128];

                if (wait <= 0 && sent < count) {
                        char msg[32];
                        int len = snprintf(msg, sizeof(msg), "ping %u", sent);
                        if (sendto(fd, msg, len, 0, (struct sockaddr *)&to, sizeof(to)) < 0 &&
                            errno != ECONNREFUSED)
                                perror("udpclient: sendto");
                        sent++;
                        next += interval;
                        continue;
                }
                if (poll(&p, 1, wait > 0 ? (int)wait : 0) != 1)
                        continue;
                ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
                if (n <= 0)
                        continue;       /* ECONNREFUSED: nobody there yet */
                buf[n] = 0;
                if (strncmp(buf, "generation ", 11) != 0)
                        continue;
                int g = atoi(buf + 11);
                answered++;
                printf("%lld %d\n", ms_now(CLOCK_REALTIME), g);
                if (g > 0 && g < MAX_GEN) {
                        counts[g]++;
                        if (g != last && n_order < 256)
                                order[n_order++] = g;
                        last = g;
                }
        }
        printf("sent %u answered %u", sent, answered);
        for (int g = 0; g < MAX_GEN; g++)
                if (counts[g])
                        printf(" gen:%d=%u", g, counts[g]);
        printf(" order ");
        for (int i = 0; i < n_order; i++)
                printf("%s%d", i ? "," : "", order[i]);
        printf("\n");
        return 0;
}
