#include "confine.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <seccomp.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "../policy/policy.h"
#include "dns.h"
#include "userns.h"
#include "util.h"

/* Root's defaults: what ordinary servers started as root use, nothing that
 * reaches beyond the generation (no SYS_ADMIN, NET_ADMIN, NET_RAW, MKNOD,
 * SYS_PTRACE, SYS_MODULE, SETFCAP, ...). gen.policy(5) says why each. */
const int confine_default_caps[] = {
        CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_KILL,
        CAP_SETGID, CAP_SETUID, CAP_NET_BIND_SERVICE,
};
const unsigned confine_n_default_caps = ELEMENTSOF(confine_default_caps);

static int resolve_user(const struct policy *p, struct confine *c) {
        char buf[4096];
        struct passwd pw, *pwp = NULL;
        struct group gr, *grp = NULL;

        c->uid = 0;
        c->gid = 0;
        if (p->user) {
                getpwnam_r(p->user, &pw, buf, sizeof(buf), &pwp);
                if (!pwp)
                        return err_setx(ENOENT, "%s: [service] user '%s': no such user",
                                        p->path, p->user);
                c->uid = pwp->pw_uid;
                c->gid = pwp->pw_gid;
        }
        if (p->group) {
                getgrnam_r(p->group, &gr, buf, sizeof(buf), &grp);
                if (!grp)
                        return err_setx(ENOENT, "%s: [service] group '%s': no such group",
                                        p->path, p->group);
                c->gid = grp->gr_gid;
        }
        return 0;
}

int seccomp_profile_load(const char *path, bool *ret_allow_list, int **ret_nrs, unsigned *ret_n) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        _cleanup_free_ int *nrs = NULL;
        unsigned n = 0, line = 0;
        int mode = -1;
        char buf[256];

        if (!f)
                return err_set(errno, "open(%s)", path);
        while (fgets(buf, sizeof(buf), f)) {
                char *s = buf, *e;
                line++;
                if ((e = strchr(s, '#')))
                        *e = 0;
                s += strspn(s, " \t");
                for (e = s + strlen(s); e > s && strchr(" \t\r\n", e[-1]); e--)
                        ;
                *e = 0;
                if (!*s)
                        continue;
                if (mode < 0) {
                        if (strcmp(s, "deny") != 0 && strcmp(s, "allow") != 0)
                                return err_setx(EINVAL, "%s:%u: the first line must be 'deny' "
                                                "(listed calls fail with EPERM) or 'allow' (only "
                                                "listed calls work, others fail with ENOSYS)",
                                                path, line);
                        mode = strcmp(s, "allow") == 0;
                        continue;
                }
                int nr = seccomp_syscall_resolve_name(s);
                if (nr == __NR_SCMP_ERROR)
                        return err_setx(EINVAL, "%s:%u: unknown system call '%s'", path, line, s);
                if (nr < 0)
                        continue;       /* not on this architecture */
                int *nv = realloc(nrs, (n + 1) * sizeof(int));
                if (!nv)
                        return err_set(ENOMEM, "%s", path);
                nrs = nv;
                nrs[n++] = nr;
        }
        if (mode < 0)
                return err_setx(EINVAL, "%s: empty profile", path);
        *ret_allow_list = mode == 1;
        *ret_nrs = TAKE_PTR(nrs);
        *ret_n = n;
        return 0;
}

static bool under(const char *path, const char *dir) {
        size_t n = strlen(dir);
        return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == 0);
}

/* A granted path must exist; the view mounts it at its real path. */
static int real_paths(const struct policy *p, const char *key, char *const *in, char ***ret) {
        for (char *const *i = in; i && *i; i++) {
                char *r = realpath(*i, NULL);
                if (!r)
                        return err_set(errno, "%s: [sandbox] %s: %s", p->path, key, *i);
                if (strv_push(ret, r) < 0)
                        return err_set(ENOMEM, "%s", p->path);
        }
        return 0;
}

/* A private /tmp hides what the host has there, unless it is granted. */
static int check_tmp(const struct policy *p, const struct confine *c) {
        const char *prog = p->argv[0];
        bool shown = !under(prog, "/tmp") || (c->directory && under(prog, c->directory));

        for (char **g = c->writable; !shown && g && *g; g++)
                shown = under(prog, *g);
        for (char **g = c->readable; !shown && g && *g; g++)
                shown = under(prog, *g);
        if (!shown)
                return err_setx(EINVAL, "%s: [sandbox] private-tmp = yes gives the generation an "
                                "empty /tmp of its own, which hides %s", p->path, prog);
        return 0;
}

