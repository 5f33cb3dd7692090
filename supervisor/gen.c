/* gen: the operator's command; talks to gend over its socket. See gen(8). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../policy/policy.h"
#include "../sandbox/util.h"

/* gen(8) EXIT STATUS. 3: it did what was asked, but a generation it
 * waited for was removed by force (its drain timeout, or --now), not
 * clean: something was cut. */
enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_FORCED = 3 };

static const char *socket_path = "/run/gen/gend.sock";
static bool json_out;
static bool said_draining;              /* a draining event was printed */

static const char *plural(long long n, const char *one, const char *many) {
        return n == 1 ? one : many;
}

static const char *ms(char *buf, size_t n, json_t *j, const char *key) {
        return format_duration(buf, n, (uint64_t)json_integer_value(json_object_get(j, key)) *
                                               USEC_PER_MSEC);
}

static void print_block(const char *indent, const char *text) {
        for (const char *l = text; l && *l;) {
                size_t len = strcspn(l, "\n");
                printf("%s%.*s\n", indent, (int)len, l);
                l += len + (l[len] == '\n');
        }
}

/* The idle probe's last word: "idle probe exec /x: busy 0.4 s ago (exit
 * status 1)", then its output, indented. */
static void print_idle(const char *indent, json_t *idle, const char *ago_word) {
        char t[32], in2[64];
        const char *out = json_string_value(json_object_get(idle, "output"));

        if (!json_is_true(json_object_get(idle, "valid"))) {
                printf("%sidle probe %s: %s\n", indent,
                       json_string_value(json_object_get(idle, "probe")) ?: "?",
                       json_is_true(json_object_get(idle, "running")) ? "its first run is under way"
                                                                      : "no run has finished");
                return;
        }
        printf("%sidle probe %s: %s %s %s (%s)%s\n", indent,
               json_string_value(json_object_get(idle, "probe")) ?: "?",
               json_is_true(json_object_get(idle, "passed")) ? "idle" : "busy",
               ms(t, sizeof(t), idle, "age_ms"), ago_word,
               json_string_value(json_object_get(idle, "why")) ?: "",
               out && *out ? ":" : ", no output");
        snprintf(in2, sizeof(in2), "%s  ", indent);
        print_block(in2, out);
        if (json_is_true(json_object_get(idle, "truncated")))
                printf("%s(more output was cut at 4 KiB)\n", in2);
}

/* What a forced drain cut: the processes above the quiet level, the live
 * connections, and the idle probe's last word. */
static void print_cut(const char *indent, json_t *cut) {
        json_t *v, *idle = json_object_get(cut, "idle");
        long long above = json_integer_value(json_object_get(cut, "procs")) -
                          json_integer_value(json_object_get(cut, "quiet_procs"));
        long long conns = json_integer_value(json_object_get(cut, "conns"));
        size_t i, np = json_array_size(json_object_get(cut, "processes"));
        size_t nc = json_array_size(json_object_get(cut, "connections"));

        json_array_foreach(json_object_get(cut, "processes"), i, v)
                printf("%scut process %lld: %s\n", indent,
                       json_integer_value(json_object_get(v, "pid")),
                       json_string_value(json_object_get(v, "cmdline")) ?: "?");
        if (above > (long long)np)
                printf("%sand %lld more %s\n", indent, above - (long long)np,
                       plural(above - (long long)np, "process", "processes"));
        json_array_foreach(json_object_get(cut, "connections"), i, v) {
                const char *st = json_string_value(json_object_get(v, "state")) ?: "";
                printf("%scut connection %s %s -> %s%s%s\n", indent,
                       json_string_value(json_object_get(v, "proto")) ?: "?",
                       json_string_value(json_object_get(v, "peer")) ?: "?",
                       json_string_value(json_object_get(v, "to")) ?: "?", *st ? " " : "", st);
        }
        if (conns > (long long)nc)
                printf("%sand %lld more %s\n", indent, conns - (long long)nc,
                       plural(conns - (long long)nc, "connection", "connections"));
        if (idle)
                print_idle(indent, idle, "before");
}

