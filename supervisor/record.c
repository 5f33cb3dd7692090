/* A generation's record: what a restarted gend needs to take it back.
 * One JSON file per generation, <run_dir>/generations/<svc>/<n>.json,
 * written atomically (write, rename) at every state change and as kernel
 * objects are made, so no object exists that no record names (one made
 * since the last write is claimed by name: adopt.c). /run is the right
 * place: the objects die with the boot too, so the records need no fsync
 * (gend dying cannot cut a rename short). */
#include <dirent.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>

#include "../sandbox/util.h"
#include "gend.h"
#include "log.h"

static int record_dir(struct gend *d, const char *svc, char **ret) {
        if (asprintf(ret, "%s/generations%s%s", d->run_dir, svc ? "/" : "", svc ? svc : "") < 0)
                return err_set(ENOMEM, "record");
        return 0;
}

static json_t *ports_json(const struct policy *p) {
        json_t *a = json_array();
        char s[32];

        for (unsigned i = 0; p && i < p->n_ports; i++) {
                snprintf(s, sizeof(s), "%u:%u/%s", p->ports[i].public_port, p->ports[i].inner_port,
                         proto_to_string(p->ports[i].proto));
                json_array_append_new(a, json_string(s));
        }
        return a;
}

static json_t *strv_json(char *const *v) {
        json_t *a = json_array();
        for (; v && *v; v++)
                json_array_append_new(a, json_string(*v));
        return a;
}

static json_t *to_json(const struct generation *g) {
        json_t *j = json_object(), *v1 = json_array();

        for (int c = 0; c < _LIM_MAX; c++)
                json_array_append_new(v1, g->limits.v1_dir[c] ? json_string(g->limits.v1_dir[c])
                                                              : json_null());
#define SET(k, v) json_object_set_new(j, k, v)
#define STR(s) ((s) ? json_string(s) : json_null())
        SET("service", json_string(g->svc->name));
        SET("generation", json_integer(g->n));
        SET("state", json_string(gen_state_to_string(g->state)));
        SET("failure", STR(g->failure));
        SET("pid", json_integer(g->pid));
        SET("pid_start", json_integer((json_int_t)g->pid_start));
        SET("block", g->has_block ? json_integer(g->block) : json_null());
        SET("address", json_integer(g->addr));
        SET("host_address", json_integer(g->host_addr));
        SET("mark", json_integer(g->mark));
        SET("veth", g->has_veth ? json_string(g->veth) : json_null());
        SET("netns", STR(g->netns));
        SET("cgroup", STR(g->cgroup));
        SET("cgroup_v2_limits", STR(g->limits.v2_dir));
        SET("cgroup_v1_limits", v1);
        SET("log", STR(g->log_path));
        SET("directory", STR(g->directory));
        SET("environment", strv_json(g->env));
        SET("ports", ports_json(g->policy));
        SET("created_usec", json_integer((json_int_t)g->created_usec));
        SET("created_realtime", json_integer((json_int_t)g->created_realtime));
        SET("ready_usec", json_integer((json_int_t)g->ready_usec));
        SET("drain_usec", json_integer((json_int_t)g->drain_usec));
        SET("drain_timeout_usec", json_integer((json_int_t)g->drain_timeout_usec));
        SET("baseline", json_integer(g->baseline));
        SET("forced", json_boolean(g->forced));
        SET("forced_by", json_string(forced_by_to_string(g->forced_by)));
        SET("cut", g->cut ? cut_to_json(g->cut) : json_null());
        SET("restart_of", json_integer(g->restart_of));
        SET("signalled", json_boolean(g->signalled));
#undef SET
#undef STR
        return j;
}

int record_save(struct generation *g) {
        _cleanup_free_ char *dir = NULL, *path = NULL, *text = NULL;
        json_t *j;
        int r;

        if ((r = record_dir(g->svc->d, g->svc->name, &dir)) < 0)
                return r;
        if ((r = mkdir_p(dir, 0700)) < 0)
                return r;
        if (asprintf(&path, "%s/%u.json", dir, g->n) < 0)
                return err_set(ENOMEM, "record");
        j = to_json(g);
        text = json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS);
        json_decref(j);
        if (!text)
                return err_set(ENOMEM, "record %s", path);
        return write_file_atomic(path, text, 0600);
}

void record_remove(struct generation *g) {
        _cleanup_free_ char *dir = NULL, *path = NULL;

        if (record_dir(g->svc->d, g->svc->name, &dir) < 0 ||
            asprintf(&path, "%s/%u.json", dir, g->n) < 0)
                return;
        if (unlink(path) < 0 && errno != ENOENT)
                log_error("unlink(%s): %s", path, strerror(errno));
        rmdir(dir);                     /* the service's, when empty */
}

static char *dup_or_null(json_t *j, const char *key) {
        const char *s = json_string_value(json_object_get(j, key));
        return s ? strdup(s) : NULL;
}

static uint64_t u64(json_t *j, const char *key) {
        json_int_t v = json_integer_value(json_object_get(j, key));
        return v > 0 ? (uint64_t)v : 0;
}

