/* A generation's life on the supervisor side: its kernel objects and
 * process, its readiness probe, and the one place where a state change
 * has its consequences (gen_fire): exit and entry actions, the record on
 * disk, the notice to its listeners (the jobs, the control socket). The
 * drain and the teardown, entry actions, report their end by the
 * callback they are given, and hear what changes (the main process's
 * end, cgroup.events) from here. */
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "../sandbox/cgroup.h"
#include "../sandbox/confine.h"
#include "../sandbox/netns.h"
#include "../sandbox/spawn.h"
#include "../sandbox/veth.h"
#include "gend.h"
#include "idle.h"
#include "log.h"
#include "probe.h"

struct generation *gen_find(struct service *s, unsigned n) {
        for (struct generation *g = s->gens; g; g = g->next)
                if (g->n == n)
                        return g;
        return NULL;
}

uint64_t gen_age_usec(const struct generation *g) {
        return now_usec(CLOCK_MONOTONIC) - g->created_usec;
}

struct rules_target gen_rules_target(struct generation *g) {
        return (struct rules_target){
                .service = g->svc->name, .ports = g->policy->ports,
                .n_ports = g->policy->n_ports, .addr = g->addr, .mark = g->mark,
                .mask = g->svc->d->marks.mask,
        };
}

void gen_set_failure(struct generation *g, const char *why) {
        char *s = strdup(why);
        if (s) {
                free(g->failure);
                g->failure = s;
        }
}

static void gen_unlink(struct generation *g) {
        struct generation **p = &g->svc->gens;
        while (*p && *p != g)
                p = &(*p)->next;
        if (*p)
                *p = g->next;
}

/* Memory only: the kernel objects are not touched. */
void gen_free(struct generation *g) {
        probe_free(g->probe);
        drain_stop(g);
        teardown_stop(g);
        sd_event_source_disable_unref(g->pidfd_watch);
        sd_event_source_disable_unref(g->cg_watch);
        if (g->pidfd >= 0)
                close(g->pidfd);
        cut_free(g->cut);
        free(g->failure);
        free(g->netns);
        free(g->cgroup);
        free(g->log_path);
        free(g->directory);
        strv_free(g->env);
        limits_release(&g->limits);
        confine_done(&g->confine);
        policy_unref(g->policy);
        free(g);
}

static void release_block(struct generation *g) {
        if (g->has_block && g->block < g->svc->d->n_blocks)
                g->svc->d->blocks_used[g->block] = 0;
        g->has_block = false;
}

/* Something changed that the state's own work waits for: the main
 * process ended, or cgroup.events (emptied, frozen). May free g. */
static void poke(struct generation *g) {
        if (g->state == GEN_DRAINING)
                drain_poke(g);
        else if (g->state == GEN_FROZEN || g->state == GEN_FAILING)
                teardown_poke(g);
}

static int on_cg_event(sd_event_source *s, const struct inotify_event *ev, void *userdata) {
        (void)s, (void)ev;
        poke(userdata);         /* may free it */
        return 0;
}

/* One watch of cgroup.events from the drain's start to the generation's
 * end: closing an inotify watch, or the instance, takes an RCU grace
 * period, milliseconds between the decision and the freeze. */
static void watch_cgroup(struct generation *g) {
        struct gend *d = g->svc->d;
        _cleanup_free_ char *events = NULL;
        int r;

        if (!g->cgroup || g->cg_watch)
                return;
        if (asprintf(&events, "%s/cgroup.events", g->cgroup) < 0) {
                events = NULL;
                r = -ENOMEM;
        } else
                r = sd_event_add_inotify(d->event, &g->cg_watch, events, IN_MODIFY, on_cg_event, g);
        if (r < 0 && r != -ENOENT && !d->said_inotify) {
                d->said_inotify = true;
                log_warn("inotify(%s): %s; a generation's emptying and freezing are seen by "
                         "polling instead", events ? events : "cgroup.events", strerror(-r));
        }
}

/* The drain's and the teardown's end: the event they name. */
static void report(struct generation *g, enum gen_event e) {
        if (gen_fire(g, e) < 0)
                log_error("%s: generation %u: %s", g->svc->name, g->n, err_msg());
}