static const char *forced_by(json_t *j) {
        const char *by = json_string_value(json_object_get(j, "forced_by")) ?:
                         json_string_value(json_object_get(json_object_get(j, "cut"), "by"));
        return by && !strcmp(by, "now") ? "--now" : "drain timeout";
}

/* A progress event from gend, as a sentence. */
static void print_event(json_t *e) {
        const char *ev = json_string_value(json_object_get(e, "event"));
        const char *state = json_string_value(json_object_get(e, "state")) ?: "";
        const char *from = json_string_value(json_object_get(e, "from")) ?: "";
        const char *addr = json_string_value(json_object_get(e, "address")) ?: "";
        long long n = json_integer_value(json_object_get(e, "generation"));
        char t1[32], t2[32];

#define I(k) json_integer_value(json_object_get(e, k))
        if (ev && strcmp(ev, "created") == 0)
                printf("generation %lld created: pid %lld, address %s, log %s\n", n, I("pid"), addr,
                       json_string_value(json_object_get(e, "log")) ?: "");
        else if (!strcmp(state, "ready"))
                printf("generation %lld ready after %s (baseline %lld %s)\n", n,
                       ms(t1, sizeof(t1), e, "ready_ms"), I("baseline"),
                       plural(I("baseline"), "process", "processes"));
        else if (!strcmp(state, "active"))
                printf("switched: new connections to %s go to generation %lld (%s)\n",
                       json_string_value(json_object_get(e, "service")), n, addr);
        else if (!strcmp(state, "draining") && json_is_true(json_object_get(e, "forced"))) {
                printf("generation %lld draining: retiring it now (--now)\n", n);
                said_draining = true;
        } else if (!strcmp(state, "draining")) {
                const char *sig = json_string_value(json_object_get(e, "stop_signal"));
                const char *idle = json_string_value(json_object_get(e, "idle_probe"));
                printf("generation %lld draining: waiting for at most %lld %s and no connections"
                       "%s%s%s for %s%s%s, at most %s\n", n, I("quiet_procs"),
                       plural(I("quiet_procs"), "process", "processes"),
                       idle ? " and its idle probe (" : "", idle ? idle : "", idle ? ") passing" : "",
                       ms(t1, sizeof(t1), e, "settle_ms"), sig ? ", sent SIG" : "", sig ? sig : "",
                       ms(t2, sizeof(t2), e, "timeout_ms"));
                said_draining = true;
        } else if (!strcmp(state, "retired") && !strcmp(from, "failed"))
                printf("failed generation removed from the list\n");
        else if (!strcmp(state, "retired") && json_is_true(json_object_get(e, "forced"))) {
                json_t *cut = json_object_get(e, "cut");
                json_t *src = cut ? cut : e;
                long long procs = json_integer_value(json_object_get(src, "procs"));
                long long conns = json_integer_value(json_object_get(src, "conns"));
                printf("generation %lld retired: forced after %s (%s), not clean: %lld %s, %lld %s "
                       "left", n, ms(t1, sizeof(t1), cut ? cut : e, cut ? "after_ms" : "drain_ms"),
                       forced_by(e), procs, plural(procs, "process", "processes"), conns,
                       plural(conns, "connection", "connections"));
                if (cut)
                        printf(" (quiet level %lld)",
                               json_integer_value(json_object_get(cut, "quiet_procs")));
                printf("\n");
                if (cut)
                        print_cut("  ", cut);
        } else if (!strcmp(state, "retired"))
                printf("generation %lld retired: clean after %s\n", n,
                       ms(t1, sizeof(t1), e, "drain_ms"));
#undef I
        fflush(stdout);
}

