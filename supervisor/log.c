#include "log.h"

#include <time.h>

void log_msg(const char *level, const char *fmt, ...) {
        struct timespec ts;
        struct tm tm;
        char when[32];
        va_list ap;

        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        strftime(when, sizeof(when), "%H:%M:%S", &tm);
        fprintf(stderr, "%s.%03ld gend: %s", when, ts.tv_nsec / 1000000, level);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}
