/* The policy language (gen.policy(5)): one INI file per service. The
 * parser is pure: no kernel or host access, errors returned through
 * err_msg() as "file:line: ...". policy_validate (validate.c) is the one
 * part that looks at the host. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define POLICY_NAME_MAX 20
#define POLICY_PORTS_MAX 16

enum probe_kind { PROBE_TCP, PROBE_HTTP, PROBE_EXEC };
/* [drain] idle: the application's own word that its tasks are done. */
enum idle_kind { IDLE_NONE, IDLE_HTTP, IDLE_EXEC };

struct port_map {
        uint16_t public_port;
        uint16_t inner_port;
        int proto;                      /* IPPROTO_TCP or IPPROTO_UDP */
};

#define QUIET_BASELINE (-1)

/* Every key of the language, for the line table of struct policy. */
enum policy_key {
        KEY_EXEC, KEY_DIRECTORY, KEY_USER, KEY_GROUP, KEY_ENVIRONMENT,
        KEY_RESTART, KEY_RESTART_DELAY, KEY_RESTART_BURST,
        KEY_PORT, KEY_TAKEOVER,
        KEY_PROBE, KEY_READY_TIMEOUT,
        KEY_QUIET_PROCS, KEY_SETTLE, KEY_STOP_SIGNAL, KEY_DRAIN_TIMEOUT,
        KEY_IDLE, KEY_IDLE_INTERVAL, KEY_IDLE_TIMEOUT, KEY_POLL_INTERVAL,
        KEY_MEMORY, KEY_PIDS, KEY_CPU, KEY_NOFILE, KEY_NPROC, KEY_CORE,
        KEY_CAPABILITIES, KEY_SECCOMP, KEY_UTS, KEY_IPC, KEY_PRIVATE_TMP,
        KEY_PRIVATE_USERS, KEY_PRIVATE_PIDS, KEY_PRIVATE_DEVICES,
        KEY_PROTECT_SYSTEM, KEY_PROTECT_KERNEL, KEY_PROTECT_CGROUPS,
        KEY_WRITABLE, KEY_READABLE, KEY_HOSTS, KEY_DNS, KEY_HOST_PORTS,
        _KEY_MAX,
};

/* The ranges of the values (gen.policy(5) says the same). */
#define READY_TIMEOUT_MAX_USEC (3600 * USEC_PER_SEC)            /* 1h */
#define SETTLE_MAX_USEC (600 * USEC_PER_SEC)                    /* 10m */
#define DRAIN_TIMEOUT_MAX_USEC (24 * 3600 * USEC_PER_SEC)       /* 24h */
#define IDLE_INTERVAL_MIN_USEC (10 * USEC_PER_MSEC)             /* 10ms */
#define IDLE_INTERVAL_MAX_USEC (600 * USEC_PER_SEC)             /* 10m */
#define IDLE_TIMEOUT_MAX_USEC (600 * USEC_PER_SEC)              /* 10m */
#define POLL_INTERVAL_MIN_USEC (10 * USEC_PER_MSEC)             /* 10ms */
#define POLL_INTERVAL_MAX_USEC (10 * USEC_PER_SEC)              /* 10s */
#define POLICY_SIZE_MAX (1ULL << 46)                            /* 64T */

struct policy {
        unsigned refs;                  /* policy_ref / policy_unref */
        char *name;                     /* from the file name */
        char *path;

        char **argv;                    /* [service] exec, split into words */
        char *directory;
        char *user;                     /* NULL: root */
        char *group;
        char **env;                     /* KEY=VALUE */
        bool restart;                   /* on-failure: a crashed active one is replaced */
        uint64_t restart_delay_usec;    /* before the first restart; doubles, to 1 min */
        unsigned restart_burst;         /* at most this many restarts in 10 min */

        struct port_map ports[POLICY_PORTS_MAX];
        unsigned n_ports;
        bool takeover;                  /* forward public ports a host socket holds */
        bool host_ports_closed;         /* [sandbox] host-ports = closed */

        enum probe_kind probe;
        char *probe_path;               /* http */
        int probe_status;               /* http */
        char **probe_argv;              /* exec */
        uint64_t ready_timeout_usec;