static int usage(void) {
        fprintf(stderr,
                "usage: gen [-s SOCKET] COMMAND ...\n"
                "  new SERVICE [--dir DIR] [--no-switch] [--wait]\n"
                "  switch SERVICE GEN\n"
                "  rollback SERVICE\n"
                "  retire SERVICE GEN [--timeout T] [--now] [--force] [--wait]\n"
                "  list [SERVICE] [--json]\n"
                "  status SERVICE [--json]\n"
                "  logs SERVICE [GEN] [-f]\n"
                "  reload\n");
        return EXIT_USAGE;
}

static int connect_gend(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0 || strlen(socket_path) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "gen: socket: %s\n", strerror(errno));
                return -1;
        }
        strcpy(sa.sun_path, socket_path);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                fprintf(stderr, "gen: connect(%s): %s; is gend running?\n", socket_path,
                        strerror(errno));
                close(fd);
                return -1;
        }
        return fd;
}

/* Sends the request, prints progress lines, returns the final answer. */
static json_t *call(json_t *req) {
        char *s = json_dumps(req, JSON_COMPACT);
        FILE *f;
        char *line = NULL;
        size_t cap = 0;
        json_t *final = NULL;
        int fd = connect_gend();

        json_decref(req);
        if (fd < 0) {
                free(s);
                return NULL;
        }
        /* gend may refuse at once and close: its answer is still there to read. */
        if (dprintf(fd, "%s\n", s) < 0 && errno != EPIPE && errno != ECONNRESET) {
                fprintf(stderr, "gen: write(%s): %s\n", socket_path, strerror(errno));
                free(s);
                close(fd);
                return NULL;
        }
        free(s);
        f = fdopen(fd, "r");
        while (f && getline(&line, &cap, f) > 0) {
                json_t *j = json_loads(line, 0, NULL);
                if (json_object_get(j, "event") && !json_out)
                        print_event(j);
                if (json_object_get(j, "ok")) {
                        final = j;
                        break;
                }
                json_decref(j);
        }
        free(line);
        if (f)
                fclose(f);
        if (!final)
                fprintf(stderr, "gen: gend closed the connection without an answer\n");
        return final;
}

static int finish(json_t *r) {
        const char *state;
        bool forced;

        if (!r)
                return EXIT_FAILED;
        if (!json_is_true(json_object_get(r, "ok"))) {
                fprintf(stderr, "gen: %s\n", json_string_value(json_object_get(r, "error")));
                json_decref(r);
                return EXIT_FAILED;
        }
        state = json_string_value(json_object_get(r, "state"));
        if (state && !strcmp(state, "draining") && !said_draining && !json_out)
                printf("generation %lld is draining\n",
                       json_integer_value(json_object_get(r, "generation")));
        forced = json_is_true(json_object_get(r, "forced"));
        json_decref(r);
        return forced ? EXIT_FORCED : EXIT_OK;
}

/* A generation number: 1 to 2^32-2, nothing else. */
static bool parse_gen(const char *s, long *ret) {
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (!*s || *end || errno || v <= 0 || v >= (long)UINT32_MAX) {
                fprintf(stderr, "gen: '%s' is not a generation number (1 to %u)\n", s,
                        UINT32_MAX - 1);
                return false;
        }
        *ret = v;
        return true;
}

#define ROW_FMT "%-10s %4s %-9s %7s %6s %6s %12s %-15s\n"
#define NOTE "           "         /* lines under a row */

static void print_header(void) {
        printf(ROW_FMT, "SERVICE", "GEN", "STATE", "PID", "PROCS", "CONNS", "AGE", "ADDRESS");
}

