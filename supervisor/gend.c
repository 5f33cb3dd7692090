/* gend: the supervisor. One sd-event loop; see gend(8). */
#include "gend.h"

#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>

#include "../sandbox/cgroup.h"
#include "../sandbox/spawn.h"
#include "../sandbox/veth.h"
#include "conntrack.h"
#include "control.h"
#include "fwd.h"
#include "job.h"
#include "log.h"

#define DEFAULT_POOL "10.213.0.0/16"
/* The lock: an abstract unix socket, which lives in the network namespace
 * and dies with its holder, so there is one gend per network namespace. */
#define LOCK_NAME "gen/gend"

/* The seccomp profiles of an installed gend: PREFIX/share/gen/profiles for
 * PREFIX/sbin/gend, found from the executable itself, so a gend always
 * reads the profiles its own `make install` put beside it, whatever PREFIX
 * it was built with. -P overrides. */
static char *profile_dir_default(void) {
        _cleanup_free_ char *exe = realpath("/proc/self/exe", NULL);
        char *slash, *dir = NULL;

        if (!exe || !(slash = strrchr(exe, '/')))
                return NULL;
        *slash = 0;
        slash = strrchr(exe, '/');
        if (slash)
                *slash = 0;
        if (asprintf(&dir, "%s/share/gen/profiles", exe) < 0)
                return NULL;
        return dir;
}

/* No silent fallback: without its profiles gend does not start. */
static int profile_dir_check(const char *dir, bool from_option) {
        _cleanup_free_ char *f = NULL;

        if (asprintf(&f, "%s/default.profile", dir) < 0)
                return err_set(ENOMEM, "profile directory");
        if (access(f, R_OK) < 0)
                return err_setx(errno, "seccomp profiles: %s: %s; %s", f, strerror(errno),
                                from_option ? "named with -P" :
                                "gend reads them from PREFIX/share/gen/profiles for "
                                "PREFIX/sbin/gend, where make install puts them, or from -P DIR");
        return 0;
}

static void usage(FILE *f, const char *profile_dir) {
        fprintf(f,
                "usage: gend [-n] [-c DIR] [-r DIR] [-s DIR] [-l DIR] [-p POOL] [-M MASK] [-P DIR]\n"
                "  -c DIR   policies (*.policy), default /etc/gen\n"
                "  -n       check the policies and exit\n"
                "  -r DIR   runtime directory (control socket), default /run/gen\n"
                "  -s DIR   state directory (generation counters), default /var/lib/gen\n"
                "  -l DIR   generation logs, default /var/log/gen\n"
                "  -p POOL  address pool for generations, default " DEFAULT_POOL "\n"
                "  -M MASK  conntrack mark bits gen may use, default " GEN_MARK_MASK_DEFAULT "\n"
                "  -P DIR   seccomp profiles, default %s\n",
                profile_dir ? profile_dir : "PREFIX/share/gen/profiles for PREFIX/sbin/gend");
}

static void print_policy_error(const char *msg, void *userdata) {
        (void)userdata;
        fprintf(stderr, "gend: %s\n", msg);
}

static int load_policies(struct gend *d, bool check_only) {
        struct policy **v;
        unsigned n;
        /* -n checks every file, against this host too, and reports each bad one. */
        int r = check_only ? policy_load_dir_each(d->config_dir, policy_validate,
                                                  print_policy_error, NULL, &v, &n)
                           : policy_load_dir(d->config_dir, &v, &n);

        if (r < 0) {
                fprintf(stderr, "gend: %s\n", err_msg());
                return r;
        }
        if (check_only) {
                printf("%u polic%s in %s OK", n, n == 1 ? "y" : "ies", d->config_dir);
                for (unsigned i = 0; i < n; i++)
                        printf("%s%s", i ? ", " : ": ", v[i]->name);
                printf("\n");
                if (r > 0)
                        fprintf(stderr, "gend: %d polic%s in %s with errors\n", r,
                                r == 1 ? "y" : "ies", d->config_dir);
        }
        int bad = r;
        for (unsigned i = 0; i < n; i++) {
                struct service *s;
                if ((r = service_add(d, v[i]->name, v[i], &s)) < 0) {
                        for (unsigned k = i; k < n; k++)
                                policy_unref(v[k]);
                        break;
                }
        }
        free(v);
        return r < 0 ? r : bad > 0 ? -EINVAL : 0;
}

static int on_sigchld(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct gend *d = userdata;
        int status;
        pid_t pid;
        (void)s, (void)si;

        /* gend is a subreaper: orphans of every generation land here too. */
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
                if (!fwd_child_exited(d->fwd, pid, status) &&
                    !jobs_child_exited(d, pid, status))
                        gen_child_exited(d, pid, status);
        return 0;
}

