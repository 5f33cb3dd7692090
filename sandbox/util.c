#include "util.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static char err_buf[1024];

/* Appends to err_buf, cutting what does not fit: an error message is
 * bounded on purpose, and its start says what failed. */
static void err_append(const char *s) {
        size_t used = strlen(err_buf), n = strlen(s);

        if (n > sizeof(err_buf) - 1 - used)
                n = sizeof(err_buf) - 1 - used;
        memcpy(err_buf + used, s, n);
        err_buf[used + n] = 0;
}

static int err_vset(int error, bool with_errno, const char *fmt, va_list ap) {
        char tmp[sizeof(err_buf)];

        vsnprintf(tmp, sizeof(tmp), fmt, ap);
        err_buf[0] = 0;
        err_append(tmp);
        if (with_errno) {
                err_append(": ");
                err_append(strerror(error));
        }
        return -error;
}

int err_set(int error, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = err_vset(error, true, fmt, ap);
        va_end(ap);
        return r;
}

int err_setx(int error, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = err_vset(error, false, fmt, ap);
        va_end(ap);
        return r;
}

int err_prefix(int error, const char *fmt, ...) {
        char prev[sizeof(err_buf)], pre[sizeof(err_buf)];
        va_list ap;

        memcpy(prev, err_buf, sizeof(prev));
        va_start(ap, fmt);
        vsnprintf(pre, sizeof(pre), fmt, ap);
        va_end(ap);
        err_buf[0] = 0;
        err_append(pre);
        err_append(": ");
        err_append(prev);
        return -error;
}

const char *err_msg(void) { return err_buf; }

void strv_free(char **v) {
        if (!v)
                return;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
}

size_t strv_length(char *const *v) {
        size_t n = 0;
        while (v && v[n])
                n++;
        return n;
}

int grow_array(void **v, unsigned n, unsigned *cap, size_t size, unsigned first) {
        unsigned c = *cap ? *cap * 2 : first;
        void *nv;

        if (n < *cap)
                return 0;
        if (!(nv = realloc(*v, (size_t)c * size)))
                return -ENOMEM;
        *v = nv;
        *cap = c;
        return 0;
}

int strv_push(char ***v, char *s) {
        size_t n = strv_length(*v);
        char **nv;

        if (!s)
                return -ENOMEM;
        nv = realloc(*v, (n + 2) * sizeof(char *));
        if (!nv) {
                free(s);
                return -ENOMEM;
        }
        nv[n] = s;
        nv[n + 1] = NULL;
        *v = nv;
        return 0;
}

int read_file(const char *path, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = 0;

        if (fd < 0)
                return err_set(errno, "open(%s)", path);
        for (;;) {
                if (cap - len < 4096) {
                        char *nb = realloc(buf, cap + 16384);
                        if (!nb)
                                return err_set(ENOMEM, "read(%s)", path);
                        buf = nb;
                        cap += 16384;
                }
                ssize_t n = read(fd, buf + len, cap - len - 1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return err_set(errno, "read(%s)", path);
                }
                if (n == 0)
                        break;
                len += n;
        }
        buf[len] = 0;
        if (ret_len)
                *ret_len = len;
        *ret = TAKE_PTR(buf);
        return 0;
}

int write_file(const char *path, const char *s) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        size_t len = strlen(s);

        if (fd < 0)
                return err_set(errno, "open(%s)", path);
        if (write(fd, s, len) != (ssize_t)len)
                return err_set(errno ? errno : EIO, "write(%s, \"%s\")", path, s);
        return 0;
}

static int write_tmp_rename(const char *path, const char *s, mode_t mode, bool durable) {
        _cleanup_free_ char *tmp = NULL;
        size_t len = strlen(s);
        int fd;

        if (asprintf(&tmp, "%s.tmp.%d", path, (int)getpid()) < 0)
                return err_set(ENOMEM, "write(%s)", path);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0)
                return err_set(errno, "open(%s)", tmp);
        if (write(fd, s, len) != (ssize_t)len || (durable && fsync(fd) < 0)) {
                int e = errno ? errno : EIO;
                close(fd);
                unlink(tmp);
                return err_set(e, "write(%s)", tmp);
        }
        close(fd);
        if (rename(tmp, path) < 0) {
                int e = errno;
                unlink(tmp);
                return err_set(e, "rename(%s, %s)", tmp, path);
        }
        return 0;
}

int write_file_atomic(const char *path, const char *s, mode_t mode) {
        return write_tmp_rename(path, s, mode, false);
}

int write_counter(const char *path, unsigned long v) {
        _cleanup_free_ char *dir = NULL;
        char buf[32];
        struct stat st;
        int fd, r;

        if (snprintf(buf, sizeof(buf), "%10lu\n", v) != COUNTER_LEN)
                return err_setx(EOVERFLOW, "write(%s): %lu is too large", path, v);
        fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size == COUNTER_LEN) {
                r = pwrite(fd, buf, COUNTER_LEN, 0) == COUNTER_LEN && fdatasync(fd) == 0 ? 0 : -1;
                if (r < 0)
                        r = err_set(errno ? errno : EIO, "write(%s)", path);
                close(fd);
                return r;
        }
        if (fd < 0 && errno != ENOENT)
                return err_set(errno, "open(%s)", path);
        if (fd >= 0)
                close(fd);
        /* New, or from a version that wrote it otherwise: made once. */
        if (!(dir = strdup(path)))
                return err_set(ENOMEM, "write(%s)", path);
        if ((r = write_tmp_rename(path, buf, 0644, true)) < 0)
                return r;
        *strrchr(dir, '/') = 0;
        fd = open(*dir ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0)
                r = err_set(errno, "fsync(%s)", *dir ? dir : "/");
        if (fd >= 0)
                close(fd);
        return r;
}

int mkdir_p(const char *path, mode_t mode) {
        char buf[4096];

        if (strlen(path) >= sizeof(buf))
                return err_setx(ENAMETOOLONG, "mkdir(%s): path too long", path);
        strcpy(buf, path);
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = 0;
                if (mkdir(buf, mode) < 0 && errno != EEXIST)
                        return err_set(errno, "mkdir(%s)", buf);
                *p = '/';
        }
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
                return err_set(errno, "mkdir(%s)", buf);
        return 0;
}

uint64_t now_usec(int clock) {
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (uint64_t)ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
}

const char *format_duration(char *buf, size_t n, uint64_t usec) {
        if (usec < USEC_PER_SEC)
                snprintf(buf, n, "%llu ms", (unsigned long long)(usec / USEC_PER_MSEC));
        else if (usec < 60 * USEC_PER_SEC)
                snprintf(buf, n, "%.1f s", usec / 1e6);
        else
                snprintf(buf, n, "%llu min %llu s", (unsigned long long)(usec / 60000000ULL),
                         (unsigned long long)(usec / USEC_PER_SEC % 60));
        return buf;
}

int proc_start_time(pid_t pid, uint64_t *ret) {
        char path[64];
        _cleanup_free_ char *txt = NULL;
        unsigned long long start;
        char *p;
        int r;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        if ((r = read_file(path, &txt, NULL)) < 0)
                return r;
        /* "pid (comm) state ...": comm may hold anything, so from the last ')'.
         * starttime is field 22, the 20th after the ')'. */
        p = strrchr(txt, ')');
        for (int field = 2; p && field < 22; field++)
                p = strchr(p + 1, ' ');
        if (!p || sscanf(p + 1, "%llu", &start) != 1)
                return err_setx(EINVAL, "%s: no start time", path);
        *ret = start;
        return 0;
}
