/* Checking a parsed policy against this host: the programs, user, group,
 * directory and seccomp profile it names, so `gend -n` finds what would
 * make every generation fail to start. The parser stays pure; this file
 * looks at the file system and the user database. */
#include "policy.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>

#include "../sandbox/confine.h"
#include "../sandbox/util.h"

/* "file:line: [section] key: <what>", at the line of key k. */
static int key_error(const struct policy *p, enum policy_key k, int error, const char *fmt, ...)
        _printf_(4, 5);
static int key_error(const struct policy *p, enum policy_key k, int error, const char *fmt, ...) {
        char what[768];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        return err_setx(error, "%s:%u: %s: %s", p->path, p->line[k], policy_key_to_string(k),
                        what);
}

/* A path the caller may not look at, when the caller is not root, says
 * nothing about what gend (root) will find. */
static bool cannot_tell(int error) {
        return error == EACCES && geteuid() != 0;
}

static int check_file_is_program(const struct policy *p, enum policy_key k, const char *path,
                                 const char *role) {
        struct stat st;

        if (stat(path, &st) < 0)
                return cannot_tell(errno) ? 0 : key_error(p, k, errno, "%s%s: %s", role, path,
                                                          strerror(errno));
        if (S_ISDIR(st.st_mode))
                return key_error(p, k, EISDIR, "%s%s: a directory, not a program", role, path);
        if (!S_ISREG(st.st_mode))
                return key_error(p, k, EACCES, "%s%s: not a regular file", role, path);
        if (!(st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)))
                return key_error(p, k, EACCES, "%s%s: not executable (mode %04o)", role, path,
                                 (unsigned)(st.st_mode & 07777));
        return 0;
}

/* The program, and the interpreter of a "#!" script: execve(2) fails with
 * ENOENT for a script whose interpreter is missing. */
static int check_program(const struct policy *p, enum policy_key k, const char *path) {
        _cleanup_close_ int fd = -1;
        char head[256], *interp, *end;
        ssize_t len;
        int r;

        if ((r = check_file_is_program(p, k, path, "")) < 0)
                return r;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return cannot_tell(errno) ? 0 : key_error(p, k, errno, "%s: %s", path,
                                                          strerror(errno));
        len = read(fd, head, sizeof(head) - 1);
        if (len < 2 || head[0] != '#' || head[1] != '!')
                return 0;
        head[len] = 0;
        if (!strchr(head, '\n') && len == sizeof(head) - 1)
                return 0;       /* a line longer than the kernel reads: leave it to execve */
        interp = head + 2 + strspn(head + 2, " \t");
        end = interp + strcspn(interp, " \t\r\n");
        if (end == interp)
                return key_error(p, k, ENOEXEC, "%s: its '#!' line names no interpreter", path);
        *end = 0;
        if (interp[0] != '/')
                return key_error(p, k, ENOEXEC, "%s: the interpreter '%s' of its '#!' line is "
                                 "not an absolute path", path, interp);
        char role[sizeof(head) + 64];
        snprintf(role, sizeof(role), "%s: the interpreter of its '#!' line, ", path);
        return check_file_is_program(p, k, interp, role);
}

static int check_directory(const struct policy *p) {
        struct stat st;

        if (stat(p->directory, &st) < 0)
                return cannot_tell(errno) ? 0 : key_error(p, KEY_DIRECTORY, errno, "%s: %s",
                                                          p->directory, strerror(errno));
        if (!S_ISDIR(st.st_mode))
                return key_error(p, KEY_DIRECTORY, ENOTDIR, "%s: not a directory", p->directory);
        return 0;
}

/* getpwnam(3): "not found" is a NULL result with errno 0, ENOENT, ESRCH,
 * EBADF or EPERM, depending on the NSS module. */
static bool not_found(int error) {
        return error == 0 || error == ENOENT || error == ESRCH || error == EBADF || error == EPERM;
}

