/* A restarted gend takes its generations back: it reads their records,
 * checks each against the kernel (is its main process the same one, what
 * do the rules point at), resumes what was under way, cleans up what is
 * dead, and makes the rules match in one transaction. What it cannot take
 * back it says by name. */
#include <net/if.h>
#include <string.h>
#include <sys/syscall.h>

#include "conntrack.h"
#include "fwd.h"
#include "gend.h"
#include "log.h"

/* A service whose policy file is gone: it keeps serving until retired, and
 * takes no new generation. Its generations get the ports they had. */
static int orphan_policy(const char *name, const struct port_map *ports, unsigned n,
                         struct policy **ret) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        FILE *f = open_memstream(&text, &len);
        int r;

        if (!f)
                return err_set(errno, "open_memstream");
        fprintf(f, "[service]\nexec = /bin/false\n[listen]\n");
        for (unsigned i = 0; i < n; i++)
                fprintf(f, "port = %u:%u/%s\n", ports[i].public_port, ports[i].inner_port,
                        proto_to_string(ports[i].proto));
        fclose(f);
        r = policy_parse_string(name, text, ret);
        return r < 0 ? err_prefix(-r, "%s: its generations' ports", name) : 0;
}

/* A generation gend died while making: an object it made may not be in
 * the record yet (gen_create records them together, before the process
 * starts). Its names come from (service, number), and a number is never
 * used twice, so an object of that name is its. */
static void claim_unrecorded(struct gend *d, const char *name, struct generation *g) {
        _cleanup_free_ char *cg = NULL, *ns = NULL, *path = NULL;
        char veth[IFNAME_MAX];

        if (!g->cgroup && asprintf(&cg, "%s/%s/%u", d->cgroup_base, name, g->n) >= 0 &&
            access(cg, F_OK) == 0)
                g->cgroup = TAKE_PTR(cg);
        if (!g->netns && netns_name(name, g->n, &ns) >= 0 &&
            asprintf(&path, "/run/netns/%s", ns) >= 0 && access(path, F_OK) == 0)
                g->netns = TAKE_PTR(ns);
        if (!g->has_veth) {
                veth_host_name(name, g->n, veth);
                if (if_nametoindex(veth) > 0) {
                        memcpy(g->veth, veth, sizeof(g->veth));
                        g->has_veth = true;
                }
        }
        limits_claim(&d->limits, name, g->n, &g->limits);
}

static bool same_process(struct generation *g) {
        uint64_t start;
        return g->pid > 0 && proc_start_time(g->pid, &start) >= 0 && start == g->pid_start;
}

/* What its processes run under, made again from its policy, for exec
 * probes; NULL (exec probes refused) when that is no longer possible. */
static const struct confine *adopt_confine(struct generation *g) {
        char addr[16], gateway[16];
        struct confine_target ct = {
                .service = g->svc->name, .gen = g->n, .directory = g->directory,
                .addr = ip4_to_string(g->addr, addr, sizeof(addr)),
                .gateway = ip4_to_string(g->host_addr, gateway, sizeof(gateway)),
                .slot = g->block, .profile_dir = g->svc->d->profile_dir,
        };

        if (!g->pid || !g->has_block || !g->directory)
                return NULL;
        if (confine_prepare(g->policy, &ct, &g->confine) < 0) {
                log_warn("%s: generation %u: its exec probes cannot run: %s", g->svc->name, g->n,
                         err_msg());
                return NULL;
        }
        return &g->confine;
}

static int take(struct gend *d, const char *name, struct generation *g,
                const struct port_map *ports, unsigned n_ports) {
        struct service *s = service_find(d, name);
        struct generation **p;
        int r;

        if (!s) {
                if ((r = service_add(d, name, NULL, &s)) < 0) {
                        free(g);
                        return r;
                }
                log_error("%s: its policy is gone; its generations keep running until retired",
                          name);
        }
        g->svc = s;
        if (g->state == GEN_STARTING)
                claim_unrecorded(d, name, g);
        if (s->policy)
                g->policy = policy_ref(s->policy);
        else if ((r = orphan_policy(name, ports, n_ports, &g->policy)) < 0) {
                gen_free(g);
                return r;
        }
        for (p = &s->gens; *p && (*p)->n < g->n; p = &(*p)->next)
                ;
        g->next = *p;
        *p = g;
        if (g->has_block && g->block < d->n_blocks) {
                d->blocks_used[g->block] = 1;
                if (g->block >= d->next_block)
                        d->next_block = g->block + 1;   /* round robin goes on */
        }
        if (same_process(g)) {
                g->pidfd = (int)syscall(SYS_pidfd_open, g->pid, 0);
                if (g->pidfd < 0 || gen_watch_pidfd(g) < 0)
                        log_error("%s: generation %u: pidfd_open(%d): %s", name, g->n, (int)g->pid,
                                  g->pidfd < 0 ? strerror(errno) : err_msg());
        } else
                g->pid = 0;
        g->probe_target = (struct probe_target){ .addr = g->addr, .pidfd = g->pidfd,
                                                 .cgroup = g->cgroup, .limits = &g->limits,
                                                 .confine = adopt_confine(g),
                                                 .directory = g->directory,
                                                 .log_path = g->log_path, .envp = g->env };
        for (unsigned i = 0; i < g->policy->n_ports && !g->probe_target.port; i++)
                if (g->policy->ports[i].proto == IPPROTO_TCP)
                        g->probe_target.port = g->policy->ports[i].inner_port;
        return 0;
}

