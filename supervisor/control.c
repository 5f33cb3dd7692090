/* The control socket: requests become jobs, the lifecycle's notices
 * become progress events, a job's completion the final answer. Events
 * carry fields; the sentences people read are made by gen(8). */
#include "control.h"

#include <jansson.h>
#include <malloc.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "idle.h"
#include "job.h"
#include "log.h"

#define MAX_PENDING_OUTPUT (1 << 20)
#define MAX_CLIENTS 64
#define IDLE_USEC (10 * USEC_PER_SEC)

struct client {
        struct gend *d;
        struct client *next;
        int fd;
        sd_event_source *io, *idle;
        char *in;                       /* grows up to CONTROL_MAX_REQUEST */
        size_t in_len, in_cap;
        char *out;
        size_t out_len;
        bool closing;

        /* what it waits on */
        struct service *svc;
        struct job *job;                /* its job, until done */
        enum job_type type;
        bool wait;                      /* --wait: until wait_for is gone */
        unsigned wait_for;
};

static void client_free(struct client *c) {
        struct client **p = &c->d->clients;
        while (*p && *p != c)
                p = &(*p)->next;
        if (*p)
                *p = c->next;
        if (c->job)
                job_detach(c->job);     /* it goes on without us */
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->idle);
        close(c->fd);
        free(c->in);
        free(c->out);
        if (--c->d->n_clients == 0)
                malloc_trim(0);         /* a flood's memory goes back */
        free(c);
}

static void client_flush(struct client *c) {
        while (c->out_len) {
                ssize_t n = send(c->fd, c->out, c->out_len, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EAGAIN)
                                break;
                        c->out_len = 0;
                        c->closing = true;
                        break;
                }
                memmove(c->out, c->out + n, c->out_len - n);
                c->out_len -= n;
        }
        sd_event_source_set_io_events(c->io, EPOLLIN | (c->out_len ? EPOLLOUT : 0));
}

static void send_json(struct client *c, json_t *j) {
        char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
        size_t len;
        char *nb;

        json_decref(j);
        if (!s)
                return;
        len = strlen(s);
        if (c->out_len + len + 1 > MAX_PENDING_OUTPUT || !(nb = realloc(c->out, c->out_len + len + 1))) {
                free(s);
                c->closing = true;      /* a client that does not read is dropped */
                return;
        }
        c->out = nb;
        memcpy(c->out + c->out_len, s, len);
        c->out[c->out_len + len] = '\n';
        c->out_len += len + 1;
        free(s);
        client_flush(c);
}

static int on_idle(sd_event_source *s, uint64_t usec, void *userdata);

static void idle_arm(struct client *c) {
        c->idle = sd_event_source_disable_unref(c->idle);
        sd_event_add_time_relative(c->d->event, &c->idle, CLOCK_MONOTONIC, IDLE_USEC,
                                   USEC_PER_SEC, on_idle, c);
}

static void done_waiting(struct client *c) {
        c->svc = NULL;
        c->job = NULL;
        c->wait = false;
        c->wait_for = 0;
        if (!c->closing)
                idle_arm(c);            /* the next request, or goodbye */
}

static void reply_ok(struct client *c, json_t *data) {
        json_t *j = data ? data : json_object();
        json_object_set_new(j, "ok", json_true());
        done_waiting(c);
        send_json(c, j);
}

static void reply_error(struct client *c, const char *msg) {
        done_waiting(c);
        send_json(c, json_pack("{s:b,s:s}", "ok", 0, "error", msg));
}

