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

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

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
                printf("generation %lld draining: waiting for at most %lld %s and no connections "
                       "for %s%s%s, at most %s\n", n, I("quiet_procs"),
                       plural(I("quiet_procs"), "process", "processes"),
                       ms(t1, sizeof(t1), e, "settle_ms"), sig ? ", sent SIG" : "", sig ? sig : "",
                       ms(t2, sizeof(t2), e, "timeout_ms"));
                said_draining = true;
        } else if (!strcmp(state, "retired") && !strcmp(from, "failed"))
                printf("failed generation removed from the list\n");
        else if (!strcmp(state, "retired") && json_is_true(json_object_get(e, "forced")))
                printf("generation %lld retired: forced after %s: %lld %s, %lld %s left\n", n,
                       ms(t1, sizeof(t1), e, "drain_ms"), I("procs"),
                       plural(I("procs"), "process", "processes"), I("conns"),
                       plural(I("conns"), "connection", "connections"));
        else if (!strcmp(state, "retired"))
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
        json_decref(r);
        return EXIT_OK;
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

static void fmt_age(char *buf, size_t n, long long ms) {
        if (ms < 60000)
                snprintf(buf, n, "%llds", ms / 1000);
        else if (ms < 3600000)
                snprintf(buf, n, "%lldm%02llds", ms / 60000, ms / 1000 % 60);
        else
                snprintf(buf, n, "%lldh%02lldm", ms / 3600000, ms / 60000 % 60);
}

static void print_table(json_t *services, bool detail) {
        size_t i, k;
        json_t *s, *g;
        char age[32];

        if (!detail)
                printf("%-10s %4s %-9s %7s %6s %6s %7s %-15s\n", "SERVICE", "GEN", "STATE", "PID",
                       "PROCS", "CONNS", "AGE", "ADDRESS");
        json_array_foreach(services, i, s) {
                json_t *gens = json_object_get(s, "generations");
                if (detail) {
                        json_t *p;
                        printf("service %s (%s)\n  ports:", json_string_value(json_object_get(s, "service")),
                               json_string_value(json_object_get(s, "policy")) ?:
                               "policy gone: retire its generations");
                        json_array_foreach(json_object_get(s, "ports"), k, p)
                                printf(" %s", json_string_value(p));
                        json_int_t a = json_integer_value(json_object_get(s, "active"));
                        json_int_t rs = json_integer_value(json_object_get(s, "restarts"));
                        if (a)
                                printf("\n  active: generation %lld\n", (long long)a);
                        else
                                printf("\n  active: none (not serving)\n");
                        if (rs)
                                printf("  restarts: %lld (a crashed active generation replaced)\n",
                                       (long long)rs);
                        printf("%-10s %4s %-9s %7s %6s %6s %7s %-15s\n", "SERVICE", "GEN",
                               "STATE", "PID", "PROCS", "CONNS", "AGE", "ADDRESS");
                }
                json_array_foreach(gens, k, g) {
                        fmt_age(age, sizeof(age), json_integer_value(json_object_get(g, "age_ms")));
                        printf("%-10s %4lld %-9s %7lld %6lld %6lld %7s %-15s\n",
                               json_string_value(json_object_get(s, "service")),
                               json_integer_value(json_object_get(g, "generation")),
                               json_string_value(json_object_get(g, "state")),
                               json_integer_value(json_object_get(g, "pid")),
                               json_integer_value(json_object_get(g, "procs")),
                               json_integer_value(json_object_get(g, "conns")), age,
                               json_string_value(json_object_get(g, "address")));
                        json_t *dr = json_object_get(g, "drain");
                        if (detail && dr) {
                                char t1[32], t2[32];
                                long long pr = json_integer_value(json_object_get(g, "procs"));
                                long long co = json_integer_value(json_object_get(g, "conns"));
                                printf("           draining %s of at most %s: %lld %s (quiet at "
                                       "%lld), %lld %s\n", ms(t1, sizeof(t1), dr, "elapsed_ms"),
                                       ms(t2, sizeof(t2), dr, "timeout_ms"), pr,
                                       plural(pr, "process", "processes"),
                                       json_integer_value(json_object_get(dr, "quiet_procs")), co,
                                       plural(co, "connection", "connections"));
                        }
                        json_int_t oom = json_integer_value(json_object_get(g, "oom_kills"));
                        json_int_t pids = json_integer_value(json_object_get(g, "pids_refused"));
                        if (detail && (oom || pids))
                                printf("           limits hit: %lld OOM kill%s, %lld fork%s refused "
                                       "at the pids limit\n", (long long)oom, oom == 1 ? "" : "s",
                                       (long long)pids, pids == 1 ? "" : "s");
                        json_int_t ro = json_integer_value(json_object_get(g, "restart_of"));
                        if (ro)
                                printf("           restarted: replaced crashed generation %lld\n",
                                       (long long)ro);
                        const char *why = json_string_value(json_object_get(g, "failure"));
                        if (why)
                                printf("           %s\n", why);
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
        } else
                print_table(json_object_get(r, "services"), detail);
        json_decref(r);
        return EXIT_OK;
}

static int cmd_logs(const char *svc, long gen, bool follow) {
        json_t *r = call(json_pack("{s:s,s:s}", "cmd", "list", "service", svc));
        json_t *g, *s, *pick = NULL;
        size_t i;
        char *argv[6];
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
        if (!pick) {
                fprintf(stderr, "gen: %s has no generation%s to show logs of\n", svc,
                        gen ? " by that number" : "");
                json_decref(r);
                return EXIT_FAILED;
        }
        argv[n++] = "tail";
        argv[n++] = "-n";
        argv[n++] = follow ? "50" : "+1";
        if (follow)
                argv[n++] = "-F";
        argv[n++] = strdup(json_string_value(json_object_get(pick, "log")));
        argv[n] = NULL;
        json_decref(r);
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
                                             "force", force, "wait", wait)));
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
