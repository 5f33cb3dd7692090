/* A paced HTTP load that says, every 100 ms, which release answered: the
 * load of make bench's "switching under load".
 *
 *   swload [--netns-peer] [--keepalive] ADDR PORT RATE SECONDS CONNS TIMELINE
 *
 * CONNS connections send GET / at RATE requests per second in all, for
 * SECONDS (at most RATE * SECONDS requests), then wait at most 3 s for
 * what is in flight. Without --keepalive every request is a new
 * connection ("Connection: close"); with it, a connection carries request
 * after request until the server says "Connection: close" or closes it.
 * Like browsers and HTTP libraries, a request that finds its reused
 * keep-alive connection closed before any byte of the answer is sent once
 * more on a new connection: counted as retried, not failed. A request
 * fails on a refused or reset connection, no answer in 3 s, or an answer
 * that is not 200 "generation N".
 *
 * TIMELINE gets one line per 100 ms: "T_MS R1 R2 FAILED" (answers from
 * generation 1, from generation 2 or later, failures, by completion time).
 * Standard output gets the summary:
 *   requests 2400 ok 2400 failed 0 retried 3 r1 1100 r2 1300
 *   first_r2_ms 1734.2 last_r1_ms 1712.9 start_ms 1764063123456.789
 * (times from the start of the load; start_ms is the wall clock, for
 * lining up events measured elsewhere). Refuses addresses outside
 * 127.0.0.0/8 unless --netns-peer. Exit 0 if no request failed. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_MS 3000.0
#define BUCKET_MS 100
#define MAX_CONNS 256

enum { IDLE, CONNECTING, READING };

struct conn {
        int fd, state;
        unsigned on_conn;               /* answers read on this fd */
        bool retry;                     /* this request is the retry */
        double next, sent;
        char buf[4096];
        size_t got;
};

static struct sockaddr_in sa;
static bool keepalive;
static int ep;
static double t0, interval;
static unsigned n_buckets, *b1, *b2, *bf;
static unsigned requests, ok, failed, retried, r1, r2, errors_said;
static double first_r2 = -1, last_r1 = -1;

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6 - t0;
}

static void bucket(double t, unsigned *b) {
        unsigned i = t < 0 ? 0 : (unsigned)(t / BUCKET_MS);
        b[i < n_buckets ? i : n_buckets - 1]++;
}

static void drop(struct conn *c) {
        if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
        c->on_conn = 0;
        c->got = 0;
}

static void done(struct conn *c, int release, const char *why) {
        double t = now_ms();

        if (release > 0) {
                ok++;
                if (release == 1) {
                        r1++;
                        last_r1 = t;
                        bucket(t, b1);
                } else {
                        r2++;
                        if (first_r2 < 0)
                                first_r2 = t;
                        bucket(t, b2);
                }
        } else {
                failed++;
                bucket(t, bf);
                if (errors_said++ < 5)
                        fprintf(stderr, "swload: request failed at %.1f ms: %s\n", t, why);
                drop(c);
        }
        c->state = IDLE;
        c->retry = false;
        c->next += interval;
        if (c->next < t - interval)
                c->next = t;            /* late: no burst to catch up */
}