/* The fields of a generation that a sentence about its new state needs. */
static json_t *notice_json(const struct notice *n) {
        struct generation *g = n->g;
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        char addr[16];
        json_t *j = json_pack("{s:s,s:s,s:I}", "event",
                              n->kind == NOTICE_CREATED ? "created" : "state", "service",
                              g->svc->name, "generation", (json_int_t)g->n);

        if (!j)
                return NULL;
        json_object_set_new(j, "state", json_string(gen_state_to_string(g->state)));
        json_object_set_new(j, "from", json_string(gen_state_to_string(n->from)));
        json_object_set_new(j, "address", json_string(ip4_to_string(g->addr, addr, sizeof(addr))));
        if (n->kind == NOTICE_CREATED) {
                json_object_set_new(j, "pid", json_integer(g->pid));
                json_object_set_new(j, "log", json_string(g->log_path ? g->log_path : ""));
                return j;
        }
        switch (g->state) {
        case GEN_READY:
                json_object_set_new(j, "ready_ms",
                        json_integer((json_int_t)((g->ready_usec - g->created_usec) / USEC_PER_MSEC)));
                json_object_set_new(j, "baseline", json_integer(g->baseline));
                break;
        case GEN_DRAINING:
                json_object_set_new(j, "quiet_procs", json_integer(g->quiet_level));
                json_object_set_new(j, "settle_ms",
                        json_integer((json_int_t)(g->policy->settle_usec / USEC_PER_MSEC)));
                json_object_set_new(j, "timeout_ms", json_integer((json_int_t)(
                        (g->drain_timeout_usec ? g->drain_timeout_usec
                                               : g->policy->drain_timeout_usec) / USEC_PER_MSEC)));
                json_object_set_new(j, "forced", json_boolean(g->forced));
                if (g->policy->stop_signal && g->signalled)
                        json_object_set_new(j, "stop_signal",
                                            json_string(sigabbrev_np(g->policy->stop_signal)));
                if (g->policy->idle != IDLE_NONE) {
                        char what[512];
                        idle_describe(g->policy, what, sizeof(what));
                        json_object_set_new(j, "idle_probe", json_string(what));
                }
                break;
        case GEN_RETIRED:
                json_object_set_new(j, "forced", json_boolean(g->forced));
                json_object_set_new(j, "drain_ms", json_integer(g->drain_usec ?
                        (json_int_t)((now - g->drain_usec) / USEC_PER_MSEC) : 0));
                json_object_set_new(j, "procs", json_integer(g->procs));
                json_object_set_new(j, "conns", json_integer(g->conns));
                if (g->forced) {
                        json_object_set_new(j, "forced_by", json_string(forced_by_to_string(
                                g->cut ? g->cut->by : g->forced_by)));
                        if (g->cut)
                                json_object_set_new(j, "cut", cut_to_json(g->cut));
                }
                break;
        case GEN_FAILING:
        case GEN_FAILED:
                json_object_set_new(j, "failure", json_string(g->failure ? g->failure : ""));
                break;
        default:
                break;
        }
        return j;
}

/* Which notices a client gets: those of its job's generation, of the one
 * its switch replaced, and of the one it waits to see gone. */
static bool follows(struct client *c, const struct notice *n) {
        unsigned gn = n->g->n;

        if (c->svc != n->g->svc)
                return false;
        if (c->job)
                return gn == job_target(c->job) ||
                       (n->kind == NOTICE_STATE && n->from == GEN_ACTIVE &&
                        n->g->state == GEN_DRAINING && c->type != JOB_RETIRE);
        return c->wait_for && gn == c->wait_for;
}

static void on_notice(struct gend *d, const struct notice *n) {
        for (struct client *c = d->clients, *next; c; c = next) {
                next = c->next;
                if (!follows(c, n))
                        continue;
                send_json(c, notice_json(n));
                if (!c->job && c->wait_for == n->g->n &&
                    (n->g->state == GEN_RETIRED || n->g->state == GEN_FAILED))
                        reply_ok(c, json_pack("{s:I,s:s,s:b}", "generation", (json_int_t)n->g->n,
                                              "state", gen_state_to_string(n->g->state),
                                              "forced", n->g->state == GEN_RETIRED &&
                                                        n->g->forced));
        }
}

