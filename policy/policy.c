/* Reading a policy file into struct policy, with file:line errors that say
 * what is allowed. */
#include "policy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <ini.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/capability.h>

#include "../sandbox/util.h"

struct parse_ctx {
        struct policy *p;
        const char *file;
        unsigned line;
        bool failed;
        bool indented;                  /* this line starts with white space */
        int prev_key;                   /* the key before, in this section; -1: none */
        unsigned prev_line;
        const char *text;               /* string input, or NULL */
        FILE *f;
};

typedef int (*key_parser)(struct policy *p, const char *value, char *why, size_t n);

#define WHY(...) (snprintf(why, n, __VA_ARGS__), -EINVAL)

static int set_string(char **dst, const char *value) {
        char *s = strdup(value);
        if (!s)
                return -ENOMEM;
        free(*dst);
        *dst = s;
        return 0;
}

static int k_exec(struct policy *p, const char *v, char *why, size_t n) {
        char **argv = NULL;
        if (split_words(v, &argv) < 0)
                return WHY("cannot split '%s' into words (unbalanced quote, or empty)", v);
        if (argv[0][0] != '/') {
                strv_free(argv);
                return WHY("the program must be an absolute path, not '%s'", v);
        }
        strv_free(p->argv);
        p->argv = argv;
        return 0;
}

static int k_directory(struct policy *p, const char *v, char *why, size_t n) {
        if (v[0] != '/')
                return WHY("must be an absolute path, not '%s'", v);
        return set_string(&p->directory, v);
}

static int k_user(struct policy *p, const char *v, char *why, size_t n) {
        (void)why, (void)n;
        return set_string(&p->user, v);
}

static int k_group(struct policy *p, const char *v, char *why, size_t n) {
        (void)why, (void)n;
        return set_string(&p->group, v);
}

static int k_environment(struct policy *p, const char *v, char *why, size_t n) {
        const char *eq = strchr(v, '=');
        if (!eq || eq == v)
                return WHY("must be KEY=VALUE, not '%s'", v);
        for (const char *c = v; c < eq; c++)
                if (!isalnum((unsigned char)*c) && *c != '_')
                        return WHY("'%.*s' is not a valid variable name", (int)(eq - v), v);
        return strv_push(&p->env, strdup(v));
}

static int k_port(struct policy *p, const char *v, char *why, size_t n) {
        struct port_map m;
        if (parse_port_map(v, &m) < 0)
                return WHY("must be PUBLIC:INSIDE[/tcp|/udp] with ports 1-65535, not '%s'", v);
        if (p->n_ports >= POLICY_PORTS_MAX)
                return WHY("at most %d ports", POLICY_PORTS_MAX);
        for (unsigned i = 0; i < p->n_ports; i++)
                if (p->ports[i].public_port == m.public_port && p->ports[i].proto == m.proto)
                        return WHY("public port %u/%s is listed twice", m.public_port,
                                   proto_to_string(m.proto));
        p->ports[p->n_ports++] = m;
        return 0;
}

static int k_probe(struct policy *p, const char *v, char *why, size_t n) {
        _cleanup_strv_free_ char **w = NULL;
        uint64_t st;

        if (split_words(v, &w) < 0)
                return WHY("empty probe");
        if (strcmp(w[0], "tcp") == 0 && !w[1]) {
                p->probe = PROBE_TCP;
                return 0;
        }
        if (strcmp(w[0], "http") == 0 && strv_length(w) == 4 && strcmp(w[1], "GET") == 0 &&
            w[2][0] == '/') {
                if (parse_count(w[3], &st) < 0 || st < 100 || st > 599)
                        return WHY("'%s' is not an HTTP status (100 to 599)", w[3]);
                p->probe = PROBE_HTTP;
                p->probe_status = (int)st;
                return set_string(&p->probe_path, w[2]);
        }
        if (strcmp(w[0], "exec") == 0 && w[1] && w[1][0] == '/') {
                strv_free(p->probe_argv);
        strv_free(p->idle_argv);
        free(p->idle_path);
                p->probe_argv = NULL;
                for (char **a = w + 1; *a; a++)
                        if (strv_push(&p->probe_argv, strdup(*a)) < 0)
                                return -ENOMEM;
                p->probe = PROBE_EXEC;
                return 0;
        }
        return WHY("must be 'tcp', 'http GET /PATH STATUS' or 'exec /PATH [ARGS]', not '%s'", v);
}