static void exit_state(struct generation *g, enum gen_state old) {
        switch (old) {
        case GEN_STARTING:
                probe_free(g->probe);
                g->probe = NULL;
                break;
        case GEN_ACTIVE:
                if (g->svc->active == g)
                        g->svc->active = NULL;
                break;
        case GEN_DRAINING:
                drain_stop(g);
                break;
        case GEN_FROZEN:
        case GEN_FAILING:
                teardown_stop(g);
                break;
        default:
                break;
        }
}

void gen_enter_state(struct generation *g) {
        switch (g->state) {
        case GEN_ACTIVE:
                g->cg_watch = sd_event_source_disable_unref(g->cg_watch);  /* rolled back */
                g->svc->active = g;
                g->drain_usec = 0;
                g->drain_timeout_usec = 0;
                g->forced = g->signalled = false;
                g->forced_by = FORCED_NOT;
                cut_free(g->cut);
                g->cut = NULL;
                break;
        case GEN_DRAINING:
                watch_cgroup(g);
                drain_enter(g, report);
                break;
        case GEN_FROZEN:
        case GEN_FAILING:
                watch_cgroup(g);
                teardown_enter(g, report);
                break;
        case GEN_RETIRED:
        case GEN_FAILED:
                g->cg_watch = sd_event_source_disable_unref(g->cg_watch);
                release_block(g);
                break;
        default:
                break;
        }
}

static void log_change(struct generation *g, enum gen_state from) {
        const char *svc = g->svc->name;
        char took[32];

        if (g->state == GEN_FAILING)
                log_error("%s: generation %u %s -> failing: %s", svc, g->n,
                          gen_state_to_string(from), g->failure ? g->failure : "?");
        else if (g->state == GEN_RETIRED && from == GEN_FROZEN && g->forced && g->cut)
                cut_log(svc, g->n, g->cut);
        else if (g->state == GEN_RETIRED && from == GEN_FROZEN && g->forced) {
                format_duration(took, sizeof(took), now_usec(CLOCK_MONOTONIC) - g->drain_usec);
                log_warn("%s: generation %u retired: forced after %s, not clean: %u process%s, "
                         "%u connection%s left", svc, g->n, took, g->procs,
                         g->procs == 1 ? "" : "es", g->conns, g->conns == 1 ? "" : "s");
        } else if (g->state == GEN_RETIRED && from == GEN_FROZEN) {
                format_duration(took, sizeof(took), now_usec(CLOCK_MONOTONIC) - g->drain_usec);
                log_info("%s: generation %u retired: clean after %s", svc, g->n, took);
        }
        else
                log_info("%s: generation %u %s -> %s", svc, g->n, gen_state_to_string(from),
                         gen_state_to_string(g->state));
}

int gen_listen(struct gend *d, notice_fn fn) {
        for (unsigned i = 0; i < NOTICE_LISTENERS_MAX; i++)
                if (!d->listeners[i]) {
                        d->listeners[i] = fn;
                        return 0;
                }
        return err_setx(ENOSPC, "no room for another listener of the lifecycle");
}

void gen_unlisten(struct gend *d, notice_fn fn) {
        unsigned k = 0;

        for (unsigned i = 0; i < NOTICE_LISTENERS_MAX; i++)
                if (d->listeners[i] != fn)
                        d->listeners[k++] = d->listeners[i];
        while (k < NOTICE_LISTENERS_MAX)
                d->listeners[k++] = NULL;
}

static void notify(struct generation *g, enum notice_kind kind, enum gen_state from) {
        struct notice n = { .kind = kind, .g = g, .from = from };
        struct gend *d = g->svc->d;

        if (kind == NOTICE_STATE)
                services_status(d);
        limits_watch_update(d);
        for (unsigned i = 0; i < NOTICE_LISTENERS_MAX && d->listeners[i]; i++)
                d->listeners[i](d, &n);
}

void gen_notify_created(struct generation *g) {
        notify(g, NOTICE_CREATED, g->state);
}

static void save(struct generation *g) {
        if (record_save(g) < 0)
                log_error("%s: generation %u: its record: %s", g->svc->name, g->n, err_msg());
}