static void on_job_done(void *userdata, const struct job_result *res) {
        struct client *c = userdata;
        struct generation *g;
        unsigned follow = 0;

        c->job = NULL;
        if (res->r < 0) {
                reply_error(c, res->error ? res->error : "failed");
                return;
        }
        if (c->wait && (c->type == JOB_NEW || c->type == JOB_SWITCH || c->type == JOB_ROLLBACK))
                follow = res->replaced;
        else if (c->wait && c->type == JOB_RETIRE)
                follow = res->n;
        g = follow ? gen_find(c->svc, follow) : NULL;
        if (g && g->state != GEN_RETIRED && g->state != GEN_FAILED) {
                c->wait_for = follow;   /* until it is gone */
                return;
        }
        g = gen_find(c->svc, res->n);
        /* What it waited for is gone already: forced, if gen list notes it so. */
        reply_ok(c, json_pack("{s:I,s:I,s:s,s:b}", "generation", (json_int_t)res->n, "replaced",
                              (json_int_t)res->replaced, "state",
                              g ? gen_state_to_string(g->state) : "retired", "forced",
                              follow && retired_find(c->svc, follow) != NULL));
}

/* Requests */

static struct service *want_service(struct client *c, json_t *req) {
        const char *name = json_string_value(json_object_get(req, "service"));
        struct service *s;
        char msg[256];

        if (!name) {
                reply_error(c, "request names no service");
                return NULL;
        }
        s = service_find(c->d, name);
        if (!s) {
                snprintf(msg, sizeof(msg), "unknown service '%.64s': no %.64s.policy in %s", name,
                         name, c->d->config_dir);
                reply_error(c, msg);
        }
        return s;
}

/* A generation number is what it is: 1 to 2^32-2, never truncated. */
static bool want_number(struct client *c, json_t *req, unsigned *ret) {
        json_t *n = json_object_get(req, "generation");
        char msg[128];

        if (!json_is_integer(n)) {
                reply_error(c, "request names no generation");
                return false;
        }
        if (json_integer_value(n) <= 0 || json_integer_value(n) >= UINT32_MAX) {
                snprintf(msg, sizeof(msg), "generation %lld is out of range (1 to %u)",
                         (long long)json_integer_value(n), UINT32_MAX - 1);
                reply_error(c, msg);
                return false;
        }
        *ret = (unsigned)json_integer_value(n);
        return true;
}

static void submit(struct client *c, struct service *s, const struct job_request *req) {
        c->svc = s;
        c->type = req->type;
        c->idle = sd_event_source_disable_unref(c->idle);
        if (job_submit(s, req, on_job_done, c, &c->job) < 0)
                reply_error(c, err_msg());
}

static void do_job(struct client *c, const char *cmd, json_t *req) {
        struct job_request r = { 0 };
        struct service *s;
        json_t *t;

        if (!(s = want_service(c, req)))
                return;
        c->wait = json_is_true(json_object_get(req, "wait"));
        if (strcmp(cmd, "new") == 0) {
                r.type = JOB_NEW;
                r.dir = json_string_value(json_object_get(req, "dir"));
                r.no_switch = json_is_false(json_object_get(req, "switch"));
                if (r.dir && r.dir[0] != '/') {
                        reply_error(c, "--dir must be an absolute path");
                        return;
                }
        } else if (strcmp(cmd, "rollback") == 0)
                r.type = JOB_ROLLBACK;
        else {
                r.type = strcmp(cmd, "switch") == 0 ? JOB_SWITCH : JOB_RETIRE;
                if (!want_number(c, req, &r.n))
                        return;
                r.force = json_is_true(json_object_get(req, "force"));
                r.now = json_is_true(json_object_get(req, "now"));
                t = json_object_get(req, "timeout_ms");
                if (t && (!json_is_integer(t) || json_integer_value(t) < 0 ||
                          json_integer_value(t) > 7LL * 24 * 3600 * 1000)) {
                        reply_error(c, "timeout_ms must be from 0 (the policy's) to 7 days");
                        return;
                }
                r.timeout_usec = t ? (uint64_t)json_integer_value(t) * USEC_PER_MSEC : 0;
        }
        submit(c, s, &r);
}

static json_t *drain_json(struct generation *g);

