#include "log.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

/* JOURNAL_STREAM is "DEVICE:INODE" of the stream systemd connected; it is
 * the journal only while standard error is still that very file. */
static bool stderr_is_journal(void) {
        static int cached = -1;
        const char *env;
        unsigned long long dev, ino;
        struct stat st;

        if (cached >= 0)
                return cached;
        env = getenv("JOURNAL_STREAM");
        cached = env && sscanf(env, "%llu:%llu", &dev, &ino) == 2 &&
                 fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
                 (unsigned long long)st.st_ino == ino;
        return cached;
}

static const char *level_word(int priority) {
        if (priority <= LOG_ERR)
                return "error: ";
        return priority == LOG_WARNING ? "warning: " : "";
}

void log_msg(int priority, const char *fmt, ...) {
        va_list ap;

        if (stderr_is_journal())
                fprintf(stderr, "<%d>%s", priority, level_word(priority));
        else {
                struct timespec ts;
                struct tm tm;
                char when[32];

                clock_gettime(CLOCK_REALTIME, &ts);
                localtime_r(&ts.tv_sec, &tm);
                strftime(when, sizeof(when), "%H:%M:%S", &tm);
                fprintf(stderr, "%s.%03ld gend: %s", when, ts.tv_nsec / 1000000,
                        level_word(priority));
        }
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}