static int duration_key(const char *v, uint64_t min, uint64_t max, const char *range,
                        uint64_t *ret, char *why, size_t n) {
        uint64_t x;
        int r = parse_duration(v, &x);

        if (r == -EINVAL)
                return WHY("'%s' is not a duration (use e.g. 200ms, 10s, 2m): digits, an "
                           "optional .fraction and a unit ms, s, m, min or h, without sign, "
                           "exponent or spaces; %s", v, range);
        if (r < 0 || x < min || x > max)
                return WHY("'%s' is out of range: %s", v, range);
        *ret = x;
        return 0;
}

static int k_ready_timeout(struct policy *p, const char *v, char *why, size_t n) {
        return duration_key(v, 1, READY_TIMEOUT_MAX_USEC, "more than 0, at most 1h",
                            &p->ready_timeout_usec, why, n);
}

static int k_settle(struct policy *p, const char *v, char *why, size_t n) {
        return duration_key(v, 0, SETTLE_MAX_USEC, "0 to 10m", &p->settle_usec, why, n);
}

/* [drain] idle: 'exec /PATH [ARGS]' passes by exiting 0, 'http GET /PATH
 * STATUS' by answering STATUS; 'none' is the default. */
static int k_idle(struct policy *p, const char *v, char *why, size_t n) {
        _cleanup_strv_free_ char **w = NULL;
        uint64_t st;

        if (split_words(v, &w) < 0)
                return WHY("cannot split '%s' into words (unbalanced quote, or empty)", v);
        strv_free(p->idle_argv);
        p->idle_argv = NULL;
        if (strcmp(w[0], "none") == 0 && !w[1]) {
                p->idle = IDLE_NONE;
                return 0;
        }
        if (strcmp(w[0], "http") == 0 && strv_length(w) == 4 && strcmp(w[1], "GET") == 0 &&
            w[2][0] == '/') {
                if (parse_count(w[3], &st) < 0 || st < 100 || st > 599)
                        return WHY("'%s' is not an HTTP status (100 to 599)", w[3]);
                p->idle = IDLE_HTTP;
                p->idle_status = (int)st;
                return set_string(&p->idle_path, w[2]);
        }
        if (strcmp(w[0], "exec") == 0 && w[1] && w[1][0] == '/') {
                for (char **a = w + 1; *a; a++)
                        if (strv_push(&p->idle_argv, strdup(*a)) < 0)
                                return -ENOMEM;
                p->idle = IDLE_EXEC;
                return 0;
        }
        return WHY("must be 'exec /PATH [ARGS]', 'http GET /PATH STATUS' or 'none', not '%s'", v);
}

static int k_idle_interval(struct policy *p, const char *v, char *why, size_t n) {
        return duration_key(v, IDLE_INTERVAL_MIN_USEC, IDLE_INTERVAL_MAX_USEC, "10ms to 10m",
                            &p->idle_interval_usec, why, n);
}

static int k_idle_timeout(struct policy *p, const char *v, char *why, size_t n) {
        return duration_key(v, 1, IDLE_TIMEOUT_MAX_USEC, "more than 0, at most 10m",
                            &p->idle_timeout_usec, why, n);
}

static int k_poll_interval(struct policy *p, const char *v, char *why, size_t n) {
        return duration_key(v, POLL_INTERVAL_MIN_USEC, POLL_INTERVAL_MAX_USEC, "10ms to 10s",
                            &p->poll_interval_usec, why, n);
}

static int k_drain_timeout(struct policy *p, const char *v, char *why, size_t n) {
        return duration_key(v, 1, DRAIN_TIMEOUT_MAX_USEC, "more than 0, at most 24h",
                            &p->drain_timeout_usec, why, n);
}