static void print_row(const char *svc, json_t *g) {
        char gen[16], pid[16], procs[16], conns[16], age[32];

#define I(k) json_integer_value(json_object_get(g, k))
        snprintf(gen, sizeof(gen), "%lld", I("generation"));
        snprintf(pid, sizeof(pid), "%lld", I("pid"));
        snprintf(procs, sizeof(procs), "%lld", I("procs"));
        snprintf(conns, sizeof(conns), "%lld", I("conns"));
        printf(ROW_FMT, svc, gen, json_string_value(json_object_get(g, "state")), pid, procs,
               conns, ms(age, sizeof(age), g, "age_ms"),
               json_string_value(json_object_get(g, "address")) ?: "");
#undef I
}

static void print_drain(json_t *g, json_t *dr) {
        char t1[32], t2[32];
        long long pr = json_integer_value(json_object_get(g, "procs"));
        long long co = json_integer_value(json_object_get(g, "conns"));
        json_t *idle = json_object_get(dr, "idle");

        printf(NOTE "draining %s of at most %s: %lld %s (quiet at %lld), %lld %s\n",
               ms(t1, sizeof(t1), dr, "elapsed_ms"), ms(t2, sizeof(t2), dr, "timeout_ms"), pr,
               plural(pr, "process", "processes"),
               json_integer_value(json_object_get(dr, "quiet_procs")), co,
               plural(co, "connection", "connections"));
        if (idle)
                print_idle(NOTE, idle, "ago");
}

/* A live generation: its row, and what a person needs to know about it. */
static void print_live(const char *svc, json_t *g, bool detail) {
        json_t *dr = json_object_get(g, "drain");
        json_int_t oom = json_integer_value(json_object_get(g, "oom_kills"));
        json_int_t pids = json_integer_value(json_object_get(g, "pids_refused"));
        json_int_t ro = json_integer_value(json_object_get(g, "restart_of"));
        const char *why = json_string_value(json_object_get(g, "failure"));

        print_row(svc, g);
        if (detail && dr)
                print_drain(g, dr);
        if (detail && (oom || pids))
                printf(NOTE "limits hit: %lld OOM %s, %lld %s refused at the pids limit\n",
                       (long long)oom, plural(oom, "kill", "kills"), (long long)pids,
                       plural(pids, "fork", "forks"));
        if (ro)
                printf(NOTE "restarted: replaced crashed generation %lld\n", (long long)ro);
        if (why)
                printf(NOTE "%s\n", why);
}

/* A generation that is gone, kept in the list because its drain was forced. */
static void print_retired(const char *svc, json_t *r, bool detail) {
        json_t *cut = json_object_get(r, "cut");
        long long procs = json_integer_value(json_object_get(cut, "procs"));
        long long conns = json_integer_value(json_object_get(cut, "conns"));
        char t1[32], t2[32];

        print_row(svc, r);
        printf(NOTE "forced %s ago after %s (%s), not clean: %lld %s, %lld %s left (quiet level "
               "%lld)%s\n", ms(t1, sizeof(t1), r, "retired_ms"),
               ms(t2, sizeof(t2), cut, "after_ms"), forced_by(r), procs,
               plural(procs, "process", "processes"), conns,
               plural(conns, "connection", "connections"),
               json_integer_value(json_object_get(cut, "quiet_procs")),
               detail ? "" : "; gen status says what");
        if (detail && cut)
                print_cut(NOTE "  ", cut);
}

static void print_service_head(json_t *s) {
        json_t *p;
        size_t k;
        json_int_t a = json_integer_value(json_object_get(s, "active"));
        json_int_t rs = json_integer_value(json_object_get(s, "restarts"));

        printf("service %s (%s)\n  ports:", json_string_value(json_object_get(s, "service")),
               json_string_value(json_object_get(s, "policy")) ?:
               "policy gone: retire its generations");
        json_array_foreach(json_object_get(s, "ports"), k, p)
                printf(" %s", json_string_value(p));
        if (a)
                printf("\n  active: generation %lld\n", (long long)a);
        else
                printf("\n  active: none (not serving)\n");
        if (rs)
                printf("  restarts: %lld (a crashed active generation replaced)\n", (long long)rs);
}

