/* One request to gend's control socket, every line of the answer stamped
 * with the milliseconds since the request was about to be sent:
 *
 *   ctltime SOCKET '{"cmd":"retire","service":"web","generation":2,"now":true,"wait":true}'
 *   0.912 {"event":"state",...,"state":"draining",...}
 *   31.077 {"event":"state",...,"state":"retired",...}
 *   31.140 {"ok":true,...}
 *
 * The benchmarks use it to time the steps of a job from gend's own
 * progress events, without gen(8)'s start-up. Bounded: 60 s. Exit 0 if
 * the final answer is ok. */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char buf[65536];
        size_t len = 0;
        double t0;
        int fd, ok = -1;

        if (argc != 3 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "usage: ctltime SOCKET JSON\n");
                return 2;
        }
        strcpy(sa.sun_path, argv[1]);
        t0 = now_ms();
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            dprintf(fd, "%s\n", argv[2]) < 0) {
                perror("ctltime: connect");
                return 1;
        }
        while (ok < 0 && now_ms() - t0 < 60000) {
                struct pollfd p = { fd, POLLIN, 0 };
                ssize_t n;
                char *nl;

                if (poll(&p, 1, 1000) <= 0)
                        continue;
                n = read(fd, buf + len, sizeof(buf) - 1 - len);
                if (n <= 0)
                        break;
                double t = now_ms() - t0;
                len += n;
                buf[len] = 0;
                while ((nl = strchr(buf, '\n'))) {
                        *nl = 0;
                        printf("%.3f %s\n", t, buf);
                        if (strstr(buf, "\"ok\":"))
                                ok = strstr(buf, "\"ok\":true") != NULL;
                        len -= nl + 1 - buf;
                        memmove(buf, nl + 1, len + 1);
                }
                if (len == sizeof(buf) - 1)
                        len = 0;        /* a line too long to stamp: dropped */
        }
        close(fd);
        return ok == 1 ? 0 : 1;
}