/* A whole number from min to max: digits only. */
static int count_key(const char *v, uint64_t min, uint64_t max, const char *what, uint64_t *ret,
                     char *why, size_t n) {
        uint64_t x;

        if (parse_count(v, &x) < 0 || x < min || x > max)
                return WHY("must be a number of %s from %llu to %llu (digits only), not '%s'",
                           what, (unsigned long long)min, (unsigned long long)max, v);
        *ret = x;
        return 0;
}

static int k_restart(struct policy *p, const char *v, char *why, size_t n) {
        if (strcmp(v, "no") == 0)
                p->restart = false;
        else if (strcmp(v, "on-failure") == 0)
                p->restart = true;
        else
                return WHY("must be 'no' or 'on-failure', not '%s'", v);
        return 0;
}

static int k_restart_delay(struct policy *p, const char *v, char *why, size_t n) {
        return duration_key(v, 0, 600 * USEC_PER_SEC, "0 to 10m", &p->restart_delay_usec, why, n);
}

static int k_restart_burst(struct policy *p, const char *v, char *why, size_t n) {
        uint64_t x;
        int r = count_key(v, 1, 1000, "restarts", &x, why, n);
        if (r >= 0)
                p->restart_burst = (unsigned)x;
        return r;
}

static int k_host_ports(struct policy *p, const char *v, char *why, size_t n) {
        if (strcmp(v, "open") == 0)
                p->host_ports_closed = false;
        else if (strcmp(v, "closed") == 0)
                p->host_ports_closed = true;
        else
                return WHY("must be 'open' or 'closed', not '%s'", v);
        return 0;
}

static int k_quiet(struct policy *p, const char *v, char *why, size_t n) {
        uint64_t x;
        if (strcmp(v, "baseline") == 0) {
                p->quiet_procs = QUIET_BASELINE;
                return 0;
        }
        if (parse_count(v, &x) < 0 || x > 1000000)
                return WHY("must be 'baseline' or a number of processes from 0 to 1000000, "
                           "not '%s'", v);
        p->quiet_procs = (int)x;
        return 0;
}

static int k_stop_signal(struct policy *p, const char *v, char *why, size_t n) {
        if (parse_signal(v, &p->stop_signal) < 0)
                return WHY("must be none, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2 "
                           "or SIGWINCH, not '%s'", v);
        return 0;
}

/* Sizes: whole bytes, or digits with an optional fraction and K, M, G, T. */
#define SIZE_SYNTAX "bytes, or a number with an optional .fraction and K, M, G or T"

static int k_memory(struct policy *p, const char *v, char *why, size_t n) {
        uint64_t x;
        if (parse_size(v, &x) < 0 || x < (4ULL << 20) || x > POLICY_SIZE_MAX)
                return WHY("must be a size of at least 4M and at most 64T (" SIZE_SYNTAX
                           ", e.g. 512M, 1.5G), not '%s'", v);
        p->memory_max = x;
        return 0;
}

static int k_pids(struct policy *p, const char *v, char *why, size_t n) {
        return count_key(v, 1, 4194304, "processes", &p->pids_max, why, n);
}

static int k_cpu(struct policy *p, const char *v, char *why, size_t n) {
        uint64_t milli;
        if (parse_decimal(v, 1000, 3, &milli) < 0 || milli < 10 || milli > 4096000)
                return WHY("must be a number of CPUs from 0.01 to 4096 with at most 3 decimals, "
                           "such as 0.5 or 2, not '%s'", v);
        p->cpu_milli = milli;
        return 0;
}

static int k_nofile(struct policy *p, const char *v, char *why, size_t n) {
        return count_key(v, 16, 1 << 20, "files", &p->nofile, why, n);
}

static int k_nproc(struct policy *p, const char *v, char *why, size_t n) {
        return count_key(v, 1, 4194304, "processes", &p->nproc, why, n);
}

static int k_core(struct policy *p, const char *v, char *why, size_t n) {
        uint64_t x;
        if (parse_size(v, &x) < 0 || x > POLICY_SIZE_MAX)
                return WHY("must be 0 or a size of at most 64T (" SIZE_SYNTAX ", e.g. 512M), "
                           "not '%s'", v);
        p->core = x;
        p->core_set = true;
        return 0;
}