/* The record as a generation, not on any list yet. */
static int from_json(json_t *j, const char *path, struct generation **ret,
                     struct port_map *ports, unsigned *n_ports) {
        struct generation *g;
        json_t *v, *a;
        size_t i;
        int st;

        v = json_object_get(j, "generation");
        st = gen_state_from_string(json_string_value(json_object_get(j, "state")) ?: "");
        if (!json_is_integer(v) || json_integer_value(v) <= 0 ||
            json_integer_value(v) > UINT32_MAX || st < 0)
                return err_setx(EINVAL, "%s: not a generation record", path);
        if (!(g = calloc(1, sizeof(*g))))
                return err_set(ENOMEM, "%s", path);
        g->pidfd = -1;
        g->exit_status = -1;
        g->n = (unsigned)json_integer_value(v);
        g->state = st;
        g->failure = dup_or_null(j, "failure");
        g->pid = (pid_t)u64(j, "pid");
        g->pid_start = u64(j, "pid_start");
        if ((v = json_object_get(j, "block")) && json_is_integer(v)) {
                g->block = (unsigned)json_integer_value(v);
                g->has_block = true;
        }
        g->addr = (uint32_t)u64(j, "address");
        g->host_addr = (uint32_t)u64(j, "host_address");
        g->mark = (uint32_t)u64(j, "mark");
        if ((v = json_object_get(j, "veth")) && json_is_string(v)) {
                snprintf(g->veth, sizeof(g->veth), "%s", json_string_value(v));
                g->has_veth = true;
        }
        g->netns = dup_or_null(j, "netns");
        g->cgroup = dup_or_null(j, "cgroup");
        g->limits.v2_dir = dup_or_null(j, "cgroup_v2_limits");
        json_array_foreach(json_object_get(j, "cgroup_v1_limits"), i, v)
                if (i < _LIM_MAX && json_is_string(v))
                        g->limits.v1_dir[i] = strdup(json_string_value(v));
        g->log_path = dup_or_null(j, "log");
        g->directory = dup_or_null(j, "directory");
        json_array_foreach(json_object_get(j, "environment"), i, v)
                if (json_is_string(v))
                        strv_push(&g->env, strdup(json_string_value(v)));
        *n_ports = 0;
        a = json_object_get(j, "ports");
        json_array_foreach(a, i, v)
                if (*n_ports < POLICY_PORTS_MAX && json_is_string(v) &&
                    parse_port_map(json_string_value(v), &ports[*n_ports]) == 0)
                        (*n_ports)++;
        g->created_usec = u64(j, "created_usec");
        g->created_realtime = u64(j, "created_realtime");
        g->ready_usec = u64(j, "ready_usec");
        g->drain_usec = u64(j, "drain_usec");
        g->drain_timeout_usec = u64(j, "drain_timeout_usec");
        g->baseline = (unsigned)u64(j, "baseline");
        g->forced = json_is_true(json_object_get(j, "forced"));
        st = forced_by_from_string(json_string_value(json_object_get(j, "forced_by")));
        g->forced_by = st > 0 ? st : FORCED_NOT;
        if (json_is_object(json_object_get(j, "cut")) &&
            cut_from_json(json_object_get(j, "cut"), &g->cut) < 0)
                g->cut = NULL;
        g->restart_of = (unsigned)u64(j, "restart_of");
        g->signalled = json_is_true(json_object_get(j, "signalled"));
        g->adopted = true;
        *ret = g;
        return 0;
}

static int load_one(struct gend *d, const char *svc, const char *path,
                    int (*fn)(struct gend *, const char *, struct generation *,
                              const struct port_map *, unsigned)) {
        struct port_map ports[POLICY_PORTS_MAX];
        struct generation *g = NULL;
        json_error_t jerr;
        unsigned n_ports = 0;
        json_t *j = json_load_file(path, 0, &jerr);
        int r;

        if (!j)
                return err_setx(EINVAL, "%s: %s", path, jerr.text);
        r = from_json(j, path, &g, ports, &n_ports);
        json_decref(j);
        return r < 0 ? r : fn(d, svc, g, ports, n_ports);
}

int records_load(struct gend *d, int (*fn)(struct gend *, const char *, struct generation *,
                                           const struct port_map *, unsigned)) {
        _cleanup_free_ char *top = NULL;
        struct dirent *de;
        DIR *dir;
        int r;

        if ((r = record_dir(d, NULL, &top)) < 0)
                return r;
        if (!(dir = opendir(top)))
                return errno == ENOENT ? 0 : err_set(errno, "opendir(%s)", top);
        while ((de = readdir(dir))) {
                _cleanup_free_ char *sub = NULL;
                struct dirent *fe;
                DIR *sd;

                if (de->d_name[0] == '.' || !policy_name_valid(de->d_name) ||
                    asprintf(&sub, "%s/%s", top, de->d_name) < 0 || !(sd = opendir(sub)))
                        continue;
                while ((fe = readdir(sd))) {
                        _cleanup_free_ char *path = NULL;
                        if (strstr(fe->d_name, ".tmp.")) {
                                /* A write that gend's death cut short: the record
                                 * it would have replaced is still there. */
                                if (asprintf(&path, "%s/%s", sub, fe->d_name) >= 0 &&
                                    unlink(path) < 0 && errno != ENOENT)
                                        log_error("unlink(%s): %s", path, strerror(errno));
                                continue;
                        }
                        if (fe->d_name[0] == '.' || !strstr(fe->d_name, ".json"))
                                continue;
                        if (asprintf(&path, "%s/%s", sub, fe->d_name) < 0)
                                continue;
                        if (load_one(d, de->d_name, path, fn) < 0) {
                                char *why = strdup(err_msg());
                                log_error("%s; it is left as it is, and gen list says so", why ? why : err_msg());
                                if (!why || strv_push(&d->unmanaged, why) < 0)
                                        log_error("gen list will not show it: out of memory");
                        }
                }
                closedir(sd);
        }
        closedir(dir);
        return 0;
}