int gen_fire(struct generation *g, enum gen_event e) {
        int next = fsm_next(g->state, e);
        enum gen_state from = g->state;

        if (next < 0)
                return err_setx(EINVAL, "generation %u of %s is %s: %s is not possible", g->n,
                                g->svc->name, gen_state_to_string(g->state),
                                gen_event_to_string(e));
        if ((enum gen_state)next == from) {     /* no entry or exit actions */
                save(g);
                return 0;
        }
        exit_state(g, from);
        g->state = next;
        gen_enter_state(g);
        log_change(g, from);
        if (g->state == GEN_RETIRED)
                record_remove(g);
        else
                save(g);
        notify(g, NOTICE_STATE, from);
        if (g->state == GEN_RETIRED) {
                if (from == GEN_FROZEN)
                        drain_note_retired(g);
                gen_unlink(g);
                gen_free(g);
        }
        return 0;
}

/* Called where a generation cannot go on: it is removed, then failed. */
void gen_fail(struct generation *g, const char *why) {
        gen_set_failure(g, why);
        if (gen_fire(g, g->state == GEN_STARTING ? EV_PROBE_FAIL : EV_EXIT) < 0)
                log_error("%s: generation %u: %s", g->svc->name, g->n, err_msg());
}

static int counter_path(struct service *s, char **ret) {
        return asprintf(ret, "%s/%s.next", s->d->state_dir, s->name) < 0 ? -ENOMEM : 0;
}

/* Numbers are never reused: the next one is on disk before it is used. */
static int take_number(struct service *s, unsigned *ret) {
        _cleanup_free_ char *path = NULL, *txt = NULL;
        int r;

        if (counter_path(s, &path) < 0)
                return err_set(ENOMEM, "counter");
        if (s->next_gen == 0) {
                unsigned long v = 1;
                if (read_file(path, &txt, NULL) >= 0) {
                        char *end;
                        v = strtoul(txt, &end, 10);
                        if (v == 0 || v >= UINT32_MAX || (*end && *end != '\n'))
                                return err_setx(EINVAL, "%s: not a generation number", path);
                }
                s->next_gen = (unsigned)v;
        }
        for (struct generation *g = s->gens; g; g = g->next)
                if (g->n >= s->next_gen)
                        s->next_gen = g->n + 1;
        if (s->next_gen >= UINT32_MAX)
                return err_setx(EOVERFLOW, "%s has used every generation number", s->name);
        if ((r = write_counter(path, s->next_gen + 1UL)) < 0)
                return r;
        *ret = s->next_gen++;
        return 0;
}

/* Round robin from the last one handed out: a block (address and mark)
 * comes back as late as possible. host-ports = closed takes it from the
 * pool's closed part. */
static int take_block(struct gend *d, bool closed, unsigned *ret) {
        int b = pool_take(d->blocks_used, d->n_blocks, d->next_block, d->half, closed);

        if (b < 0 && d->n_releases) {
                release_look(d, true);          /* the blocks of removed ones, now */
                b = pool_take(d->blocks_used, d->n_blocks, d->next_block, d->half, closed);
        }
        if (b < 0)
                return err_setx(ENOSPC, "the %s part of the address pool is used up",
                                closed ? "host-ports = closed" : "open");
        d->blocks_used[b] = 1;
        d->next_block = b + 1;
        *ret = b;
        return 0;
}