static int parse_bool(const char *v, bool *ret) {
        if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1"))
                *ret = true;
        else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0"))
                *ret = false;
        else
                return -EINVAL;
        return 0;
}

#define BOOL_KEY(fn, field)                                                     \
        static int fn(struct policy *p, const char *v, char *why, size_t n) {   \
                if (parse_bool(v, &p->field) < 0)                               \
                        return WHY("must be yes or no, not '%s'", v);           \
                return 0;                                                       \
        }
BOOL_KEY(k_takeover, takeover)
BOOL_KEY(k_uts, new_uts)
BOOL_KEY(k_ipc, new_ipc)
BOOL_KEY(k_private_tmp, private_tmp)
BOOL_KEY(k_private_users, private_users)
BOOL_KEY(k_private_pids, private_pids)
BOOL_KEY(k_private_devices, private_devices)
BOOL_KEY(k_protect_system, protect_system)
BOOL_KEY(k_protect_kernel, protect_kernel)
BOOL_KEY(k_protect_cgroups, protect_cgroups)

/* An absolute path without "." or ".." parts, and not "/" itself. */
static bool grant_path_ok(const char *s) {
        if (s[0] != '/' || !s[1])
                return false;
        for (const char *c = s; c; c = strchr(c + 1, '/')) {
                size_t len = strcspn(c + 1, "/");
                if ((len == 1 && c[1] == '.') || (len == 2 && c[1] == '.' && c[2] == '.'))
                        return false;
        }
        return true;
}

static int add_paths(char ***dst, const char *v, char *why, size_t n) {
        _cleanup_strv_free_ char **w = NULL;

        if (split_words(v, &w) < 0)
                return WHY("cannot split '%s' into paths (unbalanced quote?)", v);
        for (char **c = w; *c; c++)
                if (!grant_path_ok(*c))
                        return WHY("'%s' is not an absolute path below / without . or .. parts",
                                   *c);
        for (char **c = w; *c; c++)
                if (strv_push(dst, strdup(*c)) < 0)
                        return -ENOMEM;
        return 0;
}

static int k_writable(struct policy *p, const char *v, char *why, size_t n) {
        return add_paths(&p->writable, v, why, n);
}

static int k_readable(struct policy *p, const char *v, char *why, size_t n) {
        return add_paths(&p->readable, v, why, n);
}