static json_t *gen_json(struct generation *g) {
        char addr[16];
        json_t *j;

        j = json_pack("{s:I,s:s,s:i,s:i,s:i,s:I,s:s,s:s}", "generation", (json_int_t)g->n,
                      "state", gen_state_to_string(g->state), "pid", (int)g->pid, "procs",
                      gen_state_is_live(g->state) ? g->procs : 0, "conns",
                      gen_state_is_live(g->state) ? g->conns : 0, "age_ms",
                      (json_int_t)(gen_age_usec(g) / USEC_PER_MSEC), "address",
                      g->addr ? ip4_to_string(g->addr, addr, sizeof(addr)) : "", "log",
                      g->log_path ? g->log_path : "");
        if (!j)
                return NULL;
        json_object_set_new(j, "baseline", json_integer(g->baseline));
        if (g->failure)
                json_object_set_new(j, "failure", json_string(g->failure));
        if (g->netns)
                json_object_set_new(j, "netns", json_string(g->netns));
        if (g->has_veth)
                json_object_set_new(j, "veth", json_string(g->veth));
        json_object_set_new(j, "adopted", json_boolean(g->adopted));
        if (g->restart_of)
                json_object_set_new(j, "restart_of", json_integer(g->restart_of));
        json_object_set_new(j, "oom_kills", json_integer(g->oom_kills));
        json_object_set_new(j, "pids_refused", json_integer(g->pids_refused));
        if (g->state == GEN_DRAINING)
                json_object_set_new(j, "drain", drain_json(g));
        return j;
}

/* The idle probe of a draining generation: what it is, and its last word. */
static json_t *idle_json(struct generation *g) {
        const struct idle_result *r = g->idle ? idle_last(g->idle) : NULL;
        char what[512];
        json_t *j;

        idle_describe(g->policy, what, sizeof(what));
        j = json_pack("{s:s,s:b,s:b}", "probe", what, "running", g->idle && idle_running(g->idle),
                      "valid", r && r->valid);
        if (j && r && r->valid) {
                json_object_set_new(j, "passed", json_boolean(r->passed));
                json_object_set_new(j, "why", json_string(r->why));
                json_object_set_new(j, "output", json_stringn(r->output, r->len));
                json_object_set_new(j, "truncated", json_boolean(r->truncated));
                json_object_set_new(j, "age_ms", json_integer((json_int_t)(
                        (now_usec(CLOCK_MONOTONIC) - r->end_usec) / USEC_PER_MSEC)));
        }
        return j;
}

static json_t *drain_json(struct generation *g) {
        uint64_t t = g->drain_timeout_usec ? g->drain_timeout_usec : g->policy->drain_timeout_usec;
        json_t *j = json_pack("{s:I,s:I,s:i,s:I}", "elapsed_ms",
                (json_int_t)((now_usec(CLOCK_MONOTONIC) - g->drain_usec) / USEC_PER_MSEC),
                "timeout_ms", (json_int_t)(t / USEC_PER_MSEC), "quiet_procs", (int)g->quiet_level,
                "settle_ms", (json_int_t)(g->policy->settle_usec / USEC_PER_MSEC));

        if (j && g->policy->idle != IDLE_NONE)
                json_object_set_new(j, "idle", idle_json(g));
        return j;
}

/* A generation whose drain was forced, for a while after it is gone. */
static json_t *retired_json(const struct retired_note *r) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        char addr[16];

        return json_pack("{s:I,s:s,s:b,s:s,s:I,s:I,s:s,s:o}", "generation", (json_int_t)r->n,
                         "state", "retired", "forced", 1, "forced_by",
                         forced_by_to_string(r->cut ? r->cut->by : FORCED_TIMEOUT), "age_ms",
                         (json_int_t)((now - r->created_usec) / USEC_PER_MSEC), "retired_ms",
                         (json_int_t)((now - r->retired_usec) / USEC_PER_MSEC), "address",
                         ip4_to_string(r->addr, addr, sizeof(addr)), "cut",
                         r->cut ? cut_to_json(r->cut) : json_null());
}