static int build_env(struct generation *g, char ***ret) {
        const struct policy *p = g->policy;
        _cleanup_strv_free_ char **env = NULL;
        char addr[16];
        char *s;

        ip4_to_string(g->addr, addr, sizeof(addr));
        if (strv_push(&env, strdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")) < 0 ||
            asprintf(&s, "GEN_SERVICE=%s", p->name) < 0 || strv_push(&env, s) < 0 ||
            asprintf(&s, "GEN_GENERATION=%u", g->n) < 0 || strv_push(&env, s) < 0 ||
            asprintf(&s, "GEN_ADDRESS=%s", addr) < 0 || strv_push(&env, s) < 0)
                return err_set(ENOMEM, "environment");
        for (char **e = p->env; e && *e; e++)
                if (strv_push(&env, strdup(*e)) < 0)
                        return err_set(ENOMEM, "environment");
        *ret = TAKE_PTR(env);
        return 0;
}

static int open_log(struct generation *g, int *ret_fd) {
        _cleanup_free_ char *dir = NULL;
        int r, fd;

        if (asprintf(&dir, "%s/%s", g->svc->d->log_dir, g->svc->name) < 0)
                return err_set(ENOMEM, "log");
        if ((r = mkdir_p(dir, 0750)) < 0)
                return r;
        fd = open(g->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW,
                  0640);
        if (fd < 0)
                return err_set(errno, "open(%s)", g->log_path);
        *ret_fd = fd;
        return 0;
}

/* Checks, names and the address block: nothing in the kernel yet. */
static int gen_plan(struct generation *g, const char *dir) {
        struct gend *d = g->svc->d;
        const struct policy *p = g->policy;
        char addr[16], gateway[16];
        int r;

        if (asprintf(&g->log_path, "%s/%s/%u.log", d->log_dir, p->name, g->n) < 0 ||
            !(g->directory = strdup(dir ? dir : p->directory ? p->directory : "/")))
                return err_set(ENOMEM, "names");
        /* Everything a policy can get wrong is found before anything starts. */
        if ((r = limits_check(&d->limits, p)) < 0)
                return r;
        if ((r = take_block(d, p->host_ports_closed, &g->block)) < 0)
                return r;
        g->has_block = true;
        g->addr = pool_gen_addr(&d->base.pool, g->block);
        g->host_addr = pool_host_addr(&d->base.pool, g->block);
        struct confine_target ct = {
                .service = p->name, .gen = g->n, .directory = g->directory,
                .addr = ip4_to_string(g->addr, addr, sizeof(addr)),
                .gateway = ip4_to_string(g->host_addr, gateway, sizeof(gateway)),
                .slot = g->block, .profile_dir = d->profile_dir,
        };
        if ((r = confine_prepare(p, &ct, &g->confine)) < 0)
                return r;
        g->mark = marks_value(&d->marks, g->block);
        save(g);
        return 0;
}

/* The kernel objects and the process. Each object is recorded once made,
 * never before: the teardown removes what this generation made, and not
 * an object of the same name it failed to make (EEXIST). The record that
 * names the generation is written first (gen_plan); the objects and the
 * process are recorded together once the process has started: a gend that
 * dies in between leaves objects its successor claims by name, since a
 * number is never used twice (adopt.c). */
static int gen_create(struct generation *g, const char *dir) {
        struct gend *d = g->svc->d;
        const struct policy *p = g->policy;
        _cleanup_close_ int netns_fd = -1, cg_fd = -1, log_fd = -1;
        _cleanup_free_ char *svc_cg = NULL, *cg = NULL, *ns = NULL;
        int r, join[_LIM_MAX] = { -1, -1, -1 };

        if ((r = gen_plan(g, dir)) < 0)
                goto out;
        if (netns_name(p->name, g->n, &ns) < 0 || asprintf(&svc_cg, "%s/%s", d->cgroup_base,
                                                           p->name) < 0 ||
            asprintf(&cg, "%s/%u", svc_cg, g->n) < 0) {
                r = err_set(ENOMEM, "names");
                goto out;
        }
        if (mkdir(svc_cg, 0755) < 0 && errno != EEXIST) {
                r = err_set(errno, "mkdir(%s)", svc_cg);
                goto out;
        }
        if ((r = cg_create(cg)) < 0)
                goto out;
        g->cgroup = TAKE_PTR(cg);
        if ((r = cg_open(g->cgroup)) < 0)
                goto out;
        cg_fd = r;
        r = limits_create(&d->limits, p, p->name, g->n, g->cgroup, &g->limits, join);
        if (r < 0 || (r = netns_create(ns, &netns_fd)) < 0)
                goto out;
        g->netns = TAKE_PTR(ns);
        veth_host_name(p->name, g->n, g->veth);
        if ((r = veth_create(g->veth, netns_fd, g->host_addr, g->addr)) < 0)
                goto out;
        g->has_veth = true;
        if ((r = open_log(g, &log_fd)) < 0 || (r = build_env(g, &g->env)) < 0)
                goto out;
        struct spawn_opts o = {
                .argv = p->argv, .envp = g->env, .directory = g->directory,
                .cgroup_fd = cg_fd, .netns_fd = netns_fd, .log_fd = log_fd,
                .confine = &g->confine, .join_fds = join, .n_join = _LIM_MAX,
        };
        if ((r = spawn_start(&o, &g->pid, &g->pidfd)) < 0)
                goto out;
        if (proc_start_time(g->pid, &g->pid_start) < 0)
                log_warn("%s: generation %u: %s", p->name, g->n, err_msg());
        save(g);
out:
        for (int c = 0; c < _LIM_MAX; c++)
                if (join[c] >= 0)
                        close(join[c]);
        return r;
}

static void on_probe_done(void *userdata, int r, const char *why);

int gen_alloc(struct service *s, struct generation **ret) {
        struct generation *g, **tail;
        unsigned n = 0;
        int r;

        if (!s->policy)
                return err_setx(ENOENT, "%s has no policy any more (its file is gone): it can "
                                "only be retired", s->name);
        if ((r = take_number(s, &n)) < 0)
                return r;
        if (!(g = calloc(1, sizeof(*g))))
                return err_set(ENOMEM, "generation");
        g->svc = s;
        g->policy = policy_ref(s->policy);
        g->n = n;
        g->pidfd = -1;
        g->exit_status = -1;
        g->state = GEN_STARTING;
        g->created_usec = now_usec(CLOCK_MONOTONIC);
        g->created_realtime = now_usec(CLOCK_REALTIME);
        for (tail = &s->gens; *tail; tail = &(*tail)->next)
                ;
        *tail = g;
        *ret = g;
        return 0;
}

int gen_start(struct generation *g, const char *dir) {
        struct service *s = g->svc;
        char msg[768], note[128];
        unsigned n = g->n;
        int r;

        if ((r = gen_create(g, dir)) < 0) {
                service_serving_note(s, note, sizeof(note));
                snprintf(msg, sizeof(msg), "generation %u could not start: %s; %s", n, err_msg(),
                         note);
                gen_fail(g, msg);
                return err_setx(-r, "%s", msg);
        }
        gen_notify_created(g);
        g->probe_target = (struct probe_target){ .addr = g->addr, .pidfd = g->pidfd,
                                                 .cgroup = g->cgroup, .limits = &g->limits,
                                                 .confine = &g->confine,
                                                 .directory = g->directory,
                                                 .log_path = g->log_path, .envp = g->env };
        for (unsigned i = 0; i < g->policy->n_ports && !g->probe_target.port; i++)
                if (g->policy->ports[i].proto == IPPROTO_TCP)
                        g->probe_target.port = g->policy->ports[i].inner_port;
        r = probe_start(s->d->event, g->policy, &g->probe_target, on_probe_done, g, &g->probe);
        if (r < 0) {
                snprintf(msg, sizeof(msg), "generation %u: cannot probe: %s", n, err_msg());
                gen_fail(g, msg);
                return err_setx(-r, "%s", msg);
        }
        return 0;
}

static void on_probe_done(void *userdata, int r, const char *why) {
        struct generation *g = userdata;
        char msg[768], took[32], note[128];

        if (r < 0) {
                service_serving_note(g->svc, note, sizeof(note));
                snprintf(msg, sizeof(msg), "generation %u never became ready: %s after %s; %s",
                         g->n, why, format_duration(took, sizeof(took),
                                                    g->policy->ready_timeout_usec), note);
                gen_fail(g, msg);
                return;
        }
        g->ready_usec = now_usec(CLOCK_MONOTONIC);
        if (cg_count_procs(g->cgroup, IDLE_CGROUP, &g->baseline) < 0) {
                log_warn("%s: generation %u: %s; baseline taken as 1", g->svc->name, g->n,
                         err_msg());
                g->baseline = 1;
        }
        g->procs = g->baseline;
        gen_fire(g, EV_PROBE_OK);
}

/* The main process ended (status -1: not known, it was not gend's child). */
static void main_exited(struct generation *g, int status) {
        char msg[512], how[64];
        const char *svc = g->svc->name;

        g->pid = 0;
        g->exit_status = status;
        g->pidfd_watch = sd_event_source_disable_unref(g->pidfd_watch);
        if (g->pidfd >= 0)
                close(g->pidfd);
        g->pidfd = -1;
        if (status == -1)
                snprintf(how, sizeof(how), "status not known: gend restarted since it started");
        else if (WIFEXITED(status))
                snprintf(how, sizeof(how), "status %d", WEXITSTATUS(status));
        else
                snprintf(how, sizeof(how), "signal %s", sigabbrev_np(WTERMSIG(status)) ?: "?");
        switch (g->state) {
        case GEN_STARTING:
        case GEN_READY:
        case GEN_SWITCHING:
                snprintf(msg, sizeof(msg), "generation %u exited (%s) before it became active; "
                         "see gen logs %s %u", g->n, how, svc, g->n);
                gen_fail(g, msg);
                break;
        case GEN_ACTIVE:
                snprintf(msg, sizeof(msg), "generation %u (active) exited (%s); see gen logs %s %u",
                         g->n, how, svc, g->n);
                gen_fail(g, msg);
                break;
        default:
                log_info("%s: generation %u: main process exited (%s)", svc, g->n, how);
                save(g);
                poke(g);                /* may free g */
        }
}

void gen_child_exited(struct gend *d, pid_t pid, int status) {
        for (struct service *s = d->services; s; s = s->next) {
                for (struct generation *g = s->gens; g; g = g->next) {
                        if (g->probe && probe_child_exited(g->probe, pid, status))
                                return;
                        if (drain_child_exited(g, pid, status))
                                return;
                        if (g->pid == pid && !g->adopted) {
                                main_exited(g, status);
                                return;
                        }
                }
        }
}

static int on_pidfd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        (void)s, (void)fd, (void)revents;
        main_exited(userdata, -1);
        return 0;
}