static int start_connect(struct conn *c) {
        struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
        int one = 1;

        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0)
                return -1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
                return -1;
        c->state = CONNECTING;
        c->on_conn = 0;
        return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static int send_request(struct conn *c) {
        static const char ka[] = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
        static const char cl[] = "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
        const char *r = keepalive ? ka : cl;
        size_t len = keepalive ? sizeof(ka) - 1 : sizeof(cl) - 1;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

        c->got = 0;
        if (send(c->fd, r, len, MSG_NOSIGNAL) != (ssize_t)len)
                return -1;
        c->state = READING;
        return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void begin(struct conn *c) {
        requests++;
        c->sent = now_ms();
        if (c->fd >= 0) {
                if (send_request(c) < 0) {
                        /* a reused connection the server closed: once more, anew */
                        drop(c);
                        retried++;
                        c->retry = true;
                } else
                        return;
        }
        if (start_connect(c) < 0)
                done(c, -1, strerror(errno));
}

/* A complete answer in c->buf: its release, 0 if not complete yet, -1 bad. */
static int parse(struct conn *c, bool eof, bool *ret_close) {
        char *end = strstr(c->buf, "\r\n\r\n"), *cl, *g;
        size_t body, len;

        if (!end)
                return eof ? -1 : 0;
        *end = 0;
        cl = strcasestr(c->buf, "\r\nContent-Length:");
        *ret_close = strcasestr(c->buf, "\r\nConnection: close") != NULL ||
                     strncmp(c->buf, "HTTP/1.0", 8) == 0;
        int status = strncmp(c->buf, "HTTP/1.", 7) == 0 ? atoi(c->buf + 9) : 0;
        *end = '\r';
        body = end + 4 - c->buf;
        len = cl ? strtoul(cl + 17, NULL, 10) : 0;
        if (!cl && !eof)
                return 0;               /* until the server closes */
        if (cl && c->got < body + len)
                return eof ? -1 : 0;
        if (status != 200 || !(g = strstr(end + 4, "generation ")))
                return -1;
        return atoi(g + 11) > 0 ? atoi(g + 11) : -1;
}

static void on_readable(struct conn *c) {
        bool eof = false, close_it = false;
        ssize_t n;
        int r;

        n = recv(c->fd, c->buf + c->got, sizeof(c->buf) - 1 - c->got, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        if (n <= 0 && c->got == 0 && c->on_conn > 0 && !c->retry) {
                /* closed under a reused keep-alive connection: retry anew */
                drop(c);
                retried++;
                c->retry = true;
                if (start_connect(c) < 0)
                        done(c, -1, strerror(errno));
                return;
        }
        if (n < 0) {
                done(c, -1, strerror(errno));
                return;
        }
        eof = n == 0;
        c->got += n;
        c->buf[c->got] = 0;
        r = parse(c, eof, &close_it);
        if (r == 0 && c->got < sizeof(c->buf) - 1)
                return;
        if (r <= 0) {
                done(c, -1, eof ? "connection closed before a whole answer" : "bad answer");
                return;
        }
        c->on_conn++;
        if (!keepalive || close_it || eof)
                drop(c);
        else {
                struct epoll_event ev = { .events = 0, .data.ptr = c };
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
        done(c, r == 1 ? 1 : 2, NULL);
}

int main(int argc, char **argv) {
        struct conn conns[MAX_CONNS];
        bool peer = false;
        unsigned n_conns, max_requests;
        double seconds;
        struct timespec ts;

        while (argc > 1 && strncmp(argv[1], "--", 2) == 0) {
                if (strcmp(argv[1], "--netns-peer") == 0)
                        peer = true;
                else if (strcmp(argv[1], "--keepalive") == 0)
                        keepalive = true;
                else
                        break;
                argv++, argc--;
        }
        sa.sin_family = AF_INET;
        if (argc != 7 || inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
                fprintf(stderr, "usage: swload [--netns-peer] [--keepalive] ADDR PORT RATE SECONDS "
                        "CONNS TIMELINE\n");
                return 2;
        }
        if (!peer && (ntohl(sa.sin_addr.s_addr) >> 24) != 127) {
                fprintf(stderr, "swload: %s is not on loopback\n", argv[1]);
                return 2;
        }
        sa.sin_port = htons(atoi(argv[2]));
        double rate = atof(argv[3]);
        seconds = atof(argv[4]);
        n_conns = atoi(argv[5]);
        if (rate <= 0 || rate > 100000 || seconds <= 0 || seconds > 120 || n_conns < 1 ||
            n_conns > MAX_CONNS) {
                fprintf(stderr, "swload: RATE 1..100000, SECONDS 1..120, CONNS 1..%d\n", MAX_CONNS);
                return 2;
        }
        max_requests = rate * seconds;
        interval = 1000.0 * n_conns / rate;
        n_buckets = (seconds * 1000 + TIMEOUT_MS) / BUCKET_MS + 2;
        b1 = calloc(n_buckets, sizeof(unsigned));
        b2 = calloc(n_buckets, sizeof(unsigned));
        bf = calloc(n_buckets, sizeof(unsigned));
        ep = epoll_create1(EPOLL_CLOEXEC);
        if (!b1 || !b2 || !bf || ep < 0)
                return 1;
        clock_gettime(CLOCK_REALTIME, &ts);
        double start_wall = ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
        t0 = 0;
        t0 = now_ms();
        for (unsigned i = 0; i < n_conns; i++)
                conns[i] = (struct conn){ .fd = -1, .state = IDLE, .next = i * interval / n_conns };

        for (;;) {
                struct epoll_event evs[64];
                double t = now_ms(), wake = t + 50;
                bool stopping = t >= seconds * 1000 || requests >= max_requests, busy = false;

                for (unsigned i = 0; i < n_conns; i++) {
                        struct conn *c = &conns[i];
                        if (c->state != IDLE) {
                                busy = true;
                                if (t - c->sent > TIMEOUT_MS)
                                        done(c, -1, "no answer in 3 s");
                                continue;
                        }
                        if (stopping)
                                continue;
                        if (c->next <= t && requests < max_requests)
                                begin(c);
                        else if (c->next < wake)
                                wake = c->next;
                }
                if (stopping && !busy)
                        break;
                if (t > seconds * 1000 + TIMEOUT_MS + 500)
                        break;
                int timeout = wake > t ? (int)(wake - t) : 0;
                int n = epoll_wait(ep, evs, 64, timeout);
                for (int k = 0; k < n; k++) {
                        struct conn *c = evs[k].data.ptr;
                        if (c->state == CONNECTING) {
                                int e = 0;
                                socklen_t l = sizeof(e);
                                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &l);
                                if (e)
                                        done(c, -1, strerror(e));
                                else if (send_request(c) < 0)
                                        done(c, -1, strerror(errno));
                        } else if (c->state == READING)
                                on_readable(c);
                }
        }
        FILE *f = fopen(argv[6], "we");
        if (!f) {
                perror(argv[6]);
                return 1;
        }
        unsigned last = 0;
        for (unsigned i = 0; i < n_buckets; i++)
                if (b1[i] || b2[i] || bf[i])
                        last = i;
        for (unsigned i = 0; i <= last; i++)
                fprintf(f, "%u\t%u\t%u\t%u\n", i * BUCKET_MS + BUCKET_MS / 2, b1[i], b2[i], bf[i]);
        fclose(f);
        printf("requests %u ok %u failed %u retried %u r1 %u r2 %u first_r2_ms %.1f last_r1_ms %.1f "
               "start_ms %.3f\n", requests, ok, failed, retried, r1, r2, first_r2, last_r1, start_wall);
        return failed ? 1 : 0;
}
