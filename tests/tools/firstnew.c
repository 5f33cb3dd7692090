/* How long a switch takes to show, from the outside: runs COMMAND and,
 * from the instant it starts, opens one new connection after another to
 * ADDR:PORT (GET /, HTTP/1.0) until an answer contains MATCH.
 *
 *   firstnew [--netns-peer] ADDR PORT MATCH TIMEOUT_MS -- COMMAND [ARGS...]
 *   first_ms 5.812 all_ms 5.812 cmd_ms 14.020 probes 23 failed 0
 *
 * first_ms: COMMAND started -> the first answer containing MATCH was read.
 * all_ms: COMMAND started -> the last answer without MATCH was read, or
 *   first_ms if none came after it: from then on, for at least SETTLE_MS
 *   (FIRSTNEW_SETTLE_MS, 100) of probing, only the new side answered.
 * cmd_ms: COMMAND started -> COMMAND exited (it must exit 0).
 * Before COMMAND starts, one answer must come back without MATCH (the old
 * side serves), or nothing is measured. Every probe is bounded (1 s), the
 * whole run by TIMEOUT_MS; probes are paced PACE_US apart (FIRSTNEW_PACE_US,
 * 200) so the probe loop leaves the machine's other core to what it
 * measures. Exit 0 when both were measured and no probe failed. Refuses
 * addresses outside 127.0.0.0/8 unless --netns-peer (an address in a
 * network namespace the caller made). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int wait_fd(int fd, short ev, int ms) {
        struct pollfd p = { fd, ev, 0 };
        return poll(&p, 1, ms) == 1 ? 0 : -1;
}

/* One request on a new connection: 1 if the answer has MATCH, 0 if not,
 * -1 on failure. */
static int probe(const struct sockaddr_in *sa, const char *match) {
        static const char req[] = "GET / HTTP/1.0\r\n\r\n";
        char buf[2048];
        size_t got = 0;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), e = 0;
        socklen_t len = sizeof(e);
        ssize_t r;

        if (fd < 0)
                return -1;
        if ((connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 && errno != EINPROGRESS) ||
            wait_fd(fd, POLLOUT, 1000) < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0 ||
            e || send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != sizeof(req) - 1) {
                close(fd);
                return -1;
        }
        while (got < sizeof(buf) - 1 && wait_fd(fd, POLLIN, 1000) == 0 &&
               (r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0)) > 0)
                got += r;
        close(fd);
        buf[got] = 0;
        if (strncmp(buf, "HTTP/1.", 7) != 0 || strncmp(buf + 8, " 200", 4) != 0)
                return -1;
        return strstr(buf, match) != NULL;
}

int main(int argc, char **argv) {
        struct sockaddr_in sa = { .sin_family = AF_INET };
        bool peer = argc > 1 && strcmp(argv[1], "--netns-peer") == 0;
        const char *pace_env = getenv("FIRSTNEW_PACE_US");
        struct timespec pace = { 0, (pace_env ? atol(pace_env) : 200) * 1000L };
        const char *settle_env = getenv("FIRSTNEW_SETTLE_MS");
        double settle = settle_env ? atof(settle_env) : 100;
        unsigned probes = 0, failed = 0;
        double t0, first = -1, all = -1, cmd = -1, timeout;
        int status, r;
        pid_t pid;

        if (peer)
                argv++, argc--;
        if (argc < 7 || strcmp(argv[5], "--") != 0 || inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
                fprintf(stderr, "usage: firstnew [--netns-peer] ADDR PORT MATCH TIMEOUT_MS -- "
                        "COMMAND [ARGS...]\n");
                return 2;
        }
        if (!peer && (ntohl(sa.sin_addr.s_addr) >> 24) != 127) {
                fprintf(stderr, "firstnew: %s is not on loopback\n", argv[1]);
                return 2;
        }
        sa.sin_port = htons(atoi(argv[2]));
        timeout = atof(argv[4]);
        if ((r = probe(&sa, argv[3])) != 0) {
                fprintf(stderr, "firstnew: before the command, %s:%s %s\n", argv[1], argv[2],
                        r < 0 ? "did not answer" : "answers with the match already");
                return 1;
        }
        /* What it prints is not ours to read; its exit status says enough. */
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        t0 = now_ms();
        r = posix_spawn(&pid, argv[6], &fa, NULL, argv + 6, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0) {
                fprintf(stderr, "firstnew: %s: %s\n", argv[6], strerror(r));
                return 1;
        }
        /* Until the command has exited and only the new side has answered
         * for SETTLE_MS. */
        for (;;) {
                double t = now_ms() - t0;
                if (t >= timeout || (cmd >= 0 && all >= 0 && t - all >= settle))
                        break;
                if (cmd < 0 && waitpid(pid, &status, WNOHANG) == pid)
                        cmd = now_ms() - t0;
                r = probe(&sa, argv[3]);
                probes++;
                if (r < 0)
                        failed++;
                else if (r == 1 && first < 0)
                        first = all = now_ms() - t0;
                else if (r == 0 && first >= 0)
                        all = now_ms() - t0;
                nanosleep(&pace, NULL);
        }
        if (cmd < 0) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                fprintf(stderr, "firstnew: %s still running after %.0f ms: killed\n", argv[6], timeout);
                return 1;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "firstnew: %s failed (status %d)\n", argv[6], status);
                return 1;
        }
        if (first < 0) {
                fprintf(stderr, "firstnew: no answer with \"%s\" within %.0f ms\n", argv[3], timeout);
                return 1;
        }
        printf("first_ms %.3f all_ms %.3f cmd_ms %.3f probes %u failed %u\n", first, all, cmd,
               probes, failed);
        return failed ? 1 : 0;
}