/* An adopted generation's main process is no longer gend's child: its
 * pidfd says when it ends. */
int gen_watch_pidfd(struct generation *g) {
        int r = sd_event_add_io(g->svc->d->event, &g->pidfd_watch, g->pidfd, EPOLLIN, on_pidfd, g);
        return r < 0 ? err_setx(-r, "sd_event_add_io(pidfd %d): %s", g->pid, strerror(-r)) : 0;
}

/* OOM kills and refused forks, from the limit cgroups' event counters,
 * read every second for the live generations that have limits. */
/* A live generation with a memory or pids limit, whose events to read. */
static bool watched(const struct generation *g) {
        return gen_state_is_live(g->state) && g->state != GEN_FROZEN &&
               g->state != GEN_FAILING && g->limits.v2_dir &&
               (g->policy->memory_max || g->policy->pids_max);
}

/* The timer runs only while a generation has limits: gend at rest, with
 * none, never wakes for it. */
void limits_watch_update(struct gend *d) {
        bool any = false;

        for (struct service *s = d->services; s && !any; s = s->next)
                for (struct generation *g = s->gens; g && !any; g = g->next)
                        any = watched(g);
        if (d->events_timer &&
            sd_event_source_set_enabled(d->events_timer, any ? SD_EVENT_ON : SD_EVENT_OFF) < 0)
                log_warn("cannot %s the limits events timer", any ? "enable" : "disable");
}