static json_t *service_json(struct service *s) {
        json_t *gens = json_array(), *ports = json_array(), *retired = json_array();
        const struct port_map *pm = s->policy ? s->policy->ports : s->rule_ports;
        unsigned np = s->policy ? s->policy->n_ports : s->n_rule_ports;
        char port[32];

        for (struct generation *g = s->gens; g; g = g->next)
                json_array_append_new(gens, gen_json(g));
        retired_prune(s, false);
        for (struct retired_note *r = s->retired; r; r = r->next)
                json_array_append_new(retired, retired_json(r));
        for (unsigned i = 0; i < np; i++) {
                snprintf(port, sizeof(port), "%u:%u/%s", pm[i].public_port, pm[i].inner_port,
                         proto_to_string(pm[i].proto));
                json_array_append_new(ports, json_string(port));
        }
        return json_pack("{s:s,s:i,s:o,s:o,s:o,s:o,s:i}", "service", s->name, "active",
                         s->active ? (int)s->active->n : 0, "ports", ports, "generations", gens,
                         "retired", retired, "policy",
                         s->policy ? json_string(s->policy->path) : json_null(),
                         "restarts", (int)s->restarts);
}

static void do_list(struct client *c, json_t *req) {
        struct service *only = NULL;
        json_t *arr, *unmanaged;

        if (json_object_get(req, "service") && !(only = want_service(c, req)))
                return;
        if (gend_count_all(c->d, only) < 0)
                log_warn("counting for gen list: %s", err_msg());
        unmanaged = json_array();
        arr = json_array();
        for (struct service *s = c->d->services; s; s = s->next)
                if (!only || s == only)
                        json_array_append_new(arr, service_json(s));
        for (char **u = c->d->unmanaged; u && *u; u++)
                json_array_append_new(unmanaged, json_string(*u));
        reply_ok(c, json_pack("{s:o,s:s,s:o}", "services", arr, "log_dir", c->d->log_dir,
                              "unmanaged", unmanaged));
}

static void dispatch(struct client *c, json_t *req) {
        const char *cmd = json_string_value(json_object_get(req, "cmd"));

        if (!cmd) {
                reply_error(c, "request has no \"cmd\"");
                c->closing = true;
        } else if (strcmp(cmd, "list") == 0 || strcmp(cmd, "status") == 0)
                do_list(c, req);
        else if (strcmp(cmd, "reload") == 0) {
                if (gend_reload(c->d) < 0) {
                        log_error("%s", err_msg());
                        reply_error(c, err_msg());
                }
                else
                        reply_ok(c, NULL);
        } else if (!strcmp(cmd, "new") || !strcmp(cmd, "switch") || !strcmp(cmd, "rollback") ||
                   !strcmp(cmd, "retire"))
                do_job(c, cmd, req);
        else {
                reply_error(c, "unknown command (new, switch, rollback, retire, list, status, "
                            "reload)");
                c->closing = true;
        }
}

static void handle_line(struct client *c, const char *line) {
        json_error_t jerr;
        json_t *req = json_loads(line, 0, &jerr);
        char msg[256];

        if (!json_is_object(req)) {
                snprintf(msg, sizeof(msg), "malformed request: %s", req ? "not an object" : jerr.text);
                json_decref(req);
                reply_error(c, msg);
                c->closing = true;
                return;
        }
        if (c->job || c->wait_for) {
                reply_error(c, "one request at a time");
                c->closing = true;
        } else
                dispatch(c, req);
        json_decref(req);
}

static bool read_in(struct client *c, int fd) {
        if (c->in_cap - c->in_len < 4096 && c->in_cap < CONTROL_MAX_REQUEST) {
                size_t cap = c->in_cap ? c->in_cap * 4 : 4096;
                char *nb = realloc(c->in, cap > CONTROL_MAX_REQUEST ? CONTROL_MAX_REQUEST : cap);
                if (!nb)
                        return false;
                c->in = nb;
                c->in_cap = cap > CONTROL_MAX_REQUEST ? CONTROL_MAX_REQUEST : cap;
        }
        ssize_t n = recv(fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
        if (n < 0 && errno == EAGAIN)
                return true;
        if (n <= 0)
                return false;
        c->in_len += n;
        return true;
}

static int on_client(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct client *c = userdata;
        (void)s;

        if (revents & EPOLLOUT)
                client_flush(c);
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                if (!read_in(c, fd)) {
                        client_free(c);
                        return 0;
                }
                for (char *nl; !c->closing && (nl = memchr(c->in, '\n', c->in_len));) {
                        *nl = 0;
                        handle_line(c, c->in);
                        c->in_len -= nl + 1 - c->in;
                        memmove(c->in, nl + 1, c->in_len);
                }
                if (!c->closing && c->in_len == CONTROL_MAX_REQUEST) {
                        reply_error(c, "request too large (64 KiB at most)");
                        c->closing = true;
                }
        }
        if (c->closing && !c->out_len)
                client_free(c);
        else if (c->closing)
                shutdown(c->fd, SHUT_RD);
        return 0;
}