static int check_identity(const struct policy *p) {
        if (p->user) {
                errno = 0;
                if (!getpwnam(p->user))
                        return not_found(errno)
                                ? key_error(p, KEY_USER, ENOENT, "'%s': no such user", p->user)
                                : key_error(p, KEY_USER, errno, "'%s': getpwnam: %s", p->user,
                                            strerror(errno));
        }
        if (p->group) {
                errno = 0;
                if (!getgrnam(p->group))
                        return not_found(errno)
                                ? key_error(p, KEY_GROUP, ENOENT, "'%s': no such group",
                                            p->group)
                                : key_error(p, KEY_GROUP, errno, "'%s': getgrnam: %s",
                                            p->group, strerror(errno));
        }
        return 0;
}

/* A profile named by path is read as gend would read it. The shipped
 * profiles (default, strict) live where gend -P says, so gend checks them
 * when it starts a generation. */
static int check_seccomp(const struct policy *p) {
        _cleanup_free_ int *nrs = NULL;
        bool allow;
        unsigned n;
        int r;

        if (!p->seccomp || p->seccomp[0] != '/')
                return 0;
        r = seccomp_profile_load(p->seccomp, &allow, &nrs, &n);
        if (r < 0)
                return err_prefix(-r, "%s:%u: %s", p->path, p->line[KEY_SECCOMP],
                                  policy_key_to_string(KEY_SECCOMP));
        return 0;
}

static bool under(const char *path, const char *dir) {
        size_t n = strlen(dir);
        return strncmp(path, dir, n) == 0 && (path[n] == 0 || path[n] == '/');
}

/* private-tmp mounts an empty /tmp over what the host has there; the
 * release directory and the granted paths are mounted back on top. */
static int check_private_tmp(const struct policy *p) {
        const char *prog = p->argv[0];

        if (!p->private_tmp || !under(prog, "/tmp") || (p->directory && under(prog, p->directory)))
                return 0;
        for (char **g = p->writable; g && *g; g++)
                if (under(prog, *g))
                        return 0;
        for (char **g = p->readable; g && *g; g++)
                if (under(prog, *g))
                        return 0;
        if (p->line[KEY_PRIVATE_TMP])
                return key_error(p, KEY_PRIVATE_TMP, EINVAL, "yes gives the generation an empty "
                                 "/tmp of its own, which hides the program %s ([service] exec, "
                                 "line %u)", prog, p->line[KEY_EXEC]);
        return key_error(p, KEY_EXEC, EINVAL, "%s is below /tmp, which the generation's own empty "
                         "/tmp hides (private-tmp is yes by default): move it, put it in its "
                         "directory or a [sandbox] readable path, or set private-tmp = no", prog);
}

/* The view mounts each granted path where it is: it must be there. */
static int check_grants(const struct policy *p, enum policy_key k, char *const *paths) {
        struct stat st;

        for (char *const *g = paths; g && *g; g++)
                if (stat(*g, &st) < 0 && !cannot_tell(errno))
                        return key_error(p, k, errno, "%s: %s", *g, strerror(errno));
        return 0;
}

int policy_validate(const struct policy *p) {
        int r;

        if ((r = check_program(p, KEY_EXEC, p->argv[0])) < 0)
                return r;
        if (p->directory && (r = check_directory(p)) < 0)
                return r;
        if ((r = check_identity(p)) < 0)
                return r;
        if (p->probe == PROBE_EXEC && (r = check_program(p, KEY_PROBE, p->probe_argv[0])) < 0)
                return r;
        if (p->idle == IDLE_EXEC && (r = check_program(p, KEY_IDLE, p->idle_argv[0])) < 0)
                return r;
        if ((r = check_seccomp(p)) < 0)
                return r;
        if ((r = check_grants(p, KEY_WRITABLE, p->writable)) < 0 ||
            (r = check_grants(p, KEY_READABLE, p->readable)) < 0)
                return r;
        return check_private_tmp(p);
}
