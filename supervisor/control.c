#include "control.h"

#include <jansson.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "../sandbox/cgroup.h"
#include "log.h"

#define MAX_PENDING_OUTPUT (1 << 20)

enum op {
        OP_NONE,
        OP_NEW,                 /* until switched (or ready, with --no-switch) */
        OP_SHOW_DRAIN,          /* until the replaced generation says it drains */
        OP_RETIRE,              /* until it drains (or is retired, with --wait) */
};

struct client {
        struct gend *d;
        struct client *next;
        int fd;
        sd_event_source *io;
        char in[CONTROL_MAX_REQUEST];
        size_t in_len;
        char *out;
        size_t out_len;
        bool closing;

        enum op op;
        bool wait;              /* --wait: until the retire is done */
        struct service *svc;    /* what it waits on: (svc, n); n 0 = the next new one */
        unsigned n;
};

static void client_free(struct client *c) {
        struct client **p = &c->d->clients;
        while (*p && *p != c)
                p = &(*p)->next;
        if (*p)
                *p = c->next;
        sd_event_source_disable_unref(c->io);
        close(c->fd);
        free(c->out);
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
        char *s = json_dumps(j, JSON_COMPACT);
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

static void reply_progress(struct client *c, const char *msg) {
        send_json(c, json_pack("{s:s}", "progress", msg));
}

static void reply_ok(struct client *c, const char *msg, json_t *data) {
        json_t *j = data ? data : json_object();
        json_object_set_new(j, "ok", json_true());
        if (msg)
                json_object_set_new(j, "message", json_string(msg));
        c->op = OP_NONE;
        c->svc = NULL;
        send_json(c, j);
}

static void reply_error(struct client *c, const char *msg) {
        c->op = OP_NONE;
        c->svc = NULL;
        send_json(c, json_pack("{s:b,s:s}", "ok", 0, "error", msg));
}

static void report_to(struct client *c, struct generation *g, enum gen_report what,
                      const char *msg) {
        switch (what) {
        case REPORT_FAILED:
                reply_error(c, msg);
                return;
        case REPORT_PROGRESS:
                if (c->op == OP_SHOW_DRAIN || (c->op == OP_RETIRE && !c->wait))
                        reply_ok(c, msg, NULL);
                else
                        reply_progress(c, msg);
                return;
        case REPORT_READY:
                if (g->switch_when_ready)
                        reply_progress(c, msg);
                else
                        reply_ok(c, msg, NULL);
                return;
        case REPORT_SWITCHED:
                if (!g->replaced) {
                        reply_ok(c, msg, NULL);
                        return;
                }
                reply_progress(c, msg);
                c->n = g->replaced;     /* follow the one that now drains */
                c->op = c->wait ? OP_RETIRE : OP_SHOW_DRAIN;
                return;
        case REPORT_RETIRED:
                reply_ok(c, msg, NULL);
                return;
        }
}

void control_report(struct generation *g, enum gen_report what, const char *msg) {
        struct gend *d = g->svc->d;

        if (what == REPORT_FAILED)
                log_error("%s: %s", g->svc->policy->name, msg);
        else
                log_info("%s: %s", g->svc->policy->name, msg);
        for (struct client *c = d->clients, *next; c; c = next) {
                next = c->next;
                if (c->op == OP_NONE || c->svc != g->svc)
                        continue;
                if (c->n == 0 && c->op == OP_NEW)
                        c->n = g->n;    /* a new generation binds its requester */
                if (c->n == g->n)
                        report_to(c, g, what, msg);
        }
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
                snprintf(msg, sizeof(msg), "unknown service '%s': no %s.policy in %s", name, name,
                         c->d->config_dir);
                reply_error(c, msg);
        }
        return s;
}

static struct generation *want_generation(struct client *c, struct service *s, json_t *req) {
        json_t *n = json_object_get(req, "generation");
        struct generation *g;
        char msg[256];

