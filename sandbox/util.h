/* Small helpers shared by every part of gen: cleanup attributes, file I/O,
 * clocks, and the error-at-origin buffer. */
#pragma once

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

static inline void freep(void *p) { free(*(void **)p); }
static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
static inline void fclosep(FILE **f) { if (*f) fclose(*f); }
void strv_free(char **v);
static inline void strv_freep(char ***v) { strv_free(*v); }

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)
#define _cleanup_strv_free_ _cleanup_(strv_freep)

#define TAKE_PTR(p) ({ typeof(p) _t = (p); (p) = NULL; _t; })
#define TAKE_FD(fd) ({ int _t = (fd); (fd) = -1; _t; })

#define USEC_PER_MSEC 1000ULL
#define USEC_PER_SEC 1000000ULL

/* The error buffer: the function that meets a failure describes it once
 * ("open(/x): Permission denied") and returns -errno; callers add context
 * and whoever logs reads err_msg(). One thread, so one buffer. */
int err_set(int error, const char *fmt, ...) _printf_(2, 3);     /* "fmt: strerror" */
int err_setx(int error, const char *fmt, ...) _printf_(2, 3);    /* "fmt" as is */
int err_prefix(int error, const char *fmt, ...) _printf_(2, 3);  /* "fmt: <previous>" */
const char *err_msg(void);

size_t strv_length(char *const *v);
int strv_push(char ***v, char *s);           /* takes s */
/* Room for one more element in a growing array v of n used and cap
 * allocated: doubles it (from first) when full; -ENOMEM. */
int grow_array(void **v, unsigned n, unsigned *cap, size_t size, unsigned first);
#define GROW(v, n, cap, first) grow_array((void **)&(v), (n), &(cap), sizeof(*(v)), (first))

int read_file(const char *path, char **ret, size_t *ret_len);
int write_file(const char *path, const char *s);               /* existing file */
/* Written to PATH.tmp.PID, then renamed: every process sees the old text or
 * the new one, whenever the writer dies. Not fsync'd: for what lives in
 * /run and dies with the boot. */
int write_file_atomic(const char *path, const char *s, mode_t mode);
/* A number that must outlive a crash of the machine (below /var/lib):
 * rewritten in place at a fixed width (10 digits, space-padded), so the
 * file's size and blocks never change and one fdatasync makes it durable;
 * no new inode, no rename. The first write makes the file, fsync'd with
 * its directory. */
#define COUNTER_LEN 11
int write_counter(const char *path, unsigned long v);
int mkdir_p(const char *path, mode_t mode);

uint64_t now_usec(int clock);
/* A process's start time (clock ticks after boot): with its pid, who it is. */
int proc_start_time(pid_t pid, uint64_t *ret);
const char *format_duration(char *buf, size_t n, uint64_t usec); /* "1.2 s", "250 ms" */