        int quiet_procs;                /* QUIET_BASELINE or >= 0 */
        uint64_t settle_usec;
        int stop_signal;                /* 0: none */
        uint64_t drain_timeout_usec;
        enum idle_kind idle;            /* IDLE_NONE: processes and connections only */
        char **idle_argv;               /* exec */
        char *idle_path;                /* http */
        int idle_status;                /* http */
        uint64_t idle_interval_usec;    /* how often it runs while draining */
        uint64_t idle_timeout_usec;     /* one run; then it is killed and has failed */
        uint64_t poll_interval_usec;    /* counting where no event says a count changed */

        uint64_t memory_max;            /* bytes, 0: unset */
        uint64_t pids_max;              /* 0: unset */
        uint64_t cpu_milli;             /* 1.5 cpu = 1500, 0: unset */
        uint64_t nofile;                /* 0: unset */
        uint64_t nproc;                 /* RLIMIT_NPROC, 0: unset */
        uint64_t core;                  /* RLIMIT_CORE bytes */
        bool core_set;

        bool caps_set;                  /* [sandbox] capabilities given */
        uint64_t caps;                  /* bit per CAP_* */
        char *seccomp;                  /* profile name or path, NULL: default */
        bool new_uts, new_ipc, private_tmp;
        /* containment (gen.policy(5) says what each costs when relaxed) */
        bool private_users, private_pids, private_devices;
        bool protect_system, protect_kernel, protect_cgroups;
        char **writable, **readable;    /* absolute paths */
        char **hosts;                   /* "ADDR NAME" */
        char **dns;                     /* nameserver addresses */

        unsigned line[_KEY_MAX];        /* where each key was given (the first
                                         * time, if repeatable); 0: not given */
};

int policy_load(const char *path, struct policy **ret);
/* "[section] key" of a key, for messages. */
const char *policy_key_to_string(enum policy_key k);
int policy_parse_string(const char *name, const char *text, struct policy **ret);
void policy_free(struct policy *p);
/* A policy lives while a service or a generation made with it holds it. */
struct policy *policy_ref(struct policy *p);
void policy_unref(struct policy *p);

/* Loads every NAME.policy in dir, in name order; the first bad one fails
 * the whole set (gend's start). */
int policy_load_dir(const char *dir, struct policy ***ret, unsigned *ret_n);
/* The same, file by file, for a check of the whole set (gend -n): a file
 * that does not parse, that check (if not NULL) refuses, or that claims a
 * public port a file before it claims, is reported to on_error with its
 * message and left out, and the others go on. Returns the number of files
 * reported, or -errno when dir cannot be read. With on_error NULL it stops
 * at the first bad file and returns its -errno. */
typedef int (*policy_check_fn)(const struct policy *p);
typedef void (*policy_error_fn)(const char *msg, void *userdata);
int policy_load_dir_each(const char *dir, policy_check_fn check, policy_error_fn on_error,
                         void *userdata, struct policy ***ret, unsigned *ret_n);
/* Two services may not claim one public port. */
int policy_check_conflicts(struct policy *const *p, unsigned n);

bool policy_name_valid(const char *name);

/* validate.c: checks against this host, after parsing, with file:line of
 * the key: [service] exec and an exec probe are executable regular files
 * (and so is a script's '#!' interpreter), directory is a directory, user
 * and group exist, a seccomp profile given by path loads, the writable
 * and readable paths exist, private-tmp does not hide the program. Looks at the file system and the
 * user database; the parser does not. */
int policy_validate(const struct policy *p);

/* Helpers, exported for the tests and the CLI. Numbers are decimal digits,
 * with an optional '.' and fraction where the unit allows one; no sign,
 * exponent, hex or white space. -EINVAL: not that syntax; -ERANGE: past
 * UINT64_MAX. */
int parse_count(const char *s, uint64_t *ret);                  /* digits only */
/* s * mult, with at most max_frac digits of fraction (truncated). */
int parse_decimal(const char *s, uint64_t mult, unsigned max_frac, uint64_t *ret);
/* A number and a unit: ms, s, m, min, h. */
int parse_duration(const char *s, uint64_t *ret_usec);
/* Bytes (whole), or a number and K, M, G or T (powers of 1024). */
int parse_size(const char *s, uint64_t *ret_bytes);
int parse_port_map(const char *s, struct port_map *ret);
int parse_signal(const char *s, int *ret);
/* Shell-like word splitting: '...' and "..." quoting, backslash escapes;
 * never runs a shell. */
int split_words(const char *s, char ***ret);
const char *proto_to_string(int proto);