        if (!json_is_integer(n) || json_integer_value(n) <= 0) {
                reply_error(c, "request names no generation");
                return NULL;
        }
        g = gen_find(s, (unsigned)json_integer_value(n));
        if (!g) {
                snprintf(msg, sizeof(msg), "%s has no generation %lld (see gen list %s)",
                         s->policy->name, json_integer_value(n), s->policy->name);
                reply_error(c, msg);
        }
        return g;
}

static void do_new(struct client *c, struct service *s, json_t *req) {
        const char *dir = json_string_value(json_object_get(req, "dir"));
        json_t *sw = json_object_get(req, "switch");
        struct generation *g;

        if (dir && dir[0] != '/') {
                reply_error(c, "--dir must be an absolute path");
                return;
        }
        c->op = OP_NEW;
        c->svc = s;
        c->n = 0;
        c->wait = json_is_true(json_object_get(req, "wait"));
        if (gen_new(s, dir, !json_is_false(sw), &g) < 0 && c->op != OP_NONE)
                reply_error(c, err_msg());
}

static void do_switch(struct client *c, struct service *s, struct generation *g) {
        c->op = OP_NEW;         /* same path from here: until switched */
        c->svc = s;
        c->n = g->n;
        if (gen_switch(g) < 0)
                reply_error(c, err_msg());
}

static void do_rollback(struct client *c, struct service *s) {
        struct generation *g;

        c->op = OP_NEW;
        c->svc = s;
        c->n = 0;
        if (gen_rollback(s, &g) < 0) {
                reply_error(c, err_msg());
                return;
        }
        c->n = g->n;
}

static void do_retire(struct client *c, struct service *s, struct generation *g, json_t *req) {
        json_t *t = json_object_get(req, "timeout_ms");
        enum gen_state before = g->state;
        char msg[128];

        c->op = OP_RETIRE;
        c->svc = s;
        c->n = g->n;
        c->wait = json_is_true(json_object_get(req, "wait"));
        if (gen_retire(g, json_is_true(json_object_get(req, "force")),
                       json_is_true(json_object_get(req, "now")),
                       json_is_integer(t) ? (uint64_t)json_integer_value(t) * USEC_PER_MSEC : 0) < 0) {
                reply_error(c, err_msg());
                return;
        }
        if (c->op == OP_RETIRE && !c->wait && before == GEN_DRAINING) {
                snprintf(msg, sizeof(msg), "generation %u is draining", g->n);
                reply_ok(c, msg, NULL);
        }
}