/* sd-event keeps one inotify instance while any of its sources watches
 * something (a draining generation's cgroup.events, a limited one's) and
 * closes it when the last one goes; closing an inotify instance waits for
 * an SRCU grace period (4 to 25 ms) with the loop stopped, which a switch
 * paid whenever the generation it made active was the last one draining.
 * gend's run directory, watched while gend runs, keeps the instance. */
static int on_run_dir_gone(sd_event_source *s, const struct inotify_event *ev, void *userdata) {
        struct gend *d = userdata;
        (void)s, (void)ev;
        log_error("%s was removed or moved: generation records and the control socket are gone "
                  "with it", d->run_dir);
        return 0;
}

static int on_exit_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct gend *d = userdata;
        unsigned svcs, live = gend_live_count(d, &svcs);
        (void)s;

        log_info("got %s: stopping; %u generation%s of %u service%s keep running and "
                 "their rules stay in place, so traffic keeps flowing", sigabbrev_np(si->ssi_signo),
                 live, live == 1 ? "" : "s", svcs, svcs == 1 ? "" : "s");
        sd_notifyf(0, "STOPPING=1\nSTATUS=stopping: %u generation%s keep running", live,
                   live == 1 ? "" : "s");
        sd_event_exit(d->event, 0);
        return 0;
}

static int on_hup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct gend *d = userdata;
        (void)s, (void)si;
        if (gend_reload(d) < 0)
                log_error("%s", err_msg());
        return 0;
}

static int enable_forwarding(struct gend *d) {
        _cleanup_free_ char *old = NULL, *rec = NULL;
        int r = read_file("/proc/sys/net/ipv4/ip_forward", &old, NULL);

        if (r < 0)
                return r;
        if (old[0] == '1')
                return 0;
        if (asprintf(&rec, "%s/ip_forward.before", d->run_dir) < 0)
                return err_set(ENOMEM, "ip_forward");
        if (access(rec, F_OK) < 0 && (r = write_file_atomic(rec, old, 0644)) < 0)
                return r;
        if ((r = write_file("/proc/sys/net/ipv4/ip_forward", "1")) < 0)
                return r;
        log_info("set net.ipv4.ip_forward=1 (was 0; recorded in %s) so external clients reach "
                 "the generations", rec);
        return 0;
}

/* Addresses in the pool that a link already has, and gend did not take
 * back as a generation's: their blocks are never handed out. */
static void mark_used(uint32_t addr, const char *ifname, void *userdata) {
        struct gend *d = userdata;
        char a[16];

        if (!pool_contains(&d->base.pool, addr))
                return;
        unsigned block = (addr - d->base.pool.base) / 4;
        if (block >= d->n_blocks || d->blocks_used[block])
                return;
        d->blocks_used[block] = 1;
        log_warn("%s on %s is in the address pool: its block is not used for generations",
                 ip4_to_string(addr, a, sizeof(a)), ifname);
}

/* A resolver on the host's loopback (systemd-resolved's stub, dnsmasq,
 * unbound) is out of a generation's reach: its gateway forwards to it. */
static uint32_t loopback_resolver(void) {
        _cleanup_free_ char *txt = NULL;
        unsigned a, b, c, e;

        if (read_file("/etc/resolv.conf", &txt, NULL) < 0)
                return 0;
        for (char *l = txt; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
                if (sscanf(l, "nameserver %u.%u.%u.%u", &a, &b, &c, &e) == 4 && a == 127 &&
                    b < 256 && c < 256 && e < 256)
                        return a << 24 | b << 16 | c << 8 | e;
        return 0;
}

/* One gend per network namespace. The holder's pid comes with the refusal. */
static int take_lock(struct gend *d) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        socklen_t len = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(LOCK_NAME);
        struct ucred cred;
        socklen_t cl = sizeof(cred);
        char comm[64] = "?", path[64];
        _cleanup_free_ char *txt = NULL;
        int fd, r;

        memcpy(sa.sun_path + 1, LOCK_NAME, strlen(LOCK_NAME));
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return err_set(errno, "socket(AF_UNIX)");
        if (bind(fd, (struct sockaddr *)&sa, len) == 0 && listen(fd, 8) == 0) {
                d->lock_fd = fd;
                return 0;
        }
        r = errno;
        close(fd);
        if (r != EADDRINUSE)
                return err_set(r, "bind(@%s)", LOCK_NAME);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, len) == 0 &&
            getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) {
                snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)cred.pid);
                if (read_file(path, &txt, NULL) >= 0)
                        snprintf(comm, sizeof(comm), "%s", txt);
                close(fd);
                return err_setx(EADDRINUSE, "another gend runs in this network namespace: pid %d "
                                "(%s); one gend per network namespace", (int)cred.pid, comm);
        }
        if (fd >= 0)
                close(fd);
        return err_setx(EADDRINUSE, "another gend runs in this network namespace (@%s is taken)",
                        LOCK_NAME);
}