static bool addr_ok(const char *s) {
        unsigned char buf[sizeof(struct in6_addr)];
        return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static bool host_name_ok(const char *s) {
        size_t len = strlen(s);
        if (len == 0 || len > 253 || s[0] == '-' || s[0] == '.')
                return false;
        for (const char *c = s; *c; c++)
                if (!isalnum((unsigned char)*c) && *c != '-' && *c != '.')
                        return false;
        return true;
}

static int k_hosts(struct policy *p, const char *v, char *why, size_t n) {
        _cleanup_strv_free_ char **w = NULL;
        char *line;

        if (split_words(v, &w) < 0 || strv_length(w) != 2 || !host_name_ok(w[0]) ||
            !addr_ok(w[1]))
                return WHY("must be NAME ADDRESS (e.g. db 10.0.0.5), not '%s'", v);
        if (asprintf(&line, "%s %s", w[1], w[0]) < 0)
                return -ENOMEM;
        return strv_push(&p->hosts, line);
}

static int k_dns(struct policy *p, const char *v, char *why, size_t n) {
        _cleanup_strv_free_ char **w = NULL;

        if (split_words(v, &w) < 0)
                return WHY("must be one to three nameserver addresses, not '%s'", v);
        for (char **c = w; *c; c++)
                if (!addr_ok(*c))
                        return WHY("'%s' is not an IPv4 or IPv6 address", *c);
        if (strv_length(p->dns) + strv_length(w) > 3)
                return WHY("at most 3 nameservers (the resolver reads no more)");
        for (char **c = w; *c; c++)
                if (strv_push(&p->dns, strdup(*c)) < 0)
                        return -ENOMEM;
        return 0;
}

static int k_capabilities(struct policy *p, const char *v, char *why, size_t n) {
        _cleanup_strv_free_ char **w = NULL;
        uint64_t caps = 0;

        if (split_words(v, &w) < 0)
                return WHY("empty; use 'none' or capability names");
        for (char **c = w; *c; c++) {
                cap_value_t cv;
                size_t len = strlen(*c);
                if (len && (*c)[len - 1] == ',')
                        (*c)[len - 1] = 0;
                if (strcmp(*c, "none") == 0 && !w[1])
                        break;
                if (cap_from_name(*c, &cv) < 0 || strncasecmp(*c, "CAP_", 4) != 0)
                        return WHY("'%s' is not a capability name (e.g. CAP_NET_BIND_SERVICE), "
                                   "or 'none'", *c);
                caps |= 1ULL << cv;
        }
        p->caps = caps;
        p->caps_set = true;
        return 0;
}

static int k_seccomp(struct policy *p, const char *v, char *why, size_t n) {
        if (strcmp(v, "default") != 0 && strcmp(v, "strict") != 0 && strcmp(v, "none") != 0 &&
            v[0] != '/')
                return WHY("must be 'default', 'strict', 'none' or an absolute path, not '%s'", v);
        return set_string(&p->seccomp, v);
}

static const struct key_def {
        const char *section, *key, *name;
        key_parser parse;
        bool repeatable;
} keys[_KEY_MAX] = {
#define K(s, k, fn, rep) { s, k, "[" s "] " k, fn, rep }
        [KEY_EXEC] = K("service", "exec", k_exec, false),
        [KEY_DIRECTORY] = K("service", "directory", k_directory, false),
        [KEY_USER] = K("service", "user", k_user, false),
        [KEY_GROUP] = K("service", "group", k_group, false),
        [KEY_ENVIRONMENT] = K("service", "environment", k_environment, true),
        [KEY_RESTART] = K("service", "restart", k_restart, false),
        [KEY_RESTART_DELAY] = K("service", "restart-delay", k_restart_delay, false),
        [KEY_RESTART_BURST] = K("service", "restart-burst", k_restart_burst, false),
        [KEY_PORT] = K("listen", "port", k_port, true),
        [KEY_TAKEOVER] = K("listen", "takeover", k_takeover, false),
        [KEY_PROBE] = K("ready", "probe", k_probe, false),
        [KEY_READY_TIMEOUT] = K("ready", "timeout", k_ready_timeout, false),
        [KEY_QUIET_PROCS] = K("drain", "quiet-procs", k_quiet, false),
        [KEY_SETTLE] = K("drain", "settle", k_settle, false),
        [KEY_STOP_SIGNAL] = K("drain", "stop-signal", k_stop_signal, false),
        [KEY_DRAIN_TIMEOUT] = K("drain", "timeout", k_drain_timeout, false),
        [KEY_IDLE] = K("drain", "idle", k_idle, false),
        [KEY_IDLE_INTERVAL] = K("drain", "idle-interval", k_idle_interval, false),
        [KEY_IDLE_TIMEOUT] = K("drain", "idle-timeout", k_idle_timeout, false),
        [KEY_POLL_INTERVAL] = K("drain", "poll-interval", k_poll_interval, false),
        [KEY_MEMORY] = K("limits", "memory", k_memory, false),
        [KEY_PIDS] = K("limits", "pids", k_pids, false),
        [KEY_CPU] = K("limits", "cpu", k_cpu, false),
        [KEY_NOFILE] = K("limits", "nofile", k_nofile, false),
        [KEY_NPROC] = K("limits", "nproc", k_nproc, false),
        [KEY_CORE] = K("limits", "core", k_core, false),
        [KEY_CAPABILITIES] = K("sandbox", "capabilities", k_capabilities, false),
        [KEY_SECCOMP] = K("sandbox", "seccomp", k_seccomp, false),
        [KEY_UTS] = K("sandbox", "uts", k_uts, false),
        [KEY_IPC] = K("sandbox", "ipc", k_ipc, false),
        [KEY_PRIVATE_TMP] = K("sandbox", "private-tmp", k_private_tmp, false),
        [KEY_PRIVATE_USERS] = K("sandbox", "private-users", k_private_users, false),
        [KEY_PRIVATE_PIDS] = K("sandbox", "private-pids", k_private_pids, false),
        [KEY_PRIVATE_DEVICES] = K("sandbox", "private-devices", k_private_devices, false),
        [KEY_PROTECT_SYSTEM] = K("sandbox", "protect-system", k_protect_system, false),
        [KEY_PROTECT_KERNEL] = K("sandbox", "protect-kernel", k_protect_kernel, false),
        [KEY_PROTECT_CGROUPS] = K("sandbox", "protect-cgroups", k_protect_cgroups, false),
        [KEY_WRITABLE] = K("sandbox", "writable", k_writable, true),
        [KEY_READABLE] = K("sandbox", "readable", k_readable, true),
        [KEY_HOSTS] = K("sandbox", "hosts", k_hosts, true),
        [KEY_DNS] = K("sandbox", "dns", k_dns, true),
        [KEY_HOST_PORTS] = K("sandbox", "host-ports", k_host_ports, false),
};

#undef K

const char *policy_key_to_string(enum policy_key k) {
        return (unsigned)k < _KEY_MAX ? keys[k].name : NULL;
}

static void fail(struct parse_ctx *c, const char *fmt, ...) _printf_(2, 3);
static void fail(struct parse_ctx *c, const char *fmt, ...) {
        char msg[768];
        va_list ap;

        if (c->failed)
                return;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        err_setx(EINVAL, "%s:%u: %s", c->file, c->line, msg);
        c->failed = true;
}

static void allowed_keys(const char *section, char *buf, size_t n) {
        size_t used = 0;
        buf[0] = 0;
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (strcmp(keys[i].section, section) == 0)
                        used += snprintf(buf + used, used < n ? n - used : 0, "%s%s",
                                         used ? ", " : "", keys[i].key);
}

static int handle_key(struct parse_ctx *c, enum policy_key k, const char *v) {
        const char *name = policy_key_to_string(k);
        char why[512] = "";
        int r;

        /* inih hands an indented line on as more of the value before it. */
        if (c->indented && c->prev_key == (int)k) {
                fail(c, "%s: this line starts with white space, so it would continue the value "
                     "of line %u; a value is one line: remove the indentation", name, c->prev_line);
                return 0;
        }
        c->prev_key = k;
        c->prev_line = c->line;
        if (c->p->line[k] && !keys[k].repeatable) {
                fail(c, "%s given again (first at line %u)", name, c->p->line[k]);
                return 0;
        }
        if (!c->p->line[k])
                c->p->line[k] = c->line;
        if (!*v) {
                fail(c, "%s: empty value", name);
                return 0;
        }
        r = keys[k].parse(c->p, v, why, sizeof(why));
        if (r == -ENOMEM)
                fail(c, "out of memory");
        else if (r < 0)
                fail(c, "%s: %s", name, why);
        return r < 0 ? 0 : 1;
}

static int handler(void *user, const char *section, const char *key, const char *value) {
        struct parse_ctx *c = user;
        _cleanup_free_ char *v = strdup(value);
        char allowed[256];
        bool section_known = false;

        if (!v)
                return 0;
        /* Inline comments: '#' after white space (inih itself knows only ';'). */
        for (char *h = v; (h = strchr(h, '#')); h++)
                if (h > v && (h[-1] == ' ' || h[-1] == '\t')) {
                        *h = 0;
                        break;
                }
        for (size_t l = strlen(v); l && (v[l - 1] == ' ' || v[l - 1] == '\t');)
                v[--l] = 0;

        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                if (strcmp(keys[i].section, section) != 0)
                        continue;
                section_known = true;
                if (strcmp(keys[i].key, key) != 0)
                        continue;
                return handle_key(c, i, v);
        }
        if (!section_known)
                fail(c, "unknown section [%s] (allowed: service, listen, ready, drain, limits, "
                     "sandbox)", section);
        else {
                allowed_keys(section, allowed, sizeof(allowed));
                fail(c, "unknown key '%s' in [%s] (allowed: %s)", key, section, allowed);
        }
        return 0;
}