static json_t *gen_json(struct generation *g) {
        char addr[16];
        json_t *j;

        j = json_pack("{s:i,s:s,s:i,s:i,s:i,s:I,s:s,s:s}", "generation", g->n, "state",
                      gen_state_to_string(g->state), "pid", (int)g->pid, "procs",
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
        json_object_set_new(j, "oom_kills", json_integer(g->oom_kills));
        json_object_set_new(j, "pids_refused", json_integer(g->pids_refused));
        if (g->state == GEN_DRAINING) {
                uint64_t t = g->drain_timeout_usec ? g->drain_timeout_usec
                                                   : g->svc->policy->drain_timeout_usec;
                json_object_set_new(j, "drain", json_pack("{s:I,s:I,s:i}", "elapsed_ms",
                        (json_int_t)((now_usec(CLOCK_MONOTONIC) - g->drain_usec) / USEC_PER_MSEC),
                        "timeout_ms", (json_int_t)(t / USEC_PER_MSEC), "quiet_procs",
                        (int)g->quiet_level));
        }
        return j;
}

static json_t *service_json(struct service *s) {
        json_t *gens = json_array(), *ports = json_array();
        char port[32];

        for (struct generation *g = s->gens; g; g = g->next)
                json_array_append_new(gens, gen_json(g));
        for (unsigned i = 0; i < s->policy->n_ports; i++) {
                snprintf(port, sizeof(port), "%u:%u/%s", s->policy->ports[i].public_port,
                         s->policy->ports[i].inner_port, proto_to_string(s->policy->ports[i].proto));
                json_array_append_new(ports, json_string(port));
        }
        return json_pack("{s:s,s:i,s:o,s:o,s:s}", "service", s->policy->name, "active",
                         s->active && s->active->state == GEN_ACTIVE ? (int)s->active->n : 0,
                         "ports", ports, "generations", gens, "policy", s->policy->path);
}

static void do_list(struct client *c, json_t *req) {
        struct service *only = NULL;
        json_t *arr;

        if (json_object_get(req, "service") && !(only = want_service(c, req)))
                return;
        if (gend_count_all(c->d, only) < 0)
                log_warn("counting for gen list: %s", err_msg());
        arr = json_array();
        for (struct service *s = c->d->services; s; s = s->next)
                if (!only || s == only)
                        json_array_append_new(arr, service_json(s));
        reply_ok(c, NULL, json_pack("{s:o}", "services", arr));
}

static void dispatch(struct client *c, json_t *req) {
        const char *cmd = json_string_value(json_object_get(req, "cmd"));
        struct service *s;
        struct generation *g;

        if (!cmd) {
                reply_error(c, "request has no \"cmd\"");
                c->closing = true;
                return;
        }
        if (strcmp(cmd, "list") == 0 || strcmp(cmd, "status") == 0) {
                do_list(c, req);
                return;
        }
        if (strcmp(cmd, "new") && strcmp(cmd, "switch") && strcmp(cmd, "rollback") &&
            strcmp(cmd, "retire")) {
                reply_error(c, "unknown command (new, switch, rollback, retire, list, status)");
                c->closing = true;
                return;
        }
        if (!(s = want_service(c, req)))
                return;
        if (strcmp(cmd, "new") == 0)
                do_new(c, s, req);
        else if (strcmp(cmd, "rollback") == 0)
                do_rollback(c, s);
        else if ((g = want_generation(c, s, req))) {
                if (strcmp(cmd, "switch") == 0)
                        do_switch(c, s, g);
                else
                        do_retire(c, s, g, req);
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
        if (c->op != OP_NONE) {
                reply_error(c, "one request at a time");
                c->closing = true;
        } else
                dispatch(c, req);
        json_decref(req);
}

static int on_client(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct client *c = userdata;
        (void)s;

        if (revents & EPOLLOUT)
                client_flush(c);
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                ssize_t n = recv(fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
                if (n < 0 && errno == EAGAIN)
                        return 0;
                if (n <= 0) {
                        client_free(c);
                        return 0;
                }
                c->in_len += n;
                for (char *nl; !c->closing && (nl = memchr(c->in, '\n', c->in_len));) {
                        *nl = 0;
                        handle_line(c, c->in);
                        c->in_len -= nl + 1 - c->in;
                        memmove(c->in, nl + 1, c->in_len);
                }
                if (!c->closing && c->in_len == sizeof(c->in)) {
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

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct gend *d = userdata;
        struct ucred cred;
        socklen_t len = sizeof(cred);
        struct client *c;
        int cfd;
        (void)s, (void)revents;

        cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0)
                return 0;
        c = calloc(1, sizeof(*c));
        if (!c) {
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
        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != 0) {
                char msg[160];
                snprintf(msg, sizeof(msg), "permission denied: gend takes requests from root "
                         "only (you are uid %d)", len ? (int)cred.uid : -1);
                reply_error(c, msg);
                c->closing = true;
                if (!c->out_len)
                        client_free(c);
        }
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
        if (r < 0 || chmod(d->socket_path, 0600) < 0 || listen(fd, 64) < 0) {
                r = err_set(errno, "bind/listen(%s)", d->socket_path);
                close(fd);
                return r;
        }
        r = sd_event_add_io(d->event, NULL, fd, EPOLLIN, on_accept, d);
        if (r < 0) {
                close(fd);
                return err_setx(-r, "sd_event_add_io: %s", strerror(-r));
        }
        d->listen_fd = fd;
        return 0;
}

void control_close(struct gend *d) {
        while (d->clients)
                client_free(d->clients);
        if (d->listen_fd >= 0) {
                close(d->listen_fd);
                unlink(d->socket_path);
        }
        d->listen_fd = -1;
}