/* One header for the whole list; gen status one service, with its head. */
static void print_table(json_t *services, bool detail) {
        size_t i;
        json_t *s;

        if (!detail)
                print_header();
        json_array_foreach(services, i, s) {
                const char *name = json_string_value(json_object_get(s, "service"));
                json_t *gens = json_object_get(s, "generations");
                json_t *ret = json_object_get(s, "retired");
                size_t gi = 0, ri = json_array_size(ret);     /* retired: newest first */

                if (detail) {
                        print_service_head(s);
                        print_header();
                }
                /* Both by generation number. */
                while (gi < json_array_size(gens) || ri > 0) {
                        json_t *g = json_array_get(gens, gi), *r = ri ? json_array_get(ret, ri - 1) : NULL;
                        if (g && (!r || json_integer_value(json_object_get(g, "generation")) <
                                                json_integer_value(json_object_get(r, "generation")))) {
                                print_live(name, g, detail);
                                gi++;
                        } else {
                                print_retired(name, r, detail);
                                ri--;
                        }
                }
        }
}

static int cmd_list(json_t *req, bool detail) {
        json_t *r = call(req);

        if (!r || !json_is_true(json_object_get(r, "ok")))
                return finish(r);
        if (json_out) {
                json_object_del(r, "ok");
                json_dumpf(r, stdout, JSON_INDENT(2));
                printf("\n");
        } else {
                json_t *u;
                size_t i;
                print_table(json_object_get(r, "services"), detail);
                json_array_foreach(json_object_get(r, "unmanaged"), i, u)
                        fprintf(stderr, "gen: warning: a record gend could not take back, so "
                                "what it describes is not managed: %s\n", json_string_value(u));
        }
        json_decref(r);
        return EXIT_OK;
}