static int prepare_view(const struct policy *p, const struct confine_target *t,
                        struct confine *c) {
        _cleanup_free_ char *host_resolv = NULL;
        int r;

        c->private_users = p->private_users;
        c->private_pids = p->private_pids;
        c->private_devices = p->private_devices;
        c->protect_system = p->protect_system;
        c->protect_kernel = p->protect_kernel;
        c->protect_cgroups = p->protect_cgroups;
        c->low_ports = c->caps >> CAP_NET_BIND_SERVICE & 1;
        if (c->private_users) {
                if ((r = userns_base(t->slot, &c->uid_base)) < 0)
                        return r;
                if (c->uid >= USERNS_SIZE || c->gid >= USERNS_SIZE)
                        return err_setx(ERANGE, "%s: [service] user/group: id %u is outside the "
                                        "0-%u its user namespace maps (private-users = yes)",
                                        p->path, c->uid >= USERNS_SIZE ? c->uid : c->gid,
                                        USERNS_SIZE - 1);
        }
        if (t->directory && strcmp(t->directory, "/") != 0 &&
            !(c->directory = realpath(t->directory, NULL)))
                return err_set(errno, "release directory %s", t->directory);
        if (c->directory && strcmp(c->directory, "/") == 0)
                return err_setx(EINVAL, "release directory %s is the root directory: it would "
                                "make every path writable", t->directory);
        if ((r = real_paths(p, "writable", p->writable, &c->writable)) < 0 ||
            (r = real_paths(p, "readable", p->readable, &c->readable)) < 0)
                return r;
        if (strv_length(c->writable) + strv_length(c->readable) > 60)
                return err_setx(E2BIG, "%s: [sandbox] writable and readable: at most 60 paths",
                                p->path);
        if (c->private_tmp && (r = check_tmp(p, c)) < 0)
                return r;
        if (read_file("/etc/resolv.conf", &host_resolv, NULL) < 0)
                host_resolv = NULL;     /* none: the gateway is its nameserver */
        if (dns_resolv_conf(host_resolv, t->gateway, p->dns, &c->resolv_conf) < 0 ||
            dns_hosts(c->hostname, t->addr, p->hosts, &c->hosts) < 0)
                return err_set(ENOMEM, "%s", p->path);
        return 0;
}

int confine_prepare(const struct policy *p, const struct confine_target *t,
                    struct confine *ret) {
        struct confine c = { .core = UINT64_MAX, .new_uts = p->new_uts, .new_ipc = p->new_ipc,
                             .private_tmp = p->private_tmp };
        _cleanup_free_ char *profile = NULL;
        int r;

        if ((r = resolve_user(p, &c)) < 0)
                return r;
        if (p->caps_set)
                c.caps = p->caps;
        else if (c.uid == 0)
                for (unsigned i = 0; i < confine_n_default_caps; i++)
                        c.caps |= 1ULL << confine_default_caps[i];
        for (unsigned i = 0; i < 64; i++)
                if ((c.caps >> i & 1) && !CAP_IS_SUPPORTED(i))
                        return err_setx(EINVAL, "%s: [sandbox] capabilities: capability %u is "
                                        "not supported by this kernel", p->path, i);
        c.nofile = p->nofile;
        c.nproc = p->nproc;
        if (p->core_set)
                c.core = p->core;
        snprintf(c.hostname, sizeof(c.hostname), "%s-%u", t->service, t->gen);
        if ((r = prepare_view(p, t, &c)) < 0) {
                confine_done(&c);
                return r;
        }

        const char *name = p->seccomp ? p->seccomp : "default";
        if (strcmp(name, "none") != 0) {
                if (name[0] == '/')
                        profile = strdup(name);
                else if (asprintf(&profile, "%s/%s.profile", t->profile_dir, name) < 0)
                        profile = NULL;
                if (!profile)
                        r = err_set(ENOMEM, "profile");
                else
                        r = seccomp_profile_load(profile, &c.allow_list, &c.syscalls,
                                                 &c.n_syscalls);
                if (r < 0) {
                        confine_done(&c);
                        return r;
                }
                c.has_seccomp = true;
        }
        *ret = c;
        return 0;
}

void confine_done(struct confine *c) {
        free(c->syscalls);
        c->syscalls = NULL;
        free(c->directory);
        c->directory = NULL;
        strv_free(c->writable);
        c->writable = NULL;
        strv_free(c->readable);
        c->readable = NULL;
        free(c->resolv_conf);
        c->resolv_conf = NULL;
        free(c->hosts);
        c->hosts = NULL;
}

static struct rlimit started_nofile;     /* gend's, before it raised it */
static bool raised_nofile;

