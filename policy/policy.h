/* The policy language (gen.policy(5)): one INI file per service. Pure:
 * no kernel access, errors returned through err_msg() as "file:line: ...". */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define POLICY_NAME_MAX 20
#define POLICY_PORTS_MAX 16

enum probe_kind { PROBE_TCP, PROBE_HTTP, PROBE_EXEC };

struct port_map {
        uint16_t public_port;
        uint16_t inner_port;
        int proto;                      /* IPPROTO_TCP or IPPROTO_UDP */
};

#define QUIET_BASELINE (-1)

struct policy {
        unsigned refs;                  /* policy_ref / policy_unref */
        char *name;                     /* from the file name */
        char *path;

        char **argv;                    /* [service] exec, split into words */
        char *directory;
        char *user;                     /* NULL: root */
        char *group;
        char **env;                     /* KEY=VALUE */

        struct port_map ports[POLICY_PORTS_MAX];
        unsigned n_ports;

        enum probe_kind probe;
        char *probe_path;               /* http */
        int probe_status;               /* http */
        char **probe_argv;              /* exec */
        uint64_t ready_timeout_usec;

        int quiet_procs;                /* QUIET_BASELINE or >= 0 */
        uint64_t settle_usec;
        int stop_signal;                /* 0: none */
        uint64_t drain_timeout_usec;

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
};

int policy_load(const char *path, struct policy **ret);
int policy_parse_string(const char *name, const char *text, struct policy **ret);
void policy_free(struct policy *p);
/* A policy lives while a service or a generation made with it holds it. */
struct policy *policy_ref(struct policy *p);
void policy_unref(struct policy *p);

/* Loads every NAME.policy in dir; the first bad one fails the whole set. */
int policy_load_dir(const char *dir, struct policy ***ret, unsigned *ret_n);
/* Two services may not claim one public port. */
int policy_check_conflicts(struct policy *const *p, unsigned n);

bool policy_name_valid(const char *name);

/* Helpers, exported for the tests and the CLI. */
int parse_duration(const char *s, uint64_t *ret_usec);
int parse_size(const char *s, uint64_t *ret_bytes);
int parse_port_map(const char *s, struct port_map *ret);
int parse_signal(const char *s, int *ret);
/* Shell-like word splitting: '...' and "..." quoting, backslash escapes;
 * never runs a shell. */
int split_words(const char *s, char ***ret);
const char *proto_to_string(int proto);