static int setup(struct gend *d) {
        sigset_t mask;
        int r;

        if ((r = control_check_free(d)) < 0)
                return r;
        if ((r = mkdir_p(d->run_dir, 0700)) < 0 || (r = mkdir_p(d->state_dir, 0755)) < 0 ||
            (r = mkdir_p(d->log_dir, 0750)) < 0)
                return r;
        if ((r = cg_setup(&d->cgroup_base)) < 0)
                return err_prefix(-r, "cgroup setup");
        log_info("generations live in cgroup %s", d->cgroup_base);
        if ((r = limits_setup(d->cgroup_base, &d->limits)) < 0)
                return err_prefix(-r, "limits setup");
        for (int c = 0; c < _LIM_MAX; c++)
                if (d->limits.where[c] == LIM_V1)
                        log_info("[limits] %s: cgroup v1, %s", lim_ctl_to_string(c),
                                 d->limits.v1_base[c]);
                else
                        log_info("[limits] %s: %s%s%s", lim_ctl_to_string(c),
                                 d->limits.where[c] == LIM_V2 ? "cgroup v2" : "not available",
                                 d->limits.why[c] ? ": " : "",
                                 d->limits.why[c] ? d->limits.why[c] : "");
        if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
                return err_set(errno, "prctl(PR_SET_CHILD_SUBREAPER)");
        if ((r = enable_forwarding(d)) < 0)
                return r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        if ((r = sd_event_default(&d->event)) < 0 ||
            (r = sd_event_add_signal(d->event, NULL, SIGCHLD, on_sigchld, d)) < 0 ||
            (r = sd_event_add_signal(d->event, NULL, SIGTERM, on_exit_signal, d)) < 0 ||
            (r = sd_event_add_signal(d->event, NULL, SIGINT, on_exit_signal, d)) < 0 ||
            (r = sd_event_add_signal(d->event, NULL, SIGHUP, on_hup, d)) < 0)
                return err_setx(-r, "sd-event setup: %s", strerror(-r));
        r = sd_event_add_inotify(d->event, NULL, d->run_dir, IN_DELETE_SELF | IN_MOVE_SELF,
                                 on_run_dir_gone, d);
        if (r < 0)
                log_warn("inotify(%s): %s; a switch may stall for a few ms when the last "
                         "draining generation stops draining", d->run_dir, strerror(-r));
        if ((r = fwd_new(d->event, &d->fwd)) < 0)
                return r;
        if ((r = ct_open(&d->ct)) < 0)
                return r;
        d->n_blocks = pool_blocks(&d->base.pool);
        if (d->n_blocks > d->marks.n)
                d->n_blocks = d->marks.n;
        /* The pool in two: a part whose generations the host's own ports
         * refuse ([sandbox] host-ports = closed), one rule for all of them. */
        unsigned p2 = 1;
        while (p2 * 2 <= d->n_blocks + 1)
                p2 *= 2;
        d->half = p2 / 2;
        if (d->half) {
                unsigned bits = 0;
                while ((4U << bits) < d->half * 4)
                        bits++;
                d->base.closed = d->base.pool.base + d->half * 4;
                d->base.closed_prefix = 32 - (2 + bits);
        }
        d->blocks_used = calloc(d->n_blocks, 1);
        if (!d->blocks_used)
                return err_set(ENOMEM, "address pool");
        d->base.dns = loopback_resolver();
        if ((r = gen_listen(d, job_notice)) < 0)        /* before anything can change */
                return r;
        /* Records first, then the rules made to match them, then what else
         * uses the pool. */
        if ((r = gend_adopt(d)) < 0)
                return err_prefix(-r, "taking generations back");
        if ((r = host_addrs_foreach(mark_used, d)) < 0)
                return r;
        if ((r = limits_watch_start(d)) < 0)
                return r;
        drain_events_open(d);           /* says so itself if it cannot */
        return control_listen(d);
}

/* At exit: memory only; the generations and their objects stay. */
static void services_free(struct gend *d) {
        while (d->services) {
                struct service *s = d->services;
                d->services = s->next;
                jobs_free(s);
                retired_prune(s, true);
                while (s->gens) {
                        struct generation *g = s->gens;
                        s->gens = g->next;
                        gen_free(g);
                }
                policy_unref(s->policy);
                free(s->name);
                free(s);
        }
        drain_events_close(d);
}