/* inih gives no line numbers to the handler on Debian; a reader that counts
 * lines does. */
static char *reader(char *str, int num, void *stream) {
        struct parse_ctx *c = stream;
        char *r;

        if (c->f)
                r = fgets(str, num, c->f);
        else {
                size_t len;
                if (!*c->text)
                        return NULL;
                len = strcspn(c->text, "\n");
                if (c->text[len] == '\n')
                        len++;
                if (len > (size_t)num - 1)
                        len = num - 1;
                memcpy(str, c->text, len);
                str[len] = 0;
                c->text += len;
                r = str;
        }
        if (r) {
                c->line++;
                c->indented = r[0] == ' ' || r[0] == '\t';
                if (r[strspn(r, " \t")] == '[')
                        c->prev_key = -1;
        }
        return r;
}

bool policy_name_valid(const char *name) {
        size_t len = strlen(name);
        if (len == 0 || len > POLICY_NAME_MAX || !isalnum((unsigned char)name[0]))
                return false;
        for (const char *c = name; *c; c++)
                if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '-' ||
                      *c == '_'))
                        return false;
        return true;
}

static struct policy *policy_new(const char *name, const char *path) {
        struct policy *p = calloc(1, sizeof(*p));
        if (!p)
                return NULL;
        p->refs = 1;
        p->restart_delay_usec = USEC_PER_SEC;
        p->restart_burst = 5;
        p->name = strdup(name);
        p->path = strdup(path);
        p->probe = PROBE_TCP;
        p->ready_timeout_usec = 10 * USEC_PER_SEC;
        p->quiet_procs = QUIET_BASELINE;
        p->settle_usec = 200 * USEC_PER_MSEC;
        p->drain_timeout_usec = 60 * USEC_PER_SEC;
        p->idle_interval_usec = USEC_PER_SEC;
        p->idle_timeout_usec = 5 * USEC_PER_SEC;
        p->poll_interval_usec = 50 * USEC_PER_MSEC;
        p->new_uts = p->new_ipc = p->private_tmp = true;
        p->private_users = p->private_pids = p->private_devices = true;
        p->protect_system = p->protect_kernel = p->protect_cgroups = true;
        if (!p->name || !p->path) {
                policy_free(p);
                return NULL;
        }
        return p;
}