static int on_events_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct gend *d = userdata;
        (void)usec;

        for (struct service *sv = d->services; sv; sv = sv->next)
                for (struct generation *g = sv->gens; g; g = g->next) {
                        unsigned oom, pids;
                        if (!watched(g) || limits_events(&d->limits, &g->limits, &oom, &pids) < 0)
                                continue;
                        if (oom > g->oom_kills)
                                log_warn("%s: generation %u: %u process%s OOM-killed at its "
                                         "memory limit (%u in all)", sv->name, g->n,
                                         oom - g->oom_kills, oom - g->oom_kills == 1 ? "" : "es", oom);
                        if (pids > g->pids_refused)
                                log_warn("%s: generation %u: %u fork%s refused at its pids limit "
                                         "of %llu (%u in all)", sv->name, g->n,
                                         pids - g->pids_refused, pids - g->pids_refused == 1 ? "" : "s",
                                         (unsigned long long)g->policy->pids_max, pids);
                        g->oom_kills = oom;
                        g->pids_refused = pids;
                }
        sd_event_source_set_time_relative(s, USEC_PER_SEC);
        limits_watch_update(d);
        return 0;
}

int limits_watch_start(struct gend *d) {
        int r = sd_event_add_time_relative(d->event, &d->events_timer, CLOCK_MONOTONIC,
                                           USEC_PER_SEC, 0, on_events_timer, d);
        if (r < 0)
                return err_setx(-r, "sd_event_add_time: %s", strerror(-r));
        limits_watch_update(d);
        return 0;
}
