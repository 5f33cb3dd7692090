/* Kills a process the moment a file says so: how the chaos test kills gend
 * at a chosen point of a generation's life, read from its record.
 *
 *   killat PID FILE TIMEOUT_MS DELAY_US WORD...
 *
 * Reads FILE every 200 us; once it holds every WORD (a WORD "!X": does not
 * hold X), waits DELAY_US, sends SIGKILL to PID and prints the line of
 * FILE that has "state" (its state at the kill; "gone" if FILE is gone).
 * Exit 0: killed; 1: TIMEOUT_MS passed (or PID ended) without a match,
 * nothing killed; 2: usage. Bounded: at most TIMEOUT_MS (60 s at most)
 * plus DELAY_US (1 s at most) plus 2 s for PID to die. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* FILE's text, NUL-terminated; false if it cannot be read. */
static bool slurp(const char *path, char *buf, size_t n) {
        size_t got = 0;
        ssize_t r;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return false;
        while (got < n - 1 && (r = read(fd, buf + got, n - 1 - got)) > 0)
                got += r;
        close(fd);
        buf[got] = 0;
        return true;
}

static bool matches(const char *text, char **words, int n) {
        for (int i = 0; i < n; i++) {
                bool absent = words[i][0] == '!';
                bool has = strstr(text, words[i] + absent) != NULL;
                if (has == absent)
                        return false;
        }
        return true;
}

int main(int argc, char **argv) {
        static char text[65536];
        char stat[64];
        struct timespec tick = { 0, 200 * 1000 };
        pid_t pid;
        double end;
        long delay;

        if (argc < 6 || (pid = atoi(argv[1])) <= 1 || atoi(argv[3]) <= 0 ||
            atoi(argv[3]) > 60000 || (delay = atol(argv[4])) < 0 || delay > 1000000) {
                fprintf(stderr, "usage: killat PID FILE TIMEOUT_MS(1..60000) DELAY_US(0..1000000) "
                        "WORD...\n");
                return 2;
        }
        end = now_ms() + atoi(argv[3]);
        for (;;) {
                if (slurp(argv[2], text, sizeof(text)) && matches(text, argv + 5, argc - 5))
                        break;
                if (now_ms() > end || kill(pid, 0) < 0)
                        return 1;
                nanosleep(&tick, NULL);
        }
        if (delay) {
                struct timespec d = { delay / 1000000, delay % 1000000 * 1000 };
                nanosleep(&d, NULL);
        }
        if (kill(pid, SIGKILL) < 0) {
                fprintf(stderr, "killat: kill(%d): %s\n", (int)pid, strerror(errno));
                return 1;
        }
        /* Its last write is done once it is dead (a zombie, or reaped). */
        snprintf(stat, sizeof(stat), "/proc/%d/stat", (int)pid);
        for (int i = 0; i < 10000; i++) {
                char *st = slurp(stat, text, sizeof(text)) ? strrchr(text, ')') : NULL;
                if (!st || st[1] == 0 || st[2] == 'Z' || st[2] == 'X')
                        break;
                nanosleep(&tick, NULL);
        }
        if (!slurp(argv[2], text, sizeof(text))) {
                printf("gone\n");
                return 0;
        }
        char *s = strstr(text, "\"state\"");
        if (!s) {
                printf("?\n");
                return 0;
        }
        s += strlen("\"state\"");
        s += strspn(s, ": \"");
        printf("%.*s\n", (int)strcspn(s, "\""), s);
        return 0;
}