static int parse_common(struct parse_ctx *c, const char *name, struct policy **ret) {
        int r;

        if (!policy_name_valid(name))
                return err_setx(EINVAL, "%s: service name '%s' is not valid: 1-%d characters "
                                "of a-z, 0-9, '-' and '_', starting with a letter or digit",
                                c->file, name, POLICY_NAME_MAX);
        c->p = policy_new(name, c->file);
        if (!c->p)
                return err_set(ENOMEM, "%s", c->file);
        r = ini_parse_stream(reader, c, handler, c);
        if (r > 0 && !c->failed) {
                c->line = r;
                fail(c, "syntax error (expected [section] or key = value, lines of at most "
                     "199 characters)");
        }
        if (r < 0 && !c->failed)
                fail(c, "cannot read the file");
        if (!c->failed && !c->p->line[KEY_EXEC])
                fail(c, "[service] exec is missing: say what to run");
        if (!c->failed && c->p->n_ports == 0)
                fail(c, "[listen] port is missing: say which public port goes to which port "
                     "inside each generation (e.g. port = 8080:9501/tcp)");
        if (c->failed) {
                policy_free(TAKE_PTR(c->p));
                return -EINVAL;
        }
        *ret = TAKE_PTR(c->p);
        return 0;
}

int policy_parse_string(const char *name, const char *text, struct policy **ret) {
        struct parse_ctx c = { .file = name, .text = text, .prev_key = -1 };
        return parse_common(&c, name, ret);
}

int policy_load(const char *path, struct policy **ret) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        struct parse_ctx c = { .file = path, .f = f, .prev_key = -1 };
        const char *base = strrchr(path, '/');
        _cleanup_free_ char *name = NULL;
        size_t len;

        if (!f)
                return err_set(errno, "open(%s)", path);
        base = base ? base + 1 : path;
        len = strlen(base);
        if (len <= 7 || strcmp(base + len - 7, ".policy") != 0)
                return err_setx(EINVAL, "%s: a policy file must be named SERVICE.policy", path);
        name = strndup(base, len - 7);
        if (!name)
                return err_set(ENOMEM, "%s", path);
        return parse_common(&c, name, ret);
}