static int cmd_logs(const char *svc, long gen, bool follow) {
        json_t *r = call(json_pack("{s:s,s:s}", "cmd", "list", "service", svc));
        json_t *g, *s, *pick = NULL;
        const char *log_dir;
        char *argv[6], *path = NULL;
        size_t i;
        int n = 0;

        if (!r || !json_is_true(json_object_get(r, "ok")))
                return finish(r);
        s = json_array_get(json_object_get(r, "services"), 0);
        json_array_foreach(json_object_get(s, "generations"), i, g) {
                long n_g = (long)json_integer_value(json_object_get(g, "generation"));
                if (gen ? n_g == gen : n_g == json_integer_value(json_object_get(s, "active")) ||
                                           !pick)
                        pick = g;
        }
        log_dir = json_string_value(json_object_get(r, "log_dir"));
        if (pick)
                path = strdup(json_string_value(json_object_get(pick, "log")) ?: "");
        else if (gen && log_dir && asprintf(&path, "%s/%s/%ld.log", log_dir, svc, gen) >= 0 &&
                 access(path, F_OK) < 0) {
                /* Retired: its log stays until it is removed (logrotate, or by hand). */
                fprintf(stderr, "gen: %s has no generation %ld, and no log of one (%s: %s)\n",
                        svc, gen, path, strerror(errno));
                free(path);
                json_decref(r);
                return EXIT_FAILED;
        }
        json_decref(r);
        if (!path || !*path) {
                fprintf(stderr, "gen: %s has no generation%s to show logs of\n", svc,
                        gen ? " by that number" : "");
                free(path);
                return EXIT_FAILED;
        }
        argv[n++] = "tail";
        argv[n++] = "-n";
        argv[n++] = follow ? "50" : "+1";
        if (follow)
                argv[n++] = "-F";
        argv[n++] = path;
        argv[n] = NULL;
        execvp("tail", argv);
        fprintf(stderr, "gen: exec(tail): %s\n", strerror(errno));
        return EXIT_FAILED;
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "dir", required_argument, NULL, 'd' }, { "no-switch", no_argument, NULL, 'S' },
                { "wait", no_argument, NULL, 'w' },      { "timeout", required_argument, NULL, 't' },
                { "now", no_argument, NULL, 'N' },       { "force", no_argument, NULL, 'F' },
                { "json", no_argument, NULL, 'j' },      { "follow", no_argument, NULL, 'f' },
                { "socket", required_argument, NULL, 's' }, { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *dir = NULL, *env = getenv("GEN_SOCKET");
        bool no_switch = false, wait = false, now = false, force = false, follow = false;
        uint64_t timeout = 0;
        const char *cmd;
        long gen = 0;
        int c;

        if (env && *env)
                socket_path = env;
        signal(SIGPIPE, SIG_IGN);
        while ((c = getopt_long(argc, argv, "+s:fh", opts, NULL)) != -1)
                if (c == 's')
                        socket_path = optarg;
                else
                        return usage();
        if (optind >= argc)
                return usage();
        cmd = argv[optind];
        /* The command's own options, before or after its words: getopt
         * again over what follows the command (optind 0 resets GNU getopt). */
        argc -= optind;
        argv += optind;
        optind = 0;
        while ((c = getopt_long(argc, argv, "fs:", opts, NULL)) != -1)
                switch (c) {
                case 'd': dir = optarg; break;
                case 'S': no_switch = true; break;
                case 'w': wait = true; break;
                case 'N': now = true; break;
                case 'F': force = true; break;
                case 'j': json_out = true; break;
                case 'f': follow = true; break;
                case 's': socket_path = optarg; break;
                case 't':
                        if (parse_duration(optarg, &timeout) < 0) {
                                fprintf(stderr, "gen: --timeout %s: not a duration (e.g. 30s)\n",
                                        optarg);
                                return EXIT_USAGE;
                        }
                        break;
                default: return usage();
                }
        char **args = argv + optind;
        int nargs = argc - optind;

        if (!strcmp(cmd, "new") && nargs == 1)
                return finish(call(json_pack("{s:s,s:s,s:s?,s:b,s:b}", "cmd", "new", "service",
                                             args[0], "dir", dir, "switch", !no_switch, "wait",
                                             wait)));
        if (!strcmp(cmd, "switch") && nargs == 2 && parse_gen(args[1], &gen))
                return finish(call(json_pack("{s:s,s:s,s:I}", "cmd", "switch", "service", args[0],
                                             "generation", (json_int_t)gen)));
        if (!strcmp(cmd, "rollback") && nargs == 1)
                return finish(call(json_pack("{s:s,s:s}", "cmd", "rollback", "service", args[0])));
        if (!strcmp(cmd, "retire") && nargs == 2 && parse_gen(args[1], &gen))
                return finish(call(json_pack("{s:s,s:s,s:I,s:I,s:b,s:b,s:b}", "cmd", "retire",
                                             "service", args[0], "generation", (json_int_t)gen,
                                             "timeout_ms", (json_int_t)(timeout / 1000), "now", now,
                                             "force", force, "wait", wait || now)));
        if (!strcmp(cmd, "list") && nargs <= 1)
                return cmd_list(nargs ? json_pack("{s:s,s:s}", "cmd", "list", "service", args[0])
                                      : json_pack("{s:s}", "cmd", "list"), false);
        if (!strcmp(cmd, "status") && nargs == 1)
                return cmd_list(json_pack("{s:s,s:s}", "cmd", "status", "service", args[0]), true);
        if (!strcmp(cmd, "logs") && (nargs == 1 || (nargs == 2 && parse_gen(args[1], &gen))))
                return cmd_logs(args[0], gen, follow);
        if (!strcmp(cmd, "reload") && nargs == 0) {
                json_t *r = call(json_pack("{s:s}", "cmd", "reload"));
                if (r && json_is_true(json_object_get(r, "ok")) && !json_out)
                        printf("policies re-read\n");
                return finish(r);
        }
        return usage();
}