static int on_idle(sd_event_source *s, uint64_t usec, void *userdata) {
        struct client *c = userdata;
        (void)s, (void)usec;

        c->closing = true;
        c->idle = sd_event_source_disable_unref(c->idle);
        reply_error(c, "no complete request within 10 s: closed");
        if (!c->out_len)
                client_free(c);
        else
                shutdown(c->fd, SHUT_RD);
        return 0;
}

static void refuse(int fd, const char *msg) {
        char line[256];
        int n = snprintf(line, sizeof(line), "{\"ok\":false,\"error\":\"%s\"}\n", msg);
        if (send(fd, line, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
                /* it went away first */
        }
        close(fd);
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct gend *d = userdata;
        struct ucred cred;
        socklen_t len = sizeof(cred);
        struct client *c;
        char msg[160];
        int cfd;
        (void)s, (void)revents;

        cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0)
                return 0;
        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != 0) {
                snprintf(msg, sizeof(msg), "permission denied: gend takes requests from root "
                         "only (you are uid %d)", len ? (int)cred.uid : -1);
                refuse(cfd, msg);
                return 0;
        }
        if (d->n_clients >= MAX_CLIENTS) {
                snprintf(msg, sizeof(msg), "gend is busy: %d clients are connected; try again",
                         MAX_CLIENTS);
                refuse(cfd, msg);
                return 0;
        }
        if (!(c = calloc(1, sizeof(*c)))) {
                close(cfd);
                return 0;
        }
        c->d = d;
        c->fd = cfd;
        if (sd_event_add_io(d->event, &c->io, cfd, EPOLLIN, on_client, c) < 0) {
                close(cfd);
                free(c);
                return 0;
        }
        c->next = d->clients;
        d->clients = c;
        d->n_clients++;
        idle_arm(c);
        return 0;
}

static int socket_address(struct gend *d, struct sockaddr_un *sa) {
        *sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
        if (strlen(d->socket_path) >= sizeof(sa->sun_path))
                return err_setx(ENAMETOOLONG, "socket path %s is too long", d->socket_path);
        strcpy(sa->sun_path, d->socket_path);
        return 0;
}

int control_check_free(struct gend *d) {
        struct sockaddr_un sa;
        int fd, r;

        if ((r = socket_address(d, &sa)) < 0)
                return r;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return err_set(errno, "socket(AF_UNIX)");
        r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
        close(fd);
        if (r == 0)
                return err_setx(EADDRINUSE, "another gend is running: %s answers",
                                d->socket_path);
        return 0;
}

int control_listen(struct gend *d) {
        struct sockaddr_un sa;
        int fd, r;

        if ((r = socket_address(d, &sa)) < 0)
                return r;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return err_set(errno, "socket(AF_UNIX)");
        unlink(d->socket_path);
        mode_t old = umask(0077);
        r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
        umask(old);
        if (r < 0 || chmod(d->socket_path, 0600) < 0 || listen(fd, 128) < 0) {
                r = err_set(errno, "bind/listen(%s)", d->socket_path);
                close(fd);
                return r;
        }
        r = sd_event_add_io(d->event, NULL, fd, EPOLLIN, on_accept, d);
        if (r < 0) {
                close(fd);
                return err_setx(-r, "sd_event_add_io: %s", strerror(-r));
        }
        if ((r = gen_listen(d, on_notice)) < 0) {
                close(fd);
                return r;
        }
        d->listen_fd = fd;
        return 0;
}

void control_close(struct gend *d) {
        while (d->clients)
                client_free(d->clients);
        gen_unlisten(d, on_notice);
        if (d->listen_fd >= 0) {
                close(d->listen_fd);
                unlink(d->socket_path);
        }
        d->listen_fd = -1;
}