/* The state a generation resumes in, from its record and the rules. */
static enum gen_state resume_state(struct generation *g, struct generation *serving) {
        switch (g->state) {
        case GEN_STARTING:
                return GEN_FAILING;     /* its probe's caller is gone */
        case GEN_READY:
        case GEN_SWITCHING:
        case GEN_ACTIVE:
        case GEN_DRAINING:
                if (g == serving)
                        return GEN_ACTIVE;
                if (!g->pid && g->state != GEN_DRAINING)
                        return GEN_FAILING;
                if (g->state == GEN_ACTIVE)
                        return GEN_DRAINING;    /* the rules moved on */
                return g->state == GEN_SWITCHING ? GEN_READY : g->state;
        default:
                return g->state;
        }
}

static void resume(struct generation *g, enum gen_state to) {
        struct service *s = g->svc;
        enum gen_state was = g->state;
        char why[256];

        if (to == GEN_FAILING && !g->failure) {
                snprintf(why, sizeof(why), "generation %u was %s when gend stopped, and %s",
                         g->n, gen_state_to_string(was),
                         was == GEN_STARTING ? "nobody waits on its start any more"
                                             : "its main process is gone");
                gen_set_failure(g, why);
        }
        g->state = to;
        gen_enter_state(g);
        if (to == GEN_ACTIVE) {
                s->has_rules = true;    /* the reconcile that follows makes it so */
                memcpy(s->rule_ports, g->policy->ports, sizeof(s->rule_ports));
                s->n_rule_ports = g->policy->n_ports;
        }
        if (record_save(g) < 0)
                log_error("%s: generation %u: its record: %s", s->name, g->n, err_msg());
        if (to == was)
                log_info("%s: generation %u taken back: %s%s", s->name, g->n,
                         gen_state_to_string(to), g->pid ? "" : " (its main process has exited)");
        else
                log_info("%s: generation %u taken back: was %s, now %s", s->name, g->n,
                         gen_state_to_string(was), gen_state_to_string(to));
}

static int reconcile(struct gend *d, const struct rules_seen *seen) {
        struct rules_target t[256];
        _cleanup_free_ struct rules_target *many = NULL;
        _cleanup_free_ char *text = NULL;
        struct rules_target *v = t;
        unsigned n = 0, cap = ELEMENTSOF(t);
        size_t len;
        FILE *f;
        int r;

        for (struct service *s = d->services; s; s = s->next)
                n += s->active != NULL;
        if (n > cap && !(v = many = calloc(n, sizeof(*v))))
                return err_set(ENOMEM, "rules");
        n = 0;
        for (struct service *s = d->services; s; s = s->next)
                if (s->active)
                        v[n++] = gen_rules_target(s->active);
        if (!(f = open_memstream(&text, &len)))
                return err_set(errno, "open_memstream");
        r = rules_render_reconcile(f, &d->base, seen, v, n);
        fclose(f);
        if (r < 0)
                return err_setx(-r, "rules: %s", strerror(-r));
        return fwd_apply_now(d->fwd, "reconcile", text);
}

static void say_rule_changes(struct gend *d, const struct rules_seen *seen) {
        static const char *const names[RULES_N_JUMPS] = {
                "nat PREROUTING", "nat OUTPUT", "nat POSTROUTING", "filter FORWARD",
                "filter INPUT",
        };
        char a[16];

        for (unsigned i = 0; i < RULES_N_JUMPS; i++)
                if (seen->jumps[i] > 1)
                        log_warn("rules: %u copies of gen's jump in %s; removed all but one",
                                 seen->jumps[i], names[i]);
        for (struct service *s = d->services; s; s = s->next) {
                uint32_t addr = rules_seen_addr(seen, s->name);
                if (addr && !s->active)
                        log_warn("rules: %s pointed at %s, which no live generation of it has; "
                                 "removed", s->name, ip4_to_string(addr, a, sizeof(a)));
                else if (!addr && s->active)
                        log_warn("rules: %s had no rules for its active generation %u; restored",
                                 s->name, s->active->n);
        }
}

int gend_adopt(struct gend *d) {
        struct rules_seen seen = { 0 };
        int r;

        if ((r = records_load(d, take)) < 0)
                return r;
        if ((r = fwd_read(d->fwd, &seen)) < 0)
                return r;
        for (struct service *s = d->services; s; s = s->next) {
                uint32_t addr = rules_seen_addr(&seen, s->name);
                struct generation *serving = NULL;

                for (struct generation *g = s->gens; g; g = g->next)
                        if (addr && g->addr == addr && g->pid &&
                            (g->state == GEN_READY || g->state == GEN_SWITCHING ||
                             g->state == GEN_ACTIVE || g->state == GEN_DRAINING))
                                serving = g;
                for (struct generation *g = s->gens, *next; g; g = next) {
                        next = g->next;
                        resume(g, resume_state(g, serving));
                }
        }
        say_rule_changes(d, &seen);
        r = reconcile(d, &seen);
        rules_seen_done(&seen);
        return r;
}
