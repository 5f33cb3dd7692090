/* Services: the set gend serves, each with its policy and its
 * generations; re-reading the policies. */
#include <string.h>
#include <systemd/sd-daemon.h>

#include "gend.h"
#include "log.h"

struct service *service_find(struct gend *d, const char *name) {
        for (struct service *s = d->services; s; s = s->next)
                if (strcmp(s->name, name) == 0)
                        return s;
        return NULL;
}

int service_add(struct gend *d, const char *name, struct policy *p, struct service **ret) {
        struct service *s = calloc(1, sizeof(*s)), **tail;

        if (!s || !(s->name = strdup(name))) {
                free(s);
                return err_set(ENOMEM, "service %s", name);
        }
        s->d = d;
        s->policy = p;
        for (tail = &d->services; *tail; tail = &(*tail)->next)
                ;
        *tail = s;
        *ret = s;
        return 0;
}

/* "generation 3 is still serving" / "no generation of web is serving". */
void service_serving_note(struct service *s, char *buf, size_t n) {
        if (s->active)
                snprintf(buf, n, "generation %u is still serving", s->active->n);
        else
                snprintf(buf, n, "no generation of %s is serving", s->name);
}

unsigned gend_live_count(struct gend *d, unsigned *ret_services) {
        unsigned n = 0, svcs = 0;
        for (struct service *s = d->services; s; s = s->next) {
                unsigned before = n;
                for (struct generation *g = s->gens; g; g = g->next)
                        n += gen_state_is_live(g->state);
                svcs += n > before;
        }
        if (ret_services)
                *ret_services = svcs;
        return n;
}

/* Re-reads the policies: a new one is a new service, a changed one applies
 * to the next generation (running ones keep theirs), a removed one leaves
 * its generations running until retired. A policy that does not parse
 * changes nothing. */
int gend_reload(struct gend *d) {
        struct policy **v;
        unsigned n, added = 0, changed = 0, removed = 0;
        int r = policy_load_dir(d->config_dir, &v, &n);

        if (r < 0)
                return err_prefix(-r, "reload: nothing changed");
        for (struct service *s = d->services; s; s = s->next) {
                bool found = false;
                for (unsigned i = 0; i < n && !found; i++)
                        found = v[i] && strcmp(v[i]->name, s->name) == 0;
                if (!found && s->policy) {
                        log_warn("reload: %s: its policy is gone; its generations keep running "
                                 "until retired, and it takes no new one", s->name);
                        policy_unref(s->policy);
                        s->policy = NULL;
                        removed++;
                }
        }
        for (unsigned i = 0; i < n; i++) {
                struct service *s = service_find(d, v[i]->name);
                if (!s) {
                        if ((r = service_add(d, v[i]->name, v[i], &s)) < 0) {
                                policy_unref(v[i]);
                                continue;
                        }
                        log_info("reload: %s: new service", s->name);
                        added++;
                        continue;
                }
                if (!s->policy)
                        log_info("reload: %s: its policy is back", s->name);
                policy_unref(s->policy);
                s->policy = v[i];
                changed++;
        }
        free(v);
        log_info("reload: %u polic%s read from %s: %u new, %u re-read, %u gone", n,
                 n == 1 ? "y" : "ies", d->config_dir, added, changed, removed);
        return 0;
}

/* systemd's view of gend (Type=notify), kept current with every change. */
void services_status(struct gend *d) {
        unsigned svcs = 0, live = gend_live_count(d, NULL), active = 0;

        for (struct service *s = d->services; s; s = s->next) {
                svcs++;
                active += s->active != NULL;
        }
        sd_notifyf(0, "STATUS=%u service%s, %u active, %u generation%s live", svcs,
                   svcs == 1 ? "" : "s", active, live, live == 1 ? "" : "s");
}