int confine_raise_nofile(unsigned long long *ret_from, unsigned long long *ret_to) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &started_nofile) < 0)
                return err_set(errno, "getrlimit(RLIMIT_NOFILE)");
        rl = started_nofile;
        rl.rlim_cur = rl.rlim_max;
        if (rl.rlim_cur != started_nofile.rlim_cur && setrlimit(RLIMIT_NOFILE, &rl) < 0)
                return err_set(errno, "setrlimit(RLIMIT_NOFILE, %llu)",
                               (unsigned long long)rl.rlim_cur);
        raised_nofile = true;
        *ret_from = started_nofile.rlim_cur;
        *ret_to = rl.rlim_cur;
        return 0;
}

int confine_limits(const struct confine *c) {
        if (c->nofile) {
                struct rlimit rl = { c->nofile, c->nofile };
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        return err_set(errno, "setrlimit(RLIMIT_NOFILE, %llu)",
                                       (unsigned long long)c->nofile);
        } else if (raised_nofile && setrlimit(RLIMIT_NOFILE, &started_nofile) < 0)
                return err_set(errno, "setrlimit(RLIMIT_NOFILE, %llu)",
                               (unsigned long long)started_nofile.rlim_cur);
        if (c->nproc) {
                struct rlimit rl = { c->nproc, c->nproc };
                if (setrlimit(RLIMIT_NPROC, &rl) < 0)
                        return err_set(errno, "setrlimit(RLIMIT_NPROC, %llu)",
                                       (unsigned long long)c->nproc);
        }
        if (c->core != UINT64_MAX) {
                struct rlimit rl = { c->core, c->core };
                if (setrlimit(RLIMIT_CORE, &rl) < 0)
                        return err_set(errno, "setrlimit(RLIMIT_CORE)");
        }
        return 0;
}

static int apply_identity_and_caps(const struct confine *c) {
        cap_t caps = cap_init();
        cap_value_t v;
        int last = (int)cap_max_bits();

        if (!caps)
                return err_set(errno, "cap_init");
        /* Bounding set first, while we still have CAP_SETPCAP. */
        for (v = 0; v < last; v++)
                if (!(c->caps >> v & 1) && cap_drop_bound(v) < 0) {
                        cap_free(caps);
                        return err_set(errno, "cap_drop_bound(%d)", v);
                }
        if (prctl(PR_SET_KEEPCAPS, 1) < 0 || setgroups(0, NULL) < 0 ||
            setresgid(c->gid, c->gid, c->gid) < 0 || setresuid(c->uid, c->uid, c->uid) < 0) {
                cap_free(caps);
                return err_set(errno, "switch to uid %u gid %u", c->uid, c->gid);
        }
        for (v = 0; v < last; v++)
                if (c->caps >> v & 1) {
                        cap_set_flag(caps, CAP_PERMITTED, 1, &v, CAP_SET);
                        cap_set_flag(caps, CAP_EFFECTIVE, 1, &v, CAP_SET);
                        cap_set_flag(caps, CAP_INHERITABLE, 1, &v, CAP_SET);
                }
        if (cap_set_proc(caps) < 0) {
                cap_free(caps);
                return err_set(errno, "cap_set_proc");
        }
        cap_free(caps);
        if (cap_reset_ambient() < 0)
                return err_set(errno, "cap_reset_ambient");
        for (v = 0; v < last; v++)
                if ((c->caps >> v & 1) && cap_set_ambient(v, CAP_SET) < 0)
                        return err_set(errno, "cap_set_ambient(%d)", v);
        return 0;
}

static int apply_seccomp(const struct confine *c) {
        scmp_filter_ctx ctx;
        uint32_t def = c->allow_list ? SCMP_ACT_ERRNO(ENOSYS) : SCMP_ACT_ALLOW;
        uint32_t act = c->allow_list ? SCMP_ACT_ALLOW : SCMP_ACT_ERRNO(EPERM);
        int r;

        ctx = seccomp_init(def);
        if (!ctx)
                return err_setx(ENOMEM, "seccomp_init");
        /* Only the native ABI is in the filter: calls through another one
         * (i386, x32 on x86_64) get the bad-arch action and fail. */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ERRNO(ENOSYS));
        for (unsigned i = 0; r >= 0 && i < c->n_syscalls; i++)
                r = seccomp_rule_add(ctx, act, c->syscalls[i], 0);
        if (r >= 0)
                r = seccomp_load(ctx);
        seccomp_release(ctx);
        return r < 0 ? err_setx(-r, "seccomp_load: %s", strerror(-r)) : 0;
}

int confine_apply(const struct confine *c) {
        int r;

        if ((r = confine_limits(c)) < 0 || (r = apply_identity_and_caps(c)) < 0)
                return r;
        /* After the identity change, which clears it. */
        if (c->pdeath_signal && prctl(PR_SET_PDEATHSIG, c->pdeath_signal) < 0)
                return err_set(errno, "prctl(PR_SET_PDEATHSIG)");
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return err_set(errno, "prctl(PR_SET_NO_NEW_PRIVS)");
        return c->has_seccomp ? apply_seccomp(c) : 0;
}
