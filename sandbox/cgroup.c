#include "cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

int cg_parse_mountinfo(const char *mi, char **ret_mount) {
        for (const char *line = mi; line && *line;) {
                const char *nl = strchr(line, '\n');
                size_t len = nl ? (size_t)(nl - line) : strlen(line);
                _cleanup_free_ char *l = strndup(line, len);
                char *sep, *mnt = NULL, *save = NULL, *tok;
                int field = 0;

                line = nl ? nl + 1 : NULL;
                if (!l)
                        return -ENOMEM;
                sep = strstr(l, " - ");
                if (!sep || strncmp(sep + 3, "cgroup2 ", 8) != 0)
                        continue;
                *sep = 0;
                for (tok = strtok_r(l, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
                        if (++field == 5)
                                mnt = tok;
                if (!mnt)
                        continue;
                *ret_mount = strdup(mnt);
                return *ret_mount ? 0 : -ENOMEM;
        }
        return -ENOENT;
}

int cg_parse_self(const char *text, char **ret_path) {
        for (const char *line = text; line && *line;) {
                const char *nl = strchr(line, '\n');
                size_t len = nl ? (size_t)(nl - line) : strlen(line);
                if (len > 3 && strncmp(line, "0::", 3) == 0) {
                        *ret_path = strndup(line + 3, len - 3);
                        return *ret_path ? 0 : -ENOMEM;
                }
                line = nl ? nl + 1 : NULL;
        }
        return -ENOENT;
}

/* gen's directory is "gen" below the cgroup gend runs in; a gend that is
 * already in <x>/gen/supervisor (a restart) keeps <x>/gen. */
int cg_base_for(const char *self, char **ret_base) {
        static const char leaf[] = "/gen/supervisor";
        size_t len = strlen(self), ll = strlen(leaf);

        if (len >= ll && strcmp(self + len - ll, leaf) == 0)
                *ret_base = strndup(self, len - ll + 4);
        else if (asprintf(ret_base, "%s/gen", strcmp(self, "/") == 0 ? "" : self) < 0)
                *ret_base = NULL;
        return *ret_base ? 0 : -ENOMEM;
}

int cg_setup(char **ret_base) {
        _cleanup_free_ char *mi = NULL, *self_txt = NULL, *mnt = NULL, *self = NULL,
                            *rel = NULL, *base = NULL, *sup = NULL;
        char pid[32];
        int r;

        r = read_file("/proc/self/mountinfo", &mi, NULL);
        if (r < 0)
                return r;
        if (cg_parse_mountinfo(mi, &mnt) < 0)
                return err_setx(ENOENT, "no cgroup2 file system is mounted (see /proc/self/"
                                "mountinfo); gen needs cgroup v2, also on hybrid hosts");
        r = read_file("/proc/self/cgroup", &self_txt, NULL);
        if (r < 0)
                return r;
        if (cg_parse_self(self_txt, &self) < 0)
                return err_setx(ENOENT, "/proc/self/cgroup has no cgroup v2 line (0::)");
        if (cg_base_for(self, &rel) < 0 || asprintf(&base, "%s%s", mnt, rel) < 0 ||
            asprintf(&sup, "%s/supervisor", base) < 0)
                return err_set(ENOMEM, "cgroup setup");
        r = mkdir_p(sup, 0755);
        if (r < 0)
                return r;
        snprintf(pid, sizeof(pid), "%d", (int)getpid());
        _cleanup_free_ char *procs = NULL;
        if (asprintf(&procs, "%s/cgroup.procs", sup) < 0)
                return err_set(ENOMEM, "cgroup setup");
        r = write_file(procs, pid);
        if (r < 0)
                return r;
        *ret_base = TAKE_PTR(base);
        return 0;
}

int cg_create(const char *path) {
        if (mkdir(path, 0755) < 0)
                return err_set(errno, "mkdir(%s)", path);
        return 0;
}

static int cg_file(const char *path, const char *file, char *buf, size_t n) {
        if ((size_t)snprintf(buf, n, "%s/%s", path, file) >= n)
                return err_setx(ENAMETOOLONG, "%s/%s: path too long", path, file);
        return 0;
}

int cg_destroy(const char *path) {
        DIR *d = opendir(path);
        struct dirent *de;
        char sub[PATH_MAX];
        int r = 0;

        if (!d)
                return errno == ENOENT ? 0 : err_set(errno, "opendir(%s)", path);
        while ((de = readdir(d)))
                if (de->d_type == DT_DIR && de->d_name[0] != '.') {
                        if (cg_file(path, de->d_name, sub, sizeof(sub)) < 0 ||
                            (r = cg_destroy(sub)) < 0)
                                break;
                }
        closedir(d);
        if (r < 0)
                return r;
        if (rmdir(path) < 0 && errno != ENOENT)
                return err_set(errno, "rmdir(%s)", path);
        return 0;
}

int cg_open(const char *path) {
        int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? err_set(errno, "open(%s)", path) : fd;
}

int cg_walk_pids(const char *path, const char *skip, cg_pid_fn fn, void *userdata) {
        char file[PATH_MAX], sub[PATH_MAX];
        _cleanup_free_ char *txt = NULL;
        struct dirent *de;
        DIR *d;
        int r;

        if ((r = cg_file(path, "cgroup.procs", file, sizeof(file))) < 0 ||
            (r = read_file(file, &txt, NULL)) < 0)
                return r;
        for (char *p = txt, *end; *p; p = end) {
                long pid = strtol(p, &end, 10);
                if (end == p || *end != '\n' || pid <= 0)
                        return err_setx(EIO, "%s: not a list of pids", file);
                end++;
                if ((r = fn((pid_t)pid, userdata)) < 0)
                        return r;
        }
        d = opendir(path);
        if (!d)
                return err_set(errno, "opendir(%s)", path);
        while ((de = readdir(d))) {
                if (de->d_type != DT_DIR || de->d_name[0] == '.' ||
                    (skip && strcmp(de->d_name, skip) == 0))
                        continue;
                if ((r = cg_file(path, de->d_name, sub, sizeof(sub))) < 0 ||
                    (r = cg_walk_pids(sub, NULL, fn, userdata)) < 0)
                        break;
        }
        closedir(d);
        return r < 0 ? r : 0;
}

static int count_one(pid_t pid, void *userdata) {
        (void)pid;
        ++*(unsigned *)userdata;
        return 0;
}

int cg_count_procs(const char *path, const char *skip, unsigned *ret) {
        unsigned n = 0;
        int r = cg_walk_pids(path, skip, count_one, &n);

        if (r < 0)
                return r;
        *ret = n;
        return 0;
}

int cg_read_events(const char *path, bool *ret_populated, bool *ret_frozen) {
        char file[PATH_MAX];
        _cleanup_free_ char *txt = NULL;
        char *p;
        int r;

        if ((r = cg_file(path, "cgroup.events", file, sizeof(file))) < 0 ||
            (r = read_file(file, &txt, NULL)) < 0)
                return r;
        p = strstr(txt, "populated ");
        *ret_populated = p && p[10] == '1';
        p = strstr(txt, "frozen ");
        *ret_frozen = p && p[7] == '1';
        return 0;
}

int cg_freeze(const char *path) {
        char file[PATH_MAX];
        int r = cg_file(path, "cgroup.freeze", file, sizeof(file));
        return r < 0 ? r : write_file(file, "1");
}

int cg_kill(const char *path) {
        char file[PATH_MAX];
        int r = cg_file(path, "cgroup.kill", file, sizeof(file));
        return r < 0 ? r : write_file(file, "1");
}