static void gend_free(struct gend *d) {
        control_close(d);
        services_free(d);
        release_look(d, true);
        free(d->releases);
        fwd_free(d->fwd);
        ct_close(d->ct);
        sd_event_source_disable_unref(d->events_timer);
        limits_host_done(&d->limits);
        sd_event_unref(d->event);
        strv_free(d->unmanaged);
        free(d->blocks_used);
        free(d->cgroup_base);
        free(d->socket_path);
        if (d->lock_fd >= 0)
                close(d->lock_fd);
}

int main(int argc, char **argv) {
        struct gend d = { .config_dir = "/etc/gen", .run_dir = "/run/gen",
                          .state_dir = "/var/lib/gen", .log_dir = "/var/log/gen",
                          .listen_fd = -1, .lock_fd = -1 };
        _cleanup_free_ char *profile_dir = profile_dir_default();
        const char *pool = DEFAULT_POOL, *mask = GEN_MARK_MASK_DEFAULT;
        bool check = false;
        char p[32];
        int c, r;

        while ((c = getopt(argc, argv, "hnc:r:s:l:p:P:M:")) != -1)
                switch (c) {
                case 'n': check = true; break;
                case 'c': d.config_dir = optarg; break;
                case 'r': d.run_dir = optarg; break;
                case 's': d.state_dir = optarg; break;
                case 'l': d.log_dir = optarg; break;
                case 'p': pool = optarg; break;
                case 'P': d.profile_dir = optarg; break;
                case 'M': mask = optarg; break;
                case 'h': usage(stdout, profile_dir); return 0;
                default: usage(stderr, profile_dir); return 2;
                }
        if (optind != argc) {
                usage(stderr, profile_dir);
                return 2;
        }
        bool from_option = d.profile_dir;
        if (!from_option)
                d.profile_dir = profile_dir;
        if (pool_parse(pool, &d.base.pool) < 0) {
                fprintf(stderr, "gend: -p %s: not an IPv4 network from /8 to /28 (e.g. "
                        DEFAULT_POOL ")\n", pool);
                return 2;
        }
        if (marks_parse(mask, &d.marks) < 0) {
                fprintf(stderr, "gend: -M %s: not a mask of 2 to 16 contiguous bits in hex "
                        "(e.g. " GEN_MARK_MASK_DEFAULT ")\n", mask);
                return 2;
        }
        if (check) {
                r = load_policies(&d, true);
                services_free(&d);
                return r < 0 ? 1 : 0;
        }
        if (geteuid() != 0) {
                fprintf(stderr, "gend: must run as root: it creates cgroups, network "
                        "namespaces and iptables rules\n");
                return 1;
        }
        /* The one gend of this network namespace, before anything else. */
        if (take_lock(&d) < 0) {
                log_error("%s", err_msg());
                return 1;
        }
        {
                unsigned long long from, to;
                if (confine_raise_nofile(&from, &to) < 0)
                        log_warn("%s; a drain of a generation with more processes than that "
                                 "counts them by polling", err_msg());
                else if (from != to)
                        log_info("open files: limit %llu, raised from %llu (a drain holds one "
                                 "per process; generations get %llu back)", to, from, from);
        }
        if (load_policies(&d, false) < 0) {
                services_free(&d);
                close(d.lock_fd);
                return 1;
        }
        if (asprintf(&d.socket_path, "%s/gend.sock", d.run_dir) < 0)
                return 1;
        if (!d.profile_dir)
                r = err_setx(ENOENT, "seccomp profiles: /proc/self/exe does not name gend's "
                             "executable; name the profile directory with -P");
        else
                r = profile_dir_check(d.profile_dir, from_option);
        if (r >= 0) {
                _cleanup_free_ char *init = NULL;
                if ((r = spawn_init_path(&init)) >= 0)
                        log_info("a generation's pid 1: %s", init);
        }
        if (r >= 0)
                r = setup(&d);
        if (r < 0) {
                log_error("%s", err_msg());
                sd_notifyf(0, "STATUS=failed to start: %s", err_msg());
                gend_free(&d);
                return 1;
        }
        unsigned n = 0;
        for (struct service *s = d.services; s; s = s->next)
                n++;
        log_info("ready: %u service%s from %s, pool %s, marks 0x%x, socket %s", n,
                 n == 1 ? "" : "s", d.config_dir, pool_to_string(&d.base.pool, p, sizeof(p)),
                 d.marks.mask, d.socket_path);
        unsigned svcs, live = gend_live_count(&d, &svcs);
        sd_notifyf(0, "READY=1\nSTATUS=serving %u service%s, %u generation%s; socket %s", n,
                   n == 1 ? "" : "s", live, live == 1 ? "" : "s", d.socket_path);
        r = sd_event_loop(d.event);
        gend_free(&d);
        return r < 0 ? 1 : 0;
}