struct policy *policy_ref(struct policy *p) {
        if (p)
                p->refs++;
        return p;
}

void policy_unref(struct policy *p) {
        if (p && --p->refs == 0)
                policy_free(p);
}

void policy_free(struct policy *p) {
        if (!p)
                return;
        free(p->name);
        free(p->path);
        strv_free(p->argv);
        free(p->directory);
        free(p->user);
        free(p->group);
        strv_free(p->env);
        free(p->probe_path);
        strv_free(p->probe_argv);
        strv_free(p->idle_argv);
        free(p->idle_path);
        free(p->seccomp);
        strv_free(p->writable);
        strv_free(p->readable);
        strv_free(p->hosts);
        strv_free(p->dns);
        free(p);
}

int policy_check_conflicts(struct policy *const *p, unsigned n) {
        for (unsigned a = 0; a < n; a++)
                for (unsigned b = a + 1; b < n; b++)
                        for (unsigned i = 0; i < p[a]->n_ports; i++)
                                for (unsigned j = 0; j < p[b]->n_ports; j++)
                                        if (p[a]->ports[i].public_port ==
                                                    p[b]->ports[j].public_port &&
                                            p[a]->ports[i].proto == p[b]->ports[j].proto)
                                                return err_setx(EINVAL,
                                                        "%s and %s both claim public port %u/%s",
                                                        p[a]->path, p[b]->path,
                                                        p[a]->ports[i].public_port,
                                                        proto_to_string(p[a]->ports[i].proto));
        return 0;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The NAME.policy files of dir, in name order (NULL when there are none). */
static int list_policy_files(const char *dir, char ***ret) {
        _cleanup_strv_free_ char **files = NULL;
        DIR *d = opendir(dir);
        struct dirent *de;

        if (!d)
                return err_set(errno, "opendir(%s)", dir);
        while ((de = readdir(d))) {
                size_t len = strlen(de->d_name);
                char *path;
                if (de->d_name[0] == '.' || len <= 7 || strcmp(de->d_name + len - 7, ".policy"))
                        continue;
                if (asprintf(&path, "%s/%s", dir, de->d_name) < 0 || strv_push(&files, path) < 0) {
                        closedir(d);
                        return err_set(ENOMEM, "%s", dir);
                }
        }
        closedir(d);
        if (files)
                qsort(files, strv_length(files), sizeof(char *), cmp_str);
        *ret = TAKE_PTR(files);
        return 0;
}

static void policies_free(struct policy **v, unsigned n) {
        for (unsigned i = 0; i < n; i++)
                policy_free(v[i]);
        free(v);
}

/* on_error NULL: the first bad file fails the whole set. */
int policy_load_dir_each(const char *dir, policy_check_fn check, policy_error_fn on_error,
                         void *userdata, struct policy ***ret, unsigned *ret_n) {
        _cleanup_strv_free_ char **files = NULL;
        struct policy **v;
        unsigned n = 0;
        int r, bad = 0;

        if ((r = list_policy_files(dir, &files)) < 0)
                return r;
        v = calloc(strv_length(files) + 1, sizeof(*v));
        if (!v)
                return err_set(ENOMEM, "%s", dir);
        for (char **f = files; f && *f; f++) {
                r = policy_load(*f, &v[n]);
                if (r >= 0 && check && (r = check(v[n])) < 0)
                        policy_free(TAKE_PTR(v[n]));
                if (r >= 0 && (r = policy_check_conflicts(v, n + 1)) < 0)
                        policy_free(TAKE_PTR(v[n]));
                if (r >= 0)
                        n++;
                else if (r == -ENOMEM || !on_error) {
                        policies_free(v, n);
                        return r;
                } else {
                        on_error(err_msg(), userdata);
                        bad++;
                }
        }
        *ret = v;
        *ret_n = n;
        return bad;
}

int policy_load_dir(const char *dir, struct policy ***ret, unsigned *ret_n) {
        int r = policy_load_dir_each(dir, NULL, NULL, NULL, ret, ret_n);
        return r < 0 ? r : 0;
}
